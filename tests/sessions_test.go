package tests

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accountedge/caddy-account-api/tests/devcore"
	"github.com/accountedge/caddy-account-api/tests/harness"
)

// sessionScopes are every scope the Account API uses, the sessions scope included.
const sessionScopes = allScopes + " urn:logto:scope:sessions"

// managementCalls counts the dev core's calls of one Management API route.
func (e *env) managementCalls(pattern string) int64 { return e.stats().Management[pattern] }

// hostileIDs are path parameters that must never reach the core as something else.
var hostileIDs = []string{"..", ".", "%2E%2E", "a%2Fb", "%2F", strings.Repeat("a", 129), strings.Repeat("x", 5000),
	"%C3%A9t%C3%A9", "id%00", "id;x", "id%3Fx=1", "%252F"}

// expectHostile asserts a hostile path parameter got a clean Logto error (the route's not-found
// or the module's 404) without the core being asked.
func expectHostile(t *testing.T, e *env, method, path, token, corePattern string, notFound int, notFoundCode string, headers ...string) {
	t.Helper()
	before := e.managementCalls(corePattern)
	r := e.call(e.caddy.URL(), method, path, token, nil, headers...)
	code, _ := r.json(t)["code"].(string)
	if !(r.status == notFound && code == notFoundCode) && !(r.status == 404 && code == "request.not_found") {
		t.Errorf("%s %s: %d %s", method, path, r.status, r.body)
	}
	if after := e.managementCalls(corePattern); after != before {
		t.Errorf("%s %s reached the core", method, path)
	}
}

// sessionsOf lists sessions through Caddy and returns them by uid.
func sessionsOf(t *testing.T, e *env, token, vid string) map[string]map[string]any {
	t.Helper()
	r := e.do("GET", "/api/my-account/sessions", token, nil, vidHeader, vid)
	if r.status != http.StatusOK {
		t.Fatalf("GET sessions: %d %s", r.status, r.body)
	}
	out := map[string]map[string]any{}
	for _, s := range r.json(t)["sessions"].([]any) {
		m := s.(map[string]any)
		out[m["payload"].(map[string]any)["uid"].(string)] = m
	}
	return out
}

// TestListSessions: GET /api/my-account/sessions in Logto's order (step-up, session field
// readable, sessions scope with 401), isCurrent from the token's sid, OpenAPI-valid.
func TestListSessions(t *testing.T) {
	e := newEnv(t, options{})
	e.setFields(map[string]string{"session": "ReadOnly"})
	web := e.mint(devcore.MintRequest{Scope: sessionScopes, ClientID: devcore.FirstPartyWebAppID})
	spa := e.mint(devcore.MintRequest{Scope: sessionScopes})
	e.mint(devcore.MintRequest{UserID: devcore.OtherUserID, Scope: sessionScopes}) // not listed
	vid := e.passwordRecord(web.AccessToken, devcore.DemoPassword)

	got := sessionsOf(t, e, web.AccessToken, vid)
	if len(got) != 2 || got[web.SessionID] == nil || got[spa.SessionID] == nil {
		t.Fatalf("sessions %v", got)
	}
	if got[web.SessionID]["isCurrent"] != true || got[spa.SessionID]["isCurrent"] != false {
		t.Fatalf("isCurrent: web %v, spa %v", got[web.SessionID]["isCurrent"], got[spa.SessionID]["isCurrent"])
	}
	// A token whose introspection carries no sid (Logto's SPA clients) matches no session.
	for uid, s := range sessionsOf(t, e, spa.AccessToken, vid) {
		if s["isCurrent"] != false {
			t.Fatalf("session %s is current for a token without sid", uid)
		}
	}

	// Refusals in Logto's order: each one with everything after it also wrong.
	noScope := e.userToken(allScopes)
	e.setFields(map[string]string{"session": "Off"})
	expectError(t, e.do("GET", "/api/my-account/sessions", noScope, nil), 401, "verification_record.permission_denied")
	expectError(t, e.do("GET", "/api/my-account/sessions", noScope, nil, vidHeader, "bogus"), 401, "verification_record.permission_denied")
	expectError(t, e.do("GET", "/api/my-account/sessions", noScope, nil, vidHeader, vid), 400, "account_center.field_not_enabled")
	e.setFields(map[string]string{"session": "Edit"})
	expectError(t, e.do("GET", "/api/my-account/sessions", noScope, nil, vidHeader, vid), 401, "auth.unauthorized")
	// Another user's step-up record is no step-up.
	other := e.token(devcore.MintRequest{UserID: devcore.OtherUserID, Scope: sessionScopes})
	expectError(t, e.do("GET", "/api/my-account/sessions", other, nil, vidHeader, vid), 401, "verification_record.permission_denied")
	// Reading sessions is allowed to third-party applications (no first-party check on GETs).
	third := e.token(devcore.MintRequest{Scope: sessionScopes, ClientID: devcore.ThirdPartyAppID})
	if r := e.do("GET", "/api/my-account/sessions", third, nil, vidHeader, vid); r.status != 200 {
		t.Fatalf("third-party read: %d %s", r.status, r.body)
	}
	// The account-center switch comes before all of it.
	e.mgmt("PATCH", "/api/account-center", map[string]any{"enabled": false})
	expectError(t, e.do("GET", "/api/my-account/sessions", noScope, nil), 400, "account_center.not_enabled")
}

