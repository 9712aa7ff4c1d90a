package devcore

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// The OIDC side of Logto is oidc-provider. Its error bodies carry both Logto's code/message and
// oidc-provider's error/error_description, and every OIDC response allows any origin.

// Kinds of persisted tokens, as oidc-provider names its models. Each introspects differently.
const (
	kindAccess            = "AccessToken"       // a user's opaque access token
	kindRefresh           = "RefreshToken"      // issued with offline_access; introspection omits token_type
	kindClientCredentials = "ClientCredentials" // no end user: introspection omits sub
)

// tokenRecord is a stored opaque token (Logto persists opaque tokens; JWTs are not stored).
type tokenRecord struct {
	kind     string // one of the kinds above; "" is kindAccess
	subject  string
	clientID string
	scope    string
	audience string // empty for opaque tokens without a resource, the usual case
	issuedAt time.Time
	expires  time.Time
	revoked  bool

	// The grant and session the token was issued through (see sessions.go); sid is set only for
	// clients whose tokens carry it.
	grantID, sessionUID, sid string
	// expiresWithSession: the token dies with its session (oidc-provider's default for tokens
	// issued without offline_access).
	expiresWithSession bool
}

func oidcHeaders(w http.ResponseWriter) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
}

// handleDiscovery serves the OpenID configuration with exchange 2's keys and order; endpoint URLs
// follow the request's host as Logto's do.
func (c *Core) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	oidcHeaders(w)
	base := baseURL(r) + "/oidc"
	writeJSON(w, http.StatusOK, ordered{
		{"authorization_endpoint", base + "/auth"},
		{"device_authorization_endpoint", base + "/device/auth"},
		{"claims_parameter_supported", false},
		{"claims_supported", []string{"sub", "name", "family_name", "given_name", "middle_name", "nickname",
			"preferred_username", "profile", "picture", "website", "gender", "birthdate", "zoneinfo", "locale",
			"updated_at", "username", "created_at", "email", "email_verified", "phone_number",
			"phone_number_verified", "address", "custom_data", "identities", "sso_identities", "roles",
			"organizations", "organization_data", "organization_roles", "sid", "auth_time", "iss"}},
		{"code_challenge_methods_supported", []string{"S256"}},
		{"end_session_endpoint", base + "/session/end"},
		{"grant_types_supported", []string{"implicit", "authorization_code", "refresh_token", "client_credentials",
			"urn:ietf:params:oauth:grant-type:device_code", "urn:ietf:params:oauth:grant-type:token-exchange"}},
		{"issuer", c.issuer(r)},
		{"jwks_uri", base + "/jwks"},
		{"authorization_response_iss_parameter_supported", true},
		{"response_modes_supported", []string{"form_post", "fragment", "query"}},
		{"response_types_supported", []string{"code id_token", "code", "id_token", "none"}},
		{"scopes_supported", []string{"openid", "offline_access", "profile", "email", "phone", "address",
			"custom_data", "identities", "roles", "urn:logto:scope:organizations",
			"urn:logto:scope:organization_roles", "urn:logto:scope:sessions", "urn:logto:scope:trusted_devices"}},
		{"subject_types_supported", []string{"public"}},
		{"token_endpoint_auth_methods_supported", []string{"client_secret_basic", "client_secret_jwt",
			"client_secret_post", "private_key_jwt", "none"}},
		{"token_endpoint_auth_signing_alg_values_supported", []string{"HS256", "RS256", "PS256", "ES256", "Ed25519", "EdDSA"}},
		{"token_endpoint", base + "/token"},
		// Logto signs with ES384 by default; this core's keys are RSA, so it says RS256.
		{"id_token_signing_alg_values_supported", []string{"RS256"}},
		{"pushed_authorization_request_endpoint", base + "/request"},
		{"request_uri_parameter_supported", false},
		{"userinfo_endpoint", base + "/me"},
		{"introspection_endpoint", base + "/token/introspection"},
		{"revocation_endpoint", base + "/token/revocation"},
		{"backchannel_logout_supported", true},
		{"backchannel_logout_session_supported", true},
		{"claim_types_supported", []string{"normal"}},
	})
}

// handleJWKS publishes every signing key, newest first, so tokens signed before a rotation still
// verify.
func (c *Core) handleJWKS(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.stats.JWKSRequests++
	keys := make([]publicJWK, len(c.keys))
	for i, k := range c.keys {
		keys[i] = k.public()
	}
	c.mu.Unlock()
	oidcHeaders(w)
	writeJSON(w, http.StatusOK, ordered{{"keys", keys}})
}

