package devcore

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Interactive sign-in, as oidc-provider inside Logto does it for a Single Page application: the
// authorization code flow with PKCE (S256 only, required for public clients), a browser session
// at the core (cookie), and RP-initiated logout. The sign-in itself is a plain dev-only form for
// the seeded users (Logto shows its sign-in experience there); everything around it, the checks
// and their order, the single-use, short-lived, client- and redirect-bound codes, is
// oidc-provider's.
//
//	GET  /oidc/auth                  authorization request: a code at once with a session, else the form
//	POST /oidc/auth/{uid}            the form: identifier and password
//	POST /oidc/token                 grant_type=authorization_code (public client, PKCE)
//	GET  /oidc/session/end           RP-initiated logout: a confirmation form that submits itself
//	POST /oidc/session/end/confirm   ends the session, revokes its tokens, redirects
//	POST /dev/user-token-ttl         dev only: {"seconds": n} for the access tokens issued next (0: 1h)
//	GET  /dev/mock-social            dev only: the mock social provider's page (Config.MockSocialAuthorizeURL)

// AccountPageAppID is the seeded Single Page application of the account page.
const AccountPageAppID = "account-page"

// DefaultAccountPageURLs are where the quickstart serves the account page (Caddyfile.example).
var DefaultAccountPageURLs = []string{"http://127.0.0.1:8080/account", "http://localhost:8080/account"}

// oidc-provider's defaults, which Logto keeps.
const (
	authorizationCodeTTL = time.Minute
	interactionTTL       = 10 * time.Minute
	browserSessionTTL    = 14 * 24 * time.Hour
	userAccessTokenTTL   = time.Hour
	sessionCookie        = "_session"
	interactionCookie    = "_interaction"
)

// oidc-provider's messages as Logto renders them; they are not in errors.go's table because only
// the interactive flow produces them.
func init() {
	messages["oidc.invalid_grant"] = "Grant request is invalid."
	messages["oidc.unauthorized_client"] = "The client is not authorized to use this grant type."
}

// browserState holds the interactive flow's records. It has its own lock: nothing in it is read
// under Core.mu, and the sign-in form must not wait on Management API traffic.
type browserState struct {
	mu           sync.Mutex
	interactions map[string]*interaction // pending authorization requests by uid
	codes        map[string]*authCode
	sessions     map[string]*browserSession
	tokenTTL     time.Duration // of the access tokens the code grant issues; 0 is userAccessTokenTTL
}

func newBrowserState() *browserState {
	return &browserState{
		interactions: map[string]*interaction{},
		codes:        map[string]*authCode{},
		sessions:     map[string]*browserSession{},
	}
}

// authRequest is a validated authorization request.
type authRequest struct {
	clientID, redirectURI, scope, state, nonce, challenge string
}

type interaction struct {
	req     authRequest
	expires time.Time
}

type authCode struct {
	req       authRequest
	subject   string
	sessionID string
	expires   time.Time
	used      bool
	tokens    []string // what it was exchanged for, revoked if the code is replayed
}

// browserSession is the core's cookie in one browser. It stands for an OIDC session (uid, in
// Core.sessions, what the Management API lists and deletes): once that is gone, so is the
// browser's sign-in.
type browserSession struct {
	subject string
	uid     string
	expires time.Time
	xsrf    string // binds the logout confirmation form to this session
}

// spaRedirects returns the registered redirect and post-logout URIs of a Single Page
// application, or ok false for an unknown client or one of another type.
func (c *Core) spaRedirects(clientID string) (redirects, postLogout []string, ok bool) {
	c.mu.Lock()
	app := c.apps[clientID]
	c.mu.Unlock()
	if app == nil || app.Type != "SPA" {
		return nil, nil, false
	}
	var meta struct {
		RedirectURIs           []string `json:"redirectUris"`
		PostLogoutRedirectURIs []string `json:"postLogoutRedirectUris"`
	}
	if err := json.Unmarshal(app.OIDCClientMetadata, &meta); err != nil {
		return nil, nil, false
	}
	return meta.RedirectURIs, meta.PostLogoutRedirectURIs, true
}

