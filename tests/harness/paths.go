// Package harness holds helpers for the end-to-end tests under tests/:
// locating the repository and the shared reference folder, free ports,
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

// SharedReference returns the path of shared/reference/<name>. The shared
// folder sits beside the repository (…/shared next to …/main), both on the
// developers' machines and in CI's fresh clone.
func SharedReference(t testing.TB, name string) string {
	t.Helper()
	path := filepath.Join(filepath.Dir(RepoRoot(t)), "shared", "reference", name)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("harness: shared reference %q missing (expected the shared folder beside the repo): %v", path, err)
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
