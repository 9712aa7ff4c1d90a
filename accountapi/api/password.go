package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/accountedge/caddy-account-api/accountapi/apierror"
	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
	"github.com/accountedge/caddy-account-api/accountapi/policy"
)

// decodePassword reads Logto's {password: string, min 1} body.
func decodePassword(obj map[string]json.RawMessage) (string, error) {
	f := fields{obj: obj}
	password, present := f.str("password", false)
	switch {
	case !present:
		f.issues = append(f.issues, apierror.Required("string", "password"))
	case password != nil && *password == "":
		f.issues = append(f.issues, apierror.TooSmall(1, "password"))
	}
	if err := f.err(); err != nil {
		return "", err
	}
	return *password, nil
}

// updatePassword is POST /api/my-account/password, after the checks of its row (Logto NOW's
// order, reference §3.3 N4: first-party client, step-up when the user can already prove who
// they are, the password field): the password policy, the same-password check, then the write.
func (h *Handler) updatePassword(c *call) error {
	password, u, ctx := input[string](c), c.user, c.r.Context()
	sie, err := h.signIn.Get(ctx)
	if err != nil {
		return coreError(err)
	}
	info := policy.UserInfo{Name: deref(u.Name), Username: deref(u.Username), Email: deref(u.PrimaryEmail), Phone: deref(u.PrimaryPhone)}
	if err := policy.CheckPassword(ctx, password, sie.PasswordPolicy, info, h.cfg.Protections.Pwned); err != nil {
		return err
	}
	// The Management API does not compare passwords: asking it to verify the new one tells.
	if u.HasPassword {
		switch err := h.cfg.Core.VerifyPassword(ctx, u.ID, password); {
		case err == nil:
			return apierror.SamePassword
		case !errors.Is(err, identitycore.ErrInvalidCredentials):
			return coreError(err)
		}
	}
	if err := h.cfg.Core.UpdatePassword(ctx, u.ID, password); err != nil {
		return coreError(err)
	}
	h.cfg.UserChanged(ctx, u.ID, true)
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
