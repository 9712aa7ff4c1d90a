package api

import (
	"errors"
	"net/http"

	"github.com/accountedge/caddy-account-api/accountapi/apierror"
	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
	"github.com/accountedge/caddy-account-api/accountapi/verification"
)

// isoMillis is JavaScript's Date.toISOString layout, which Logto uses for expiresAt.
const isoMillis = "2006-01-02T15:04:05.000Z"

// verifyPassword is POST /api/verifications/password: prove identity with the current password
// and get a step-up record (reference §5.2 V1).
func (h *Handler) verifyPassword(c *call) error {
	password, ctx := input[string](c), c.r.Context()
	userID := c.principal.Subject
	// Wrong passwords lock this user out from this client address for a while (429).
	p := h.cfg.Protections
	if d := p.Limiter.Check(ctx, "password-failures", h.userAndIP(c), p.Limits.PasswordFailures); !d.Allowed {
		return limited(c, d, apierror.TooManyAttempts)
	}
	if err := h.cfg.Core.VerifyPassword(ctx, userID, password); err != nil {
		if errors.Is(err, identitycore.ErrInvalidCredentials) {
			p.Limiter.Fail(ctx, "password-failures", h.userAndIP(c), p.Limits.PasswordFailures)
		}
		return coreError(err)
	}
	// Logto refuses a suspended user only once the password is right.
	u, err := h.cfg.Core.User(ctx, userID, false)
	if err != nil {
		return coreError(err)
	}
	if u.IsSuspended {
		return apierror.UserSuspended
	}
	rec, err := h.cfg.Verifications.Create(ctx, verification.Record{
		UserID:     userID,
		Type:       verification.Password,
		Verified:   true,
		Identifier: &verification.Identifier{Type: "userId", Value: userID},
	})
	if err != nil {
		return apierror.StoreUnavailable.WithCause(err) // refuse cleanly rather than hand out a record that may not exist
	}
	return writeJSON(c.w, http.StatusCreated, map[string]string{
		"verificationRecordId": rec.ID,
		"expiresAt":            rec.ExpiresAt.UTC().Format(isoMillis),
	})
}
