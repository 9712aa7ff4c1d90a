// Package identitycore is the boundary between the Account API and the identity core behind it:
// the operations the handlers need, as one interface, and the types they exchange. The Logto
// implementation (Management API + OIDC) lives in the logto sub-package; another core can be
// added beside it without touching the handlers.
package identitycore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/accountedge/caddy-account-api/accountapi/accountcenter"
)

// Core is everything the Account API asks of the identity core.
type Core interface {
	// Introspect asks the core whether an opaque access token is active (RFC 7662).
	Introspect(ctx context.Context, token string) (Introspection, error)
	// User reads a user; withSSO also loads the enterprise SSO identities (for identifier counts).
	User(ctx context.Context, id string, withSSO bool) (*User, error)
	// UpdateUser writes the given top-level user fields (JSON replace semantics).
	UpdateUser(ctx context.Context, id string, fields map[string]any) (*User, error)
	// UpdateProfile merges profile into the user's OIDC profile claims and returns the result.
	UpdateProfile(ctx context.Context, id string, profile map[string]any) (json.RawMessage, error)
	// VerifyPassword checks a user's password; ErrInvalidCredentials when it does not match.
	VerifyPassword(ctx context.Context, id, password string) error
	// AccountCenter reads the account-center settings.
	AccountCenter(ctx context.Context) (accountcenter.Settings, error)
	// SignInExperience reads the policies the Account API enforces.
	SignInExperience(ctx context.Context) (*SignInExperience, error)
	// Application reads an OIDC client (for the first-party check).
	Application(ctx context.Context, id string) (*Application, error)

	// SendVerificationCode has the core send a one-time code to an email address or phone
	// number. The core keys codes by recipient: a new send replaces the previous live code.
	SendVerificationCode(ctx context.Context, to Identifier) error
	// CheckVerificationCode checks (and on success consumes) the live code of a recipient; a
	// refusal is an *Error with Logto's verification_code.* code.
	CheckVerificationCode(ctx context.Context, to Identifier, code string) error
	// UpdatePassword sets a user's password (no policy check: the caller enforces it).
	UpdatePassword(ctx context.Context, id, password string) error
	// Connector reads a connector by its id (not its factory id).
	Connector(ctx context.Context, id string) (*Connector, error)
	// AuthorizationURI asks a social connector where to send the user to sign in.
	AuthorizationURI(ctx context.Context, connectorID, state, redirectURI string) (string, error)
	// LinkSocialIdentity exchanges connectorData (the provider's answer: an authorization code,
	// a state, ...) through the connector and links the resulting social identity to the user,
	// replacing one the user already has for the same target; it returns the user's identities.
	LinkSocialIdentity(ctx context.Context, id, connectorID string, connectorData json.RawMessage) (map[string]Identity, error)
	// PutIdentity links (or replaces) the social identity of a connector target.
	PutIdentity(ctx context.Context, id, target string, identity Identity) error
	// DeleteIdentity unlinks the social identity of a connector target.
	DeleteIdentity(ctx context.Context, id, target string) error

	// MfaVerifications lists the user's MFA factors as the core shows them: no secrets.
	MfaVerifications(ctx context.Context, id string) ([]MfaVerification, error)
	// AddMfaVerification binds a TOTP (Secret) or backup-code (Codes) factor. The core does not
	// check a code and does not set the user's mfa.enabled (see UpdateLogtoConfig).
	AddMfaVerification(ctx context.Context, id string, factor NewMfaVerification) error
	// DeleteMfaVerification removes one factor by its id.
	DeleteMfaVerification(ctx context.Context, id, verificationID string) error
	// LogtoConfig reads the user's MFA and passkey sign-in settings.
	LogtoConfig(ctx context.Context, id string) (*LogtoConfig, error)
	// UpdateLogtoConfig merges the given settings into the user's and returns the result.
	UpdateLogtoConfig(ctx context.Context, id string, patch LogtoConfigPatch) (*LogtoConfig, error)

	// Sessions lists the user's active OIDC sessions.
	Sessions(ctx context.Context, id string) ([]Session, error)
	// DeleteSession ends one of the user's sessions; revokeGrants ("", "all" or "firstParty")
	// also revokes the grants of the applications the session authorised.
	DeleteSession(ctx context.Context, id, sessionID, revokeGrants string) error
	// Grants lists the user's active application grants; appType ("", "firstParty" or
	// "thirdParty") filters them. Each grant is passed on as the core gave it.
	Grants(ctx context.Context, id, appType string) ([]json.RawMessage, error)
	// DeleteGrant revokes one of the user's grants and the tokens issued under it.
	DeleteGrant(ctx context.Context, id, grantID string) error
	// UserAssetsStatus says whether the core can store uploaded files, and within which limits.
	UserAssetsStatus(ctx context.Context) (*UserAssetsStatus, error)
	// UploadUserAsset stores a file and returns its public URL.
	UploadUserAsset(ctx context.Context, asset Asset) (string, error)
}

