// Command bench measures the module on this machine: it starts the dev identity core, a Redis and
// Caddy (with this module) on loopback, drives load at them from this process, and prints one
// table, every row measured in the same run:
//
//	a  Caddy's respond with a JSON body the size of a profile: the ceiling here
//	b  GET /api/my-account, token and profile warm in process
//	c  the same with the in-process caches off: both answers come from Redis
//	d  GET /api/my-account with a new token on every request: one introspection each
//	e  PATCH /api/my-account: a write through the core, with invalidation
//
// then the coalescing check (N concurrent first requests with one new token, introspections
// counted at the core) and the memory of the in-process caches filled to their targets.
//
// It is run by `./xcaddy.sh bench`; it bounds its own duration and stops every process it starts.
// It is a measurement, not a test: it prints figures and whether each target is met.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/accountedge/caddy-account-api/tests/devcore"
)

func main() {
	caddyBin := flag.String("caddy", "./caddy", "Caddy binary built with the module")
	devcoreBin := flag.String("devcore", "", "dev core binary (go build ./tests/devcore/cmd/devcore)")
	redisBin := flag.String("redis", "redis-server", "redis-server binary")
	duration := flag.Duration("duration", 5*time.Second, "measuring time per row")
	conns := flag.Int("c", 16, "concurrent connections per row")
	coalesce := flag.Int("n", 1000, "concurrent first requests in the coalescing check")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of Caddy during one row (-cpuprofile-row) to this file (go tool pprof)")
	allocProfile := flag.String("allocprofile", "", "write the allocations Caddy made during that row to this file (go tool pprof -sample_index=alloc_objects)")
	cpuProfileRow := flag.String("cpuprofile-row", "b", "the row -cpuprofile covers: b (warm in process) or c (Redis hits)")
	memoryOnly := flag.Bool("memory", false, "only measure the in-process caches (no servers)")
	flag.Parse()
	if *memoryOnly {
		perToken, evict, err := measureTokens(100_000)
		if err != nil {
			fail(err)
		}
		fmt.Printf("100,000 cached token answers: %.0f bytes of heap each; voiding one user's answers: %s\n", perToken, evict)
		return
	}
	if *devcoreBin == "" {
		fail(errors.New("-devcore is required"))
	}
	if *cpuProfileRow != "b" && *cpuProfileRow != "c" {
		fail(errors.New("-cpuprofile-row is b or c"))
	}

	// The whole run is bounded: a stuck step ends it rather than hanging a terminal or CI.
	ctx, cancel := context.WithTimeout(context.Background(), 10*(*duration)+90*time.Second)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	b := &bench{ctx: ctx, conns: *conns, duration: *duration, cpuProfile: *cpuProfile, allocProfile: *allocProfile, cpuProfileRow: *cpuProfileRow}
	defer b.stopAll()
	if err := b.run(*caddyBin, *devcoreBin, *redisBin, *coalesce); err != nil {
		b.stopAll()
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

type bench struct {
	ctx      context.Context
	conns    int
	duration time.Duration
	dir      string
	// cpuProfile, when set, is where the CPU profile of Caddy during row cpuProfileRow goes.
	cpuProfile    string
	allocProfile  string // the same for the allocations made during the row
	cpuProfileRow string

	mu    sync.Mutex
	procs []*exec.Cmd

	coreURL   string
	adminPort int
	sites     map[string]int // site name -> port
	caddy     *exec.Cmd
	redisPid  int
}

// start runs a child process in its own process group, stopped by stopAll.
func (b *bench) start(name string, args ...string) (*exec.Cmd, io.Reader, error) {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	logFile, err := os.Create(filepath.Join(b.dir, filepath.Base(name)+".log"))
	if err != nil {
		return nil, nil, err
	}
	cmd.Stderr = logFile
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	b.mu.Lock()
	b.procs = append(b.procs, cmd)
	b.mu.Unlock()
	return cmd, out, nil
}

// stopAll ends every child: SIGTERM to its group, SIGKILL after two seconds.
func (b *bench) stopAll() {
	b.mu.Lock()
	procs := b.procs
	b.procs = nil
	b.mu.Unlock()
	for _, p := range procs {
		_ = syscall.Kill(-p.Process.Pid, syscall.SIGTERM)
	}
	for _, p := range procs {
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			_ = syscall.Kill(-p.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	if b.dir != "" {
		_ = os.RemoveAll(b.dir)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (b *bench) run(caddyBin, devcoreBin, redisBin string, coalesce int) error {
	// First, while this process's heap holds nothing else: the load rows leave buffers behind.
	perToken, evict, err := measureTokens(100_000)
	if err != nil {
		return err
	}
	if b.dir, err = os.MkdirTemp("", "account-api-bench-"); err != nil {
		return err
	}
	if err := b.startCore(devcoreBin); err != nil {
		return fmt.Errorf("dev core: %w", err)
	}
	redisAddr, err := b.startRedis(redisBin)
	if err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	if err := b.startCaddy(caddyBin, redisAddr); err != nil {
		return fmt.Errorf("caddy: %w", err)
	}
	token, err := b.mint()
	if err != nil {
		return err
	}

	// Row a serves a body exactly as long as the profile that rows b and c return.
	profile, err := b.fetch("GET", b.site("cached")+"/api/my-account", token)
	if err != nil {
		return err
	}
	if err := b.reload(redisAddr, profile); err != nil {
		return err
	}
	fmt.Printf("bench: %d connections, %s per row, profile body %d bytes, GOMAXPROCS of this load generator %d\n\n",
		b.conns, b.duration, len(profile), runtimeProcs())

	rows := []row{}
	measure := func(name string, next request, want int, limit int64, warm func() error) error {
		if warm != nil {
			if err := warm(); err != nil {
				return fmt.Errorf("%s: warm-up: %w", name, err)
			}
		}
		before, err := b.coreCalls()
		if err != nil {
			return err
		}
		cpuBefore := b.cpuNow()
		res := drive(b.ctx, b.conns, b.duration, limit, want, next)
		cpu := b.cpuNow().since(cpuBefore)
		after, err := b.coreCalls()
		if err != nil {
			return err
		}
		if b.ctx.Err() != nil {
			return b.ctx.Err()
		}
		rows = append(rows, row{name: name, res: res, core: after - before, cpu: cpu})
		return nil
	}
	warmGet := func(url string) func() error {
		return func() error {
			// Warm-up: fill the caches and the connections, then let the run's own numbers start.
			drive(b.ctx, b.conns, time.Second, 0, 200, get(url, token))
			return nil
		}
	}
	if err := measure("a  respond, same-size JSON (ceiling)", get(b.site("respond")+"/", ""), 200, 0, warmGet(b.site("respond")+"/")); err != nil {
		return err
	}
	profiled := b.profileCaddy("b")
	if err := measure("b  GET /api/my-account, warm in process", get(b.site("cached")+"/api/my-account", token), 200, 0,
		warmGet(b.site("cached")+"/api/my-account")); err != nil {
		return err
	}
	if err := <-profiled; err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	profiled = b.profileCaddy("c")
	if err := measure("c  GET, in-process caches off (Redis hits)", get(b.site("shared")+"/api/my-account", token), 200, 0,
		warmGet(b.site("shared")+"/api/my-account")); err != nil {
		return err
	}
	if err := <-profiled; err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	// Enough new tokens for the row, minted beforehand so that minting does not share its time.
	fresh, err := b.mintMany(min(int(rows[1].res.rps()*b.duration.Seconds()/2), 40_000))
	if err != nil {
		return err
	}
	if err := measure("d  GET, new token each time (introspection)", getWithTokens(b.site("cached")+"/api/my-account", fresh), 200,
		int64(len(fresh)), nil); err != nil {
		return err
	}
	if err := measure("e  PATCH /api/my-account (write through)", patchName(b.site("cached")+"/api/my-account", token), 200, 0, nil); err != nil {
		return err
	}
	printTable(rows)

	// Service time without queueing: with 16 connections on a small machine, p50 is mostly the
	// wait behind other requests, so the token check's own cost is measured on one connection.
	single := func(url string) result {
		drive(b.ctx, 1, 500*time.Millisecond, 0, 200, get(url, token))
		return drive(b.ctx, 1, 2*time.Second, 0, 200, get(url, token))
	}
	a1, b1 := single(b.site("respond")+"/"), single(b.site("cached")+"/api/my-account")
	fmt.Printf("\none connection: respond p50 %s, warm GET p50 %s (+%s)\n", us(a1.p50), us(b1.p50), (b1.p50 - a1.p50).Round(time.Microsecond))

	introspections, ok, err := b.coalescing(coalesce)
	if err != nil {
		return err
	}
	heap, rssGrowth, err := measureCaches(100_000, 10_000)
	if err != nil {
		return err
	}
	caddyRSS := procRSS(b.caddy.Process.Pid)

	a, bb, c, d := rows[0], rows[1], rows[2], rows[3]
	fmt.Printf("coalescing: %d concurrent first requests with one new token (introspection slowed to 200ms): %d answered 200, %d introspection(s)\n",
		coalesce, ok, introspections)
	fmt.Printf("memory: 100,000 cached tokens + 10,000 cached profiles in process: heap +%.1f MB, RSS +%.1f MB (Caddy's RSS at the end of the run: %.1f MB)\n",
		mb(heap), mb(rssGrowth), mb(caddyRSS))
	fmt.Printf("token cache: 100,000 cached answers cost %.0f bytes of heap each; voiding one user's answers with the cache full: %s\n",
		perToken, evict)
	fmt.Printf("row d: %d requests, %d core calls (introspections and user reads)\n\n", d.res.requests, d.core)

	fmt.Println("targets:")
	target("warm GET (b) >= 0.5x respond (a)", bb.res.rps() >= 0.5*a.res.rps(), fmt.Sprintf("%.2fx", bb.res.rps()/a.res.rps()))
	// A warm answer is asked again once per token_cache_ttl / max_age (1m): a row may see one.
	target("no core calls while warm (b, c), but one reload per 1m TTL", bb.core <= 2 && c.core <= 2, fmt.Sprintf("b %d, c %d", bb.core, c.core))
	target("warm GET adds <= 50us at p50 over (a), one connection", b1.p50-a1.p50 <= 50*time.Microsecond,
		fmt.Sprintf("+%s (16 connections: +%s)", (b1.p50-a1.p50).Round(time.Microsecond), (bb.res.p50-a.res.p50).Round(time.Microsecond)))
	target("Redis hits (c) >= 0.7x (b)", c.res.rps() >= 0.7*bb.res.rps(), fmt.Sprintf("%.2fx", c.res.rps()/bb.res.rps()))
	target("Redis hits (c) >= 0.7x respond (a)", c.res.rps() >= 0.7*a.res.rps(), fmt.Sprintf("%.2fx", c.res.rps()/a.res.rps()))
	target("a cached token answer <= 250 bytes of heap", perToken <= 250, fmt.Sprintf("%.0f bytes", perToken))
	target(fmt.Sprintf("exactly 1 introspection for %d concurrent first requests", coalesce), introspections == 1 && ok == coalesce,
		fmt.Sprintf("%d introspection(s), %d ok", introspections, ok))
	target("100k tokens + 10k profiles < 100 MB", max(heap, rssGrowth) < 100<<20, fmt.Sprintf("%.1f MB", mb(max(heap, rssGrowth))))
	return nil
}

type row struct {
	name string
	res  result
	core int64
	cpu  cpuUse // used by each process during the row
}

func printTable(rows []row) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "row\treq/s\tp50\tp99\tvs (a)\tcore calls\terrors\tCPU µs/req: caddy\tredis\tload\t")
	base := rows[0].res.rps()
	for _, r := range rows {
		perReq := func(d time.Duration) string {
			return fmt.Sprintf("%.1f", float64(d)/float64(time.Microsecond)/float64(max(r.res.requests, 1)))
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%.2fx\t%d\t%d\t%s\t%s\t%s\t\n", r.name, r.res.rps(), us(r.res.p50), us(r.res.p99),
			r.res.rps()/base, r.core, r.res.errors, perReq(r.cpu.caddy), perReq(r.cpu.redis), perReq(r.cpu.load))
	}
	_ = tw.Flush()
}

func target(what string, met bool, got string) {
	mark := "MET   "
	if !met {
		mark = "NOT MET"
	}
	fmt.Printf("  %-7s %-62s %s\n", mark, what, got)
}

func us(d time.Duration) string { return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond)) }

func mb(n uint64) float64 { return float64(n) / (1 << 20) }

func procRSS(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	return rssFrom(string(b))
}

// startCore runs the dev core on a free loopback port and reads its URL from its first line.
func (b *bench) startCore(bin string) error {
	_, out, err := b.start(bin, "-listen", "127.0.0.1:0")
	if err != nil {
		return err
	}
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		if s.Scan() {
			line <- s.Text()
		}
		close(line)
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case l, ok := <-line:
		if !ok {
			return errors.New("exited at start")
		}
		var info struct {
			URL string `json:"url"`
		}
		if err := json.Unmarshal([]byte(l), &info); err != nil || info.URL == "" {
			return fmt.Errorf("unexpected first line %q", l)
		}
		b.coreURL = info.URL
		return nil
	case <-time.After(15 * time.Second):
		return errors.New("no address within 15s")
	}
}

func (b *bench) startRedis(bin string) (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	cmd, _, err := b.start(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", b.dir)
	if err != nil {
		return "", err
	}
	b.redisPid = cmd.Process.Pid
	addr := "127.0.0.1:" + strconv.Itoa(port)
	return addr, waitFor(func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
}

// caddyfile has three sites: respond (row a), the module with Redis behind its in-process caches
// (rows b, d, e) and the module with the in-process caches off (row c).
func (b *bench) caddyfile(redisAddr string, respondBody []byte) string {
	site := func(name, extra string) string {
		return fmt.Sprintf(`http://127.0.0.1:%d {
	account_api {
		core_url %s
		client_id %s
		client_secret %s
		redis {
			address %s
		}
		%s
	}
	reverse_proxy %s
}
`, b.sites[name], b.coreURL, devcore.DefaultClientID, devcore.DefaultClientSecret, redisAddr, extra,
			strings.TrimPrefix(b.coreURL, "http://"))
	}
	body := strings.ReplaceAll(string(respondBody), "`", "'")
	if body == "" {
		body = "{}"
	}
	return fmt.Sprintf(`{
	admin 127.0.0.1:%d
	default_bind 127.0.0.1
	auto_https off
	log {
		level ERROR
	}
}
http://127.0.0.1:%d {
	header Content-Type "application/json; charset=utf-8"
	respond `+"`%s`"+` 200
}
`, b.adminPort, b.sites["respond"], body) + site("cached", "") + site("shared", "disable_local_cache")
}

func (b *bench) startCaddy(bin, redisAddr string) error {
	b.sites = map[string]int{}
	for _, name := range []string{"respond", "cached", "shared"} {
		port, err := freePort()
		if err != nil {
			return err
		}
		b.sites[name] = port
	}
	var err error
	if b.adminPort, err = freePort(); err != nil {
		return err
	}
	cfg := filepath.Join(b.dir, "Caddyfile")
	if err := os.WriteFile(cfg, []byte(b.caddyfile(redisAddr, nil)), 0o600); err != nil {
		return err
	}
	cmd, out, err := b.start(bin, "run", "--config", cfg, "--adapter", "caddyfile")
	if err != nil {
		return err
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	b.caddy = cmd
	return waitFor(func() error {
		_, err := b.fetch("GET", b.site("respond")+"/", "")
		return err
	})
}

// reload loads the same configuration with the respond body set to body.
func (b *bench) reload(redisAddr string, body []byte) error {
	req, _ := http.NewRequestWithContext(b.ctx, "POST", fmt.Sprintf("http://127.0.0.1:%d/load", b.adminPort),
		strings.NewReader(b.caddyfile(redisAddr, body)))
	req.Header.Set("Content-Type", "text/caddyfile")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		msg, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("reload: %d %s", resp.StatusCode, msg)
	}
	got, err := b.fetch("GET", b.site("respond")+"/", "")
	if err != nil {
		return err
	}
	if len(got) != len(body) {
		return fmt.Errorf("respond serves %d bytes, want %d", len(got), len(body))
	}
	return nil
}

// profileCaddy takes the profiles asked for (-cpuprofile, -allocprofile) of Caddy, through its
// admin endpoint, over the measured part of the next row when that row is the one named.
func (b *bench) profileCaddy(row string) <-chan error {
	done := make(chan error, 1)
	if b.cpuProfileRow != row || b.cpuProfile == "" && b.allocProfile == "" {
		done <- nil
		return done
	}
	go func() {
		time.Sleep(time.Second + 200*time.Millisecond) // past the warm-up
		secs := max(1, int(b.duration.Seconds())-1)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, p := range []struct{ kind, file string }{{"profile", b.cpuProfile}, {"allocs", b.allocProfile}} {
			if p.file != "" {
				wg.Go(func() { errs[i] = b.saveProfile(p.kind, secs, p.file) })
			}
		}
		wg.Wait()
		done <- errors.Join(errs...)
	}()
	return done
}

// saveProfile writes Caddy's pprof profile kind over the next secs seconds to file.
func (b *bench) saveProfile(kind string, secs int, file string) error {
	url := fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/%s?seconds=%d", b.adminPort, kind, secs)
	req, _ := http.NewRequestWithContext(b.ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, resp.Body)
	return errors.Join(err, f.Close())
}

func (b *bench) site(name string) string { return "http://127.0.0.1:" + strconv.Itoa(b.sites[name]) }

func waitFor(try func() error) error {
	var err error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if err = try(); err == nil {
			return nil
		}
	}
	return err
}

// fetch makes one request and returns the body of a 200.
func (b *bench) fetch(method, url, token string) ([]byte, error) {
	req, err := http.NewRequestWithContext(b.ctx, method, url, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, body)
	}
	return body, err
}

func (b *bench) devAPI(path string, in, out any) error {
	body, _ := json.Marshal(in)
	req, _ := http.NewRequestWithContext(b.ctx, "POST", b.coreURL+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		msg, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s: %d %s", path, resp.StatusCode, msg)
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

const scopes = "openid offline_access profile email phone identities custom_data address"

func (b *bench) mint() (string, error) {
	var out devcore.MintResponse
	err := b.devAPI("/dev/tokens", devcore.MintRequest{UserID: devcore.DemoUserID, Scope: scopes}, &out)
	return out.AccessToken, err
}

// mintMany mints n tokens with a few concurrent callers.
func (b *bench) mintMany(n int) ([]string, error) {
	n = max(n, 1000)
	tokens := make([]string, n)
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				t, err := b.mint()
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				tokens[i] = t
			}
		})
	}
	wg.Wait()
	return tokens, firstErr
}

