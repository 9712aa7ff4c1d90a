package tests

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/accountedge/caddy-account-api/tests/harness"
)

// TestQuickstartStopsOnSignal runs `./xcaddy.sh run` as a user does (on free ports), waits
// until the printed token works against Caddy, sends the script SIGTERM or SIGINT (kill -TERM,
// Ctrl-C), and checks that the script exits and leaves none of its children behind.
func TestQuickstartStopsOnSignal(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) { quickstartStopsOn(t, sig) })
	}
}

func quickstartStopsOn(t *testing.T, sig syscall.Signal) {
	httpPort := harness.FreePort(t)
	cmd, logFile := startQuickstart(t, map[string]int{
		"DEVCORE_PORT":           harness.FreePort(t),
		"ACCOUNT_API_HTTP_PORT":  httpPort,
		"ACCOUNT_API_ADMIN_PORT": harness.FreePort(t),
	})
	pgid := cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	logs := func() string { b, _ := os.ReadFile(logFile); return string(b) }

	// Ready: the token the script printed reads the demo account through Caddy. (Bounded; the
	// script builds ./caddy first only if a Go source is newer than it.)
	api := fmt.Sprintf("http://127.0.0.1:%d/api/my-account", httpPort)
	token := regexp.MustCompile(`export TOKEN='([^']+)'`)
	deadline := time.Now().Add(5 * time.Minute)
	for {
		if m := token.FindStringSubmatch(logs()); m != nil {
			req, _ := http.NewRequest(http.MethodGet, api, nil)
			req.Header.Set("Authorization", "Bearer "+m[1])
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
		}
		select {
		case err := <-done:
			t.Fatalf("./xcaddy.sh run exited before it was ready: %v\n%s", err, logs())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("./xcaddy.sh run not ready within 5 minutes:\n%s", logs())
		}
	}
	if n := len(processGroup(t, pgid)); n < 3 {
		t.Fatalf("want the script, the dev core and Caddy running, found %d processes", n)
	}

	if err := syscall.Kill(pgid, sig); err != nil { // the script only, as kill does
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("./xcaddy.sh run still running 60s after %v:\n%s", sig, logs())
	}
	if left := processGroup(t, pgid); len(left) > 0 {
		t.Fatalf("after %v the script exited but left %v running:\n%s", sig, left, logs())
	}
}

// TestQuickstartBusyPort: a port in use stops `./xcaddy.sh run` at once, with a message that
// names the variable to set.
func TestQuickstartBusyPort(t *testing.T) {
	for _, variable := range []string{"DEVCORE_PORT", "ACCOUNT_API_HTTP_PORT", "ACCOUNT_API_ADMIN_PORT"} {
		t.Run(variable, func(t *testing.T) {
			busy, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer busy.Close()
			ports := map[string]int{"DEVCORE_PORT": harness.FreePort(t), "ACCOUNT_API_HTTP_PORT": harness.FreePort(t),
				"ACCOUNT_API_ADMIN_PORT": harness.FreePort(t)}
			ports[variable] = busy.Addr().(*net.TCPAddr).Port
			cmd, logFile := startQuickstart(t, ports)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			var err2 error
			select {
			case err2 = <-done:
			case <-time.After(60 * time.Second):
				t.Fatal("./xcaddy.sh run did not stop on a busy port")
			}
			out, _ := os.ReadFile(logFile)
			want := fmt.Sprintf("port %d", ports[variable])
			if err2 == nil || !strings.Contains(string(out), want) || !strings.Contains(string(out), "set "+variable) {
				t.Fatalf("exit %v; want a message about %s naming %s:\n%s", err2, want, variable, out)
			}
		})
	}
}

// startQuickstart starts ./xcaddy.sh run in its own process group, with the Caddy binary under
// test and the given ports, its output in a file; the group is killed when the test ends, so
// nothing outlives it even when the test fails.
func startQuickstart(t *testing.T, ports map[string]int) (*exec.Cmd, string) {
	t.Helper()
	root := harness.RepoRoot(t)
	logFile := filepath.Join(t.TempDir(), "run.log")
	out, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { out.Close() })
	cmd := exec.Command(filepath.Join(root, "xcaddy.sh"), "run")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CADDY_BIN="+harness.CaddyBinary(t),
		"XDG_CONFIG_HOME="+t.TempDir(), "XDG_DATA_HOME="+t.TempDir())
	for name, port := range ports {
		cmd.Env = append(cmd.Env, name+"="+strconv.Itoa(port))
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	t.Cleanup(func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) })
	return cmd, logFile
}

// processGroup lists the processes (pid and command) whose process group is pgid.
func processGroup(t *testing.T, pgid int) []string {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid pgrp ...; comm may contain spaces, so cut at the last ')'.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(s[i+1:])
		if len(fields) > 2 && fields[2] == strconv.Itoa(pgid) {
			found = append(found, strings.Fields(s)[0]+" "+s[strings.IndexByte(s, '(')+1:i])
		}
	}
	return found
}
