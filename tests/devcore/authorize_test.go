package devcore

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/accountedge/caddy-account-api/tests/harness"
)

const pageCallback = "http://127.0.0.1:8080/account/callback"

// browser is a cookie-keeping client on the test core that follows no redirect.
type browser struct {
	*harness.Browser
	t  *testing.T
	tc *testCore
}

func newBrowser(tc *testCore) *browser {
	return &browser{Browser: harness.NewBrowser(tc.t, tc.url), t: tc.t, tc: tc}
}

func challengeOf(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

const verifier = "a-code-verifier-of-at-least-forty-three-characters"

func authorizePath(extra url.Values) string {
	q := url.Values{"client_id": {AccountPageAppID}, "redirect_uri": {pageCallback}, "response_type": {"code"},
		"scope": {"openid profile email unknown_scope"}, "state": {"st4te"},
		"code_challenge": {challengeOf(verifier)}, "code_challenge_method": {"S256"}}
	for k, v := range extra {
		q[k] = v
	}
	return "/oidc/auth?" + q.Encode()
}

var formAction = regexp.MustCompile(`action="(/oidc/auth/[^"]+)"`)

// signIn runs the form and returns the code the callback receives.
func (b *browser) signIn(identifier, password string) string {
	b.t.Helper()
	status, _, page := b.Send(http.MethodGet, authorizePath(nil), nil)
	m := formAction.FindStringSubmatch(page)
	if status != http.StatusOK || m == nil {
		b.t.Fatalf("authorize: %d, no form: %s", status, page)
	}
	status, header, page := b.Send(http.MethodPost, m[1], url.Values{"identifier": {identifier}, "password": {password}})
	if status != http.StatusSeeOther {
		b.t.Fatalf("sign-in: %d %s", status, page)
	}
	return b.codeFrom(header)
}

func (b *browser) codeFrom(header http.Header) string {
	b.t.Helper()
	loc, err := url.Parse(header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), pageCallback+"?") {
		b.t.Fatalf("redirect to %q, want the callback", header.Get("Location"))
	}
	if loc.Query().Get("state") != "st4te" || loc.Query().Get("iss") == "" || loc.Query().Get("code") == "" {
		b.t.Fatalf("callback query %v", loc.Query())
	}
	return loc.Query().Get("code")
}

func (tc *testCore) exchange(code, codeVerifier string) response {
	tc.t.Helper()
	return tc.form("/oidc/token", url.Values{"grant_type": {"authorization_code"}, "client_id": {AccountPageAppID},
		"code": {code}, "redirect_uri": {pageCallback}, "code_verifier": {codeVerifier}}, "", "")
}

func TestAuthorizationCodeFlowWithPKCE(t *testing.T) {
	tc := newTestCore(t)
	b := newBrowser(tc)

	// Wrong password: the form again, with Logto's message, and no code.
	_, _, page := b.Send(http.MethodGet, authorizePath(nil), nil)
	action := formAction.FindStringSubmatch(page)[1]
	status, _, page := b.Send(http.MethodPost, action, url.Values{"identifier": {DemoUsername}, "password": {"wrong"}})
	if status != http.StatusUnauthorized || !strings.Contains(page, "Incorrect account or password") {
		t.Fatalf("wrong password: %d %s", status, page)
	}

	code := b.signIn(DemoEmail, DemoPassword)
	resp := tc.exchange(code, verifier)
	body := resp.json(t)
	if resp.status != http.StatusOK || body["token_type"] != "Bearer" || body["expires_in"] != float64(3600) {
		t.Fatalf("token: %d %s", resp.status, resp.body)
	}
	if body["scope"] != "openid profile email" {
		t.Fatalf("scope %q: only the known requested scopes are granted", body["scope"])
	}
	token := body["access_token"].(string)
	if in := tc.introspect(token); in["active"] != true || in["sub"] != DemoUserID || in["client_id"] != AccountPageAppID {
		t.Fatalf("introspection of the new token: %v", in)
	}

	// A replayed code is refused and revokes what it was exchanged for.
	if resp := tc.exchange(code, verifier); resp.status != http.StatusBadRequest || resp.json(t)["error"] != "invalid_grant" {
		t.Fatalf("replay: %d %s", resp.status, resp.body)
	}
	if in := tc.introspect(token); in["active"] != false {
		t.Fatalf("token still active after its code was replayed: %v", in)
	}

	// The dev knob for renewal tests: the next tokens live as long as asked.
	if r := tc.do(http.MethodPost, "/dev/user-token-ttl", "", map[string]int{"seconds": 90}); r.status != http.StatusNoContent {
		t.Fatalf("user-token-ttl: %d %s", r.status, r.body)
	}
	_, header, _ := b.Send(http.MethodGet, authorizePath(nil), nil)
	if body := tc.exchange(b.codeFrom(header), verifier).json(t); body["expires_in"] != float64(90) {
		t.Fatalf("expires_in %v after asking for 90 s", body["expires_in"])
	}

	// With the session, the next request gets a code at once, also with prompt=none.
	status, header, _ = b.Send(http.MethodGet, authorizePath(url.Values{"prompt": {"none"}}), nil)
	if status != http.StatusSeeOther {
		t.Fatalf("silent authorize: %d", status)
	}
	code = b.codeFrom(header)
	if resp := tc.exchange(code, "another-verifier-that-is-long-enough-to-be-valid-x"); resp.json(t)["error_description"] != "PKCE verification failed" {
		t.Fatalf("wrong verifier: %d %s", resp.status, resp.body)
	}
}

