package tests

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// metric returns the value of the sample whose line starts with series (name and labels as
// Prometheus prints them, labels in alphabetical order), or 0 when absent.
func (e *env) metric(series string) float64 {
	e.t.Helper()
	resp, err := e.client.Get(e.caddy.AdminURL() + "/metrics")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, options{})
	tok := e.userToken(allScopes)
	for i := 0; i < 3; i++ {
		if r := e.do("GET", "/api/my-account", tok, nil); r.status != 200 {
			t.Fatal(r.status)
		}
	}
	expectError(t, e.do("GET", "/api/my-account", "no-such-token", nil), http.StatusUnauthorized, "auth.unauthorized")
	expectError(t, e.do("PATCH", "/api/my-account", tok, map[string]any{"username": "needs_step_up"}),
		http.StatusUnauthorized, "verification_record.permission_denied")

	const route = `route="GET /api/my-account"`
	want := map[string]float64{
		`caddy_account_api_requests_total{outcome="ok",` + route + `}`:                                3,
		`caddy_account_api_requests_total{outcome="auth.unauthorized",` + route + `}`:                 1,
		`caddy_account_api_cache_requests_total{kind="token",layer="local",result="hit"}`:             3, // 2 GETs + the PATCH
		`caddy_account_api_cache_requests_total{kind="token",layer="local",result="miss"}`:            2, // first GET, unknown token
		`caddy_account_api_cache_requests_total{kind="profile",layer="local",result="hit"}`:           2,
		`caddy_account_api_cache_requests_total{kind="profile",layer="local",result="miss"}`:          1,
		`caddy_account_api_denials_total{reason="step_up"}`:                                           1,
		`caddy_account_api_introspection_duration_seconds_count{outcome="ok"}`:                        2,
		`caddy_account_api_core_request_duration_seconds_count{op="GET /api/users/:id",outcome="ok"}`: 1,
	}
	for series, v := range want {
		if got := e.metric(series); got != v {
			t.Errorf("%s = %v, want %v", series, got, v)
		}
	}
	if e.metric(`caddy_account_api_cache_requests_total{kind="settings",layer="local",result="hit"}`) < 1 {
		t.Error("no settings cache hit counted")
	}

	// Nothing secret in any label: no token, no user id.
	resp, err := e.client.Get(e.caddy.AdminURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, secret := range []string{tok, "no-such-token", "demouser"} {
		if strings.Contains(string(body), secret) {
			t.Fatalf("metrics contain %q", secret)
		}
	}
	if regexp.MustCompile(`caddy_account_api_\w+\{[^}]*users/[^:]`).Match(body) {
		t.Fatal("a core operation label carries an id")
	}

	// The counters survive a reload (collectors are created once and re-registered).
	e.caddy.Reload(e.caddyfile(e.caddy.Ports(), options{extra: "policy_cache_ttl 2m"}))
	if r := e.do("GET", "/api/my-account", tok, nil); r.status != 200 {
		t.Fatal(r.status)
	}
	if got := e.metric(`caddy_account_api_requests_total{outcome="ok",` + route + `}`); got != 4 {
		t.Fatalf("after a reload the request counter is %v, want 4", got)
	}
}