// TestRevokeSession: DELETE /api/my-account/sessions/{id}: the query guard first, then step-up,
// session Edit, scope (401), first-party; not-found as Logto's 400 with data.status 404; a
// revoked session's tokens are refused at once although they were cached, on every instance.
func TestRevokeSession(t *testing.T) {
	rs := harness.StartRedis(t)
	opts := options{redis: rs.Addr()}
	e := newEnv(t, opts)
	second := e.startCaddy(opts)
	e.setFields(map[string]string{"session": "Edit"})
	me := e.mint(devcore.MintRequest{Scope: sessionScopes, ClientID: devcore.FirstPartyWebAppID})
	vid := e.passwordRecord(me.AccessToken, devcore.DemoPassword)
	del := func(token, id, query string, headers ...string) reply {
		p := "/api/my-account/sessions/" + id
		if query != "" {
			p += "?" + query
		}
		return e.do("DELETE", p, token, nil, headers...)
	}
	victim := e.mint(devcore.MintRequest{Scope: "openid profile"}) // no offline_access: dies with its session

	// Order of refusals.
	noScope := e.userToken(allScopes)
	expectError(t, del(noScope, victim.SessionID, "revokeGrantsTarget=everything"), 400, "guard.invalid_input")
	expectError(t, del(noScope, victim.SessionID, "revokeGrantsTarget="), 400, "guard.invalid_input")
	expectError(t, del(noScope, victim.SessionID, "revokeGrantsTarget=all&revokeGrantsTarget=all"), 400, "guard.invalid_input")
	expectError(t, del(noScope, victim.SessionID, ""), 401, "verification_record.permission_denied")
	e.setFields(map[string]string{"session": "ReadOnly"})
	expectError(t, del(noScope, victim.SessionID, "", vidHeader, vid), 400, "account_center.field_not_editable")
	e.setFields(map[string]string{"session": "Edit"})
	expectError(t, del(noScope, victim.SessionID, "", vidHeader, vid), 401, "auth.unauthorized")
	third := e.token(devcore.MintRequest{Scope: sessionScopes, ClientID: devcore.ThirdPartyAppID})
	expectError(t, del(third, victim.SessionID, "", vidHeader, vid), 403, "auth.third_party_application_forbidden")
	r := del(me.AccessToken, "nosuchsession0000000", "", vidHeader, vid)
	expectError(t, r, 400, "oidc.session_not_found")
	if d, _ := r.json(t)["data"].(map[string]any); d["status"] != float64(404) {
		t.Fatalf("Logto's quirk: data.status 404 in a 400: %s", r.body)
	}
	others := e.mint(devcore.MintRequest{UserID: devcore.OtherUserID, Scope: sessionScopes})
	expectError(t, del(me.AccessToken, others.SessionID, "", vidHeader, vid), 400, "oidc.invalid_session_account_id")
	for _, id := range hostileIDs {
		expectHostile(t, e, "DELETE", "/api/my-account/sessions/"+id, me.AccessToken,
			"DELETE /api/users/{userId}/sessions/{sessionId}", 400, "oidc.session_not_found", vidHeader, vid)
	}
	if e.call(e.caddy.URL(), "GET", "/api/my-account", others.AccessToken, nil).status != 200 {
		t.Fatal("another user's session must survive")
	}

	// The victim's token is cached on both instances, then its session is revoked on one.
	offline := e.mint(devcore.MintRequest{Scope: "openid offline_access profile", SessionID: victim.SessionID})
	for _, base := range []string{e.caddy.URL(), second.URL()} {
		for _, tok := range []string{victim.AccessToken, offline.AccessToken} {
			if r := e.call(base, "GET", "/api/my-account", tok, nil); r.status != 200 {
				t.Fatalf("before: %d %s", r.status, r.body)
			}
		}
	}
	if r := del(me.AccessToken, victim.SessionID, "", vidHeader, vid); r.status != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	waitRefused(t, e, []string{e.caddy.URL(), second.URL()}, victim.AccessToken)
	// Without revokeGrantsTarget an offline_access grant outlives the session (Logto's rule).
	if r := e.call(second.URL(), "GET", "/api/my-account", offline.AccessToken, nil); r.status != 200 {
		t.Fatalf("the offline token should survive a plain session revoke: %d %s", r.status, r.body)
	}
	if _, listed := sessionsOf(t, e, me.AccessToken, vid)[victim.SessionID]; listed {
		t.Fatal("the revoked session is still listed")
	}
	// The token's sid travels with its cached answer: the second instance (which finds the
	// first one's answer in Redis) marks the same session current.
	r = e.call(second.URL(), "GET", "/api/my-account/sessions", me.AccessToken, nil, vidHeader, vid)
	if r.status != 200 || !strings.Contains(string(r.body), `"isCurrent":true`) ||
		strings.Count(string(r.body), `"isCurrent":true`) != 1 {
		t.Fatalf("second instance: %d %s", r.status, r.body)
	}

	// revokeGrantsTarget=all takes the offline grants of the session with it.
	kept := e.mint(devcore.MintRequest{Scope: "openid offline_access profile"})
	e.call(second.URL(), "GET", "/api/my-account", kept.AccessToken, nil)
	if r := del(me.AccessToken, kept.SessionID, "revokeGrantsTarget=all", vidHeader, vid); r.status != http.StatusNoContent {
		t.Fatalf("revoke all: %d %s", r.status, r.body)
	}
	waitRefused(t, e, []string{e.caddy.URL(), second.URL()}, kept.AccessToken)

	// Revoking one's own session with its first-party grants: the caller's offline token goes
	// too, while a third-party app signed in through the same session keeps its grant.
	app := e.mint(devcore.MintRequest{Scope: "openid offline_access profile", ClientID: devcore.ThirdPartyAppID, SessionID: me.SessionID})
	if r := del(me.AccessToken, me.SessionID, "revokeGrantsTarget=firstParty", vidHeader, vid); r.status != http.StatusNoContent {
		t.Fatalf("revoke own: %d %s", r.status, r.body)
	}
	waitRefused(t, e, []string{e.caddy.URL()}, me.AccessToken)
	if r := e.call(e.caddy.URL(), "GET", "/api/my-account", app.AccessToken, nil); r.status != 200 {
		t.Fatalf("the third-party grant should survive revokeGrantsTarget=firstParty: %d %s", r.status, r.body)
	}
}