func TestAuthorizeRefusals(t *testing.T) {
	tc := newTestCore(t)
	b := newBrowser(tc)
	for name, extra := range map[string]url.Values{
		"unknown client":         {"client_id": {"nope"}},
		"not a SPA":              {"client_id": {DemoAppID + "-x"}},
		"m2m client":             {"client_id": {DefaultClientID}},
		"unregistered redirect":  {"redirect_uri": {"https://evil.example/cb"}},
		"redirect with a suffix": {"redirect_uri": {pageCallback + "/x"}},
	} {
		if status, header, _ := b.Send(http.MethodGet, authorizePath(extra), nil); status != http.StatusBadRequest || header.Get("Location") != "" {
			t.Errorf("%s: %d %q, want a 400 page and no redirect", name, status, header.Get("Location"))
		}
	}
	for name, tt := range map[string]struct {
		extra url.Values
		error string
	}{
		"no PKCE":          {url.Values{"code_challenge": {""}}, "invalid_request"},
		"plain PKCE":       {url.Values{"code_challenge_method": {"plain"}}, "invalid_request"},
		"implicit":         {url.Values{"response_type": {"token"}}, "unsupported_response_type"},
		"no openid":        {url.Values{"scope": {"profile"}}, "invalid_scope"},
		"none, no session": {url.Values{"prompt": {"none"}}, "login_required"},
	} {
		status, header, _ := b.Send(http.MethodGet, authorizePath(tt.extra), nil)
		loc, _ := url.Parse(header.Get("Location"))
		if status != http.StatusSeeOther || loc.Query().Get("error") != tt.error || loc.Query().Get("state") != "st4te" {
			t.Errorf("%s: %d %q, want a redirect with error %s", name, status, header.Get("Location"), tt.error)
		}
	}

	// The form works only in the browser that started it.
	_, _, page := b.Send(http.MethodGet, authorizePath(nil), nil)
	action := formAction.FindStringSubmatch(page)[1]
	other := newBrowser(tc)
	if status, header, _ := other.Send(http.MethodPost, action, url.Values{"identifier": {DemoUsername}, "password": {DemoPassword}}); status != http.StatusBadRequest || header.Get("Location") != "" {
		t.Fatalf("another browser's form post: %d", status)
	}
	// A confidential-client style exchange of a public client's code is refused.
	code := b.signIn(DemoUsername, DemoPassword)
	form := url.Values{"grant_type": {"authorization_code"}, "client_id": {AccountPageAppID}, "client_secret": {"x"},
		"code": {code}, "redirect_uri": {pageCallback}, "code_verifier": {verifier}}
	if resp := tc.form("/oidc/token", form, "", ""); resp.status != http.StatusUnauthorized {
		t.Fatalf("public client with a secret: %d %s", resp.status, resp.body)
	}
	if resp := tc.exchange(code, verifier); resp.status != http.StatusOK {
		t.Fatalf("the code is still good after a refused client: %d %s", resp.status, resp.body)
	}
}

var xsrfField = regexp.MustCompile(`name="xsrf" value="([^"]*)"`)

