package tests

import (
	"net/http"
	"regexp"
	"slices"
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

// tokenSamples are the token exchanges recorded from a live Logto 1.42.
func tokenSamples(t *testing.T) []harness.Exchange {
	return harness.LoadSamples(t, "logto-samples-tokens.json")
}

// registeredRoutes finds, among the Account API operations of Logto's OpenAPI document, those
// the module serves: an unregistered route is a 404 request.not_found before authentication,
// a registered one authenticates. Path parameters get harmless values.
func (e *env) registeredRoutes(valid string) [][2]string {
	e.t.Helper()
	var routes [][2]string
	for p, item := range e.api.Doc.Paths.Map() {
		if !strings.HasPrefix(p, "/api/my-account") && !strings.HasPrefix(p, "/api/verifications") {
			continue
		}
		concrete := regexp.MustCompile(`\{[^}]+\}`).ReplaceAllString(p, "x1")
		for method := range item.Operations() {
			r := e.call(e.caddy.URL(), method, concrete, valid, map[string]any{})
			if r.status == http.StatusNotFound && r.json(e.t)["code"] == "request.not_found" {
				continue
			}
			routes = append(routes, [2]string{method, concrete})
		}
	}
	slices.SortFunc(routes, func(a, b [2]string) int { return strings.Compare(a[1]+a[0], b[1]+b[0]) })
	return routes
}

// TestOnlyUserAccessTokensAuthenticate: refresh tokens, client-credentials tokens (opaque or
// JWT) and anything JWT-shaped are refused on every route the module serves, as Logto's own
// Account API refuses them (401 auth.unauthorized) — never a 503, never an error in the log.
func TestOnlyUserAccessTokensAuthenticate(t *testing.T) {
	// Every refusal counts against this address's failed token checks: give it room.
	e := newEnv(t, options{extra: "rate_limits {\n token_failures_per_ip off\n }"})
	samples := tokenSamples(t)
	var minted devcore.MintResponse
	e.coreJSON("POST", "/dev/tokens", devcore.MintRequest{UserID: devcore.DemoUserID, Scope: allScopes}, &minted)
	if minted.RefreshToken == "" {
		t.Fatal("the dev core issued no refresh token for offline_access")
	}
	userJWT := e.token(devcore.MintRequest{Scope: allScopes, Format: "jwt", Audience: "https://api.example.test"})
	refused := map[string]string{
		"refresh token":             minted.RefreshToken,
		"opaque client credentials": e.token(devcore.MintRequest{ClientID: devcore.DefaultClientID, Scope: allScopes, Format: "client_credentials"}),
		"m2m JWT":                   e.m2mToken(),
		"user JWT (jwt off)":        userJWT,
		"forged JWT-shaped":         "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.x",
	}

	// Logto's own answers, recorded.
	matchSample(t, e.do("GET", "/api/my-account", minted.RefreshToken, nil),
		harness.Sample(t, samples, "Logto's own Account API refuses a refresh token"))
	matchSample(t, e.do("GET", "/api/my-account", refused["m2m JWT"], nil),
		harness.Sample(t, samples, "Logto's own Account API refuses a client-credentials JWT"))
	matchSample(t, e.do("GET", "/api/my-account", refused["forged JWT-shaped"], nil),
		harness.Sample(t, samples, "Logto's own Account API refuses a forged JWT-shaped token"))

	routes := e.registeredRoutes(minted.AccessToken)
	if len(routes) < 16 {
		t.Fatalf("found only %d registered routes: %v", len(routes), routes)
	}
	t.Logf("%d registered routes: %v", len(routes), routes)
	logsBefore := len(e.caddy.Logs()) // the discovery above logs the 501 routes' answers
	for name, tok := range refused {
		for _, rt := range routes {
			r := e.call(e.caddy.URL(), rt[0], rt[1], tok, map[string]any{})
			if r.status != http.StatusUnauthorized || r.json(t)["code"] != "auth.unauthorized" {
				t.Fatalf("%s on %s %s: %d %s", name, rt[0], rt[1], r.status, r.body)
			}
		}
	}
	// The refusals were negative cache entries: asking again costs the core nothing.
	before := e.stats().Introspections
	for _, tok := range refused {
		e.call(e.caddy.URL(), "GET", "/api/my-account", tok, nil)
	}
	if n := e.stats().Introspections - before; n != 0 {
		t.Fatalf("refused tokens were introspected again %d times while their negative entry lives", n)
	}
	if logs := e.caddy.Logs()[logsBefore:]; strings.Contains(logs, `"level":"error"`) || strings.Contains(logs, "identity_core.unavailable") {
		t.Fatalf("a refused token was logged as a failure:\n%s", logs)
	}
	// The same user's real access token still works (the refusals are about the token kind).
	if r := e.do("GET", "/api/my-account", minted.AccessToken, nil); r.status != 200 {
		t.Fatalf("the user's access token: %d %s", r.status, r.body)
	}

	// With JWT validation on, a user's JWT for the configured resource works and a
	// client-credentials JWT for the same resource (sub is the client) is refused.
	j := newEnv(t, options{extra: "jwt {\n audience " + devcore.DefaultManagementResource + "\n }"})
	userJWT = j.token(devcore.MintRequest{Scope: allScopes, Format: "jwt", Audience: devcore.DefaultManagementResource})
	if r := j.do("GET", "/api/my-account", userJWT, nil); r.status != 200 {
		t.Fatalf("user JWT: %d %s", r.status, r.body)
	}
	expectError(t, j.do("GET", "/api/my-account", j.m2mToken(), nil), http.StatusUnauthorized, "auth.unauthorized")
}