// waitRefused waits (at most a second) until every instance refuses token with 401.
func waitRefused(t *testing.T, e *env, bases []string, token string) {
	t.Helper()
	start := time.Now()
	for _, base := range bases {
		e.refusedWithin(base, token, time.Second-time.Since(start))
	}
}

// TestGrants: GET and DELETE /api/my-account/grants in Logto's order, appType filters, the
// revoked grant's tokens refused at once.
func TestGrants(t *testing.T) {
	e := newEnv(t, options{})
	e.setFields(map[string]string{"session": "Edit"})
	me := e.mint(devcore.MintRequest{Scope: sessionScopes})
	third := e.mint(devcore.MintRequest{Scope: sessionScopes, ClientID: devcore.ThirdPartyAppID})
	vid := e.passwordRecord(me.AccessToken, devcore.DemoPassword)
	list := func(query string) map[string]bool {
		t.Helper()
		r := e.do("GET", "/api/my-account/grants"+query, me.AccessToken, nil, vidHeader, vid)
		if r.status != 200 {
			t.Fatalf("GET grants%s: %d %s", query, r.status, r.body)
		}
		ids := map[string]bool{}
		for _, g := range r.json(t)["grants"].([]any) {
			ids[g.(map[string]any)["id"].(string)] = true
		}
		return ids
	}
	if all := list(""); !all[me.GrantID] || !all[third.GrantID] {
		t.Fatalf("grants %v", all)
	}
	if fp := list("?appType=firstParty"); !fp[me.GrantID] || fp[third.GrantID] {
		t.Fatalf("firstParty %v", fp)
	}
	if tp := list("?appType=thirdParty"); tp[me.GrantID] || !tp[third.GrantID] {
		t.Fatalf("thirdParty %v", tp)
	}

	noScope := e.userToken(allScopes)
	expectError(t, e.do("GET", "/api/my-account/grants?appType=secondParty", noScope, nil), 400, "guard.invalid_input")
	expectError(t, e.do("GET", "/api/my-account/grants", noScope, nil), 401, "verification_record.permission_denied")
	e.setFields(map[string]string{"session": "Off"})
	expectError(t, e.do("GET", "/api/my-account/grants", noScope, nil, vidHeader, vid), 400, "account_center.field_not_enabled")
	e.setFields(map[string]string{"session": "ReadOnly"})
	expectError(t, e.do("GET", "/api/my-account/grants", noScope, nil, vidHeader, vid), 401, "auth.unauthorized")

	del := func(token, id string, headers ...string) reply {
		return e.do("DELETE", "/api/my-account/grants/"+id, token, nil, headers...)
	}
	expectError(t, del(noScope, third.GrantID), 401, "verification_record.permission_denied")
	expectError(t, del(noScope, third.GrantID, vidHeader, vid), 400, "account_center.field_not_editable")
	e.setFields(map[string]string{"session": "Edit"})
	expectError(t, del(noScope, third.GrantID, vidHeader, vid), 401, "auth.unauthorized")
	expectError(t, del(third.AccessToken, third.GrantID, vidHeader, vid), 403, "auth.third_party_application_forbidden")
	expectError(t, del(me.AccessToken, "nosuchgrant000000000", vidHeader, vid), 404, "oidc.invalid_grant")
	others := e.mint(devcore.MintRequest{UserID: devcore.OtherUserID, Scope: sessionScopes})
	expectError(t, del(me.AccessToken, others.GrantID, vidHeader, vid), 404, "oidc.invalid_grant")
	for _, id := range hostileIDs {
		expectHostile(t, e, "DELETE", "/api/my-account/grants/"+id, me.AccessToken,
			"DELETE /api/users/{userId}/grants/{grantId}", 404, "oidc.invalid_grant", vidHeader, vid)
	}

	// The third-party app's token is cached, then its grant is revoked: refused at once.
	if r := e.call(e.caddy.URL(), "GET", "/api/my-account", third.AccessToken, nil); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if r := del(me.AccessToken, third.GrantID, vidHeader, vid); r.status != http.StatusNoContent {
		t.Fatalf("revoke grant: %d %s", r.status, r.body)
	}
	waitRefused(t, e, []string{e.caddy.URL()}, third.AccessToken)
	if g := list(""); g[third.GrantID] || !g[me.GrantID] {
		t.Fatalf("after revoking: %v", g)
	}
	expectError(t, del(me.AccessToken, third.GrantID, vidHeader, vid), 404, "oidc.invalid_grant")
}