func TestEndSessionRevokesTheSessionsTokens(t *testing.T) {
	tc := newTestCore(t)
	b := newBrowser(tc)
	resp := tc.exchange(b.signIn(DemoUsername, DemoPassword), verifier)
	token := resp.json(t)["access_token"].(string)

	q := url.Values{"client_id": {AccountPageAppID}, "post_logout_redirect_uri": {"https://evil.example/"}}
	if status, _, _ := b.Send(http.MethodGet, "/oidc/session/end?"+q.Encode(), nil); status != http.StatusBadRequest {
		t.Fatalf("unregistered post-logout URI: %d", status)
	}
	q.Set("post_logout_redirect_uri", "http://127.0.0.1:8080/account")
	status, _, page := b.Send(http.MethodGet, "/oidc/session/end?"+q.Encode(), nil)
	m := xsrfField.FindStringSubmatch(page)
	if status != http.StatusOK || m == nil || m[1] == "" {
		t.Fatalf("end session: %d %s", status, page)
	}
	confirm := url.Values{"xsrf": {"forged"}, "client_id": q["client_id"], "post_logout_redirect_uri": q["post_logout_redirect_uri"]}
	if status, _, _ := b.Send(http.MethodPost, "/oidc/session/end/confirm", confirm); status != http.StatusBadRequest {
		t.Fatalf("forged xsrf: %d", status)
	}
	if in := tc.introspect(token); in["active"] != true {
		t.Fatal("a forged sign-out ended the session")
	}
	confirm.Set("xsrf", m[1])
	status, header, _ := b.Send(http.MethodPost, "/oidc/session/end/confirm", confirm)
	if status != http.StatusSeeOther || header.Get("Location") != "http://127.0.0.1:8080/account" {
		t.Fatalf("confirm: %d %q", status, header.Get("Location"))
	}
	if in := tc.introspect(token); in["active"] != false {
		t.Fatalf("token active after sign-out: %v", in)
	}
	// The session is gone: a silent request needs a sign-in again.
	_, header, _ = b.Send(http.MethodGet, authorizePath(url.Values{"prompt": {"none"}}), nil)
	if loc, _ := url.Parse(header.Get("Location")); loc.Query().Get("error") != "login_required" {
		t.Fatalf("after sign-out: %q", header.Get("Location"))
	}
}

// TestSignInIsAnOIDCSession: the form's sign-in is an OIDC session the Management API lists, with
// the page's authorization in it; the page's tokens carry that authorization's sid (its app has
// back-channel logout with the session id). Deleting the session, as a user signing this device
// out from elsewhere does, kills its tokens and the browser's sign-in; a silent sign-in reuses it.
func TestSignInIsAnOIDCSession(t *testing.T) {
	tc := newTestCore(t)
	b := newBrowser(tc)
	token := tc.exchange(b.signIn(DemoUsername, DemoPassword), verifier).json(t)["access_token"].(string)
	m2m := tc.m2mToken()
	list := func() []any {
		r := tc.do(http.MethodGet, "/api/users/"+DemoUserID+"/sessions", m2m, nil)
		var body struct{ Sessions []any }
		if r.status != http.StatusOK || json.Unmarshal(r.body, &body) != nil {
			t.Fatalf("sessions: %d %s", r.status, r.body)
		}
		return body.Sessions
	}
	sessions := list()
	if len(sessions) != 1 {
		t.Fatalf("one sign-in, sessions %v", sessions)
	}
	payload := sessions[0].(map[string]any)["payload"].(map[string]any)
	uid := payload["uid"].(string)
	auth, _ := payload["authorizations"].(map[string]any)[AccountPageAppID].(map[string]any)
	if auth == nil || tc.introspect(token)["sid"] != auth["sid"] {
		t.Fatalf("token sid %v, the page's authorization %v", tc.introspect(token)["sid"], payload["authorizations"])
	}

	// A silent sign-in goes through the same session and grant.
	_, header, _ := b.Send(http.MethodGet, authorizePath(url.Values{"prompt": {"none"}}), nil)
	again := tc.exchange(b.codeFrom(header), verifier).json(t)["access_token"].(string)
	if n := len(list()); n != 1 || tc.introspect(again)["sid"] != auth["sid"] {
		t.Fatalf("silent sign-in: %d sessions, sid %v", n, tc.introspect(again)["sid"])
	}

	if r := tc.do(http.MethodDelete, "/api/users/"+DemoUserID+"/sessions/"+uid+"?revokeGrantsTarget=all", m2m, nil); r.status != http.StatusNoContent {
		t.Fatalf("delete session: %d %s", r.status, r.body)
	}
	for _, tok := range []string{token, again} {
		if tc.introspect(tok)["active"] != false {
			t.Fatal("a token outlived its deleted session")
		}
	}
	_, header, _ = b.Send(http.MethodGet, authorizePath(url.Values{"prompt": {"none"}}), nil)
	if loc, _ := url.Parse(header.Get("Location")); loc.Query().Get("error") != "login_required" {
		t.Fatalf("the browser is still signed in after its session was deleted: %q", header.Get("Location"))
	}

	// Sign-out ends the (new) session at the core too.
	tc.exchange(b.signIn(DemoUsername, DemoPassword), verifier)
	q := url.Values{"client_id": {AccountPageAppID}, "post_logout_redirect_uri": {"http://127.0.0.1:8080/account"}}
	_, _, page := b.Send(http.MethodGet, "/oidc/session/end?"+q.Encode(), nil)
	q.Set("xsrf", xsrfField.FindStringSubmatch(page)[1])
	if status, _, _ := b.Send(http.MethodPost, "/oidc/session/end/confirm", q); status != http.StatusSeeOther {
		t.Fatalf("confirm: %d", status)
	}
	if n := len(list()); n != 0 {
		t.Fatalf("%d sessions after sign-out", n)
	}
}

