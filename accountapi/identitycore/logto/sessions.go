package logto

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
)

// The user's OIDC sessions and application grants, through the Management API:
//
//	GET    /api/users/{userId}/sessions
//	DELETE /api/users/{userId}/sessions/{sessionId}?revokeGrantsTarget=all|firstParty
//	GET    /api/users/{userId}/grants?appType=firstParty|thirdParty
//	DELETE /api/users/{userId}/grants/{grantId}

// withQuery appends key=value to a path template when value is set.
func withQuery(template, key, value string) string {
	if value == "" {
		return template
	}
	return template + "?" + url.Values{key: {value}}.Encode()
}

// Sessions implements identitycore.Core.
func (c *Client) Sessions(ctx context.Context, id string) ([]identitycore.Session, error) {
	var out struct {
		Sessions []identitycore.Session `json:"sessions"`
	}
	if err := c.call(ctx, http.MethodGet, "/api/users/{}/sessions", ids(id), nil, &out); err != nil {
		return nil, err
	}
	return out.Sessions, nil
}

// DeleteSession implements identitycore.Core.
func (c *Client) DeleteSession(ctx context.Context, id, sessionID, revokeGrants string) error {
	return c.call(ctx, http.MethodDelete, withQuery("/api/users/{}/sessions/{}", "revokeGrantsTarget", revokeGrants),
		ids(id, sessionID), nil, nil)
}

// Grants implements identitycore.Core.
func (c *Client) Grants(ctx context.Context, id, appType string) ([]json.RawMessage, error) {
	var out struct {
		Grants []json.RawMessage `json:"grants"`
	}
	if err := c.call(ctx, http.MethodGet, withQuery("/api/users/{}/grants", "appType", appType), ids(id), nil, &out); err != nil {
		return nil, err
	}
	return out.Grants, nil
}

// DeleteGrant implements identitycore.Core.
func (c *Client) DeleteGrant(ctx context.Context, id, grantID string) error {
	return c.call(ctx, http.MethodDelete, "/api/users/{}/grants/{}", ids(id, grantID), nil, nil)
}
