package devcore

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestDiscoveryFollowsHost(t *testing.T) {
	tc := newTestCore(t)
	r := tc.do(http.MethodGet, "/oidc/.well-known/openid-configuration", "", nil)
	if r.status != http.StatusOK || r.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("%d %v", r.status, r.header)
	}
	m := r.json(t)
	want := map[string]string{
		"issuer":                 tc.url + "/oidc",
		"token_endpoint":         tc.url + "/oidc/token",
		"introspection_endpoint": tc.url + "/oidc/token/introspection",
		"jwks_uri":               tc.url + "/oidc/jwks",
		"userinfo_endpoint":      tc.url + "/oidc/me",
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %s", k, m[k], v)
		}
	}

	// A fixed issuer (Logto's ENDPOINT) wins over the Host.
	core := New(Config{Issuer: "http://localhost:3001/oidc"})
	if got := core.issuer(httptestRequest()); got != "http://localhost:3001/oidc" {
		t.Errorf("issuer %s", got)
	}
}

func httptestRequest() *http.Request {
	r, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:9/", nil)
	return r
}

func TestClientCredentialsToken(t *testing.T) {
	tc := newTestCore(t)
	good := url.Values{"grant_type": {"client_credentials"}, "resource": {DefaultManagementResource}, "scope": {"all"}}

	r := tc.form("/oidc/token", good, DefaultClientID, DefaultClientSecret)
	if r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if got := strings.Join(keysOf(t, r.body), ","); got != "access_token,expires_in,token_type,scope" {
		t.Errorf("keys %s", got)
	}
	m := r.json(t)
	if m["expires_in"] != float64(3600) || m["token_type"] != "Bearer" || m["scope"] != "all" {
		t.Errorf("%s", r.body)
	}
	// Header and claims of the JWT.
	parts := strings.Split(m["access_token"].(string), ".")
	var hdr map[string]any
	var claims map[string]any
	mustDecode(t, parts[0], &hdr)
	mustDecode(t, parts[1], &claims)
	if hdr["typ"] != "at+jwt" || hdr["alg"] != "RS256" || hdr["kid"] == "" {
		t.Errorf("header %v", hdr)
	}
	for k, v := range map[string]any{"iss": tc.url + "/oidc", "sub": DefaultClientID, "client_id": DefaultClientID,
		"aud": DefaultManagementResource, "scope": "all"} {
		if claims[k] != v {
			t.Errorf("claim %s = %v, want %v", k, claims[k], v)
		}
	}
	if claims["exp"].(float64)-claims["iat"].(float64) != 3600 || claims["jti"] == "" {
		t.Errorf("claims %v", claims)
	}

	// client_secret_post works too.
	post := url.Values{"client_id": {DefaultClientID}, "client_secret": {DefaultClientSecret}}
	for k, v := range good {
		post[k] = v
	}
	if r := tc.form("/oidc/token", post, "", ""); r.status != http.StatusOK {
		t.Errorf("client_secret_post: %d %s", r.status, r.body)
	}

	cases := []struct {
		name       string
		form       url.Values
		user, pass string
		status     int
		code, desc string
	}{
		{"wrong secret", good, DefaultClientID, "nope", 401, "oidc.invalid_client", "client authentication failed"},
		{"unknown client", good, "who", "x", 401, "oidc.invalid_client", "client authentication failed"},
		{"no client auth", good, "", "", 400, "oidc.invalid_request", "no client authentication mechanism provided"},
		{"no resource", url.Values{"grant_type": {"client_credentials"}, "scope": {"all"}}, DefaultClientID, DefaultClientSecret,
			400, "oidc.invalid_target", "resource indicator is missing, or unknown"},
		{"unknown resource", url.Values{"grant_type": {"client_credentials"}, "resource": {"https://x"}}, DefaultClientID, DefaultClientSecret,
			400, "oidc.invalid_target", "resource indicator is missing, or unknown"},
		{"bad grant", url.Values{"grant_type": {"password"}}, DefaultClientID, DefaultClientSecret,
			400, "oidc.unsupported_grant_type", "unsupported grant_type requested"},
		{"no grant", url.Values{}, DefaultClientID, DefaultClientSecret,
			400, "oidc.invalid_request", "missing required parameter 'grant_type'"},
	}
	for _, c := range cases {
		r := tc.form("/oidc/token", c.form, c.user, c.pass)
		expectError(t, r, c.status, c.code, "")
		m := r.json(t)
		if m["error"] != strings.TrimPrefix(c.code, "oidc.") || m["error_description"] != c.desc {
			t.Errorf("%s: %s", c.name, r.body)
		}
		if got := strings.Join(keysOf(t, r.body), ","); got != "code,message,error,error_description" {
			t.Errorf("%s: keys %s", c.name, got)
		}
	}
	// Logto's message for invalid_client.
	expectError(t, tc.form("/oidc/token", good, DefaultClientID, "nope"), 401, "oidc.invalid_client", "Client authentication failed.")

	// Without scope=all the token has no scope, and the Management API answers 403.
	r = tc.form("/oidc/token", url.Values{"grant_type": {"client_credentials"}, "resource": {DefaultManagementResource}},
		DefaultClientID, DefaultClientSecret)
	if r.status != 200 || r.json(t)["scope"] != nil {
		t.Fatalf("%d %s", r.status, r.body)
	}
	expectError(t, tc.do(http.MethodGet, "/api/users/"+DemoUserID, r.json(t)["access_token"].(string), nil),
		403, "auth.forbidden", "Forbidden. Please check your user roles and permissions.")
}

