package tests

import (
	"net/http"
	"strings"
	"testing"

	"github.com/accountedge/caddy-account-api/tests/devcore"
)

// unsupported are the Logto 1.42 routes the Management API cannot express, with a sample path;
// inDocument tells whether the user API document has them (trusted devices are a Logto dev
// feature, absent from it).
var unsupported = []struct {
	method, path string
	inDocument   bool
}{
	{"POST", "/api/verifications/web-authn/registration", true},
	{"POST", "/api/verifications/web-authn/registration/verify", true},
	{"PATCH", "/api/my-account/mfa-verifications/abc123/name", true},
	{"GET", "/api/my-account/mfa-verifications/backup-codes", true},
	{"GET", "/api/my-account/identities/github/access-token", true},
	{"PUT", "/api/my-account/identities/github/access-token", true},
	{"GET", "/api/my-account/sso-identities/sso1/access-token", true},
	{"GET", "/api/my-account/trusted-devices", false},
	{"DELETE", "/api/my-account/trusted-devices/dev1", false},
}

// TestUnsupportedRoutes: one stable Logto-shaped 501, after authentication and the
// account-center switch, never a 404 and never a call to the core beyond those two.
func TestUnsupportedRoutes(t *testing.T) {
	e := newEnv(t, options{})
	tok := e.userToken(allScopes)
	send := func(method, path, token string, inDocument bool) reply {
		if inDocument {
			return e.do(method, path, token, map[string]any{"name": "x"})
		}
		return e.call(e.caddy.URL(), method, path, token, nil)
	}
	var first []byte
	for _, u := range unsupported {
		expectError(t, send(u.method, u.path, "", u.inDocument), http.StatusUnauthorized, "auth.authorization_header_missing")
		expectError(t, send(u.method, u.path, "not-a-token", u.inDocument), http.StatusUnauthorized, "auth.unauthorized")
		before := e.stats().Management
		r := send(u.method, u.path, tok, u.inDocument)
		expectError(t, r, http.StatusNotImplemented, "request.not_implemented")
		if first == nil {
			first = r.body
		} else if string(r.body) != string(first) {
			t.Errorf("%s %s: %s, want the same answer as every other: %s", u.method, u.path, r.body, first)
		}
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s %s: Content-Type %q", u.method, u.path, ct)
		}
		after := e.stats().Management
		for route, n := range after {
			if n != before[route] && route != "GET /api/account-center" {
				t.Errorf("%s %s called the core: %s", u.method, u.path, route)
			}
		}
	}
	if string(first) != `{"code":"request.not_implemented","message":"This route of Logto's Account API cannot be served through the Management API."}` {
		t.Fatalf("the 501 answer changed: %s", first)
	}

	// Hostile path parameters: still a clean JSON answer, never a 500.
	for _, id := range hostileIDs {
		for _, p := range []string{"/api/my-account/identities/" + id + "/access-token",
			"/api/my-account/sso-identities/" + id + "/access-token",
			"/api/my-account/mfa-verifications/" + id + "/name", "/api/my-account/trusted-devices/" + id} {
			for _, m := range []string{"GET", "PATCH", "DELETE", "PUT"} {
				r := e.call(e.caddy.URL(), m, p, tok, nil)
				if code, _ := r.json(t)["code"].(string); r.status >= 500 && r.status != 501 || code == "" {
					t.Errorf("%s %s: %d %s", m, p, r.status, r.body)
				}
			}
		}
	}

	// A third-party token gets the same answer: nothing is served, so nothing is refused.
	third := e.token(devcore.MintRequest{Scope: allScopes, ClientID: devcore.ThirdPartyAppID})
	expectError(t, e.do("POST", "/api/verifications/web-authn/registration", third, nil), http.StatusNotImplemented, "request.not_implemented")

	// The account-center switch comes first, as for every route.
	e.mgmt("PATCH", "/api/account-center", map[string]any{"enabled": false})
	for _, u := range unsupported {
		expectError(t, send(u.method, u.path, tok, u.inDocument), http.StatusBadRequest, "account_center.not_enabled")
	}
}