// handleAuthorize is GET /oidc/auth. As in oidc-provider, an unknown client or redirect URI is
// answered here (nowhere safe to redirect to); every later error goes back to the client.
func (c *Core) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req := authRequest{
		clientID: q.Get("client_id"), redirectURI: q.Get("redirect_uri"), state: q.Get("state"),
		nonce: q.Get("nonce"), challenge: q.Get("code_challenge"),
	}
	redirects, _, ok := c.spaRedirects(req.clientID)
	if !ok {
		c.signInPage(w, http.StatusBadRequest, "The client_id is unknown or not a Single Page application.", nil)
		return
	}
	if !slices.Contains(redirects, req.redirectURI) {
		c.signInPage(w, http.StatusBadRequest, "The redirect_uri is not registered for this application.", nil)
		return
	}
	fail := func(code, description string) {
		redirectWith(w, r, req.redirectURI, url.Values{"error": {code}, "error_description": {description},
			"state": {req.state}, "iss": {c.issuer(r)}})
	}
	switch {
	case q.Get("response_type") != "code":
		fail("unsupported_response_type", "unsupported response_type requested")
		return
	case req.challenge == "":
		fail("invalid_request", "Authorization Server policy requires PKCE to be used for this request")
		return
	case q.Get("code_challenge_method") != "S256":
		fail("invalid_request", "not supported value of code_challenge_method")
		return
	}
	scopes := strings.Fields(q.Get("scope"))
	if !slices.Contains(scopes, "openid") {
		fail("invalid_scope", "openid scope must be requested when using the authorization code flow")
		return
	}
	req.scope = strings.Join(supportedScopes(scopes), " ")

	prompt := strings.Fields(q.Get("prompt"))
	if sub, sid := c.currentSession(r); sub != "" && !slices.Contains(prompt, "login") {
		c.issueCode(w, r, req, sub, sid)
		return
	}
	if slices.Contains(prompt, "none") {
		fail("login_required", "End-User authentication is required")
		return
	}
	uid := opaqueToken()
	c.browser.mu.Lock()
	c.browser.interactions[uid] = &interaction{req: req, expires: time.Now().Add(interactionTTL)}
	c.browser.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: interactionCookie, Value: uid, Path: "/oidc/auth/" + uid,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, MaxAge: int(interactionTTL / time.Second)})
	c.signInPage(w, http.StatusOK, "", &signInForm{Action: "/oidc/auth/" + uid})
}

// supportedScopes keeps the requested scopes the core knows, as oidc-provider does.
func supportedScopes(requested []string) []string {
	known := []string{"openid", "offline_access", "profile", "email", "phone", "address", "custom_data",
		"identities", "roles", "urn:logto:scope:organizations", "urn:logto:scope:organization_roles",
		"urn:logto:scope:sessions", "urn:logto:scope:trusted_devices"}
	var out []string
	for _, s := range requested {
		if slices.Contains(known, s) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// handleSignInSubmit is POST /oidc/auth/{uid}: the dev sign-in form. The interaction must be
// the one this browser started (its cookie), and is used up by a successful sign-in.
func (c *Core) handleSignInSubmit(w http.ResponseWriter, r *http.Request) {
	uid := r.PathValue("uid")
	cookie, err := r.Cookie(interactionCookie)
	if err != nil || subtle.ConstantTimeCompare([]byte(cookie.Value), []byte(uid)) != 1 {
		c.signInPage(w, http.StatusBadRequest, "This sign-in request was not started in this browser.", nil)
		return
	}
	c.browser.mu.Lock()
	in := c.browser.interactions[uid]
	c.browser.mu.Unlock()
	if in == nil || time.Now().After(in.expires) {
		c.signInPage(w, http.StatusBadRequest, "This sign-in request has expired. Go back to the application and sign in again.", nil)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if err := r.ParseForm(); err != nil {
		c.signInPage(w, http.StatusBadRequest, "The form could not be read.", nil)
		return
	}
	identifier := strings.TrimSpace(r.PostForm.Get("identifier"))
	sub := c.checkCredentials(identifier, r.PostForm.Get("password"))
	if sub == "" {
		c.signInPage(w, http.StatusUnauthorized, messages["session.invalid_credentials"],
			&signInForm{Action: "/oidc/auth/" + uid, Identifier: identifier})
		return
	}

	now := time.Now()
	c.mu.Lock()
	session, _, _ := c.signIn(sub, in.req.clientID, "", in.req.scope, now)
	if u := c.users[sub]; u != nil {
		at := now.UnixMilli()
		u.lastSignInAt = &at
	}
	c.mu.Unlock()
	sid := opaqueToken()
	c.browser.mu.Lock()
	delete(c.browser.interactions, uid)
	c.browser.sessions[sid] = &browserSession{subject: sub, uid: session.uid, expires: now.Add(browserSessionTTL), xsrf: opaqueToken()}
	c.browser.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: interactionCookie, Value: "", Path: "/oidc/auth/" + uid, MaxAge: -1})
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: sid, Path: "/oidc", HttpOnly: true,
		SameSite: http.SameSiteLaxMode, MaxAge: int(browserSessionTTL / time.Second)})
	c.issueCode(w, r, in.req, sub, sid)
}