func mustDecode(t *testing.T, seg string, v any) {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func TestIntrospection(t *testing.T) {
	tc := newTestCore(t)
	token := tc.mint(MintRequest{UserID: DemoUserID, Scope: "openid profile email"})
	if len(token) != 43 {
		t.Errorf("opaque token length %d", len(token))
	}

	r := tc.form("/oidc/token/introspection", url.Values{"token": {token}, "token_type_hint": {"access_token"}},
		DefaultClientID, DefaultClientSecret)
	if r.status != 200 || r.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if got := strings.Join(keysOf(t, r.body), ","); got != "active,sub,client_id,exp,iat,iss,scope,token_type" {
		t.Errorf("keys %s", got)
	}
	m := r.json(t)
	if m["active"] != true || m["sub"] != DemoUserID || m["client_id"] != DemoAppID ||
		m["scope"] != "openid profile email" || m["iss"] != tc.url+"/oidc" || m["token_type"] != "Bearer" ||
		m["exp"].(float64)-m["iat"].(float64) != 3600 {
		t.Errorf("%s", r.body)
	}

	// Unknown token: exactly exchange 5.
	if r := tc.form("/oidc/token/introspection", url.Values{"token": {"not-a-real-token"}}, DefaultClientID, DefaultClientSecret); string(r.body) != `{"active":false}` {
		t.Errorf("unknown: %s", r.body)
	}
	// No client authentication: exchange 6.
	r = tc.form("/oidc/token/introspection", url.Values{"token": {token}}, "", "")
	if r.status != 400 || string(r.body) != `{"code":"oidc.invalid_request","message":"Request is invalid.","error":"invalid_request","error_description":"no client authentication mechanism provided"}` {
		t.Errorf("no auth: %d %s", r.status, r.body)
	}
	// Wrong client secret.
	expectError(t, tc.form("/oidc/token/introspection", url.Values{"token": {token}}, DefaultClientID, "bad"),
		401, "oidc.invalid_client", "Client authentication failed.")
	// Missing token parameter.
	expectError(t, tc.form("/oidc/token/introspection", url.Values{}, DefaultClientID, DefaultClientSecret),
		400, "oidc.invalid_request", "")

	// A JWT cannot be introspected at all (oidc-provider refuses structured tokens), even a
	// valid one, nor a forged JWT-shaped string: logto-samples-tokens.json.
	jwt := tc.mint(MintRequest{UserID: DemoUserID, Scope: "openid", Format: "jwt", Audience: "https://api.example.com"})
	for _, tok := range []string{jwt, tc.m2mToken(), "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.x"} {
		r := tc.form("/oidc/token/introspection", url.Values{"token": {tok}}, DefaultClientID, DefaultClientSecret)
		if r.status != 400 || string(r.body) != `{"code":"oidc.unsupported_token_type","message":"An OIDC error occurred: oidc.unsupported_token_type.","error":"unsupported_token_type","error_description":"Structured JWT Tokens cannot be introspected via the introspection_endpoint"}` {
			t.Errorf("jwt introspection: %d %s", r.status, r.body)
		}
	}

	// Revoked.
	if r := tc.do(http.MethodPost, "/dev/tokens/revoke", "", map[string]string{"token": token}); r.status != 204 {
		t.Fatalf("revoke: %d", r.status)
	}
	if m := tc.introspect(token); m["active"] != false {
		t.Errorf("revoked: %v", m)
	}

	// Expired: already (negative lifetime) and after a short one.
	past := int64(-60)
	if m := tc.introspect(tc.mint(MintRequest{UserID: DemoUserID, Scope: "openid", ExpiresIn: &past})); m["active"] != false {
		t.Errorf("expired: %v", m)
	}
	one := int64(1)
	short := tc.mint(MintRequest{UserID: DemoUserID, Scope: "openid", ExpiresIn: &one})
	if m := tc.introspect(short); m["active"] != true {
		t.Errorf("short-lived token not active yet: %v", m)
	}
	time.Sleep(1100 * time.Millisecond)
	if m := tc.introspect(short); m["active"] != false {
		t.Errorf("short-lived token still active: %v", m)
	}
}

func TestIntrospectionDelayAndStats(t *testing.T) {
	tc := newTestCore(t)
	token := tc.mint(MintRequest{UserID: DemoUserID, Scope: "openid"})
	tc.do(http.MethodPost, "/dev/stats/reset", "", nil)
	if r := tc.do(http.MethodPost, "/dev/introspection-delay", "", map[string]int{"ms": 200}); r.status != 204 {
		t.Fatalf("delay: %d %s", r.status, r.body)
	}

	start := time.Now()
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tc.introspect(token)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if elapsed < 200*time.Millisecond || elapsed > 2*time.Second {
		t.Errorf("5 concurrent delayed introspections took %v", elapsed)
	}
	if got := tc.core.Stats().Introspections; got != 5 {
		t.Errorf("introspections %d, want 5", got)
	}

	tc.do(http.MethodPost, "/dev/introspection-delay", "", map[string]int{"ms": 0})
	start = time.Now()
	tc.introspect(token)
	if time.Since(start) > 150*time.Millisecond {
		t.Errorf("delay not turned off")
	}

	tc.do(http.MethodGet, "/oidc/jwks", "", nil)
	tok := tc.m2mToken()
	tc.do(http.MethodGet, "/api/users/"+DemoUserID, tok, nil)
	tc.do(http.MethodGet, "/api/users/nope", tok, nil)
	tc.do(http.MethodGet, "/api/users/"+DemoUserID, "", nil) // unauthenticated calls count too
	r := tc.do(http.MethodGet, "/dev/stats", "", nil)
	var s Stats
	if err := json.Unmarshal(r.body, &s); err != nil {
		t.Fatal(err)
	}
	if s.Introspections != 6 || s.TokenRequests != 1 || s.JWKSRequests != 1 || s.Management["GET /api/users/{userId}"] != 3 {
		t.Errorf("stats %s", r.body)
	}
	if got := strings.Join(keysOf(t, r.body), ","); got != "introspections,tokenRequests,jwksRequests,management" {
		t.Errorf("stats keys %s", got)
	}

	tc.do(http.MethodPost, "/dev/stats/reset", "", nil)
	s = tc.core.Stats()
	if s.Introspections != 0 || s.TokenRequests != 0 || s.JWKSRequests != 0 || len(s.Management) != 0 {
		t.Errorf("after reset %+v", s)
	}
	tc.core.ResetStats()
}