// Session is one OIDC session of a user. Raw is the session exactly as the core listed it; the
// typed members are what the Account API reads from it.
type Session struct {
	Payload struct {
		UID string `json:"uid"`
		// Authorizations are the applications signed in through the session, by client id;
		// each has the session id (sid) its tokens carry.
		Authorizations map[string]struct {
			SID string `json:"sid"`
		} `json:"authorizations"`
	} `json:"payload"`
	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON keeps the session's JSON beside the members it decodes.
func (s *Session) UnmarshalJSON(b []byte) error {
	type plain Session
	if err := json.Unmarshal(b, (*plain)(s)); err != nil {
		return err
	}
	s.Raw = append(json.RawMessage(nil), b...)
	return nil
}

// UserAssetsStatus is the core's user-assets service status.
type UserAssetsStatus struct {
	// Status is "ready" or "not_configured".
	Status               string   `json:"status"`
	AllowUploadMimeTypes []string `json:"allowUploadMimeTypes,omitempty"`
	MaxUploadFileSize    int64    `json:"maxUploadFileSize,omitempty"`
}

// Asset is a file to store at the core.
type Asset struct {
	Filename    string
	ContentType string
	Content     []byte
}

// Identifier is an address a verification code goes to: Type "email" or "phone".
type Identifier struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// Connector is a connector instance of the core, reduced to what linking needs.
type Connector struct {
	ID          string `json:"id"`
	ConnectorID string `json:"connectorId"`
	Type        string `json:"type"`
	Target      string `json:"target"`
}

// Identity is one linked social identity: the provider's user id and what it told about them.
type Identity struct {
	UserID  string          `json:"userId"`
	Details json.RawMessage `json:"details,omitempty"`
}

// Introspection is an RFC 7662 introspection answer, reduced to what the module uses.
type Introspection struct {
	Active    bool   `json:"active"`
	Subject   string `json:"sub,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	Scope     string `json:"scope,omitempty"`
	ExpiresAt int64  `json:"exp,omitempty"`
	IssuedAt  int64  `json:"iat,omitempty"`
	Issuer    string `json:"iss,omitempty"`
	TokenType string `json:"token_type,omitempty"`
	SessionID string `json:"sid,omitempty"`
}

// User is a user record as Logto's Management API returns it. Fields the module only passes
// through stay raw JSON, so nothing is lost or re-shaped on the way.
type User struct {
	ID            string                     `json:"id"`
	Username      *string                    `json:"username"`
	PrimaryEmail  *string                    `json:"primaryEmail"`
	PrimaryPhone  *string                    `json:"primaryPhone"`
	Name          *string                    `json:"name"`
	Avatar        *string                    `json:"avatar"`
	CustomData    json.RawMessage            `json:"customData"`
	Identities    map[string]json.RawMessage `json:"identities"`
	LastSignInAt  *int64                     `json:"lastSignInAt"`
	CreatedAt     int64                      `json:"createdAt"`
	UpdatedAt     int64                      `json:"updatedAt"`
	Profile       json.RawMessage            `json:"profile"`
	ApplicationID *string                    `json:"applicationId"`
	CimdClientID  *string                    `json:"cimdClientId"`
	IsSuspended   bool                       `json:"isSuspended"`
	HasPassword   bool                       `json:"hasPassword"`
	SSOIdentities []json.RawMessage          `json:"ssoIdentities,omitempty"`
}

// IdentifierCount is how many sign-in identifiers the user has (username, email, phone, social
// and SSO identities): Logto refuses a change that would leave none.
func (u *User) IdentifierCount() int {
	n := len(u.Identities) + len(u.SSOIdentities)
	for _, s := range []*string{u.Username, u.PrimaryEmail, u.PrimaryPhone} {
		if s != nil && *s != "" {
			n++
		}
	}
	return n
}

// HasSecurityVerificationMethod reports whether the user can prove who they are (password,
// email or phone), which makes step-up mandatory for some changes.
func (u *User) HasSecurityVerificationMethod() bool {
	return u.HasPassword || (u.PrimaryEmail != nil && *u.PrimaryEmail != "") ||
		(u.PrimaryPhone != nil && *u.PrimaryPhone != "")
}

// Primary returns the user's primary address of a type ("email" or "phone"), nil when unset.
func (u *User) Primary(identifierType string) *string {
	if identifierType == "phone" {
		return u.PrimaryPhone
	}
	return u.PrimaryEmail
}

// Application is an OIDC client registered at the core.
type Application struct {
	ID           string `json:"id"`
	Type         string `json:"type"`
	IsThirdParty bool   `json:"isThirdParty"`
}

// SignInExperience holds the policies of Logto's sign-in experience that the Account API
// enforces.
type SignInExperience struct {
	UsernamePolicy       UsernamePolicy       `json:"usernamePolicy"`
	PasswordPolicy       PasswordPolicy       `json:"passwordPolicy"`
	EmailBlocklistPolicy EmailBlocklistPolicy `json:"emailBlocklistPolicy"`
	SentinelPolicy       SentinelPolicy       `json:"sentinelPolicy"`
	Mfa                  MfaPolicy            `json:"mfa"`
	PasskeySignIn        struct {
		// Enabled lets users sign in with a passkey, which also lets them bind WebAuthn.
		Enabled bool `json:"enabled"`
	} `json:"passkeySignIn"`
}

// FactorEnabled reports whether users may bind factors of type factor: listed in mfa.factors,
// or, for WebAuthn, passkey sign-in on (Logto's POST /api/my-account/mfa-verifications).
func (s *SignInExperience) FactorEnabled(factor string) bool {
	return slices.Contains(s.Mfa.Factors, factor) || (factor == MfaWebAuthn && s.PasskeySignIn.Enabled)
}

// MfaPolicy is the sign-in experience's mfa member: the factors users may bind (MfaTotp, ...).
type MfaPolicy struct {
	Factors []string `json:"factors"`
	Policy  string   `json:"policy,omitempty"`
}

// SentinelPolicy is Logto's sentinelPolicy: the lockout of password (and code) verification
// after MaxAttempts failures, for LockoutDuration minutes. Absent members take Logto's
// defaults (DefaultSentinelMaxAttempts, DefaultSentinelLockoutMinutes), hence the pointers.
type SentinelPolicy struct {
	MaxAttempts     *float64 `json:"maxAttempts,omitempty"`
	LockoutDuration *float64 `json:"lockoutDuration,omitempty"`
}

// Logto's defaultSentinelPolicy (@logto/schemas consts/sentinel.ts): 100 failures, then 60
// minutes locked out.
const (
	DefaultSentinelMaxAttempts    = 100
	DefaultSentinelLockoutMinutes = 60
)

// PasswordPolicy is Logto's passwordPolicy. Absent members take Logto's defaults (see
// policy.CheckPassword), hence the pointers.
type PasswordPolicy struct {
	Length struct {
		Min *int `json:"min,omitempty"`
		Max *int `json:"max,omitempty"`
	} `json:"length"`
	CharacterTypes struct {
		Min *int `json:"min,omitempty"`
	} `json:"characterTypes"`
	Rejects struct {
		Pwned                 *bool    `json:"pwned,omitempty"`
		RepetitionAndSequence *bool    `json:"repetitionAndSequence,omitempty"`
		UserInfo              *bool    `json:"userInfo,omitempty"`
		Words                 []string `json:"words,omitempty"`
	} `json:"rejects"`
}

// EmailBlocklistPolicy is Logto's emailBlocklistPolicy.
type EmailBlocklistPolicy struct {
	BlockDisposableAddresses bool     `json:"blockDisposableAddresses,omitempty"`
	BlockSubaddressing       bool     `json:"blockSubaddressing,omitempty"`
	CustomAllowlist          []string `json:"customAllowlist,omitempty"`
	CustomBlocklist          []string `json:"customBlocklist,omitempty"`
}

// UsernamePolicy is Logto's usernamePolicy (NOW). Zero values mean Logto's defaults.
type UsernamePolicy struct {
	CaseSensitive *bool `json:"caseSensitive,omitempty"`
	MinLength     int   `json:"minLength,omitempty"`
	MaxLength     int   `json:"maxLength,omitempty"`
	AllowedChars  *struct {
		Lowercase  bool `json:"lowercase"`
		Uppercase  bool `json:"uppercase"`
		Numbers    bool `json:"numbers"`
		Underscore bool `json:"underscore"`
	} `json:"allowedChars,omitempty"`
}

// Logto's MFA factor types (MfaFactor).
const (
	MfaTotp       = "Totp"
	MfaWebAuthn   = "WebAuthn"
	MfaBackupCode = "BackupCode"
)

// MfaVerification is one bound MFA factor as Logto lists it (transpileUserMfaVerifications):
// id, createdAt and type always; WebAuthn adds lastUsedAt, agent and name; BackupCode adds
// remainCodes, the number of unused codes.
type MfaVerification struct {
	ID          string  `json:"id"`
	CreatedAt   string  `json:"createdAt"`
	Type        string  `json:"type"`
	LastUsedAt  *string `json:"lastUsedAt,omitempty"`
	Agent       *string `json:"agent,omitempty"`
	Name        *string `json:"name,omitempty"`
	RemainCodes *int    `json:"remainCodes,omitempty"`
}

// NewMfaVerification is a factor to bind: Type MfaTotp with Secret, or MfaBackupCode with Codes.
type NewMfaVerification struct {
	Type   string   `json:"type"`
	Secret string   `json:"secret,omitempty"`
	Codes  []string `json:"codes,omitempty"`
}

// LogtoConfig is a user's logto-configs answer: MFA and passkey sign-in choices. Mfa.Enabled
// is nil when unknown (users from before Logto recorded it).
type LogtoConfig struct {
	Mfa struct {
		Enabled         *bool `json:"enabled,omitempty"`
		Skipped         bool  `json:"skipped"`
		SkipMfaOnSignIn bool  `json:"skipMfaOnSignIn"`
	} `json:"mfa"`
	PasskeySignIn struct {
		Skipped bool `json:"skipped"`
	} `json:"passkeySignIn"`
}

// LogtoConfigPatch is a logto-configs update; nil members are left as they are.
type LogtoConfigPatch struct {
	Mfa           *MfaDataPatch           `json:"mfa,omitempty"`
	PasskeySignIn *PasskeySignInDataPatch `json:"passkeySignIn,omitempty"`
}

// MfaDataPatch is the mfa member of a logto-configs update.
type MfaDataPatch struct {
	Enabled                            *bool `json:"enabled,omitempty"`
	Skipped                            *bool `json:"skipped,omitempty"`
	AdditionalBindingSuggestionSkipped *bool `json:"additionalBindingSuggestionSkipped,omitempty"`
	SkipMfaOnSignIn                    *bool `json:"skipMfaOnSignIn,omitempty"`
}

// PasskeySignInDataPatch is the passkeySignIn member of a logto-configs update.
type PasskeySignInDataPatch struct {
	Skipped *bool `json:"skipped,omitempty"`
}

// ErrInvalidID is the answer of a Core method given an id that cannot name anything at the core
// (empty, too long, characters outside the core's alphabet, a dot segment): such ids are never
// put in a core URL.
var ErrInvalidID = errors.New("identitycore: invalid id")

// ErrInvalidCredentials is VerifyPassword's answer to a wrong (or absent) password.
var ErrInvalidCredentials = errors.New("identitycore: invalid credentials")

// Error is a refusal from the core: a status and, when the core said it, Logto's error code.
// Its Message is the core's and must not be shown to users as is.
type Error struct {
	Status  int
	Code    string
	Message string
	Data    json.RawMessage
}

func (e *Error) Error() string {
	return fmt.Sprintf("identity core answered %d %s", e.Status, e.Code)
}

// UnavailableError means the core could not be reached or failed (timeout, connection refused,
// 5xx, or the core refused the gateway's own credentials).
type UnavailableError struct {
	Op    string
	Cause error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("identity core unavailable (%s): %v", e.Op, e.Cause)
}

func (e *UnavailableError) Unwrap() error { return e.Cause }
