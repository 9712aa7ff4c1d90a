package tests

import (
	"net/http"
	"testing"

	"github.com/accountedge/caddy-account-api/tests/devcore"
)

func TestJWTAccessTokens(t *testing.T) {
	const aud = "https://api.example.test"
	e := newEnv(t, options{extra: "jwt {\n audience " + aud + "\n }"})
	jwtToken := func(audience string) string {
		return e.token(devcore.MintRequest{Scope: allScopes, Format: "jwt", Audience: audience})
	}
	before := e.stats()
	r := e.do("GET", "/api/my-account", jwtToken(aud), nil)
	if r.status != 200 || r.json(t)["id"] != devcore.DemoUserID {
		t.Fatalf("JWT access token: %d %s", r.status, r.body)
	}
	expectError(t, e.do("GET", "/api/my-account", jwtToken("https://other.example"), nil), http.StatusUnauthorized, "auth.unauthorized")
	if n := e.stats().Introspections - before.Introspections; n != 0 {
		t.Fatalf("JWTs were introspected %d times", n)
	}
	// Key rotation: the first token with the new kid triggers one JWKS refresh.
	jwksBefore := e.stats().JWKSRequests
	e.coreJSON("POST", "/dev/keys/rotate", nil, nil)
	if r := e.do("GET", "/api/my-account", jwtToken(aud), nil); r.status != 200 {
		t.Fatalf("token signed with the rotated key: %d %s", r.status, r.body)
	}
	if n := e.stats().JWKSRequests - jwksBefore; n != 1 {
		t.Fatalf("JWKS fetched %d times after rotation, want 1", n)
	}
	// Opaque tokens still go to introspection.
	if r := e.do("GET", "/api/my-account", e.userToken("openid"), nil); r.status != 200 {
		t.Fatalf("opaque token with jwt enabled: %d", r.status)
	}
}
