package devcore

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestMatchesRecordedExchanges replays the OIDC and Management API exchanges recorded from Logto
// 1.42 (logto-samples.json) and compares statuses, key order and, where the data allows, whole
// bodies.
func TestMatchesRecordedExchanges(t *testing.T) {
	ex := loadSamples(t)
	tc := newTestCore(t)
	tok := tc.m2mToken()
	userPath := "/api/users/" + DemoUserID

	sameKeys := func(n int, got []byte) {
		t.Helper()
		want := strings.Join(keysOf(t, ex[n].Response.Body), ",")
		if g := strings.Join(keysOf(t, got), ","); g != want {
			t.Errorf("exchange %d (%s): keys\n got %s\nwant %s", n, ex[n].Title, g, want)
		}
	}
	sameBody := func(n int, got response) {
		t.Helper()
		if got.status != ex[n].Response.Status {
			t.Errorf("exchange %d (%s): status %d, want %d", n, ex[n].Title, got.status, ex[n].Response.Status)
		}
		if want := compact(t, ex[n].Response.Body); string(got.body) != want {
			t.Errorf("exchange %d (%s):\n got %s\nwant %s", n, ex[n].Title, got.body, want)
		}
	}

	// 0, 1: the account center row (the recording also had a WebAuthn origin set).
	tc.do(http.MethodPatch, "/api/account-center", tok, map[string]any{"webauthnRelatedOrigins": []string{"https://example.com"}})
	r := tc.do(http.MethodPatch, "/api/account-center", tok, ex[0].Request.Body)
	sameBody(0, r)
	sameBody(1, tc.do(http.MethodGet, "/api/account-center", tok, nil))

	// 2: discovery has the same keys in the same order.
	sameKeys(2, tc.do(http.MethodGet, "/oidc/.well-known/openid-configuration", "", nil).body)

	// 3: token response.
	r = tc.form("/oidc/token", url.Values{"grant_type": {"client_credentials"}, "resource": {DefaultManagementResource}, "scope": {"all"}},
		DefaultClientID, DefaultClientSecret)
	sameKeys(3, r.body)

	// 4, 5, 6: introspection.
	user := tc.mint(MintRequest{UserID: DemoUserID, Scope: "openid offline_access profile email phone identities custom_data"})
	r = tc.form("/oidc/token/introspection", url.Values{"token": {user}}, DefaultClientID, DefaultClientSecret)
	sameKeys(4, r.body)
	sameBody(5, tc.form("/oidc/token/introspection", url.Values{"token": {"not-a-real-token"}}, DefaultClientID, DefaultClientSecret))
	sameBody(6, tc.form("/oidc/token/introspection", url.Values{"token": {user}}, "", ""))

	// 35, 39, 41: give the demo user exchange 35's data, then compare.
	tc.do(http.MethodPatch, userPath, tok, map[string]any{
		"name": "Ada Lovelace", "avatar": "https://example.com/a.png", "customData": map[string]any{"theme": "dark", "n": 1},
		"profile":      map[string]string{"locale": "en-GB", "nickname": "ada", "givenName": "Ada", "familyName": "Lovelace"},
		"primaryEmail": nil,
	})
	r = tc.do(http.MethodGet, userPath, tok, nil)
	sameKeys(35, r.body)
	var got, want map[string]json.RawMessage
	_ = json.Unmarshal(r.body, &got)
	_ = json.Unmarshal(ex[35].Response.Body, &want)
	for _, k := range []string{"primaryEmail", "primaryPhone", "name", "avatar", "customData", "identities", "profile",
		"applicationId", "cimdClientId", "isSuspended", "hasPassword"} {
		if compact(t, got[k]) != compact(t, want[k]) {
			t.Errorf("exchange 35: %s = %s, want %s", k, got[k], want[k])
		}
	}
	r = tc.do(http.MethodPatch, userPath, tok, ex[39].Request.Body)
	sameKeys(39, r.body)
	got = nil
	_ = json.Unmarshal(r.body, &got)
	if compact(t, got["customData"]) != `{"theme":"light"}` {
		t.Errorf("exchange 39: customData %s", got["customData"])
	}
	sameBody(41, tc.do(http.MethodPatch, userPath+"/profile", tok, ex[41].Request.Body))

	// 36, 37, 38, 40, 44: statuses and error bodies.
	sameBody(36, tc.do(http.MethodGet, "/api/users/nope", tok, nil))
	r = tc.do(http.MethodPost, userPath+"/password/verify", tok, map[string]string{"password": DemoPassword})
	if r.status != ex[37].Response.Status || len(r.body) != 0 {
		t.Errorf("exchange 37: %d %s", r.status, r.body)
	}
	sameBody(38, tc.do(http.MethodPost, userPath+"/password/verify", tok, ex[38].Request.Body))
	sameBody(40, tc.do(http.MethodPatch, userPath, tok, map[string]string{"username": OtherUsername}))
	sameBody(44, tc.do(http.MethodGet, userPath, "", nil))

	// 42: the sign-in experience (the recording's blocklist entry came from its test run).
	r = tc.do(http.MethodGet, "/api/sign-in-exp", tok, nil)
	sameKeys(42, r.body)
	got, want = nil, nil
	_ = json.Unmarshal(r.body, &got)
	_ = json.Unmarshal(ex[42].Response.Body, &want)
	for k := range want {
		if k == "emailBlocklistPolicy" {
			continue
		}
		if compact(t, got[k]) != compact(t, want[k]) {
			t.Errorf("exchange 42: %s = %s, want %s", k, got[k], want[k])
		}
	}

	// 43: the built-in demo-app, byte for byte.
	sameBody(43, tc.do(http.MethodGet, "/api/applications/demo-app", tok, nil))

	// Every answer of these exchanges carries Logto's JSON content type.
	for _, p := range []string{"/api/users/nope", userPath, "/api/account-center"} {
		r := tc.do(http.MethodGet, p, tok, nil)
		if ct := r.header.Get("Content-Type"); ct != ex[35].Response.Headers["Content-Type"] {
			t.Errorf("%s: Content-Type %q", p, ct)
		}
	}
}