// parseOIDCForm reads an oidc-provider POST body, which must be form-encoded.
func parseOIDCForm(w http.ResponseWriter, r *http.Request) (url.Values, *oidcError) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		return nil, newOIDCError(http.StatusBadRequest, "invalid_request",
			"only application/x-www-form-urlencoded content-type bodies are supported on POST /token")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if err := r.ParseForm(); err != nil {
		return nil, newOIDCError(http.StatusBadRequest, "invalid_request", "could not parse the request body")
	}
	return r.PostForm, nil
}

// authenticateClient implements client_secret_basic and client_secret_post the way oidc-provider
// answers: no credentials at all is 400 invalid_request, wrong credentials 401 invalid_client.
func (c *Core) authenticateClient(r *http.Request, form url.Values) (string, *oidcError) {
	var id, secret string
	header := r.Header.Get("Authorization")
	switch {
	case header != "" && (form.Has("client_id") && form.Has("client_secret")):
		return "", newOIDCError(http.StatusBadRequest, "invalid_request",
			"client authentication must only be provided using one mechanism")
	case header != "":
		scheme, cred, _ := strings.Cut(header, " ")
		if !strings.EqualFold(scheme, "basic") || cred == "" {
			return "", newOIDCError(http.StatusBadRequest, "invalid_request", "invalid authorization header value format")
		}
		raw, err := base64.StdEncoding.DecodeString(cred)
		if err != nil {
			return "", newOIDCError(http.StatusBadRequest, "invalid_request", "invalid authorization header value format")
		}
		u, p, ok := strings.Cut(string(raw), ":")
		if !ok {
			return "", newOIDCError(http.StatusBadRequest, "invalid_request", "invalid authorization header value format")
		}
		// RFC 6749 section 2.3.1: Basic credentials are form-urlencoded first.
		if id, err = url.QueryUnescape(u); err != nil {
			return "", newOIDCError(http.StatusBadRequest, "invalid_request", "client_id and client_secret in the authorization header are not properly encoded")
		}
		if secret, err = url.QueryUnescape(p); err != nil {
			return "", newOIDCError(http.StatusBadRequest, "invalid_request", "client_id and client_secret in the authorization header are not properly encoded")
		}
	case form.Get("client_id") != "":
		id, secret = form.Get("client_id"), form.Get("client_secret")
	default:
		return "", newOIDCError(http.StatusBadRequest, "invalid_request", "no client authentication mechanism provided")
	}

	c.mu.Lock()
	want, known := c.clients[id]
	c.mu.Unlock()
	if !known || secret == "" || subtle.ConstantTimeCompare([]byte(secret), []byte(want)) != 1 {
		return "", newOIDCError(http.StatusUnauthorized, "invalid_client", "client authentication failed")
	}
	return id, nil
}

// handleToken implements the client_credentials grant for the Management API resource, the only
// grant a gateway uses. oidc-provider's check order: body, grant type, client, resource. Only the
// machine-to-machine app has a secret, so only it gets past client authentication.
func (c *Core) handleToken(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.stats.TokenRequests++
	c.mu.Unlock()
	oidcHeaders(w)
	w.Header().Set("Cache-Control", "no-store")

	form, oerr := parseOIDCForm(w, r)
	if oerr != nil {
		oerr.write(w)
		return
	}
	switch grant := form.Get("grant_type"); grant {
	case "":
		newOIDCError(http.StatusBadRequest, "invalid_request", "missing required parameter 'grant_type'").write(w)
		return
	case "client_credentials":
	case "refresh_token":
		c.refreshTokenGrant(w, r, form)
		return
	case "authorization_code":
		c.handleAuthorizationCodeGrant(w, r, form)
		return
	default:
		// Logto supports the interactive grants too; a dev core without sign-in cannot.
		newOIDCError(http.StatusBadRequest, "unsupported_grant_type", "unsupported grant_type requested").write(w)
		return
	}
	clientID, oerr := c.authenticateClient(r, form)
	if oerr != nil {
		oerr.write(w)
		return
	}
	if form.Get("resource") != c.cfg.ManagementResource {
		newOIDCError(http.StatusBadRequest, "invalid_target", "resource indicator is missing, or unknown").write(w)
		return
	}
	// oidc-provider keeps only the requested scopes the resource defines; the Management API
	// defines one, "all". Without it the token carries no scope and the API answers 403.
	var scope string
	if slices.Contains(strings.Fields(form.Get("scope")), "all") {
		scope = "all"
	}
	token, err := c.signAccessToken(r, clientID, clientID, scope, c.cfg.ManagementResource, time.Hour)
	if err != nil {
		writeInternalError(w)
		return
	}
	resp := ordered{{"access_token", token}, {"expires_in", 3600}, {"token_type", "Bearer"}}
	if scope != "" {
		resp = append(resp, member{"scope", scope})
	}
	writeJSON(w, http.StatusOK, resp)
}

