package api

import (
	"encoding/json"
	"net/http"

	"go.uber.org/zap"

	"github.com/accountedge/caddy-account-api/accountapi/apierror"
	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
	"github.com/accountedge/caddy-account-api/accountapi/verification"
)

func (h *Handler) linkIdentity(c *call) error    { return h.putIdentity(c, false) }
func (h *Handler) replaceIdentity(c *call) error { return h.putIdentity(c, true) }

// decodeNewIdentifierRecord reads {newIdentifierVerificationRecordId: string}.
func decodeNewIdentifierRecord(obj map[string]json.RawMessage) (string, error) {
	f := fields{obj: obj}
	recordID := f.requiredStr("newIdentifierVerificationRecordId")
	return recordID, f.err()
}

// putIdentity is POST (replace false) and PUT (replace true) /api/my-account/identities, after
// the checks of their rows (Logto NOW's order, reference §3.3 N13, N14: field, scope (401),
// first-party client, conditional step-up): the social record (verified, the caller's), the
// connector, then the identity already linked (POST only: 400) and the link, where the core
// refuses a social account another user has (422).
func (h *Handler) putIdentity(c *call, replace bool) error {
	recordID, u, ctx := input[string](c), c.user, c.r.Context()
	rec, err := h.cfg.Verifications.Redeem(ctx, recordID, u.ID, verification.Social)
	if err != nil {
		return storeError(err)
	}
	conn, err := h.connector(c, rec.ConnectorID)
	if err != nil {
		return err
	}
	if _, linked := u.Identities[conn.Target]; linked && !replace {
		return apierror.IdentityAlreadyInUse
	}
	if rec.SocialUserID != "" {
		err = h.cfg.Core.PutIdentity(ctx, u.ID, conn.Target, identitycore.Identity{UserID: rec.SocialUserID, Details: rec.SocialDetails})
	} else {
		var ids map[string]identitycore.Identity
		if ids, err = h.cfg.Core.LinkSocialIdentity(ctx, u.ID, conn.ID, rec.ConnectorData); err == nil {
			if id, ok := ids[conn.Target]; ok {
				rec.SocialUserID, rec.SocialDetails = id.UserID, id.Details
				if uerr := h.cfg.Verifications.Update(ctx, rec); uerr != nil {
					// The link is done; only a later reuse of the record would need this.
					h.cfg.Logger.Warn("could not keep the social identity in its record", zap.Error(uerr))
				}
			}
		}
	}
	if err != nil {
		return coreError(err)
	}
	h.cfg.UserChanged(ctx, u.ID, true)
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}

// unlinkIdentity is DELETE /api/my-account/identities/{target}, after the checks of its row
// (reference §3.3 N15: field, scope (400), first-party client, conditional step-up): the
// identity exists (404), and the user keeps an identifier.
func (h *Handler) unlinkIdentity(c *call) error {
	ctx := c.r.Context()
	target := c.r.PathValue("target")
	if _, linked := c.user.Identities[target]; !linked || !identitycore.IdentityTarget.Valid(target) {
		return apierror.IdentityNotExist
	}
	// The identifier rule reads then writes: under the user's lock, on a fresh read.
	u, unlock, err := h.lockedCaller(c)
	if err != nil {
		return err
	}
	defer unlock()
	if _, linked := u.Identities[target]; !linked {
		return apierror.IdentityNotExist
	}
	if err := keepsAnIdentifier(u, true); err != nil {
		return err
	}
	if err := h.cfg.Core.DeleteIdentity(ctx, u.ID, target); err != nil {
		return coreError(err)
	}
	h.cfg.UserChanged(ctx, u.ID, true)
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}