// coreCalls is the number of introspections and Management API calls the core has answered.
func (b *bench) coreCalls() (int64, error) {
	req, _ := http.NewRequestWithContext(b.ctx, "GET", b.coreURL+"/dev/stats", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var s devcore.Stats
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return 0, err
	}
	n := s.Introspections
	for _, v := range s.Management {
		n += v
	}
	return n, nil
}

// coalescing sends n concurrent first requests with one new token and returns how many
// introspections the core answered and how many requests got a 200.
func (b *bench) coalescing(n int) (int64, int, error) {
	if err := b.devAPI("/dev/introspection-delay", map[string]int{"ms": 200}, nil); err != nil {
		return 0, 0, err
	}
	defer func() { _ = b.devAPI("/dev/introspection-delay", map[string]int{"ms": 0}, nil) }()
	token, err := b.mint()
	if err != nil {
		return 0, 0, err
	}
	if err := b.devAPI("/dev/stats/reset", struct{}{}, nil); err != nil {
		return 0, 0, err
	}
	transport := &http.Transport{MaxIdleConnsPerHost: n}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	start := make(chan struct{})
	var ok atomic.Int64
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(b.ctx, "GET", b.site("cached")+"/api/my-account", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			<-start
			resp, err := client.Do(req)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				ok.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	req, _ := http.NewRequestWithContext(b.ctx, "GET", b.coreURL+"/dev/stats", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	var s devcore.Stats
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return 0, 0, err
	}
	return s.Introspections, int(ok.Load()), nil
}
