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

// accountPatch is a validated PATCH /api/my-account body.
type accountPatch struct {
	// members are the members present, in the order Logto checks their fields; each member's
	// name is also its account-center field. A nil value stands for null.
	members     []member
	username    *string
	hasUsername bool
	customData  bool
}

type member struct {
	name  string
	value any
}

// decodeAccountPatch validates a PATCH /api/my-account body like Logto's guard: name and
// username strings or null, avatar a URL or null, customData an object; unknown members dropped.
func decodeAccountPatch(obj map[string]json.RawMessage) (accountPatch, error) {
	f := fields{obj: obj}
	var p accountPatch
	name, hasName := f.str("name", true)
	avatar, hasAvatar := f.str("avatar", true)
	p.username, p.hasUsername = f.str("username", true)
	customData, hasCustomData := f.object("customData")
	if avatar != nil {
		f.check(isURL(*avatar), "url", "Invalid url", "avatar")
	}
	if p.username != nil {
		f.check(usernamePattern.MatchString(*p.username), "regex", "Invalid", "username")
	}
	if err := f.err(); err != nil {
		return p, err
	}
	add := func(present bool, name string, value any) {
		if present {
			p.members = append(p.members, member{name, value})
		}
	}
	add(hasName, "name", name)
	add(hasAvatar, "avatar", avatar)
	add(p.hasUsername, "username", p.username)
	add(hasCustomData, "customData", customData)
	p.customData = hasCustomData
	return p, nil
}

// patchAccount is PATCH /api/my-account: name, avatar, username and customData, replace
// semantics, after the checks of its row (Logto NOW's order, reference §3.3 N2).
func (h *Handler) patchAccount(c *call) error {
	p := input[accountPatch](c)
	update := make(map[string]any, len(p.members))
	for _, m := range p.members {
		update[m.name] = m.value
	}
	ctx := c.r.Context()
	if p.hasUsername {
		if p.username == nil {
			u, unlock, err := h.lockedCaller(c)
			if err != nil {
				return err
			}
			defer unlock()
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
			if err := policy.CheckUsername(*p.username, sie.UsernamePolicy); err != nil {
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
	h.cfg.UserChanged(ctx, c.principal.Subject, p.hasUsername)
	return writeJSON(c.w, http.StatusOK, profile.Build(u, c.principal, c.settings))
}

// profileClaims are the OIDC standard claims PATCH /api/my-account/profile accepts.
var profileClaims = []string{"familyName", "givenName", "middleName", "nickname", "preferredUsername",
	"profile", "website", "gender", "birthdate", "zoneinfo", "locale"}

// addressClaims are the members of the address claim.
var addressClaims = []string{"formatted", "streetAddress", "locality", "region", "postalCode", "country"}

// decodeProfilePatch validates a PATCH /api/my-account/profile body: the OIDC profile claims
// as strings and an address object of strings; unknown members dropped.
func decodeProfilePatch(obj map[string]json.RawMessage) (update map[string]any, err error) {
	f := fields{obj: obj}
	update = map[string]any{}
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
	return update, f.err()
}

// patchProfile is PATCH /api/my-account/profile: merge into the OIDC profile claims (N3).
func (h *Handler) patchProfile(c *call) error {
	stored, err := h.cfg.Core.UpdateProfile(c.r.Context(), c.principal.Subject, input[map[string]any](c))
	if err != nil {
		return coreError(err)
	}
	h.cfg.UserChanged(c.r.Context(), c.principal.Subject, false)
	return writeJSON(c.w, http.StatusOK, json.RawMessage(profile.Claims(stored, c.principal.HasScope("address"))))
}