// TestRevokeRace: a burst of revocations of the same session and the same grant: exactly one
// succeeds, every other one is the route's not-found, none a 5xx.
func TestRevokeRace(t *testing.T) {
	e := newEnv(t, options{})
	e.setFields(map[string]string{"session": "Edit"})
	me := e.mint(devcore.MintRequest{Scope: sessionScopes})
	vid := e.passwordRecord(me.AccessToken, devcore.DemoPassword)
	victim := e.mint(devcore.MintRequest{Scope: "openid"})
	app := e.mint(devcore.MintRequest{Scope: "openid offline_access", ClientID: devcore.FirstPartyWebAppID})
	for _, c := range []struct {
		path, notFound string
		status         int
	}{
		{"/api/my-account/sessions/" + victim.SessionID, "oidc.session_not_found", 400},
		{"/api/my-account/grants/" + app.GrantID, "oidc.invalid_grant", 404},
	} {
		const n = 16
		results := make(chan reply, n)
		var start sync.WaitGroup
		start.Add(1)
		for range n {
			go func() {
				start.Wait()
				results <- e.call(e.caddy.URL(), "DELETE", c.path, me.AccessToken, nil, vidHeader, vid)
			}()
		}
		start.Done()
		ok := 0
		for range n {
			r := <-results
			if r.status == http.StatusNoContent {
				ok++
				continue
			}
			if code, _ := r.json(t)["code"].(string); r.status != c.status || code != c.notFound {
				t.Errorf("%s: %d %s", c.path, r.status, r.body)
			}
		}
		if ok != 1 {
			t.Errorf("%s: %d revocations succeeded, want exactly 1", c.path, ok)
		}
	}
}

