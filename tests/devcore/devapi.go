package devcore

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"
)

// The /dev API exists only in this stand-in, never in Logto. It has no authentication: the dev
// core listens on loopback only, and these routes are how tests get what a real core would
// produce through a browser sign-in (a user access token) or cannot show at all (stats).

// MintRequest is the body of POST /dev/tokens.
type MintRequest struct {
	UserID string `json:"userId"`
	Scope  string `json:"scope"`
	// ClientID is the application the token is issued to; default DemoAppID.
	ClientID string `json:"clientId,omitempty"`
	// NoClient mints an opaque token that names no client (its introspection has no
	// client_id): what a core bug or a foreign issuer could hand out, which must not pass for
	// a first-party client's token.
	NoClient bool `json:"noClient,omitempty"`
	// ExpiresIn is the lifetime in seconds; default 3600. Zero or negative mints a token that is
	// already expired.
	ExpiresIn *int64 `json:"expiresIn,omitempty"`
	// Format is "opaque" (default; what Logto issues when no resource is requested, and what
	// introspection knows), "jwt" (an RS256 access token for Audience) or "client_credentials"
	// (an opaque token of ClientID itself, with no end user: UserID is ignored).
	Format   string `json:"format,omitempty"`
	Audience string `json:"audience,omitempty"`
	// SessionID, for an opaque token, is the OIDC session (a uid from an earlier mint) the token
	// is issued through, as when the user signs in to another application of the same browser
	// session; empty starts a new session.
	SessionID string `json:"sessionId,omitempty"`
}

// MintResponse is the answer of POST /dev/tokens, shaped like a token endpoint response.
type MintResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope"`
	// SessionID and GrantID (opaque tokens only) are the OIDC session and grant the token was
	// issued through: what GET /api/users/{userId}/sessions and /grants list.
	SessionID string `json:"session_id,omitempty"`
	GrantID   string `json:"grant_id,omitempty"`
	// RefreshToken is issued when Scope includes offline_access, as Logto does.
	RefreshToken string `json:"refresh_token,omitempty"`
	// IDToken is issued when Scope includes openid, as Logto does.
	IDToken string `json:"id_token,omitempty"`
}

func devInputError(w http.ResponseWriter, reason string) {
	newError(http.StatusBadRequest, "dev.invalid_input", reason).write(w)
}

// decodeDevBody reads a dev API body into v; on failure it answers 400 and returns false.
func decodeDevBody(w http.ResponseWriter, r *http.Request, v any) bool {
	raw, ok := readJSONBody(w, r)
	if !ok {
		return false
	}
	if err := json.Unmarshal(raw, v); err != nil {
		devInputError(w, err.Error())
		return false
	}
	return true
}