// checkCredentials returns the id of the unsuspended user whose username, primary email or
// primary phone is identifier and whose password matches, or "".
func (c *Core) checkCredentials(identifier, password string) string {
	if identifier == "" || password == "" {
		return ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, u := range c.users {
		for _, v := range []*string{u.username, u.primaryEmail, u.primaryPhone} {
			if v != nil && *v == identifier && !u.isSuspended && u.passwordMatches(password) {
				return id
			}
		}
	}
	return ""
}

// currentSession returns the subject and id of the browser's live session, if any: its OIDC
// session must be alive too (not ended through the Management API, by the user signing this
// device out elsewhere).
func (c *Core) currentSession(r *http.Request) (subject, sid string) {
	cookie, err := r.Cookie(sessionCookie)
	if err != nil {
		return "", ""
	}
	c.browser.mu.Lock()
	s := c.browser.sessions[cookie.Value]
	c.browser.mu.Unlock()
	now := time.Now()
	if s == nil || now.After(s.expires) {
		return "", ""
	}
	c.mu.Lock()
	session := c.sessions[s.uid]
	alive := session != nil && session.accountID == s.subject && now.Before(session.expires)
	c.mu.Unlock()
	if !alive {
		c.browser.mu.Lock()
		delete(c.browser.sessions, cookie.Value)
		c.browser.mu.Unlock()
		return "", ""
	}
	return s.subject, cookie.Value
}

func (c *Core) issueCode(w http.ResponseWriter, r *http.Request, req authRequest, subject, sid string) {
	code := opaqueToken()
	c.browser.mu.Lock()
	c.browser.codes[code] = &authCode{req: req, subject: subject, sessionID: sid, expires: time.Now().Add(authorizationCodeTTL)}
	c.browser.mu.Unlock()
	redirectWith(w, r, req.redirectURI, url.Values{"code": {code}, "state": {req.state}, "iss": {c.issuer(r)}})
}

// redirectWith sends the browser to target with params added to its query (response_mode
// query, oidc-provider's default for the code flow).
func redirectWith(w http.ResponseWriter, r *http.Request, target string, params url.Values) {
	u, err := url.Parse(target)
	if err != nil {
		writeInternalError(w)
		return
	}
	q := u.Query()
	for k, vs := range params {
		if len(vs) > 0 && vs[0] != "" {
			q[k] = vs
		}
	}
	u.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

// handleAuthorizationCodeGrant is POST /oidc/token with grant_type=authorization_code for a
// public client (token_endpoint_auth_method none: client_id in the body, no secret). The check
// order is oidc-provider's: client, code (unknown, expired, replayed), client binding,
// redirect_uri, PKCE. A replayed code revokes what it was exchanged for (RFC 6749 section 4.1.2).
func (c *Core) handleAuthorizationCodeGrant(w http.ResponseWriter, r *http.Request, form url.Values) {
	clientID := form.Get("client_id")
	if _, _, ok := c.spaRedirects(clientID); !ok || form.Has("client_secret") || r.Header.Get("Authorization") != "" {
		newOIDCError(http.StatusUnauthorized, "invalid_client", "client authentication failed").write(w)
		return
	}
	invalidGrant := func(description string) {
		newOIDCError(http.StatusBadRequest, "invalid_grant", description).write(w)
	}
	now := time.Now()
	c.browser.mu.Lock()
	code := c.browser.codes[form.Get("code")]
	switch {
	case code == nil || now.After(code.expires):
		c.browser.mu.Unlock()
		invalidGrant("grant request is invalid")
		return
	case code.used:
		replayed := code.tokens
		c.browser.mu.Unlock()
		c.revokeTokens(replayed)
		invalidGrant("grant request is invalid")
		return
	}
	code.used = true
	c.browser.mu.Unlock()

	switch {
	case code.req.clientID != clientID:
		invalidGrant("client mismatch")
		return
	case code.req.redirectURI != form.Get("redirect_uri"):
		invalidGrant("authorization code redirect_uri mismatch")
		return
	case !pkceMatches(form.Get("code_verifier"), code.req.challenge):
		invalidGrant("PKCE verification failed")
		return
	}

	// A resource-less request gets an opaque access token for the userinfo endpoint and the
	// Account API, as Logto issues to SPAs, through the browser's OIDC session and the page's
	// grant in it (a session ended since then makes the code worthless, as its grant went too).
	token := opaqueToken()
	c.browser.mu.Lock()
	ttl := c.browser.tokenTTL
	var sessionUID string
	if s := c.browser.sessions[code.sessionID]; s != nil {
		sessionUID = s.uid
	}
	c.browser.mu.Unlock()
	if ttl <= 0 {
		ttl = userAccessTokenTTL
	}
	c.mu.Lock()
	session, auth, ok := c.signIn(code.subject, clientID, sessionUID, code.req.scope, now)
	if ok && sessionUID != "" {
		rec := &tokenRecord{subject: code.subject, clientID: clientID, scope: code.req.scope,
			issuedAt: now, expires: now.Add(ttl), grantID: auth.grantID, sessionUID: session.uid,
			expiresWithSession: !slices.Contains(strings.Fields(code.req.scope), "offline_access")}
		if app := c.apps[clientID]; app != nil && app.includesSid() {
			rec.sid = auth.sid
		}
		c.tokens[token] = rec
	}
	c.mu.Unlock()
	if !ok || sessionUID == "" {
		invalidGrant("grant request is invalid")
		return
	}
	resp := ordered{{"access_token", token}, {"expires_in", int64(ttl / time.Second)}}
	issued := []string{token}
	// With offline_access a refresh token of the same grant; an ID token always (openid is
	// required above).
	if slices.Contains(strings.Fields(code.req.scope), "offline_access") {
		c.mu.Lock()
		from := *c.tokens[token]
		c.mu.Unlock()
		refresh := c.issueGrantRefreshToken(from)
		issued = append(issued, refresh)
		resp = append(resp, member{"refresh_token", refresh})
	}
	idToken, err := c.issueIDToken(r, code.subject, clientID)
	if err != nil {
		writeInternalError(w)
		return
	}
	c.browser.mu.Lock()
	code.tokens = append(code.tokens, issued...)
	c.browser.mu.Unlock()
	writeJSON(w, http.StatusOK, append(resp, member{"id_token", idToken}, member{"scope", code.req.scope}, member{"token_type", "Bearer"}))
}

// handleDevUserTokenTTL is POST /dev/user-token-ttl {"seconds": n}: the lifetime of the access
// tokens the code grant issues from now on (0: Logto's hour), so a test can watch a page renew
// its token without waiting an hour.
func (c *Core) handleDevUserTokenTTL(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Seconds *int64 `json:"seconds"`
	}
	if !decodeDevBody(w, r, &req) {
		return
	}
	if req.Seconds == nil || *req.Seconds < 0 {
		devInputError(w, "seconds must be a number >= 0")
		return
	}
	c.browser.mu.Lock()
	c.browser.tokenTTL = time.Duration(*req.Seconds) * time.Second
	c.browser.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// pkceMatches checks an RFC 7636 S256 code verifier (43 to 128 unreserved characters).
func pkceMatches(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	sum := sha256.Sum256([]byte(verifier))
	want := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(want), []byte(challenge)) == 1
}

// endSession destroys an OIDC session and the grants of its applications.
func (c *Core) endSession(uid string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.sessions[uid]; s != nil {
		for _, a := range s.authorizations {
			c.revokeGrant(a.grantID)
		}
		delete(c.sessions, uid)
	}
}

func (c *Core) revokeTokens(tokens []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range tokens {
		if rec := c.tokens[t]; rec != nil {
			rec.revoked = true
		}
	}
}

// handleEndSession is GET or POST /oidc/session/end: RP-initiated logout. An id_token_hint must
// be one the core signed (400 otherwise), and names the client when client_id does not; a
// post_logout_redirect_uri must be registered for that client. A browser signed in at the core
// gets oidc-provider's confirmation form, bound to its session (Logto's logout source submits it
// by script), so another site cannot sign the user out. Without a session there is nothing to
// confirm: the hinted user's tokens of that client are revoked, and the browser goes on at once.
func (c *Core) handleEndSession(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if err := r.ParseForm(); err != nil {
		newOIDCError(http.StatusBadRequest, "invalid_request", "could not parse the request").write(w)
		return
	}
	hintedUser, hintedClient, oerr := c.idTokenHint(r.Form.Get("id_token_hint"))
	if oerr != nil {
		oerr.write(w)
		return
	}
	clientID := r.Form.Get("client_id")
	if clientID == "" {
		clientID = hintedClient
	}
	target := r.Form.Get("post_logout_redirect_uri")
	if target != "" {
		_, postLogout, ok := c.spaRedirects(clientID)
		if !ok || !slices.Contains(postLogout, target) {
			c.signInPage(w, http.StatusBadRequest, "The post_logout_redirect_uri is not registered for this client_id.", nil)
			return
		}
	}
	if _, sid := c.currentSession(r); sid != "" {
		c.browser.mu.Lock()
		xsrf := c.browser.sessions[sid].xsrf
		c.browser.mu.Unlock()
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = logoutTemplate.Execute(w, struct{ XSRF, Target, State, ClientID string }{xsrf, target, r.Form.Get("state"), clientID})
		return
	}
	if hintedUser != "" {
		c.mu.Lock()
		for _, t := range c.tokens {
			if t.subject == hintedUser && t.clientID == hintedClient {
				t.revoked = true
			}
		}
		c.mu.Unlock()
	}
	if target == "" {
		c.signInPage(w, http.StatusOK, "You are signed out.", nil)
		return
	}
	redirectWith(w, r, target, url.Values{"state": {r.Form.Get("state")}})
}

// handleEndSessionConfirm is POST /oidc/session/end/confirm: the session ends, with the grants
// of its applications and so every token issued through it (none of the page's grants persist
// past logout), and the browser goes to the checked post-logout URI.
func (c *Core) handleEndSessionConfirm(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if err := r.ParseForm(); err != nil {
		c.signInPage(w, http.StatusBadRequest, "The form could not be read.", nil)
		return
	}
	target := r.PostForm.Get("post_logout_redirect_uri")
	if target != "" {
		if _, postLogout, ok := c.spaRedirects(r.PostForm.Get("client_id")); !ok || !slices.Contains(postLogout, target) {
			c.signInPage(w, http.StatusBadRequest, "The post_logout_redirect_uri is not registered for this client_id.", nil)
			return
		}
	}
	if _, sid := c.currentSession(r); sid != "" {
		c.browser.mu.Lock()
		s := c.browser.sessions[sid]
		ok := subtle.ConstantTimeCompare([]byte(s.xsrf), []byte(r.PostForm.Get("xsrf"))) == 1
		if ok {
			delete(c.browser.sessions, sid)
		}
		c.browser.mu.Unlock()
		if !ok {
			c.signInPage(w, http.StatusBadRequest, "The sign-out request was not made by this browser.", nil)
			return
		}
		c.endSession(s.uid)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/oidc", MaxAge: -1})
	if target == "" {
		c.signInPage(w, http.StatusOK, "You are signed out.", nil)
		return
	}
	redirectWith(w, r, target, url.Values{"state": {r.PostForm.Get("state")}})
}

// handleDevMockSocial plays the mock social provider: a page that sends the browser back to
// redirect_uri with the state and a code, and the user id the person chose, which is what the
// mock connector makes a social identity of (messaging.go).
func (c *Core) handleDevMockSocial(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	back, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || (back.Scheme != "http" && back.Scheme != "https") || back.Host == "" {
		c.signInPage(w, http.StatusBadRequest, "The redirect_uri must be an absolute http(s) URL.", nil)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	_ = mockSocialTemplate.Execute(w, struct{ Action, State, Code string }{back.String(), q.Get("state"), randomString(idAlphabet, 12)})
}

var mockSocialTemplate = template.Must(template.New("mock-social").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Mock social provider (dev core)</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:24rem;margin:3rem auto;padding:0 1rem;color:#1a1a1a}
label{display:block;margin-top:1rem;font-weight:600}input{width:100%;box-sizing:border-box;padding:.5rem;font:inherit;border:1px solid #555;border-radius:4px}
button{margin-top:1.5rem;padding:.6rem 1.2rem;font:inherit;background:#4b2fc9;color:#fff;border:0;border-radius:4px}</style></head>
<body><main><h1>Mock social provider</h1>
<p>The dev core's stand-in for a social sign-in (Google, GitHub, …): continuing links this account.</p>
<form method="get" action="{{.Action}}">
<input type="hidden" name="state" value="{{.State}}">
<input type="hidden" name="code" value="{{.Code}}">
<label for="userId">Social account id</label>
<input id="userId" name="userId" value="social-{{.Code}}" required>
<button type="submit">Continue</button>
</form></main></body></html>
`))

// signInForm fills the sign-in template's form.
type signInForm struct {
	Action     string
	Identifier string
}

// signInPage renders the dev core's one HTML page: the sign-in form, or a message.
func (c *Core) signInPage(w http.ResponseWriter, status int, message string, form *signInForm) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	w.WriteHeader(status)
	_ = signInTemplate.Execute(w, struct {
		Message string
		Form    *signInForm
		Users   []string
	}{message, form, []string{DemoUsername + " / " + DemoPassword, OtherUsername + " / " + OtherPassword}})
}

var signInTemplate = template.Must(template.New("sign-in").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in (dev core)</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:24rem;margin:3rem auto;padding:0 1rem;color:#1a1a1a}
label{display:block;margin-top:1rem;font-weight:600}input{width:100%;box-sizing:border-box;padding:.5rem;font:inherit;border:1px solid #555;border-radius:4px}
button{margin-top:1.5rem;padding:.6rem 1.2rem;font:inherit;background:#4b2fc9;color:#fff;border:0;border-radius:4px}
.note{background:#fff4d6;border:1px solid #8a6d00;padding:.5rem .75rem;border-radius:4px;font-size:.9rem}
[role=alert]{color:#a4000f;font-weight:600}</style></head>
<body><main>
<h1>Sign in</h1>
<p class="note">Development identity core, a stand-in for Logto: not an identity provider. Seeded users:
{{range $i, $u := .Users}}{{if $i}}, {{end}}<code>{{$u}}</code>{{end}}.</p>
{{if .Message}}<p role="alert">{{.Message}}</p>{{end}}
{{with .Form}}<form method="post" action="{{.Action}}">
<label for="identifier">Username or email</label>
<input id="identifier" name="identifier" autocomplete="username" required value="{{.Identifier}}" autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>{{end}}
</main></body></html>
`))

// logoutTemplate is oidc-provider's logout confirmation, submitted at once by script as Logto's
// logout source does (no CSP here: the dev core's pages are not the module's).
var logoutTemplate = template.Must(template.New("logout").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Signing out</title></head><body>
<form id="op.logoutForm" method="post" action="/oidc/session/end/confirm">
<input type="hidden" name="xsrf" value="{{.XSRF}}">
<input type="hidden" name="logout" value="yes">
<input type="hidden" name="client_id" value="{{.ClientID}}">
<input type="hidden" name="state" value="{{.State}}">
<input type="hidden" name="post_logout_redirect_uri" value="{{.Target}}">
<noscript><button type="submit">Sign out</button></noscript>
</form>
<script>document.getElementById("op.logoutForm").submit()</script>
</body></html>
`))