// TestSessionsCoreFaults: when the core's sessions, grants or user-assets endpoints fail, the
// routes answer 503 (never a made-up success), nothing is revoked, and all works again after.
func TestSessionsCoreFaults(t *testing.T) {
	sessionsOrAssets := func(r *http.Request) bool {
		p := r.URL.Path
		return strings.Contains(p, "/sessions") || strings.Contains(p, "/grants") || strings.HasPrefix(p, "/api/user-assets")
	}
	e, proxy := newFaultEnv(t, options{extra: "policy_cache_ttl 1ns"})
	e.setFields(map[string]string{"session": "Edit"})
	me := e.mint(devcore.MintRequest{Scope: sessionScopes})
	victim := e.mint(devcore.MintRequest{Scope: "openid"})
	vid := e.passwordRecord(me.AccessToken, devcore.DemoPassword)
	png := testImages(t)["image/png"]

	proxy.failWhen(sessionsOrAssets)
	expectError(t, e.do("GET", "/api/my-account/sessions", me.AccessToken, nil, vidHeader, vid), 503, "identity_core.unavailable")
	expectError(t, e.do("GET", "/api/my-account/grants", me.AccessToken, nil, vidHeader, vid), 503, "identity_core.unavailable")
	expectError(t, e.do("DELETE", "/api/my-account/sessions/"+victim.SessionID, me.AccessToken, nil, vidHeader, vid), 503, "identity_core.unavailable")
	expectError(t, e.do("DELETE", "/api/my-account/grants/"+victim.GrantID, me.AccessToken, nil, vidHeader, vid), 503, "identity_core.unavailable")
	expectError(t, e.uploadAvatar(me.AccessToken, "file", "a.png", "image/png", png), 503, "identity_core.unavailable")
	if r := e.call(e.caddy.URL(), "GET", "/api/my-account", victim.AccessToken, nil); r.status != 200 {
		t.Fatalf("nothing may be revoked by a failed call: %d %s", r.status, r.body)
	}

	proxy.set("pass")
	if r := e.do("DELETE", "/api/my-account/sessions/"+victim.SessionID, me.AccessToken, nil, vidHeader, vid); r.status != 204 {
		t.Fatalf("after recovery: %d %s", r.status, r.body)
	}
	waitRefused(t, e, []string{e.caddy.URL()}, victim.AccessToken)
	if r := e.uploadAvatar(me.AccessToken, "file", "a.png", "image/png", png); r.status != 200 {
		t.Fatalf("after recovery: %d %s", r.status, r.body)
	}
}