// signAccessToken issues an RS256 JWT access token with the newest key.
func (c *Core) signAccessToken(r *http.Request, subject, clientID, scope, audience string, ttl time.Duration) (string, error) {
	now := time.Now()
	c.mu.Lock()
	key := c.keys[0]
	c.mu.Unlock()
	return key.sign(accessClaims{
		JTI:      randomString(idAlphabet+"ABCDEFGHIJKLMNOPQRSTUVWXYZ-_", 21),
		Sub:      subject,
		IAT:      now.Unix(),
		EXP:      now.Add(ttl).Unix(),
		Scope:    scope,
		ClientID: clientID,
		Iss:      c.issuer(r),
		Aud:      audience,
	})
}

// handleIntrospection is RFC 7662 as Logto answers it: only persisted opaque tokens can be
// active; any JWT is {"active": false} (exchange 10 shows the consequence).
func (c *Core) handleIntrospection(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.stats.Introspections++
	delay := c.introDelay
	c.mu.Unlock()
	oidcHeaders(w)
	w.Header().Set("Cache-Control", "no-store")
	if delay > 0 {
		// Sleep before reading anything, so concurrent callers really overlap.
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}

	form, oerr := parseOIDCForm(w, r)
	if oerr != nil {
		oerr.write(w)
		return
	}
	if _, oerr := c.authenticateClient(r, form); oerr != nil {
		oerr.write(w)
		return
	}
	token := form.Get("token")
	if token == "" {
		newOIDCError(http.StatusBadRequest, "invalid_request", "missing required parameter 'token'").write(w)
		return
	}

	if looksLikeJWT(token) {
		// oidc-provider refuses structured tokens outright, valid or not (logto-samples-tokens.json).
		newOIDCError(http.StatusBadRequest, "unsupported_token_type",
			"Structured JWT Tokens cannot be introspected via the introspection_endpoint").write(w)
		return
	}

	c.mu.Lock()
	rec := c.tokens[token]
	var snapshot tokenRecord
	active := rec != nil && c.tokenActive(rec, time.Now())
	if rec != nil {
		snapshot = *rec
	}
	lag := c.introLag
	c.mu.Unlock()
	if lag > 0 {
		select {
		case <-time.After(lag):
		case <-r.Context().Done():
			return
		}
	}
	if !active {
		writeJSON(w, http.StatusOK, ordered{{"active", false}})
		return
	}
	writeJSON(w, http.StatusOK, snapshot.introspection(c.issuer(r)))
}

// introspection is oidc-provider's answer about an active token: a refresh token carries no
// token_type (oidc-provider sets it for access tokens only) and a client-credentials token no
// sub (it has no end user).
func (t *tokenRecord) introspection(issuer string) ordered {
	resp := ordered{{"active", true}}
	if t.kind != kindClientCredentials {
		resp = append(resp, member{"sub", t.subject})
	}
	if t.clientID != "" {
		resp = append(resp, member{"client_id", t.clientID})
	}
	resp = append(resp,
		member{"exp", t.expires.Unix()},
		member{"iat", t.issuedAt.Unix()},
	)
	if t.sid != "" {
		resp = append(resp, member{"sid", t.sid})
	}
	resp = append(resp,
		member{"iss", issuer},
		member{"scope", t.scope},
	)
	if t.kind != kindRefresh {
		resp = append(resp, member{"token_type", "Bearer"})
	}
	if t.audience != "" {
		resp = append(resp, member{"aud", t.audience})
	}
	return resp
}

// refreshTokenLifetime is Logto's default refresh token TTL: 14 days.
const refreshTokenLifetime = 14 * 24 * time.Hour

// issueRefreshToken persists a refresh token for the user's grant to clientID.
func (c *Core) issueRefreshToken(subject, clientID, scope string) string {
	return c.issueGrantRefreshToken(tokenRecord{subject: subject, clientID: clientID, scope: scope})
}

// issueGrantRefreshToken persists a refresh token like from (its user, client, scope, and the
// grant and session it belongs to, so that ending them revokes it and what it is exchanged for).
func (c *Core) issueGrantRefreshToken(from tokenRecord) string {
	now := time.Now()
	token := opaqueToken()
	c.mu.Lock()
	c.tokens[token] = &tokenRecord{kind: kindRefresh, subject: from.subject, clientID: from.clientID, scope: from.scope,
		issuedAt: now, expires: now.Add(refreshTokenLifetime), grantID: from.grantID, sessionUID: from.sessionUID, sid: from.sid}
	c.mu.Unlock()
	return token
}

