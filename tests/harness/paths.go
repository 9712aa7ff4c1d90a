// Package harness holds helpers for the end-to-end tests under tests/:
// locating the repository and its Logto fixtures, free ports,
// a throwaway redis-server, a Caddy process built by ./xcaddy.sh build,
// OpenAPI response validation and the recorded Logto samples.
package harness

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// RepoRoot returns the repository root: the nearest directory at or above
// the working directory that holds go.mod. Tests run with their package
// directory as working directory, so walking up always finds it.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := repoRoot()
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	return dir
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod found above the working directory")
		}
		dir = parent
	}
}

// Testdata returns the path of tests/testdata/logto/<name>: Logto's OpenAPI documents and the
// exchanges recorded from a live Logto, copied into the repository so that a clone tests on its
// own (tests/testdata/README.md says where they come from).
func Testdata(t testing.TB, name string) string {
	t.Helper()
	path := filepath.Join(RepoRoot(t), "tests", "testdata", "logto", name)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("harness: test fixture %q missing: %v", path, err)
	}
	return path
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// The kernel picks it, so parallel tests do not collide; there is a small
// window in which another process could take it, which callers accept.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatalf("harness: free port: %v", err)
	}
	return port
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
