package api

import "github.com/accountedge/caddy-account-api/accountapi/apierror"

// unsupportedRoutes are the Logto 1.42 Account API routes the Management API cannot express
// (reference §7.4); the README's route table says why for each. They are routed, so that they
// answer one stable Logto-shaped 501 instead of a 404 that reads like a typo, and they go
// through the same authentication and account-center switch as every route first: what a caller
// learns before that is exactly what Logto would tell them (401, 400 not_enabled).
//
// POST /api/my-account/mfa-verifications with type WebAuthn answers the same 501 from the MFA
// route.
var unsupportedRoutes = []string{
	// WebAuthn registration (V6, V7) and naming (N22): no Management API call writes WebAuthn
	// credentials, their challenges or their names.
	"POST /api/verifications/web-authn/registration",
	"POST /api/verifications/web-authn/registration/verify",
	"PATCH /api/my-account/mfa-verifications/{verificationId}/name",
	// Reading backup codes (N21): the Management API only says how many remain.
	"GET /api/my-account/mfa-verifications/backup-codes",
	// Provider tokens (N24-N26): the Management API never hands out decrypted token sets, nor
	// stores or refreshes them.
	"GET /api/my-account/identities/{target}/access-token",
	"PUT /api/my-account/identities/{target}/access-token",
	"GET /api/my-account/sso-identities/{connectorId}/access-token",
	// Trusted devices (N31, N32; a dev feature of Logto): "current device" rests on a cookie
	// secret only Logto can check.
	"GET /api/my-account/trusted-devices",
	"DELETE /api/my-account/trusted-devices/{trustedDeviceId}",
}

// notImplemented answers an unsupported route.
func notImplemented(*call) error { return apierror.NotImplemented }