// refreshTokenGrant exchanges a refresh token, as oidc-provider does for Logto's SPA clients
// (public: client_id in the form, no secret): with a resource indicator the new access token is a
// JWT for that API resource, without one an opaque token. The refresh token is rotated.
func (c *Core) refreshTokenGrant(w http.ResponseWriter, r *http.Request, form url.Values) {
	clientID := form.Get("client_id")
	c.mu.Lock()
	_, known := c.apps[clientID]
	_, confidential := c.clients[clientID]
	rec := c.tokens[form.Get("refresh_token")]
	var old tokenRecord
	live := rec != nil && c.tokenActive(rec, time.Now())
	if rec != nil {
		old = *rec
	}
	c.mu.Unlock()
	switch {
	case !known || confidential:
		newOIDCError(http.StatusUnauthorized, "invalid_client", "client authentication failed").write(w)
		return
	case form.Get("refresh_token") == "":
		newOIDCError(http.StatusBadRequest, "invalid_request", "missing required parameter 'refresh_token'").write(w)
		return
	case !live || old.kind != kindRefresh || old.clientID != clientID:
		newOIDCError(http.StatusBadRequest, "invalid_grant", "grant request is invalid").write(w)
		return
	}
	scope := old.scope
	if s := form.Get("scope"); s != "" {
		scope = s // a narrowing; the dev core does not check it is a subset
	}
	resp := ordered{}
	ttl := time.Hour
	if resource := form.Get("resource"); resource != "" {
		token, err := c.signAccessToken(r, old.subject, clientID, scope, resource, ttl)
		if err != nil {
			writeInternalError(w)
			return
		}
		resp = append(resp, member{"access_token", token})
	} else {
		now := time.Now()
		token := opaqueToken()
		c.mu.Lock()
		c.tokens[token] = &tokenRecord{subject: old.subject, clientID: clientID, scope: scope, issuedAt: now, expires: now.Add(ttl),
			grantID: old.grantID, sessionUID: old.sessionUID, sid: old.sid}
		c.mu.Unlock()
		resp = append(resp, member{"access_token", token})
	}
	c.mu.Lock()
	rec.revoked = true // rotation: the old refresh token is consumed
	c.mu.Unlock()
	resp = append(resp,
		member{"expires_in", int64(ttl / time.Second)},
		member{"refresh_token", c.issueGrantRefreshToken(old)},
		member{"scope", scope},
		member{"token_type", "Bearer"},
	)
	writeJSON(w, http.StatusOK, resp)
}

// handleRevocation is RFC 7009 as oidc-provider answers it: any client may revoke its own
// tokens (a public client names itself with client_id); unknown tokens are a silent success;
// the answer is 200 with an empty body.
func (c *Core) handleRevocation(w http.ResponseWriter, r *http.Request) {
	oidcHeaders(w)
	form, oerr := parseOIDCForm(w, r)
	if oerr != nil {
		oerr.write(w)
		return
	}
	clientID := form.Get("client_id")
	if r.Header.Get("Authorization") != "" || form.Has("client_secret") {
		id, oerr := c.authenticateClient(r, form)
		if oerr != nil {
			oerr.write(w)
			return
		}
		clientID = id
	}
	c.mu.Lock()
	_, known := c.apps[clientID]
	c.mu.Unlock()
	if !known {
		newOIDCError(http.StatusUnauthorized, "invalid_client", "client authentication failed").write(w)
		return
	}
	token := form.Get("token")
	if token == "" {
		newOIDCError(http.StatusBadRequest, "invalid_request", "missing required parameter 'token'").write(w)
		return
	}
	c.mu.Lock()
	if rec := c.tokens[token]; rec != nil && rec.clientID == clientID {
		rec.revoked = true
	}
	c.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
}

// issueIDToken signs an ID token for the user's sign-in to clientID.
func (c *Core) issueIDToken(r *http.Request, subject, clientID string) (string, error) {
	now := time.Now()
	c.mu.Lock()
	key := c.keys[0]
	c.mu.Unlock()
	return key.signTyped("JWT", idClaims{Sub: subject, Aud: clientID, IAT: now.Unix(), EXP: now.Add(time.Hour).Unix(), Iss: c.issuer(r)})
}

// idTokenHint reads an id_token_hint of RP-initiated logout: it must be one the core signed (an
// empty hint is no hint); it names the user and the client.
func (c *Core) idTokenHint(hint string) (subject, clientID string, oerr *oidcError) {
	if hint == "" {
		return "", "", nil
	}
	c.mu.Lock()
	keys := append([]*signingKey(nil), c.keys...)
	c.mu.Unlock()
	claims, err := verifyJWT(hint, keys)
	if err == nil {
		err = json.Unmarshal(claims.Aud, &clientID)
	}
	if err != nil || claims.Sub == "" {
		return "", "", newOIDCError(http.StatusBadRequest, "invalid_request", "could not validate id_token_hint")
	}
	return claims.Sub, clientID, nil
}