func TestPublicSignInExperienceListsSocialConnectors(t *testing.T) {
	tc := newTestCore(t)
	r := tc.do(http.MethodGet, "/api/.well-known/sign-in-exp", "", nil)
	body := r.json(t)
	social, _ := body["socialConnectors"].([]any)
	if r.status != http.StatusOK || len(social) != 1 || body["signInMode"] != "SignInAndRegister" {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if c := social[0].(map[string]any); c["id"] != MockSocialConnectorID || c["target"] != MockSocialTarget {
		t.Fatalf("connector %v", c)
	}
}

func TestDevMockSocialPage(t *testing.T) {
	tc := newTestCore(t)
	b := newBrowser(tc)
	for _, bad := range []string{"javascript:alert(1)", "/relative", ""} {
		if status, _, _ := b.Send(http.MethodGet, "/dev/mock-social?redirect_uri="+url.QueryEscape(bad), nil); status != http.StatusBadRequest {
			t.Errorf("redirect_uri %q: %d", bad, status)
		}
	}
	status, _, page := b.Send(http.MethodGet, "/dev/mock-social?state=s1&redirect_uri="+url.QueryEscape("http://127.0.0.1:8080/account/social-callback"), nil)
	if status != http.StatusOK || !strings.Contains(page, `action="http://127.0.0.1:8080/account/social-callback"`) ||
		!strings.Contains(page, `name="state" value="s1"`) {
		t.Fatalf("%d %s", status, page)
	}
}

// TestCodeGrantIDAndRefreshTokens: the code grant issues an ID token (the core's signature, the
// user, the client) and, with offline_access, a refresh token of the page's grant: it renews the
// access token, and dies with the session at sign-out, with what it was exchanged for.
func TestCodeGrantIDAndRefreshTokens(t *testing.T) {
	tc := newTestCore(t)
	b := newBrowser(tc)
	_, _, page := b.Send(http.MethodGet, authorizePath(url.Values{"scope": {"openid offline_access profile"}}), nil)
	_, header, _ := b.Send(http.MethodPost, formAction.FindStringSubmatch(page)[1], url.Values{"identifier": {DemoUsername}, "password": {DemoPassword}})
	body := tc.exchange(b.codeFrom(header), verifier).json(t)
	sub, aud, oerr := tc.core.idTokenHint(body["id_token"].(string))
	if oerr != nil || sub != DemoUserID || aud != AccountPageAppID {
		t.Fatalf("id_token: %v %q %q", oerr, sub, aud)
	}
	refresh, _ := body["refresh_token"].(string)
	if refresh == "" {
		t.Fatalf("no refresh token with offline_access: %v", body)
	}
	renewed := tc.form("/oidc/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {AccountPageAppID}, "refresh_token": {refresh}}, "", "").json(t)
	access, _ := renewed["access_token"].(string)
	if access == "" || tc.introspect(access)["active"] != true {
		t.Fatalf("refresh: %v", renewed)
	}
	q := url.Values{"client_id": {AccountPageAppID}, "post_logout_redirect_uri": {"http://127.0.0.1:8080/account"}}
	_, _, page = b.Send(http.MethodGet, "/oidc/session/end?"+q.Encode(), nil)
	q.Set("xsrf", xsrfField.FindStringSubmatch(page)[1])
	b.Send(http.MethodPost, "/oidc/session/end/confirm", q)
	for _, tok := range []string{access, renewed["refresh_token"].(string)} {
		if tc.introspect(tok)["active"] != false {
			t.Fatal("a token of the ended session's grant is still active")
		}
	}
}
