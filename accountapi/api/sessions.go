package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"

	"github.com/accountedge/caddy-account-api/accountapi/accountcenter"
	"github.com/accountedge/caddy-account-api/accountapi/apierror"
	"github.com/accountedge/caddy-account-api/accountapi/auth"
	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
)

// sessionsScope is the scope of Logto's sessions and grants routes.
const sessionsScope = "urn:logto:scope:sessions"

// Logto's query enums of the sessions and grants routes.
var (
	revokeGrantsTargets = []string{"all", "firstParty"}
	appTypes            = []string{"firstParty", "thirdParty"}
)

// queryEnum reads an optional query parameter that must be one of options, as Logto's koaGuard
// does before any handler check: "" when absent, 400 guard.invalid_input when it is anything
// else (an empty value or a repeated parameter included).
func queryEnum(query url.Values, key string, options []string) (string, error) {
	values, present := query[key]
	switch {
	case !present:
		return "", nil
	case len(values) > 1: // koa parses a repeated parameter as an array
		return "", apierror.InvalidQuery(apierror.NotAnEnumValue(options, "array", key))
	}
	for _, o := range options {
		if values[0] == o {
			return o, nil
		}
	}
	return "", apierror.InvalidQuery(apierror.InvalidEnum(options, values[0], key))
}

// enumQuery is the guard of a route whose only input is an optional enum query parameter; the
// route reads the value (or "") with input[string].
func enumQuery(key string, options []string) guard {
	return func(_ *Handler, c *call) error {
		v, err := queryEnum(c.r.URL.Query(), key, options)
		if err != nil {
			return err
		}
		c.input = v
		return nil
	}
}

// sessionChecks are the checks of the sessions and grants routes, in Logto's order (reference
// §3.3 N27-N30): step-up, the session field (read or edit), the sessions scope (401), and for the
// writes the first-party client.
func sessionChecks(control accountcenter.Control) []check {
	checks := []check{stepUp(), field(control, "session"), scope(sessionsScope, 401)}
	if control == edit {
		checks = append(checks, firstParty())
	}
	return checks
}

// listSessions is GET /api/my-account/sessions: the user's sessions, each marked isCurrent when
// it is the one the caller's token belongs to.
func (h *Handler) listSessions(c *call) error {
	sessions, err := h.cfg.Core.Sessions(c.r.Context(), c.principal.Subject)
	if err != nil {
		return coreError(err)
	}
	out := make([]json.RawMessage, 0, len(sessions))
	for i := range sessions {
		s, err := withMember(sessions[i].Raw, "isCurrent", isCurrent(c.principal, &sessions[i]))
		if err != nil {
			return apierror.CoreBadResponse.WithCause(err)
		}
		out = append(out, s)
	}
	return writeJSON(c.w, http.StatusOK, map[string]any{"sessions": out})
}

// isCurrent tells whether token p was issued through session s. Logto compares the
// token's session uid, which introspection does not reveal; the token's sid does, when the core
// gives it: it is the sid of the token's client in the session's authorizations. A token
// without a sid matches no session (as Logto's own list after the session was revoked).
func isCurrent(p auth.Principal, s *identitycore.Session) bool {
	if p.SessionID == "" {
		return false
	}
	a, ok := s.Payload.Authorizations[p.ClientID]
	return ok && a.SID == p.SessionID
}

// withMember returns the JSON object raw with one more member.
func withMember(raw json.RawMessage, key string, value any) (json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return nil, errors.New("a session is not a JSON object")
	}
	v, err := json.Marshal(value)
	if err != nil {
		return nil, err
	}
	obj[key] = v
	return json.Marshal(obj)
}

// deleteSession is DELETE /api/my-account/sessions/{sessionId}, after its checks: the session
// must be the caller's (400, Logto's quirk), then it ends, with the grants of its applications
// when revokeGrantsTarget says so.
func (h *Handler) deleteSession(c *call) error {
	id := c.r.PathValue("sessionId")
	if !identitycore.SessionID.Valid(id) { // no session has it: the core is not asked
		return apierror.SessionNotFound
	}
	ctx := c.r.Context()
	err := h.cfg.Core.DeleteSession(ctx, c.principal.Subject, id, input[string](c))
	if ce, ok := errors.AsType[*identitycore.Error](err); ok && ce.Status == http.StatusNotFound {
		if ce.Code == "oidc.invalid_session_account_id" {
			return apierror.SessionAccountMismatch
		}
		return apierror.SessionNotFound
	}
	if err != nil {
		return coreError(err)
	}
	// Tokens bound to the session (or to the revoked grants) are dead at the core: cached
	// answers about them must go now, on every instance.
	h.cfg.UserChanged(ctx, c.principal.Subject, true)
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}

// listGrants is GET /api/my-account/grants: the user's application grants, as the core lists
// them.
func (h *Handler) listGrants(c *call) error {
	grants, err := h.cfg.Core.Grants(c.r.Context(), c.principal.Subject, input[string](c))
	if err != nil {
		return coreError(err)
	}
	if grants == nil {
		grants = []json.RawMessage{}
	}
	return writeJSON(c.w, http.StatusOK, map[string]any{"grants": grants})
}

// deleteGrant is DELETE /api/my-account/grants/{grantId}, after its checks: the grant must be
// the caller's (404 oidc.invalid_grant), then it and its token chain are revoked.
func (h *Handler) deleteGrant(c *call) error {
	id := c.r.PathValue("grantId")
	if !identitycore.GrantID.Valid(id) { // no grant has it: the core is not asked
		return apierror.GrantNotFound
	}
	ctx := c.r.Context()
	if err := h.cfg.Core.DeleteGrant(ctx, c.principal.Subject, id); err != nil {
		return coreError(err)
	}
	h.cfg.UserChanged(ctx, c.principal.Subject, true)
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}
