package tests

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/accountedge/caddy-account-api/tests/devcore"
	"github.com/accountedge/caddy-account-api/tests/harness"
)

// faultProxy sits between the module and the dev core (on loopback) and injects core faults.
type faultProxy struct {
	srv  *httptest.Server
	mode atomic.Value // "pass", "down", "slow", "5xx", "writes-5xx", "when-5xx"
	when atomic.Pointer[func(*http.Request) bool]
}

func newFaultProxy(t *testing.T, target string) *faultProxy {
	u, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(u)
	f := &faultProxy{}
	f.mode.Store("pass")
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch f.mode.Load() {
		case "down": // the connection drops without an answer
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					c.Close()
				}
			}
		case "slow":
			select {
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
			}
		case "5xx":
			http.Error(w, "upstream trouble", http.StatusBadGateway)
		case "when-5xx": // the requests failWhen picked fail, the others pass
			if when := f.when.Load(); when != nil && (*when)(r) {
				http.Error(w, "upstream trouble", http.StatusBadGateway)
				return
			}
			rp.ServeHTTP(w, r)
		case "writes-5xx": // reads and checks work; the user writes fail
			if r.Method != http.MethodGet && strings.HasPrefix(r.URL.Path, "/api/users/") && !strings.HasSuffix(r.URL.Path, "/verify") {
				http.Error(w, "upstream trouble", http.StatusBadGateway)
				return
			}
			rp.ServeHTTP(w, r)
		default:
			rp.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *faultProxy) set(mode string) { f.mode.Store(mode) }

// failWhen makes the requests fail picks answer 502 (mode "when-5xx").
func (f *faultProxy) failWhen(fail func(*http.Request) bool) {
	f.when.Store(&fail)
	f.set("when-5xx")
}

func TestCoreFaults(t *testing.T) {
	e, proxy := newFaultEnv(t, options{extra: "core_timeout 1s\naccount_center {\nenabled true\nfields {\nname edit\n}\n}"})

	cached := e.userToken(allScopes)
	if r := e.do("GET", "/api/my-account", cached, nil); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	for _, mode := range []string{"down", "slow", "5xx"} {
		t.Run(mode, func(t *testing.T) {
			proxy.set(mode)
			defer proxy.set("pass")
			fresh := e.userToken(allScopes) // minted at the core directly, never seen by the module
			start := time.Now()
			r := e.do("GET", "/api/my-account", fresh, nil)
			took := time.Since(start)
			expectError(t, r, http.StatusServiceUnavailable, "identity_core.unavailable")
			if took > 2500*time.Millisecond {
				t.Fatalf("answer took %v with core_timeout 1s", took)
			}
			t.Logf("core %s: new token 503 in %v", mode, took.Round(time.Millisecond))
			// A token and profile the edge already holds keep working: reads survive the outage.
			if r := e.do("GET", "/api/my-account", cached, nil); r.status != http.StatusOK {
				t.Fatalf("cached read during the outage: %d %s", r.status, r.body)
			}
			// A write is refused too, and nothing is half-done.
			expectError(t, e.do("PATCH", "/api/my-account", cached, map[string]any{"name": "during outage"}),
				http.StatusServiceUnavailable, "identity_core.unavailable")
		})
	}
	// Recovery is immediate: nothing negative was cached about the fresh tokens.
	r := e.do("GET", "/api/my-account", e.userToken(allScopes), nil)
	if r.status != 200 || r.json(t)["name"] == "during outage" {
		t.Fatalf("after recovery: %d %s\n%s", r.status, r.body, e.caddy.Logs())
	}
}

func TestGatewayCredentialsRejected(t *testing.T) {
	e := newEnv(t, options{clientSecret: "not-the-secret"})
	r := e.do("GET", "/api/my-account", e.userToken(allScopes), nil)
	// The user's token may be fine: blaming it with a 401 would send users to sign in again.
	expectError(t, r, http.StatusServiceUnavailable, "identity_core.unavailable")
	if !e.caddy.WaitForLog("account api request failed", 5*time.Second) {
		t.Fatalf("no error log for the operator:\n%s", e.caddy.Logs())
	}
	if strings.Contains(e.caddy.Logs(), "not-the-secret") {
		t.Fatal("the client secret reached the logs")
	}
}

// newFaultEnv is a dev core behind a fault proxy, and Caddy reaching the core through it (the
// site's reverse_proxy still goes to the core directly).
func newFaultEnv(t *testing.T, opts options) (*env, *faultProxy) {
	t.Helper()
	srv, err := devcore.New(devcore.Config{}).Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	proxy := newFaultProxy(t, srv.URL)
	opts.coreURL = proxy.srv.URL
	return newEnvWithCore(t, srv, opts), proxy
}

// newEnvWithCore is newEnv around an already started dev core.
func newEnvWithCore(t *testing.T, srv *devcore.Server, opts options) *env {
	e := &env{t: t, core: srv, client: &http.Client{Timeout: 30 * time.Second}, api: harness.LoadUserAPI(t)}
	e.caddy = e.startCaddy(opts)
	return e
}

