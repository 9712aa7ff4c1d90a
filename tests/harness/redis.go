package harness

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Redis is a redis-server process owned by one test. It listens on a free
// port of 127.0.0.1 (never the machine's own 6379), keeps nothing on disk,
// and allows DEBUG commands from loopback so tests can simulate a slow
// server with DEBUG SLEEP.
type Redis struct {
	t    testing.TB
	port int
	dir  string
	// extra arguments for redis-server (cluster mode, a Sentinel config file).
	extra []string
	// tls, when set, makes the server speak only TLS on port.
	tls *redisTLS

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	logs *bytes.Buffer
}

// StartRedis starts a redis-server for the test and stops it in t.Cleanup.
// Without redis-server on PATH the test is skipped, except in CI (CI env
// set), where a silent skip would hide a missing install step.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	return startRedis(t, FreePort(t), nil)
}

// StartRedisOn starts a redis-server on a given port: a test that first ran without Redis on
// that port brings it up later.
func StartRedisOn(t testing.TB, port int) *Redis {
	t.Helper()
	return startRedis(t, port, nil)
}

func startRedis(t testing.TB, port int, extra []string) *Redis {
	t.Helper()
	return startRedisWith(t, port, extra, nil)
}

func startRedisWith(t testing.TB, port int, extra []string, tls *redisTLS) *Redis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("harness: redis-server not on PATH in CI: install redis-server (./xcaddy.sh test does)")
		}
		t.Skip("redis-server not on PATH: install redis-server (./xcaddy.sh test does)")
	}
	r := &Redis{t: t, port: port, dir: t.TempDir(), extra: extra, tls: tls}
	t.Cleanup(r.kill)
	if err := r.start(); err != nil {
		t.Fatalf("harness: %v", err)
	}
	return r
}

// Addr is host:port for clients.
func (r *Redis) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// Port is the TCP port the server listens on (kept across Restart).
func (r *Redis) Port() int { return r.port }

// Stop shuts the server down and waits for it to exit, so that tests can
// check how the code behaves while Redis is unreachable.
func (r *Redis) Stop() {
	r.t.Helper()
	r.kill()
}

// Restart stops the server if it runs and starts a fresh, empty one on the
// same port (persistence is off, so all keys are gone).
func (r *Redis) Restart() {
	r.t.Helper()
	r.kill()
	if err := r.start(); err != nil {
		r.t.Fatalf("harness: restart: %v", err)
	}
}

// Logs returns what redis-server printed so far (for failure messages).
func (r *Redis) Logs() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.logs == nil {
		return ""
	}
	return r.logs.String()
}

func (r *Redis) start() error {
	logs := &bytes.Buffer{}
	args := append([]string(nil), r.extra...)
	if r.tls != nil {
		args = append(args, "--port", "0", "--tls-port", strconv.Itoa(r.port), "--tls-auth-clients", "no",
			"--tls-cert-file", r.tls.certFile, "--tls-key-file", r.tls.keyFile, "--tls-ca-cert-file", r.tls.caFile)
	} else {
		args = append(args, "--port", strconv.Itoa(r.port))
	}
	cmd := exec.Command("redis-server", append(args,
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--enable-debug-command", "local",
		"--dir", r.dir,
	)...)
	w := &syncWriter{mu: &r.mu, w: logs}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()

	r.mu.Lock()
	r.cmd, r.done, r.logs = cmd, done, logs
	r.mu.Unlock()

	// Poll PING: the port opens a little after the process starts.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := r.ping(); err == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("redis-server exited at start:\n%s", r.Logs())
		default:
		}
		if time.Now().After(deadline) {
			r.kill()
			return fmt.Errorf("redis-server on %s did not answer PING within 10s:\n%s", r.Addr(), r.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill stops the current process, if any: SIGTERM first (redis exits at
// once without persistence), SIGKILL if it lingers.
func (r *Redis) kill() {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.cmd, r.done = nil, nil
	r.mu.Unlock()
	terminate(cmd, done, 5*time.Second)
}

// ping speaks just enough RESP over a raw connection (TLS for a TLS server) to check that the
// server is up, so readiness does not depend on a client library's retries.
func (r *Redis) ping() error {
	var conn net.Conn
	var err error
	if r.tls != nil {
		conn, err = tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", r.Addr(), r.tls.client)
	} else {
		conn, err = net.DialTimeout("tcp", r.Addr(), time.Second)
	}
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// syncWriter lets the process write its output while tests read it.
type syncWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
