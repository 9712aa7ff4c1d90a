package devcore

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
)

// OIDC sessions and grants, as oidc-provider keeps them inside Logto: a sign-in creates a
// session; each application signed in through it has an authorization (its sid and its grant);
// tokens belong to a grant and to the session they were issued through. Minted tokens (POST
// /dev/tokens) go through all of this, so revoking a session or a grant kills them as it would
// at Logto.

// Lifetimes of Logto's OIDC models.
const (
	sessionTTL = 14 * 24 * time.Hour
	grantTTL   = 14 * 24 * time.Hour
)

// nanoidAlphabet is oidc-provider's id alphabet (session uids, grant ids, jti).
const nanoidAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"

func nanoid() string { return randomString(nanoidAlphabet, 21) }

// oidcSession is one OIDC session.
type oidcSession struct {
	uid, jti, accountID string
	clientID            string // the application the sign-in started from
	loginTs, iat        int64  // seconds
	expires             time.Time
	authorizations      map[string]*sessionAuthorization // by client id
}

// sessionAuthorization is one application signed in through a session.
type sessionAuthorization struct {
	sid, grantID string
}

// oidcGrant is what a user granted one application.
type oidcGrant struct {
	id, clientID, accountID, scope string
	iat                            int64
	expires                        time.Time
}

func (s *oidcSession) body() ordered {
	auths := ordered{}
	for _, client := range slices.Sorted(maps.Keys(s.authorizations)) {
		a := s.authorizations[client]
		auths = append(auths, member{client, ordered{{"sid", a.sid}, {"grantId", a.grantID}, {"persistsLogout", false}}})
	}
	return ordered{
		{"payload", ordered{
			{"exp", s.expires.Unix()}, {"iat", s.iat}, {"jti", s.jti}, {"uid", s.uid}, {"kind", "Session"},
			{"loginTs", s.loginTs}, {"accountId", s.accountID}, {"authorizations", auths},
		}},
		// The sign-in that made the session: a password verification of the user.
		{"lastSubmission", ordered{
			{"interactionEvent", "SignIn"}, {"userId", s.accountID},
			{"verificationRecords", []ordered{{
				{"id", s.jti[:12]}, {"type", "Password"},
				{"identifier", ordered{{"type", "userId"}, {"value", s.accountID}}}, {"verified", true},
			}}},
		}},
		{"clientId", s.clientID},
		{"accountId", s.accountID},
		{"expiresAt", s.expires.UnixMilli()},
	}
}

func (c *Core) grantBody(g *oidcGrant) ordered {
	name := g.clientID
	if app := c.apps[g.clientID]; app != nil {
		name = app.Name
	}
	return ordered{
		{"id", g.id},
		{"payload", ordered{
			{"exp", g.expires.Unix()}, {"iat", g.iat}, {"jti", g.id}, {"kind", "Grant"},
			{"clientId", g.clientID}, {"accountId", g.accountID},
			{"openid", ordered{{"scope", g.scope}}},
		}},
		{"expiresAt", g.expires.UnixMilli()},
		{"application", ordered{{"id", g.clientID}, {"name", name}}},
	}
}

// signIn returns the session a minted token is issued through: sessionUID when given (it must be
// the user's and alive), else a new one. It makes sure clientID has an authorization (and a live
// grant) in it. The caller holds c.mu.
func (c *Core) signIn(userID, clientID, sessionUID, scope string, now time.Time) (*oidcSession, *sessionAuthorization, bool) {
	s := c.sessions[sessionUID]
	switch {
	case sessionUID == "":
		s = &oidcSession{uid: nanoid(), jti: nanoid(), accountID: userID, clientID: clientID,
			loginTs: now.Unix(), iat: now.Unix(), expires: now.Add(sessionTTL),
			authorizations: map[string]*sessionAuthorization{}}
		c.sessions[s.uid] = s
	case s == nil || s.accountID != userID || !now.Before(s.expires):
		return nil, nil, false
	}
	a := s.authorizations[clientID]
	if a == nil || c.grants[a.grantID] == nil {
		g := &oidcGrant{id: nanoid(), clientID: clientID, accountID: userID, scope: scope,
			iat: now.Unix(), expires: now.Add(grantTTL)}
		c.grants[g.id] = g
		a = &sessionAuthorization{sid: nanoid(), grantID: g.id}
		s.authorizations[clientID] = a
	}
	return s, a, true
}

// tokenActive is oidc-provider's verdict on a stored access token: not revoked nor expired, its
// grant alive, and, for a token that expires with its session (one issued without
// offline_access), the session alive with the token's grant still authorised in it. The caller
// holds c.mu.
func (c *Core) tokenActive(t *tokenRecord, now time.Time) bool {
	if t.revoked || !now.Before(t.expires) {
		return false
	}
	if t.grantID == "" {
		return true
	}
	if g := c.grants[t.grantID]; g == nil || !now.Before(g.expires) {
		return false
	}
	if !t.expiresWithSession {
		return true
	}
	s := c.sessions[t.sessionUID]
	if s == nil || s.accountID != t.subject || !now.Before(s.expires) {
		return false
	}
	a := s.authorizations[t.clientID]
	return a != nil && a.grantID == t.grantID
}

