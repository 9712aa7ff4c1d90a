// Package profile builds the account profile the Account API returns, from the core's user
// record: first filtered by the token's scopes, then by the account-center fields (reference §4).
package profile

import (
	"encoding/json"

	"github.com/accountedge/caddy-account-api/accountapi/accountcenter"
	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
)

// Field is a JSON member that is either present (even when its value is null) or absent.
type Field[T any] struct {
	set   bool
	value T
}

// Some returns a present field.
func Some[T any](v T) Field[T] { return Field[T]{set: true, value: v} }

// IsZero makes absent fields disappear under the omitzero tag.
func (f Field[T]) IsZero() bool { return !f.set }

// MarshalJSON encodes the value.
func (f Field[T]) MarshalJSON() ([]byte, error) { return json.Marshal(f.value) }

// View is GET /api/my-account's body, members in Logto's order.
type View struct {
	ID                            string                            `json:"id"`
	Username                      Field[*string]                    `json:"username,omitzero"`
	PrimaryEmail                  Field[*string]                    `json:"primaryEmail,omitzero"`
	PrimaryPhone                  Field[*string]                    `json:"primaryPhone,omitzero"`
	Name                          Field[*string]                    `json:"name,omitzero"`
	Avatar                        Field[*string]                    `json:"avatar,omitzero"`
	CustomData                    Field[json.RawMessage]            `json:"customData,omitzero"`
	Identities                    Field[map[string]json.RawMessage] `json:"identities,omitzero"`
	LastSignInAt                  Field[*int64]                     `json:"lastSignInAt,omitzero"`
	CreatedAt                     Field[int64]                      `json:"createdAt,omitzero"`
	UpdatedAt                     Field[int64]                      `json:"updatedAt,omitzero"`
	Profile                       Field[json.RawMessage]            `json:"profile,omitzero"`
	ApplicationID                 Field[*string]                    `json:"applicationId,omitzero"`
	CimdClientID                  Field[*string]                    `json:"cimdClientId,omitzero"`
	IsSuspended                   Field[bool]                       `json:"isSuspended,omitzero"`
	HasPassword                   Field[bool]                       `json:"hasPassword,omitzero"`
	HasSecurityVerificationMethod bool                              `json:"hasSecurityVerificationMethod"`
}

// Scopes tells which scopes the token carries.
type Scopes interface{ HasScope(string) bool }

// Build returns the profile of u as the holder of a token with scopes may see it under settings.
func Build(u *identitycore.User, scopes Scopes, settings accountcenter.Settings) View {
	v := View{ID: u.ID, HasSecurityVerificationMethod: u.HasSecurityVerificationMethod()}
	// show reports whether a member passes both filters: its scope (step 1) and its
	// account-center field (step 2; "" for members the account center does not gate).
	show := func(scope, field string) bool {
		return scopes.HasScope(scope) && (field == "" || settings.CanRead(field))
	}
	if show("profile", "username") {
		v.Username = Some(u.Username)
	}
	if show("email", "email") {
		v.PrimaryEmail = Some(u.PrimaryEmail)
	}
	if show("phone", "phone") {
		v.PrimaryPhone = Some(u.PrimaryPhone)
	}
	if show("profile", "name") {
		v.Name = Some(u.Name)
	}
	if show("profile", "avatar") {
		v.Avatar = Some(u.Avatar)
	}
	if show("custom_data", "customData") {
		v.CustomData = Some(orEmptyObject(u.CustomData))
	}
	if show("identities", "social") {
		identities := u.Identities
		if identities == nil {
			identities = map[string]json.RawMessage{}
		}
		v.Identities = Some(identities)
	}
	if show("profile", "profile") {
		v.Profile = Some(Claims(u.Profile, scopes.HasScope("address")))
	}
	if show("profile", "password") {
		v.HasPassword = Some(u.HasPassword)
	}
	if scopes.HasScope("profile") {
		v.LastSignInAt = Some(u.LastSignInAt)
		v.CreatedAt = Some(u.CreatedAt)
		v.UpdatedAt = Some(u.UpdatedAt)
		v.ApplicationID = Some(u.ApplicationID)
		v.CimdClientID = Some(u.CimdClientID)
		v.IsSuspended = Some(u.IsSuspended)
	}
	return v
}

// Claims returns the user's OIDC profile claims, without the address unless withAddress.
func Claims(raw json.RawMessage, withAddress bool) json.RawMessage {
	raw = orEmptyObject(raw)
	if withAddress {
		return raw
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return json.RawMessage("{}")
	}
	if _, ok := m["address"]; !ok {
		return raw // untouched: keeps the core's member order
	}
	delete(m, "address")
	out, _ := json.Marshal(m)
	return out
}

func orEmptyObject(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || string(raw) == "null" {
		return json.RawMessage("{}")
	}
	return raw
}
