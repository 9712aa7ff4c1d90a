package api

import (
	"encoding/json"
	"net/http"

	"github.com/accountedge/caddy-account-api/accountapi/apierror"
	"github.com/accountedge/caddy-account-api/accountapi/policy"
	"github.com/accountedge/caddy-account-api/accountapi/profile"
)

// getAccount is GET /api/my-account: the user's profile, filtered by scopes then by fields.
func (h *Handler) getAccount(c *call) error {
	u, err := h.cfg.Core.User(c.r.Context(), c.principal.Subject, false)
	if err != nil {
		return coreError(err)
	}
	return writeJSON(c.w, http.StatusOK, profile.Build(u, c.principal, c.settings))
}

// patchAccount is PATCH /api/my-account: name, avatar, username and customData, replace
// semantics, in Logto NOW's check order (reference §3.3).
func (h *Handler) patchAccount(c *call) error {
	obj, err := h.readObject(c)
	if err != nil {
		return err
	}
	f := fields{obj: obj}
	name, hasName := f.str("name", true)
	avatar, hasAvatar := f.str("avatar", true)
	username, hasUsername := f.str("username", true)
	customData, hasCustomData := f.object("customData")
	if avatar != nil {
		f.check(isURL(*avatar), "url", "Invalid url", "avatar")
	}
	if username != nil {
		f.check(usernamePattern.MatchString(*username), "regex", "Invalid", "username")
	}
	if err := f.err(); err != nil {
		return err
	}

	update := map[string]any{}
	for _, m := range []struct {
		present bool
		field   string
		key     string
		value   any
	}{
		{hasName, "name", "name", name},
		{hasAvatar, "avatar", "avatar", avatar},
		{hasUsername, "username", "username", username},
		{hasCustomData, "customData", "customData", customData},
	} {
		if !m.present {
			continue
		}
		if err := requireEditable(c, m.field); err != nil {
			return err
		}
		update[m.key] = m.value
	}
	if err := requireScope(c, "profile"); err != nil {
		return err
	}
	if hasCustomData {
		if err := requireScope(c, "custom_data"); err != nil {
			return err
		}
	}
	if err := h.requireFirstParty(c); err != nil {
		return err
	}
	ctx := c.r.Context()
	if hasUsername {
		if err := h.requireIdentityVerified(c); err != nil {
			return err
		}
		// A username change is sensitive: the token must still be live at the core.
		if _, err := h.cfg.Auth.Revalidate(ctx, c.r.Header.Get("Authorization")); err != nil {
			return err
		}
		if username == nil {
			u, err := h.cfg.Core.User(ctx, c.principal.Subject, true)
			if err != nil {
				return coreError(err)
			}
			remaining := u.IdentifierCount()
			if u.Username != nil && *u.Username != "" {
				remaining--
			}
			if remaining < 1 {
				return apierror.LastIdentifierRequired
			}
		} else {
			sie, err := h.signIn.Get(ctx)
			if err != nil {
				return coreError(err)
			}
			if err := policy.CheckUsername(*username, sie.UsernamePolicy); err != nil {
				return err
			}
		}
	}
	if len(update) == 0 {
		return apierror.EmptyUpdate
	}
	u, err := h.cfg.Core.UpdateUser(ctx, c.principal.Subject, update)
	if err != nil {
		return coreError(err)
	}
	h.cfg.UserChanged(ctx, c.principal.Subject, hasUsername)
	return writeJSON(c.w, http.StatusOK, profile.Build(u, c.principal, c.settings))
}

// profileClaims are the OIDC standard claims PATCH /api/my-account/profile accepts.
var profileClaims = []string{"familyName", "givenName", "middleName", "nickname", "preferredUsername",
	"profile", "website", "gender", "birthdate", "zoneinfo", "locale"}

// addressClaims are the members of the address claim.
var addressClaims = []string{"formatted", "streetAddress", "locality", "region", "postalCode", "country"}

// patchProfile is PATCH /api/my-account/profile: merge into the OIDC profile claims.
func (h *Handler) patchProfile(c *call) error {
	obj, err := h.readObject(c)
	if err != nil {
		return err
	}
	f := fields{obj: obj}
	update := map[string]any{}
	for _, k := range profileClaims {
		if v, ok := f.str(k, false); ok && v != nil {
			update[k] = *v
		}
	}
	addr, hasAddress := f.object("address")
	if hasAddress && addr != nil {
		af := fields{obj: addr}
		address := map[string]any{}
		for _, k := range addressClaims {
			if v, ok := af.str(k, false, "address"); ok && v != nil {
				address[k] = *v
			}
		}
		f.issues = append(f.issues, af.issues...)
		update["address"] = address
	}
	if err := f.err(); err != nil {
		return err
	}
	if err := requireEditable(c, "profile"); err != nil {
		return err
	}
	if err := requireScope(c, "profile"); err != nil {
		return err
	}
	if hasAddress {
		if err := requireScope(c, "address"); err != nil {
			return err
		}
	}
	if err := h.requireFirstParty(c); err != nil {
		return err
	}
	stored, err := h.cfg.Core.UpdateProfile(c.r.Context(), c.principal.Subject, update)
	if err != nil {
		return coreError(err)
	}
	h.cfg.UserChanged(c.r.Context(), c.principal.Subject, false)
	return writeJSON(c.w, http.StatusOK, json.RawMessage(profile.Claims(stored, c.principal.HasScope("address"))))
}
