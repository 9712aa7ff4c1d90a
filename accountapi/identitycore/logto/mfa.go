package logto

import (
	"context"
	"net/http"

	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
)

// MFA factors and the user's logto-configs, through the Management API:
//
//	GET    /api/users/{userId}/mfa-verifications
//	POST   /api/users/{userId}/mfa-verifications                   {type:"Totp", secret} | {type:"BackupCode", codes}
//	DELETE /api/users/{userId}/mfa-verifications/{verificationId}
//	GET    /api/users/{userId}/logto-configs
//	PATCH  /api/users/{userId}/logto-configs                       {mfa?, passkeySignIn?}

// MfaVerifications implements identitycore.Core.
func (c *Client) MfaVerifications(ctx context.Context, id string) ([]identitycore.MfaVerification, error) {
	var out []identitycore.MfaVerification
	if err := c.call(ctx, http.MethodGet, "/api/users/{}/mfa-verifications", ids(id), nil, &out); err != nil {
		return nil, err
	}
	if out == nil {
		out = []identitycore.MfaVerification{} // listed as [], never null
	}
	return out, nil
}

// AddMfaVerification implements identitycore.Core. The core answers the secret and a QR code
// (TOTP) or the codes (backup codes); the caller already has them, so the answer is dropped.
func (c *Client) AddMfaVerification(ctx context.Context, id string, factor identitycore.NewMfaVerification) error {
	return c.call(ctx, http.MethodPost, "/api/users/{}/mfa-verifications", ids(id), factor, nil)
}

// DeleteMfaVerification implements identitycore.Core.
func (c *Client) DeleteMfaVerification(ctx context.Context, id, verificationID string) error {
	return c.call(ctx, http.MethodDelete, "/api/users/{}/mfa-verifications/{}", ids(id, verificationID), nil, nil)
}

// LogtoConfig implements identitycore.Core.
func (c *Client) LogtoConfig(ctx context.Context, id string) (*identitycore.LogtoConfig, error) {
	var out identitycore.LogtoConfig
	if err := c.call(ctx, http.MethodGet, "/api/users/{}/logto-configs", ids(id), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateLogtoConfig implements identitycore.Core.
func (c *Client) UpdateLogtoConfig(ctx context.Context, id string, patch identitycore.LogtoConfigPatch) (*identitycore.LogtoConfig, error) {
	var out identitycore.LogtoConfig
	if err := c.call(ctx, http.MethodPatch, "/api/users/{}/logto-configs", ids(id), patch, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