// loadResult counts the answers of a load run by status.
type loadResult struct {
	mu        sync.Mutex
	statuses  map[int]int
	errors    int // transport errors that a retry did not cure
	resets    int // connections dropped under a request, retried once
	redials   int // of those retries, the ones that failed too and were sent a third time
	lastError error
}

// describe summarises the answers for a failure message.
func (r *loadResult) describe() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprintf("statuses %v, %d transport errors (last: %v), %d retried resets (%d sent a third time)", r.statuses, r.errors, r.lastError, r.resets, r.redials)
}

// runLoad sends GET /api/my-account to base from workers until stop is closed, each request with
// token() (a fixed token or a new one). A request whose connection drops without an answer is
// sent once more, as browsers and Go's own transport do for idempotent requests, and once again,
// on a new connection, if that one dropped too or could not be made.
func runLoad(e *env, workers int, token func() string, stop <-chan struct{}) *loadResult {
	return runLoadOn(e.client, e.caddy.URL()+"/api/my-account", workers, token, stop)
}

func runLoadOn(client *http.Client, url string, workers int, token func() string, stop <-chan struct{}) *loadResult {
	res := &loadResult{statuses: map[int]int{}}
	send := func(tok string) (*http.Response, error) {
		req, _ := http.NewRequest("GET", url, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		return client.Do(req)
	}
	for i := 0; i < workers; i++ {
		go func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				tok := token()
				resp, err := send(tok)
				retried := err != nil
				if retried {
					resp, err = send(tok)
				}
				if err != nil {
					// The retry met a connection Caddy was closing in a swap too (another idle
					// one of the pool, or a listener going away: it happens to a plain respond
					// as well, see TestReloadControl). The request reached no handler, so a
					// client tries once more a moment later, on a new connection.
					time.Sleep(20 * time.Millisecond)
					client.CloseIdleConnections()
					resp, err = send(tok)
					res.mu.Lock()
					res.redials++
					res.mu.Unlock()
				}
				res.mu.Lock()
				if retried {
					res.resets++
				}
				if err != nil {
					res.errors++
					res.lastError = err
				} else {
					res.statuses[resp.StatusCode]++
					resp.Body.Close()
				}
				res.mu.Unlock()
			}
		}()
	}
	return res
}

func (r *loadResult) snapshot() (ok, failed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for s, n := range r.statuses {
		if s == 200 {
			ok += n
		} else {
			failed += n
		}
	}
	return ok, failed + r.errors
}

func TestRedisFaults(t *testing.T) {
	rs := harness.StartRedis(t)
	e := newEnv(t, options{redis: rs.Addr()})
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	warm := e.userToken(allScopes)
	if r := e.do("GET", "/api/my-account", warm, nil); r.status != 200 {
		t.Fatal(r.status)
	}

	// Minting at the dev core is cheap; half the workers use a new token on every request.
	var minted atomic.Int64
	fresh := func() string { minted.Add(1); return e.userToken(allScopes) }
	stop := make(chan struct{})
	warmLoad := runLoad(e, 4, func() string { return warm }, stop)
	freshLoad := runLoad(e, 2, fresh, stop)

	time.Sleep(time.Second)
	rs.Stop()
	down := time.Now()
	time.Sleep(2 * time.Second)
	okWarm, failWarm := warmLoad.snapshot()
	okFresh, failFresh := freshLoad.snapshot()
	t.Logf("Redis down for 2s under load: warm token %d ok / %d failed; new tokens %d ok / %d failed",
		okWarm, failWarm, okFresh, failFresh)

	// While Redis is down, step-up records cannot be written or read: refused cleanly.
	expectError(t, e.do("POST", "/api/verifications/password", warm, map[string]any{"password": devcore.DemoPassword}),
		http.StatusServiceUnavailable, "verification_record.store_unavailable")
	expectError(t, e.do("PATCH", "/api/my-account", warm, map[string]any{"username": "during_outage"}, "logto-verification-id", "anything"),
		http.StatusUnauthorized, "verification_record.permission_denied")

	rs.Restart()
	back := time.Now()
	// The module reconnects by itself: a new token's answer lands in Redis again.
	var recovered time.Duration
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		e.do("GET", "/api/my-account", e.userToken(allScopes), nil)
		if n, _ := rdb.DBSize(ctx).Result(); n > 0 {
			recovered = time.Since(back)
			break
		}
	}
	close(stop)
	time.Sleep(100 * time.Millisecond)
	okWarm, failWarm = warmLoad.snapshot()
	okFresh, failFresh = freshLoad.snapshot()
	t.Logf("whole run: warm %d ok / %d failed, new tokens %d ok / %d failed; Redis down %v; writes to Redis again %v after restart",
		okWarm, failWarm, okFresh, failFresh, back.Sub(down).Round(time.Millisecond), recovered.Round(time.Millisecond))
	if failWarm != 0 || failFresh != 0 {
		t.Fatalf("requests failed while Redis was down: %d + %d", failWarm, failFresh)
	}
	if recovered == 0 {
		t.Fatal("the module did not write to Redis again after it came back")
	}
	if !strings.Contains(e.caddy.Logs(), "shared cache unavailable") {
		t.Fatal("the outage was not logged")
	}
	// Step-up works again, once go-redis has closed its dial circuit breaker (it probes a
	// refused Redis once a second after enough failed dials).
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		r := e.do("POST", "/api/verifications/password", warm, map[string]any{"password": devcore.DemoPassword})
		if r.status == 201 {
			t.Logf("step-up works again %v after the restart", time.Since(back).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after recovery: %d %s", r.status, r.body)
		}
	}
}

