package devcore

import (
	"net/http"
	"testing"
)

// mintIn mints an opaque token and returns the whole answer (with its session and grant).
func (tc *testCore) mintIn(req MintRequest) MintResponse {
	tc.t.Helper()
	r := tc.do(http.MethodPost, "/dev/tokens", "", req)
	if r.status != http.StatusOK {
		tc.t.Fatalf("mint: %d %s", r.status, r.body)
	}
	m := r.json(tc.t)
	return MintResponse{AccessToken: m["access_token"].(string), SessionID: m["session_id"].(string), GrantID: m["grant_id"].(string)}
}

func (tc *testCore) active(token string) bool { return tc.introspect(token)["active"] == true }

// TestSessionsAndGrantsMatchOpenAPI: every answer of the sessions and grants endpoints, errors
// included, is what Logto's Management API document says.
func TestSessionsAndGrantsMatchOpenAPI(t *testing.T) {
	router := managementRouter(t)
	tc := newTestCore(t)
	tok := tc.m2mToken()
	web := tc.mintIn(MintRequest{UserID: DemoUserID, Scope: "openid", ClientID: FirstPartyWebAppID})
	tc.mintIn(MintRequest{UserID: DemoUserID, Scope: "openid", ClientID: ThirdPartyAppID, SessionID: web.SessionID})
	other := tc.mintIn(MintRequest{UserID: OtherUserID, Scope: "openid"})
	users := "/api/users/" + DemoUserID
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{http.MethodGet, users + "/sessions", 200},
		{http.MethodGet, "/api/users/nobody/sessions", 200},
		{http.MethodGet, users + "/grants", 200},
		{http.MethodGet, users + "/grants?appType=firstParty", 200},
		{http.MethodGet, users + "/grants?appType=thirdParty", 200},
		{http.MethodGet, users + "/grants?appType=mine", 400},
		{http.MethodDelete, users + "/sessions/" + other.SessionID, 404},
		{http.MethodDelete, users + "/sessions/nope", 404},
		{http.MethodDelete, users + "/sessions/" + web.SessionID + "?revokeGrantsTarget=some", 400},
		{http.MethodDelete, users + "/grants/" + other.GrantID, 404},
		{http.MethodDelete, users + "/grants/" + web.GrantID, 204},
		{http.MethodDelete, users + "/sessions/" + web.SessionID + "?revokeGrantsTarget=firstParty", 204},
	} {
		req := tc.request(c.method, c.path, tok, nil)
		resp := tc.send(req)
		if resp.status != c.status {
			t.Errorf("%s %s: %d, want %d: %s", c.method, c.path, resp.status, c.status, resp.body)
			continue
		}
		validateManagementResponse(t, router, req, resp)
	}
}

// TestSessionBoundTokens: tokens die with what they were issued through, as at Logto.
func TestSessionBoundTokens(t *testing.T) {
	tc := newTestCore(t)
	tok := tc.m2mToken()
	users := "/api/users/" + DemoUserID

	// Only a client with back-channel logout (session required) gets sid in introspection.
	web := tc.mintIn(MintRequest{UserID: DemoUserID, Scope: "openid", ClientID: FirstPartyWebAppID})
	spa := tc.mintIn(MintRequest{UserID: DemoUserID, Scope: "openid offline_access", SessionID: web.SessionID})
	if sid, _ := tc.introspect(web.AccessToken)["sid"].(string); sid == "" {
		t.Fatal("the web app's token should carry sid")
	}
	if _, has := tc.introspect(spa.AccessToken)["sid"]; has {
		t.Fatal("the SPA's token must not carry sid (Logto's demo-app does not)")
	}
	sessions := tc.do(http.MethodGet, users+"/sessions", tok, nil).json(t)["sessions"].([]any)
	if len(sessions) != 1 {
		t.Fatalf("one session with two authorizations expected: %v", sessions)
	}
	auths := sessions[0].(map[string]any)["payload"].(map[string]any)["authorizations"].(map[string]any)
	if auths[FirstPartyWebAppID].(map[string]any)["sid"] != tc.introspect(web.AccessToken)["sid"] {
		t.Fatalf("the token's sid is its client's sid in the session: %v", auths)
	}

	// Ending the session kills the token issued without offline_access, not the other.
	if r := tc.do(http.MethodDelete, users+"/sessions/"+web.SessionID, tok, nil); r.status != 204 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if tc.active(web.AccessToken) || !tc.active(spa.AccessToken) {
		t.Fatalf("after the session: web %v (want false), offline spa %v (want true)", tc.active(web.AccessToken), tc.active(spa.AccessToken))
	}

	// revokeGrantsTarget=all also revokes offline grants; firstParty spares third-party apps.
	a := tc.mintIn(MintRequest{UserID: DemoUserID, Scope: "openid offline_access"})
	third := tc.mintIn(MintRequest{UserID: DemoUserID, Scope: "openid offline_access", ClientID: ThirdPartyAppID, SessionID: a.SessionID})
	tc.do(http.MethodDelete, users+"/sessions/"+a.SessionID+"?revokeGrantsTarget=firstParty", tok, nil)
	if tc.active(a.AccessToken) || !tc.active(third.AccessToken) {
		t.Fatalf("firstParty: first-party %v (want false), third-party %v (want true)", tc.active(a.AccessToken), tc.active(third.AccessToken))
	}
	b := tc.mintIn(MintRequest{UserID: DemoUserID, Scope: "openid offline_access"})
	tc.do(http.MethodDelete, users+"/sessions/"+b.SessionID+"?revokeGrantsTarget=all", tok, nil)
	if tc.active(b.AccessToken) {
		t.Fatal("all: the offline grant must be revoked")
	}

	// Revoking a grant kills its tokens and removes its authorization from the session.
	g := tc.mintIn(MintRequest{UserID: DemoUserID, Scope: "openid offline_access", ClientID: FirstPartyWebAppID})
	if r := tc.do(http.MethodDelete, users+"/grants/"+g.GrantID, tok, nil); r.status != 204 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if tc.active(g.AccessToken) {
		t.Fatal("a revoked grant's token must be inactive")
	}
	for _, s := range tc.do(http.MethodGet, users+"/sessions", tok, nil).json(t)["sessions"].([]any) {
		p := s.(map[string]any)["payload"].(map[string]any)
		if p["uid"] == g.SessionID && len(p["authorizations"].(map[string]any)) != 0 {
			t.Fatalf("the grant's authorization should be gone: %v", p)
		}
	}
	expectError(t, tc.do(http.MethodDelete, users+"/grants/"+g.GrantID, tok, nil), 404, "oidc.invalid_grant", "Grant request is invalid.")

	// A token cannot join another user's session.
	if r := tc.do(http.MethodPost, "/dev/tokens", "", MintRequest{UserID: OtherUserID, Scope: "openid", SessionID: g.SessionID}); r.status != 400 {
		t.Fatalf("joining another user's session: %d %s", r.status, r.body)
	}
}
