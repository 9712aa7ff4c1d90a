package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/accountedge/caddy-account-api/tests/devcore"
	"github.com/accountedge/caddy-account-api/tests/harness"
)

// TestBinaryAndExampleConfig checks what an operator does first: the module is listed, and the
// example configuration adapts and validates.
func TestBinaryAndExampleConfig(t *testing.T) {
	bin := harness.CaddyBinary(t)
	root := harness.RepoRoot(t)
	run := func(args ...string) string {
		cmd := exec.Command(bin, args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "ACCOUNT_API_CLIENT_SECRET="+devcore.DefaultClientSecret,
			"XDG_CONFIG_HOME="+t.TempDir(), "XDG_DATA_HOME="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("caddy %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if out := run("list-modules"); !strings.Contains(out, "http.handlers.account_api") {
		t.Fatalf("list-modules lacks the module:\n%s", out)
	}
	example := filepath.Join(root, "Caddyfile.example")
	out := run("adapt", "--config", example)
	if !strings.Contains(out, `"handler":"account_api"`) || strings.Contains(out, devcore.DefaultClientSecret) {
		t.Fatalf("adapted example config is wrong or holds the secret:\n%s", out)
	}
	run("validate", "--config", example)
}
