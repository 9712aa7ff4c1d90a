package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/accountedge/caddy-account-api/accountapi/apierror"
	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
	"github.com/accountedge/caddy-account-api/accountapi/verification"
)

// Social verification through the Management API (reference §7.4). Logto's own route
// exchanges the provider's answer (connectorData) for the social user at /social/verify and
// keeps the result in the record. The Management API has no such exchange on its own: its only
// exchange, POST /api/users/{id}/identities, also links. Authorization codes are single-use,
// so the gateway cannot exchange once to verify and again to link. It therefore keeps
// connectorData in the record at /social/verify and exchanges it once, at link time, through
// that endpoint; the social identity it gets is kept in the record, so a second use of the same
// record (a retry, a PUT) links it again with PUT /api/users/{id}/identities/{target} without a
// second exchange. What changes on the wire: /social/verify cannot refuse connectorData the
// provider would reject (Logto: 400 connector.*); the link route answers that instead.

// connector resolves a connector for social linking: 422 session.invalid_connector_id when the
// core does not know it, 400 connector.unexpected_type when it is not a social connector.
// An id that no connector can have is refused the same way without asking the core.
func (h *Handler) connector(c *call, id string) (*identitycore.Connector, error) {
	unknown := apierror.Interpolated(http.StatusUnprocessableEntity, "session.invalid_connector_id",
		map[string]string{"connectorId": id})
	if !identitycore.ConnectorID.Valid(id) {
		return nil, unknown
	}
	conn, err := h.cfg.Core.Connector(c.r.Context(), id)
	if ce, ok := errors.AsType[*identitycore.Error](err); ok && ce.Status == http.StatusNotFound {
		return nil, unknown
	}
	if err != nil {
		return nil, coreError(err)
	}
	if conn.Type != "Social" {
		return nil, apierror.ConnectorUnexpected
	}
	return conn, nil
}

// socialStart is a validated POST /api/verifications/social body.
type socialStart struct {
	connectorID, state, redirectURI string
	scope                           *string // nil when absent or null
}

// decodeSocialStart validates {connectorId, state, redirectUri, scope?}.
func decodeSocialStart(obj map[string]json.RawMessage) (socialStart, error) {
	f := fields{obj: obj}
	in := socialStart{connectorID: f.requiredStr("connectorId"), state: f.requiredStr("state"), redirectURI: f.requiredStr("redirectUri")}
	in.scope, _ = f.str("scope", false)
	return in, f.err()
}

// startSocial is POST /api/verifications/social: a record for a social sign-in and the
// provider's authorization URI (reference §5.2 V4). No first-party check, as Logto.
func (h *Handler) startSocial(c *call) error {
	in := input[socialStart](c)
	connectorID, state, redirectURI, scope := in.connectorID, in.state, in.redirectURI, in.scope
	if state == "" || redirectURI == "" {
		return apierror.InsufficientInfo
	}
	conn, err := h.connector(c, connectorID)
	if err != nil {
		return err
	}
	ctx := c.r.Context()
	uri, err := h.cfg.Core.AuthorizationURI(ctx, conn.ID, state, redirectURI)
	if err != nil {
		return coreError(err)
	}
	if scope != nil {
		uri = withScope(uri, *scope)
	}
	rec, err := h.cfg.Verifications.Create(ctx, verification.Record{
		UserID: c.principal.Subject, Type: verification.Social, ConnectorID: conn.ID, Target: conn.Target,
	})
	if err != nil {
		return storeError(err)
	}
	return writeJSON(c.w, http.StatusCreated, map[string]string{
		"verificationRecordId": rec.ID,
		"authorizationUri":     uri,
		"expiresAt":            rec.ExpiresAt.UTC().Format(isoMillis),
	})
}

// withScope sets the OAuth 2.0 scope parameter of an authorization URI (Logto forwards the
// requested scope to the connector; the Management API's authorization-uri takes none), keeping
// the other parameters as the connector wrote them.
func withScope(uri, scope string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return uri
	}
	param := "scope=" + url.QueryEscape(scope)
	var parts []string
	replaced := false
	for _, p := range strings.Split(u.RawQuery, "&") {
		switch {
		case p == "":
		case strings.HasPrefix(p, "scope="):
			if !replaced {
				parts, replaced = append(parts, param), true
			}
		default:
			parts = append(parts, p)
		}
	}
	if !replaced {
		parts = append(parts, param)
	}
	u.RawQuery = strings.Join(parts, "&")
	return u.String()
}

// socialAnswer is a validated POST /api/verifications/social/verify body.
type socialAnswer struct {
	recordID      string          // verificationRecordId
	connectorData json.RawMessage // the provider's answer, as sent
}

// decodeSocialAnswer validates {verificationRecordId, connectorData: object}.
func decodeSocialAnswer(obj map[string]json.RawMessage) (socialAnswer, error) {
	f := fields{obj: obj}
	in := socialAnswer{recordID: f.requiredStr("verificationRecordId")}
	if !f.has("connectorData") {
		f.issues = append(f.issues, apierror.Required("object", "connectorData"))
	}
	if data, _ := f.object("connectorData"); data != nil {
		in.connectorData = obj["connectorData"]
	}
	return in, f.err()
}

// verifySocial is POST /api/verifications/social/verify: keep the provider's answer in the
// record for the link (see above). The record must be the caller's own.
func (h *Handler) verifySocial(c *call) error {
	in := input[socialAnswer](c)
	id := in.recordID
	ctx := c.r.Context()
	rec, err := h.cfg.Verifications.Get(ctx, id)
	if err != nil {
		return storeError(err)
	}
	if rec.Type != verification.Social || rec.UserID != c.principal.Subject {
		return apierror.RecordNotFound
	}
	rec.ConnectorData = in.connectorData
	rec.SocialUserID, rec.SocialDetails = "", nil // a new answer: any earlier exchange is stale
	rec.Verified = len(rec.ConnectorData) > 0
	if err := h.cfg.Verifications.Update(ctx, rec); err != nil {
		return storeError(err)
	}
	return writeJSON(c.w, http.StatusOK, map[string]string{"verificationRecordId": rec.ID})
}