func TestSlowRedisCostsLessThanAMiss(t *testing.T) {
	rs := harness.StartRedis(t)
	e := newEnv(t, options{redis: rs.Addr()})
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { rdb.Close() })
	// Redis stalls for 3 s; a new token's lookup must give up on Redis after its 100 ms timeout.
	go rdb.Do(context.Background(), "DEBUG", "SLEEP", "3")
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	r := e.do("GET", "/api/my-account", e.userToken(allScopes), nil)
	took := time.Since(start)
	t.Logf("GET with a new token while Redis stalls: %d in %v", r.status, took.Round(time.Millisecond))
	if r.status != 200 || took > time.Second {
		t.Fatalf("status %d after %v: a stalled Redis must not stall the API", r.status, took)
	}
}

// TestRedisAbsentAtStart: the module starts and serves with its configured Redis down, says so
// in logs and metrics, refuses step-up records cleanly, and uses Redis once it appears.
func TestRedisAbsentAtStart(t *testing.T) {
	port := harness.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	e := newEnv(t, options{redis: addr, global: "\tmetrics\n"})
	tok := e.userToken(allScopes)
	if r := e.do("GET", "/api/my-account", tok, nil); r.status != 200 {
		t.Fatalf("no Redis: %d %s", r.status, r.body)
	}
	expectError(t, e.do("POST", "/api/verifications/password", tok, map[string]any{"password": devcore.DemoPassword}),
		http.StatusServiceUnavailable, "verification_record.store_unavailable")
	if !e.caddy.WaitForLog("shared cache unavailable", 5*time.Second) {
		t.Fatalf("the outage was not logged:\n%s", e.caddy.Logs())
	}
	resp, err := http.Get(e.caddy.AdminURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !regexp.MustCompile(`caddy_account_api_redis_errors_total\{[^}]*\} [1-9]`).Match(body) {
		t.Fatalf("no Redis errors counted:\n%s", grepLines(string(body), "redis_errors"))
	}

	rs := harness.StartRedisOn(t, port)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { rdb.Close() })
	start := time.Now()
	for {
		e.do("GET", "/api/my-account", e.userToken(allScopes), nil)
		if n, _ := rdb.DBSize(context.Background()).Result(); n > 0 {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("the module never wrote to Redis after it appeared")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("Redis appeared after start: used within %v", time.Since(start).Round(time.Millisecond))
	if r := e.do("POST", "/api/verifications/password", tok, map[string]any{"password": devcore.DemoPassword}); r.status != http.StatusCreated {
		t.Fatalf("step-up once Redis is up: %d %s", r.status, r.body)
	}
}

func grepLines(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestFailedWritesLeaveNothingHalfDone: when the core fails the last step of a multi-step change
// (after the proofs were checked), nothing has changed and the same proofs still work, so the
// user simply retries.
func TestFailedWritesLeaveNothingHalfDone(t *testing.T) {
	e, proxy := newFaultEnv(t, options{extra: "profile_cache off"})
	tok := e.userToken(allScopes)
	stepUp := e.provenAddress(tok, "email", devcore.DemoEmail)
	const newAddress = "retry.me@example.com"
	newRecord := e.provenAddress(tok, "email", newAddress)
	change := map[string]any{"email": newAddress, "newIdentifierVerificationRecordId": newRecord}

	proxy.set("writes-5xx")
	expectError(t, e.do("POST", "/api/my-account/primary-email", tok, change, vidHeader, stepUp),
		http.StatusServiceUnavailable, "identity_core.unavailable")
	expectError(t, e.do("POST", "/api/my-account/password", tok, map[string]any{"password": "Retry-Me-Passw0rd!"}, vidHeader, stepUp),
		http.StatusServiceUnavailable, "identity_core.unavailable")
	proxy.set("pass")

	if email := e.do("GET", "/api/my-account", tok, nil).json(t)["primaryEmail"]; email != devcore.DemoEmail {
		t.Fatalf("the failed change left the email at %v", email)
	}
	if r := e.do("POST", "/api/verifications/password", tok, map[string]any{"password": devcore.DemoPassword}); r.status != http.StatusCreated {
		t.Fatalf("the failed change touched the password: %d %s", r.status, r.body)
	}
	// The same proofs work on the retry.
	if r := e.do("POST", "/api/my-account/primary-email", tok, change, vidHeader, stepUp); r.status != http.StatusNoContent {
		t.Fatalf("retry of the email change: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/api/my-account/password", tok, map[string]any{"password": "Retry-Me-Passw0rd!"}, vidHeader, stepUp); r.status != http.StatusNoContent {
		t.Fatalf("retry of the password change: %d %s", r.status, r.body)
	}
}
