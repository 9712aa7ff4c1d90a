package harness

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// CaddyBinary returns the Caddy binary under test: $CADDY_BIN, or ./caddy
// at the repository root as ./xcaddy.sh build leaves it.
func CaddyBinary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("CADDY_BIN")
	if bin == "" {
		bin = filepath.Join(RepoRoot(t), "caddy")
	}
	if info, err := os.Stat(bin); err != nil || info.IsDir() {
		t.Fatalf("harness: caddy binary %q missing: run ./xcaddy.sh build (or set CADDY_BIN)", bin)
	}
	return bin
}

// Ports are the loopback ports one Caddy instance listens on.
type Ports struct {
	HTTP  int // site address: http://127.0.0.1:<HTTP>
	Admin int // admin API: 127.0.0.1:<Admin>
}

// GlobalOptions returns the body of the Caddyfile global block every test
// config needs: a private admin port (so parallel tests and a developer's
// own Caddy do not clash), loopback-only listeners and no certificate work.
// Embed it as "{\n" + GlobalOptions(p) + "}\n".
func GlobalOptions(p Ports) string {
	return fmt.Sprintf("\tadmin 127.0.0.1:%d\n\tdefault_bind 127.0.0.1\n\tauto_https off\n", p.Admin)
}

// Caddy is a `caddy run` process owned by one test.
type Caddy struct {
	t       testing.TB
	bin     string
	ports   Ports
	dir     string
	cfgFile string
	logFile string
	env     []string

	mu   sync.Mutex
	logs bytes.Buffer
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// StartCaddy runs Caddy with the Caddyfile that config returns for freshly
// picked ports, waits until it serves, and stops it in t.Cleanup. config
// must put GlobalOptions(p) in the global block and serve
// http://127.0.0.1:<p.HTTP>.
func StartCaddy(t testing.TB, config func(p Ports) string) *Caddy {
	t.Helper()
	return StartCaddyEnv(t, nil, config)
}

// StartCaddyEnv is StartCaddy with extra environment variables
// ("KEY=value"), for configs that read {$ENV} placeholders.
func StartCaddyEnv(t testing.TB, env []string, config func(p Ports) string) *Caddy {
	t.Helper()
	bin := CaddyBinary(t)
	dir := t.TempDir()
	c := &Caddy{
		t:       t,
		bin:     bin,
		dir:     dir,
		cfgFile: filepath.Join(dir, "Caddyfile"),
		logFile: filepath.Join(dir, "caddy.log"),
		// Caddy keeps autosave.json, certificates and locks under the XDG
		// folders; pointing them into the test dir keeps runs independent
		// and leaves the developer's home untouched.
		env: append(append(os.Environ(),
			"XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
			"XDG_DATA_HOME="+filepath.Join(dir, "data"),
		), env...),
	}
	t.Cleanup(c.kill)

	// Free ports can be taken by someone else before Caddy binds them;
	// retry a few times with new ports when that is why it failed.
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		c.ports = Ports{HTTP: FreePort(t), Admin: FreePort(t)}
		for c.ports.Admin == c.ports.HTTP {
			c.ports.Admin = FreePort(t)
		}
		if err = os.WriteFile(c.cfgFile, []byte(config(c.ports)), 0o644); err != nil {
			t.Fatalf("harness: write Caddyfile: %v", err)
		}
		if err = c.start(); err == nil {
			return c
		}
		if !strings.Contains(c.Logs(), "address already in use") {
			break
		}
	}
	t.Fatalf("harness: %v", err)
	return nil
}

// URL is the base URL of the site: http://127.0.0.1:<HTTP>.
func (c *Caddy) URL() string { return "http://127.0.0.1:" + strconv.Itoa(c.ports.HTTP) }

// Ports returns the ports this instance was configured with.
func (c *Caddy) Ports() Ports { return c.ports }

// AdminURL is the base URL of the admin API.
func (c *Caddy) AdminURL() string { return "http://127.0.0.1:" + strconv.Itoa(c.ports.Admin) }

// Logs returns everything Caddy wrote to stdout and stderr so far (Caddy
// logs JSON lines to stderr by default).
func (c *Caddy) Logs() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.logs.String()
}

// LogFile is the path of the file that also receives Caddy's output; it
// survives in the test's temp dir until the test ends.
func (c *Caddy) LogFile() string { return c.logFile }

// WaitForLog polls Logs until it contains substr or timeout passes, for
// log lines written asynchronously after a request returns.
func (c *Caddy) WaitForLog(substr string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if strings.Contains(c.Logs(), substr) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Reload replaces the config through `caddy reload` and fails the test if
// Caddy rejects it. Use TryReload when rejection is the expected outcome.
func (c *Caddy) Reload(config string) {
	c.t.Helper()
	if err := c.TryReload(config); err != nil {
		c.t.Fatalf("harness: %v", err)
	}
}

// TryReload is Reload returning the error (with caddy's output) instead of
// failing the test. The config must keep the same ports (use Ports()).
func (c *Caddy) TryReload(config string) error {
	if err := os.WriteFile(c.cfgFile, []byte(config), 0o644); err != nil {
		return fmt.Errorf("write Caddyfile: %w", err)
	}
	cmd := exec.Command(c.bin, "reload", "--config", c.cfgFile, "--adapter", "caddyfile",
		"--address", "127.0.0.1:"+strconv.Itoa(c.ports.Admin))
	cmd.Env = c.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("caddy reload: %v\n%s", err, out)
	}
	return nil
}

// Stop shuts Caddy down gracefully (SIGTERM), waits up to 10 s, then kills
// it. Stopping twice is harmless; t.Cleanup calls it too.
func (c *Caddy) Stop() { c.kill() }

func (c *Caddy) start() error {
	logf, err := os.OpenFile(c.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open log file: %w", err)
	}
	c.mu.Lock()
	c.logs.Reset()
	c.mu.Unlock()

	cmd := exec.Command(c.bin, "run", "--config", c.cfgFile, "--adapter", "caddyfile")
	cmd.Env = c.env
	cmd.Dir = c.dir
	w := io.MultiWriter(&syncWriter{mu: &c.mu, w: &c.logs}, logf)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start caddy: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	c.mu.Lock()
	c.cmd, c.done = cmd, done
	c.mu.Unlock()

	// GET /config/ takes the same lock as a config load, so once it answers
	// the initial config has been applied and the site listeners are up.
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(c.AdminURL() + "/config/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-done:
			c.kill()
			return fmt.Errorf("caddy exited before serving; logs:\n%s", c.Logs())
		default:
		}
		if time.Now().After(deadline) {
			c.kill()
			return fmt.Errorf("caddy admin %s did not answer within 30s; logs:\n%s", c.AdminURL(), c.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *Caddy) kill() {
	c.mu.Lock()
	cmd, done := c.cmd, c.done
	c.cmd, c.done = nil, nil
	c.mu.Unlock()
	// SIGTERM makes `caddy run` stop its apps gracefully, like `caddy stop`
	// but without depending on the admin endpoint still working.
	terminate(cmd, done, 10*time.Second)
}

// terminate sends SIGTERM to a process started by the harness (nil: nothing to do), waits up to
// grace for it to exit (done closes then), and kills it otherwise.
func terminate(cmd *exec.Cmd, done <-chan struct{}, grace time.Duration) {
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-done
	}
}

// RSS returns the resident memory of the Caddy process in bytes (Linux /proc), for soak tests.
func (c *Caddy) RSS() (int64, error) {
	c.mu.Lock()
	cmd := c.cmd
	c.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return 0, fmt.Errorf("caddy is not running")
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", cmd.Process.Pid)
}
