package tests

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/accountedge/caddy-account-api/tests/devcore"
)

// TestAccessLogNamesTheCaller: after authentication the module sets {http.auth.user.id}, so
// Caddy's access log fills user_id as it does for its own basic_auth, and the account_api vars,
// which a log_append (evaluated after the handler) reads. A refused token leaves user_id empty,
// and no token reaches the log.
func TestAccessLogNamesTheCaller(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "access.log")
	e := newEnv(t, options{site: `log {
		output file ` + logFile + `
		format json
	}
	log_append api_client {http.vars.account_api.client_id}
	log_append api_scopes {http.vars.account_api.scopes}`})
	token := e.userToken("openid profile")
	if r := e.do("GET", "/api/my-account", token, nil); r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if r := e.do("GET", "/api/my-account", "not-a-token", nil); r.status != 401 {
		t.Fatalf("bogus token: status %d", r.status)
	}

	var entries []map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for len(entries) < 2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		entries = entries[:0]
		f, err := os.Open(logFile)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if strings.Contains(sc.Text(), token) {
				t.Fatal("the access log holds the bearer token")
			}
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == "handled request" {
				entries = append(entries, m)
			}
		}
		f.Close()
	}
	if len(entries) < 2 {
		t.Fatalf("want two access log entries, got %d", len(entries))
	}
	ok, refused := entries[0], entries[1]
	if ok["user_id"] != devcore.DemoUserID || ok["status"] != float64(200) {
		t.Errorf("accepted request: user_id %v, status %v", ok["user_id"], ok["status"])
	}
	if ok["api_client"] == "" || ok["api_client"] == nil || ok["api_scopes"] != "openid profile" {
		t.Errorf("accepted request: api_client %v, api_scopes %v", ok["api_client"], ok["api_scopes"])
	}
	if refused["user_id"] != "" || refused["status"] != float64(401) {
		t.Errorf("refused request: user_id %v, status %v", refused["user_id"], refused["status"])
	}
}
