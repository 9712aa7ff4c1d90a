package tests

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/accountedge/caddy-account-api/tests/devcore"
)

// metric returns the value of the sample whose line starts with series (name and labels as
// Prometheus prints them, labels in alphabetical order), or 0 when absent.
func (e *env) metric(series string) float64 {
	e.t.Helper()
	for _, line := range strings.Split(e.metricsText(), "\n") {
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
		`caddy_account_api_cache_requests_total{kind="token",layer="local",result="hit"}`:             2, // 2 GETs (a write asks the core)
		`caddy_account_api_cache_requests_total{kind="token",layer="local",result="miss"}`:            2, // first GET, unknown token
		`caddy_account_api_cache_requests_total{kind="profile",layer="local",result="hit"}`:           2,
		`caddy_account_api_cache_requests_total{kind="profile",layer="local",result="miss"}`:          1,
		`caddy_account_api_denials_total{reason="step_up"}`:                                           1,
		`caddy_account_api_introspection_duration_seconds_count{outcome="ok"}`:                        3, // + the PATCH
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
	body := []byte(e.metricsText())
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

// series lists the module's metric series (name and labels) on /metrics, and its size.
func (e *env) series() (map[string]bool, int) {
	e.t.Helper()
	text := e.metricsText()
	out := map[string]bool{}
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "caddy_account_api_") {
			name, _, _ := strings.Cut(line, " ")
			out[name] = true
		}
	}
	return out, len(text)
}

// metricsText is the first instance's /metrics page.
func (e *env) metricsText() string {
	e.t.Helper()
	resp, err := e.client.Get(e.caddy.AdminURL() + "/metrics")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestMetricSeriesStayBounded drives 1,000 made-up connector ids and 1,000 made-up paths
// through the module: label values come from route patterns and fixed vocabularies only, so
// no series appears that a handful of such requests did not already make.
func TestMetricSeriesStayBounded(t *testing.T) {
	e := newEnv(t, options{})
	tok := e.userToken(allScopes)
	pw := e.passwordRecord(tok, devcore.DemoPassword)
	drive := func(n int) {
		for i := 0; i < n; i++ {
			ids := []string{fmt.Sprintf("conn%d", i), fmt.Sprintf("users/%d/password/verify", i), fmt.Sprintf("a/b/c/%d/..", i), fmt.Sprintf("verify-%d", i)}
			id := ids[i%len(ids)]
			r := e.call(e.caddy.URL(), "POST", "/api/verifications/social", tok,
				map[string]any{"connectorId": id, "state": "s", "redirectUri": "https://app.example/cb"})
			if r.status != http.StatusUnprocessableEntity {
				t.Fatalf("connector %q: %d %s", id, r.status, r.body)
			}
			paths := []string{"/api/my-account/x" + strconv.Itoa(i), "/api/verifications/" + strconv.Itoa(i) + "/users",
				"/api/my-account/identities/t" + strconv.Itoa(i)}
			p := paths[i%len(paths)]
			if r := e.call(e.caddy.URL(), "DELETE", p, tok, nil, "logto-verification-id", pw); r.status != http.StatusNotFound {
				t.Fatalf("%s: %d %s", p, r.status, r.body)
			}
		}
	}
	drive(12) // every kind of request once at least: the fixed series exist
	before, sizeBefore := e.series()
	drive(1000)
	after, sizeAfter := e.series()
	var added []string
	for s := range after {
		if !before[s] {
			added = append(added, s)
		}
	}
	t.Logf("series before %d (%d bytes of /metrics), after 1,000 made-up connector ids and 1,000 made-up paths %d (%d bytes)",
		len(before), sizeBefore, len(after), sizeAfter)
	if len(added) > 0 {
		t.Fatalf("%d new series, e.g. %v", len(added), added[:min(len(added), 5)])
	}
}