// handleDevMintToken mints a user access token as if the user had signed in to ClientID.
func (c *Core) handleDevMintToken(w http.ResponseWriter, r *http.Request) {
	var req MintRequest
	if !decodeDevBody(w, r, &req) {
		return
	}
	if req.ClientID == "" {
		req.ClientID = DemoAppID
	}
	if req.Format == "" {
		req.Format = "opaque"
	}
	expiresIn := int64(3600)
	if req.ExpiresIn != nil {
		expiresIn = *req.ExpiresIn
	}
	if req.Format == "client_credentials" {
		req.UserID = DemoUserID // only to pass the checks below: the token has no user
	}
	switch {
	case req.UserID == "":
		devInputError(w, "userId is required")
		return
	case req.Format != "opaque" && req.Format != "jwt" && req.Format != "client_credentials":
		devInputError(w, `format must be "opaque", "jwt" or "client_credentials"`)
		return
	case req.Format == "jwt" && req.Audience == "":
		devInputError(w, "a jwt needs an audience (the API resource indicator)")
		return
	}

	c.mu.Lock()
	u, app := c.users[req.UserID], c.apps[req.ClientID]
	c.mu.Unlock()
	if u == nil {
		writeError(w, http.StatusNotFound, "entity.not_found")
		return
	}
	if app == nil {
		devInputError(w, "unknown clientId "+req.ClientID)
		return
	}

	ttl := time.Duration(expiresIn) * time.Second
	var token string
	if req.Format == "jwt" {
		var err error
		if token, err = c.signAccessToken(r, req.UserID, req.ClientID, req.Scope, req.Audience, ttl); err != nil {
			writeInternalError(w)
			return
		}
	}
	resp := MintResponse{AccessToken: token, TokenType: "Bearer", ExpiresIn: expiresIn, Scope: req.Scope}
	if req.Format == "client_credentials" { // the client's own token: no user, no session
		now := time.Now()
		resp.AccessToken = opaqueToken()
		c.mu.Lock()
		c.tokens[resp.AccessToken] = &tokenRecord{kind: kindClientCredentials, clientID: req.ClientID, scope: req.Scope,
			audience: req.Audience, issuedAt: now, expires: now.Add(ttl)}
		c.mu.Unlock()
	}
	if req.Format == "opaque" {
		now := time.Now()
		token = opaqueToken()
		c.mu.Lock()
		session, auth, ok := c.signIn(req.UserID, req.ClientID, req.SessionID, req.Scope, now)
		if ok {
			rec := &tokenRecord{subject: req.UserID, clientID: req.ClientID, scope: req.Scope,
				audience: req.Audience, issuedAt: now, expires: now.Add(ttl),
				grantID: auth.grantID, sessionUID: session.uid,
				expiresWithSession: !slices.Contains(strings.Fields(req.Scope), "offline_access")}
			if app.includesSid() {
				rec.sid = auth.sid
			}
			if req.NoClient { // such a token belongs to no client's grant or session either
				*rec = tokenRecord{subject: rec.subject, scope: rec.scope, audience: rec.audience,
					issuedAt: rec.issuedAt, expires: rec.expires}
			}
			c.tokens[token] = rec
		}
		c.mu.Unlock()
		if !ok {
			devInputError(w, "sessionId is not a live session of the user")
			return
		}
		resp.AccessToken, resp.SessionID, resp.GrantID = token, session.uid, auth.grantID
	}
	if req.Format != "client_credentials" && slices.Contains(strings.Fields(req.Scope), "offline_access") {
		resp.RefreshToken = c.issueRefreshToken(req.UserID, req.ClientID, req.Scope)
	}
	if req.Format != "client_credentials" && slices.Contains(strings.Fields(req.Scope), "openid") {
		var err error
		if resp.IDToken, err = c.issueIDToken(r, req.UserID, req.ClientID); err != nil {
			writeInternalError(w)
			return
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

// handleDevRevokeToken revokes an opaque token: introspection then says inactive. Unknown tokens
// and JWTs (which Logto cannot revoke either) are accepted silently, as RFC 7009 does.
func (c *Core) handleDevRevokeToken(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Token string `json:"token"`
	}
	if !decodeDevBody(w, r, &req) {
		return
	}
	c.mu.Lock()
	if rec := c.tokens[req.Token]; rec != nil {
		rec.revoked = true
	}
	c.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (c *Core) handleDevStats(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, c.Stats())
}

func (c *Core) handleDevResetStats(w http.ResponseWriter, r *http.Request) {
	c.ResetStats()
	w.WriteHeader(http.StatusNoContent)
}

// handleDevIntrospectionDelay sets the artificial introspection latency: {"ms": 200}, 0 = off.
func (c *Core) handleDevIntrospectionDelay(w http.ResponseWriter, r *http.Request) {
	var req struct {
		MS *int64 `json:"ms"`
	}
	if !decodeDevBody(w, r, &req) {
		return
	}
	if req.MS == nil || *req.MS < 0 {
		devInputError(w, "ms must be a number >= 0")
		return
	}
	c.SetIntrospectionDelay(time.Duration(*req.MS) * time.Millisecond)
	w.WriteHeader(http.StatusNoContent)
}

func (c *Core) handleDevRotateKey(w http.ResponseWriter, r *http.Request) {
	kid, err := c.RotateKey()
	if err != nil {
		writeInternalError(w)
		return
	}
	writeJSON(w, http.StatusOK, ordered{{"kid", kid}})
}