// includesSid is oidc-provider's client.includeSid(): only a client with back-channel logout
// that requires the session id gets sid in its tokens, hence in introspection answers.
func (a *application) includesSid() bool {
	var m struct {
		BackchannelLogoutURI             string `json:"backchannelLogoutUri"`
		BackchannelLogoutSessionRequired bool   `json:"backchannelLogoutSessionRequired"`
	}
	return json.Unmarshal(a.OIDCClientMetadata, &m) == nil && m.BackchannelLogoutURI != "" && m.BackchannelLogoutSessionRequired
}

// revokeGrant destroys a grant and, with it, every token issued under it. The caller holds c.mu.
func (c *Core) revokeGrant(id string) {
	delete(c.grants, id)
	for _, t := range c.tokens {
		if t.grantID == id {
			t.revoked = true
		}
	}
}

// sessionGrantRevokeTargets is Logto's SessionGrantRevokeTarget.
var sessionGrantRevokeTargets = []string{"all", "firstParty"}

// handleListSessions is GET /api/users/{userId}/sessions: the user's live sessions (an unknown
// user simply has none, as in Logto).
func (c *Core) handleListSessions(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	var live []*oidcSession
	for _, s := range c.sessions {
		if s.accountID == r.PathValue("userId") && now.Before(s.expires) {
			live = append(live, s)
		}
	}
	slices.SortFunc(live, func(a, b *oidcSession) int { return strings.Compare(a.uid, b.uid) })
	bodies := make([]ordered, len(live))
	for i, s := range live {
		bodies[i] = s.body()
	}
	writeJSON(w, http.StatusOK, ordered{{"sessions", bodies}})
}

// handleDeleteSession is DELETE /api/users/{userId}/sessions/{sessionId}?revokeGrantsTarget=.
func (c *Core) handleDeleteSession(w http.ResponseWriter, r *http.Request) {
	target, ok := queryEnum(w, r, "revokeGrantsTarget", sessionGrantRevokeTargets)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sessions[r.PathValue("sessionId")]
	if s == nil || !time.Now().Before(s.expires) {
		writeError(w, http.StatusNotFound, "oidc.session_not_found")
		return
	}
	if s.accountID != r.PathValue("userId") {
		writeError(w, http.StatusNotFound, "oidc.invalid_session_account_id")
		return
	}
	for client, a := range s.authorizations {
		app := c.apps[client]
		// firstParty: only applications found and not third-party (Logto looks them up by id).
		if target == "all" || (target == "firstParty" && app != nil && !app.IsThirdParty) {
			c.revokeGrant(a.grantID)
		}
	}
	delete(c.sessions, s.uid)
	w.WriteHeader(http.StatusNoContent)
}

// handleListGrants is GET /api/users/{userId}/grants?appType=firstParty|thirdParty.
func (c *Core) handleListGrants(w http.ResponseWriter, r *http.Request) {
	appType, ok := queryEnum(w, r, "appType", []string{"firstParty", "thirdParty"})
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	var live []*oidcGrant
	for _, g := range c.grants {
		if g.accountID != r.PathValue("userId") || !now.Before(g.expires) {
			continue
		}
		app := c.apps[g.clientID]
		thirdParty := app == nil || app.IsThirdParty
		if (appType == "firstParty" && thirdParty) || (appType == "thirdParty" && !thirdParty) {
			continue
		}
		live = append(live, g)
	}
	slices.SortFunc(live, func(a, b *oidcGrant) int { return strings.Compare(a.id, b.id) })
	bodies := make([]ordered, len(live))
	for i, g := range live {
		bodies[i] = c.grantBody(g)
	}
	writeJSON(w, http.StatusOK, ordered{{"grants", bodies}})
}

// handleDeleteGrant is DELETE /api/users/{userId}/grants/{grantId}: revoke the grant and its
// tokens, and remove its authorization from the session that holds it. An expired grant is a
// no-op; another user's grant is not found.
func (c *Core) handleDeleteGrant(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.grants[r.PathValue("grantId")]
	if g == nil || g.accountID != r.PathValue("userId") {
		writeError(w, http.StatusNotFound, "oidc.invalid_grant")
		return
	}
	if time.Now().Before(g.expires) {
		c.revokeGrant(g.id)
		for _, s := range c.sessions {
			for client, a := range s.authorizations {
				if a.grantID == g.id && s.accountID == g.accountID {
					delete(s.authorizations, client)
				}
			}
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// queryEnum reads an optional enum query parameter as Logto's koaGuard does; on a bad value it
// answers 400 guard.invalid_input and returns false.
func queryEnum(w http.ResponseWriter, r *http.Request, key string, options []string) (string, bool) {
	values, present := r.URL.Query()[key]
	if !present {
		return "", true
	}
	if len(values) == 1 && slices.Contains(options, values[0]) {
		return values[0], true
	}
	g := &guard{}
	g.enumIssue(path{key}, options, strings.Join(values, ","))
	e := g.err()
	e.Message = "The request query is invalid."
	e.write(w)
	return "", false
}
