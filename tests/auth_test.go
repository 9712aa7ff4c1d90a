package tests

import (
	"net/http"
	"strings"
	"testing"

	"github.com/accountedge/caddy-account-api/tests/devcore"
	"github.com/accountedge/caddy-account-api/tests/harness"
)

func TestAuthenticationErrorsMatchLogto(t *testing.T) {
	e := newEnv(t, options{})
	samples := harness.LoadSamples(t, "logto-samples.json")

	r := e.do("GET", "/api/my-account", "", nil)
	matchSample(t, r, harness.Sample(t, samples, "No Authorization header"))
	if r.header.Get("WWW-Authenticate") != "Bearer" || r.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("headers %v", r.header)
	}

	r = e.do("GET", "/api/my-account", "", nil, "Authorization", "Basic abc")
	matchSample(t, r, harness.Sample(t, samples, "Non-Bearer Authorization"))

	r = e.do("GET", "/api/my-account", "not-a-real-token", nil)
	matchSample(t, r, harness.Sample(t, samples, "Unknown bearer token"))
	if !strings.Contains(r.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
	}

	r = e.do("GET", "/api/my-account", e.m2mToken(), nil)
	matchSample(t, r, harness.Sample(t, samples, "Client-credentials (M2M) token used on the Account API"))

	r = e.do("GET", "/api/my-account", e.userToken("profile email"), nil)
	expectError(t, r, http.StatusForbidden, "auth.forbidden")
	if !strings.Contains(r.header.Get("WWW-Authenticate"), "insufficient_scope") {
		t.Fatalf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
	}

	expired := int64(-10)
	r = e.do("GET", "/api/my-account", e.token(devcore.MintRequest{Scope: "openid", ExpiresIn: &expired}), nil)
	expectError(t, r, http.StatusUnauthorized, "auth.unauthorized")

	// Verification routes authenticate the same way.
	r = e.do("POST", "/api/verifications/password", "", map[string]string{"password": "x"})
	expectError(t, r, http.StatusUnauthorized, "auth.authorization_header_missing")
}

func TestOtherRequestsPassThroughUntouched(t *testing.T) {
	e := newEnv(t, options{})
	r := e.call(e.caddy.URL(), "GET", "/oidc/.well-known/openid-configuration", "", nil)
	if r.status != 200 || !strings.Contains(string(r.body), "introspection_endpoint") {
		t.Fatalf("discovery through Caddy: %d %s", r.status, r.body)
	}
	// A lookalike prefix is not ours: the core answers (here 404 from the dev core, no challenge).
	r = e.call(e.caddy.URL(), "GET", "/api/my-accounts", "", nil)
	if r.status != http.StatusNotFound || r.header.Get("WWW-Authenticate") != "" {
		t.Fatalf("/api/my-accounts: %d %v", r.status, r.header)
	}
	// An unknown route under our prefix is ours, and a clean 404.
	r = e.call(e.caddy.URL(), "GET", "/api/my-account/nope", "", nil)
	expectError(t, r, http.StatusNotFound, "request.not_found")
	before := e.stats().Introspections
	e.call(e.caddy.URL(), "GET", "/api/users/"+devcore.DemoUserID, "", nil)
	if e.stats().Introspections != before {
		t.Fatal("a Management API request was introspected by the module")
	}
}

func TestCORS(t *testing.T) {
	e := newEnv(t, options{})
	r := e.call(e.caddy.URL(), "OPTIONS", "/api/my-account", "", nil,
		"Origin", "https://app.example", "Access-Control-Request-Method", "PATCH",
		"Access-Control-Request-Headers", "authorization,content-type,logto-verification-id")
	if r.status != http.StatusNoContent || r.header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(r.header.Get("Access-Control-Allow-Methods"), "PATCH") ||
		r.header.Get("Access-Control-Allow-Headers") != "authorization,content-type,logto-verification-id" {
		t.Fatalf("preflight: %d %v", r.status, r.header)
	}
	r = e.call(e.caddy.URL(), "GET", "/api/my-account", e.userToken("openid"), nil, "Origin", "https://app.example")
	if r.status != 200 || r.header.Get("Access-Control-Allow-Origin") != "https://app.example" || r.header.Get("Access-Control-Expose-Headers") != "*" {
		t.Fatalf("simple request: %d %v", r.status, r.header)
	}

	strict := newEnv(t, options{extra: "cors_origins https://good.example"})
	r = strict.call(strict.caddy.URL(), "OPTIONS", "/api/my-account", "", nil,
		"Origin", "https://evil.example", "Access-Control-Request-Method", "GET")
	if r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("disallowed origin got %q", r.header.Get("Access-Control-Allow-Origin"))
	}
	r = strict.call(strict.caddy.URL(), "GET", "/api/my-account", strict.userToken("openid"), nil, "Origin", "https://good.example")
	if r.header.Get("Access-Control-Allow-Origin") != "https://good.example" {
		t.Fatalf("allowed origin got %q", r.header.Get("Access-Control-Allow-Origin"))
	}
}
