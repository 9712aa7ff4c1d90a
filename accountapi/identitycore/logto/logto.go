// Package logto implements identitycore.Core on a Logto identity core: RFC 7662 introspection
// at its OIDC provider and the Management API with a machine-to-machine token.
package logto

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/accountedge/caddy-account-api/accountapi/accountcenter"
	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
)

// Config says where the core is and how the gateway authenticates to it.
type Config struct {
	// Endpoint is the core's base URL, e.g. https://auth.example.com.
	Endpoint string
	// ClientID and ClientSecret identify the gateway's machine-to-machine application.
	ClientID     string
	ClientSecret string
	// Resource is the Management API resource indicator (Logto OSS: https://default.logto.app/api).
	Resource string
	// Scope is requested with the machine-to-machine token (Logto: all).
	Scope string
	// Timeout bounds every call to the core.
	Timeout time.Duration
	// Transport, when set, replaces http.DefaultTransport (tests, custom TLS).
	Transport http.RoundTripper
}

// maxResponseBytes bounds what the module reads from the core: a user record is a few KiB.
const maxResponseBytes = 1 << 20

// tokenRefreshMargin is how long before its expiry the machine-to-machine token is replaced.
const tokenRefreshMargin = 60 * time.Second

// Client is a Logto core.
type Client struct {
	cfg      Config
	base     string
	http     *http.Client
	basic    string // precomputed HTTP Basic credentials
	tokenSF  singleflight.Group
	tokenMu  sync.RWMutex
	token    string
	tokenExp time.Time
}

// New returns a Client for cfg.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("core endpoint %q must be an http(s) URL", cfg.Endpoint)
	}
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("the core's client id and client secret are required")
	}
	if cfg.Resource == "" {
		cfg.Resource = "https://default.logto.app/api"
	}
	if cfg.Scope == "" {
		cfg.Scope = "all"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	transport := cfg.Transport
	if transport == nil {
		transport = http.DefaultTransport
	}
	return &Client{
		cfg:  cfg,
		base: strings.TrimRight(cfg.Endpoint, "/"),
		http: &http.Client{Transport: transport, Timeout: cfg.Timeout,
			// The core never redirects API calls; following one could leak credentials.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		// RFC 6749 §2.3.1: form-encode the id and secret before Basic.
		basic: basicAuth(url.QueryEscape(cfg.ClientID), url.QueryEscape(cfg.ClientSecret)),
	}, nil
}

// Endpoint returns the core's base URL.
func (c *Client) Endpoint() string { return c.base }

// Introspect implements identitycore.Core.
func (c *Client) Introspect(ctx context.Context, token string) (identitycore.Introspection, error) {
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	var out identitycore.Introspection
	status, body, err := c.postForm(ctx, "/oidc/token/introspection", form)
	if err != nil {
		return out, &identitycore.UnavailableError{Op: "introspection", Cause: err}
	}
	if status == http.StatusBadRequest && errorCode(body) == "oidc.unsupported_token_type" {
		// oidc-provider cannot introspect structured (JWT) tokens: a verdict on the token, not a
		// failure of the core. It is no token this API accepts (Logto's own answers 401).
		return identitycore.Introspection{Active: false}, nil
	}
	if status != http.StatusOK {
		// Other 400/401 answers mean the core refused the gateway's own credentials: not the
		// user's fault.
		return out, &identitycore.UnavailableError{Op: "introspection",
			Cause: fmt.Errorf("introspection answered %d %s", status, errorCode(body))}
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return out, &identitycore.UnavailableError{Op: "introspection", Cause: fmt.Errorf("decoding introspection: %w", err)}
	}
	return out, nil
}

// User implements identitycore.Core.
func (c *Client) User(ctx context.Context, id string, withSSO bool) (*identitycore.User, error) {
	path := "/api/users/{}"
	if withSSO {
		path += "?includeSsoIdentities=true"
	}
	var u identitycore.User
	if err := c.call(ctx, http.MethodGet, path, ids(id), nil, &u); err != nil {
		return nil, err
	}
	return &u, nil
}

// UpdateUser implements identitycore.Core.
func (c *Client) UpdateUser(ctx context.Context, id string, fields map[string]any) (*identitycore.User, error) {
	var u identitycore.User
	if err := c.call(ctx, http.MethodPatch, "/api/users/{}", ids(id), fields, &u); err != nil {
		return nil, err
	}
	return &u, nil
}

// UpdateProfile implements identitycore.Core.
func (c *Client) UpdateProfile(ctx context.Context, id string, profile map[string]any) (json.RawMessage, error) {
	var out json.RawMessage
	err := c.call(ctx, http.MethodPatch, "/api/users/{}/profile", ids(id),
		map[string]any{"profile": profile}, &out)
	return out, err
}

// VerifyPassword implements identitycore.Core.
func (c *Client) VerifyPassword(ctx context.Context, id, password string) error {
	err := c.call(ctx, http.MethodPost, "/api/users/{}/password/verify", ids(id),
		map[string]string{"password": password}, nil)
	if ce, ok := errors.AsType[*identitycore.Error](err); ok && ce.Code == "session.invalid_credentials" {
		return identitycore.ErrInvalidCredentials
	}
	return err
}

// AccountCenter implements identitycore.Core.
func (c *Client) AccountCenter(ctx context.Context) (accountcenter.Settings, error) {
	var s accountcenter.Settings
	err := c.call(ctx, http.MethodGet, "/api/account-center", nil, nil, &s)
	return s, err
}

// SignInExperience implements identitycore.Core.
func (c *Client) SignInExperience(ctx context.Context) (*identitycore.SignInExperience, error) {
	var s identitycore.SignInExperience
	if err := c.call(ctx, http.MethodGet, "/api/sign-in-exp", nil, nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Application implements identitycore.Core.
func (c *Client) Application(ctx context.Context, id string) (*identitycore.Application, error) {
	var a identitycore.Application
	if err := c.call(ctx, http.MethodGet, "/api/applications/{}", ids(id), nil, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// SendVerificationCode implements identitycore.Core.
func (c *Client) SendVerificationCode(ctx context.Context, to identitycore.Identifier) error {
	return c.call(ctx, http.MethodPost, "/api/verification-codes", nil, map[string]string{to.Type: to.Value}, nil)
}

// CheckVerificationCode implements identitycore.Core.
func (c *Client) CheckVerificationCode(ctx context.Context, to identitycore.Identifier, code string) error {
	return c.call(ctx, http.MethodPost, "/api/verification-codes/verify", nil,
		map[string]string{to.Type: to.Value, "verificationCode": code}, nil)
}

// UpdatePassword implements identitycore.Core.
func (c *Client) UpdatePassword(ctx context.Context, id, password string) error {
	return c.call(ctx, http.MethodPatch, "/api/users/{}/password", ids(id),
		map[string]string{"password": password}, nil)
}

// Connector implements identitycore.Core.
func (c *Client) Connector(ctx context.Context, id string) (*identitycore.Connector, error) {
	var conn identitycore.Connector
	if err := c.call(ctx, http.MethodGet, "/api/connectors/{}", ids(id), nil, &conn); err != nil {
		return nil, err
	}
	return &conn, nil
}

// AuthorizationURI implements identitycore.Core.
func (c *Client) AuthorizationURI(ctx context.Context, connectorID, state, redirectURI string) (string, error) {
	var out struct {
		RedirectTo string `json:"redirectTo"`
	}
	err := c.call(ctx, http.MethodPost, "/api/connectors/{}/authorization-uri", ids(connectorID),
		map[string]string{"state": state, "redirectUri": redirectURI}, &out)
	if err == nil && out.RedirectTo == "" {
		err = &identitycore.UnavailableError{Op: "authorization-uri", Cause: errors.New("the core gave no authorization URI")}
	}
	return out.RedirectTo, err
}

// LinkSocialIdentity implements identitycore.Core.
func (c *Client) LinkSocialIdentity(ctx context.Context, id, connectorID string, connectorData json.RawMessage) (map[string]identitycore.Identity, error) {
	var out map[string]identitycore.Identity
	err := c.call(ctx, http.MethodPost, "/api/users/{}/identities", ids(id),
		map[string]any{"connectorId": connectorID, "connectorData": connectorData}, &out)
	return out, err
}

// PutIdentity implements identitycore.Core.
func (c *Client) PutIdentity(ctx context.Context, id, target string, identity identitycore.Identity) error {
	return c.call(ctx, http.MethodPut, "/api/users/{}/identities/{}", ids(id, target), identity, nil)
}

// DeleteIdentity implements identitycore.Core.
func (c *Client) DeleteIdentity(ctx context.Context, id, target string) error {
	return c.call(ctx, http.MethodDelete, "/api/users/{}/identities/{}", ids(id, target), nil, nil)
}

// ids lists the ids a path template's {} stand for.
func ids(v ...string) []string { return v }

// Operation names the core call a request made by the Client is: its method and path template
// with ids as ":id" ("GET /api/users/:id"), one of a fixed set, for metric labels. It is "" for
// requests the Client did not make.
func Operation(r *http.Request) string {
	op, _ := r.Context().Value(operationKey{}).(string)
	return op
}

type operationKey struct{}

// buildPath fills the template's {} with ids, each checked and escaped as one path segment, so
// an id can neither reach another route of the core nor walk up the path.
func buildPath(template string, ids []string) (string, error) {
	var b strings.Builder
	rest := template
	for _, id := range ids {
		before, after, ok := strings.Cut(rest, "{}")
		if !ok {
			return "", errors.New("logto: more ids than the path template takes")
		}
		seg, err := pathID(id)
		if err != nil {
			return "", err
		}
		b.WriteString(before)
		b.WriteString(seg)
		rest = after
	}
	if strings.Contains(rest, "{}") {
		return "", errors.New("logto: fewer ids than the path template takes")
	}
	b.WriteString(rest)
	return b.String(), nil
}

// call makes a Management API call with the machine-to-machine token, renewing the token and
// retrying once when the core says it is no longer valid. template is the path with {} for
// each of ids.
func (c *Client) call(ctx context.Context, method, template string, ids []string, in, out any) error {
	var payload []byte
	if in != nil {
		var err error
		if payload, err = json.Marshal(in); err != nil {
			return err
		}
	}
	return c.exchange(ctx, method, template, ids, "application/json", payload, out)
}

// definiteServerErrors are the 5xx answers that are Logto's verdict on the request, not an
// outage: the Account API answers them as Logto does.
var definiteServerErrors = map[string]bool{
	"storage.upload_error":                         true,
	"oidc.failed_to_cleanup_session_authorization": true,
}

// exchange is call with a payload already encoded as contentType.
func (c *Client) exchange(ctx context.Context, method, template string, ids []string, contentType string, payload []byte, out any) error {
	path, err := buildPath(template, ids)
	if err != nil {
		return err
	}
	op := method + " " + strings.ReplaceAll(strings.SplitN(template, "?", 2)[0], "{}", ":id")
	ctx = context.WithValue(ctx, operationKey{}, op)
	for attempt := 0; ; attempt++ {
		token, err := c.managementToken(ctx, attempt > 0)
		if err != nil {
			return err
		}
		status, body, err := c.send(ctx, method, path, contentType, payload, "Bearer "+token)
		if err != nil {
			return &identitycore.UnavailableError{Op: op, Cause: err}
		}
		switch {
		case status == http.StatusUnauthorized && attempt == 0:
			continue // the token may have been revoked or the core's keys rotated
		case status == http.StatusUnauthorized || status == http.StatusForbidden:
			return &identitycore.UnavailableError{Op: op,
				Cause: fmt.Errorf("the core refused the gateway's token (%d %s)", status, errorCode(body))}
		// 501 is a definite answer, not an outage: Logto says so when no email or SMS
		// connector is configured (connector.not_found).
		case status >= 500 && definiteServerErrors[errorCode(body)]:
			return coreError(status, body)
		case status >= 500 && status != http.StatusNotImplemented:
			return &identitycore.UnavailableError{Op: op, Cause: fmt.Errorf("core answered %d", status)}
		case status >= 400:
			return coreError(status, body)
		}
		if out == nil || status == http.StatusNoContent {
			return nil
		}
		if err := json.Unmarshal(body, out); err != nil {
			return &identitycore.UnavailableError{Op: op, Cause: fmt.Errorf("decoding answer: %w", err)}
		}
		return nil
	}
}

// managementToken returns a machine-to-machine token, fetched by one caller at a time and kept
// until shortly before it expires; renew forces a new one.
func (c *Client) managementToken(ctx context.Context, renew bool) (string, error) {
	c.tokenMu.RLock()
	token, exp := c.token, c.tokenExp
	c.tokenMu.RUnlock()
	if !renew && token != "" && time.Until(exp) > tokenRefreshMargin {
		return token, nil
	}
	v, err, _ := c.tokenSF.Do("token", func() (any, error) {
		c.tokenMu.RLock()
		fresh := c.token != token && time.Until(c.tokenExp) > tokenRefreshMargin
		current := c.token
		c.tokenMu.RUnlock()
		if fresh { // another caller renewed it meanwhile
			return current, nil
		}
		return c.fetchManagementToken(context.WithoutCancel(ctx))
	})
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

func (c *Client) fetchManagementToken(ctx context.Context) (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "resource": {c.cfg.Resource}, "scope": {c.cfg.Scope}}
	status, body, err := c.postForm(ctx, "/oidc/token", form)
	if err != nil {
		return "", &identitycore.UnavailableError{Op: "token", Cause: err}
	}
	if status != http.StatusOK {
		return "", &identitycore.UnavailableError{Op: "token",
			Cause: fmt.Errorf("token endpoint answered %d %s", status, errorCode(body))}
	}
	var t struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &t); err != nil || t.AccessToken == "" {
		return "", &identitycore.UnavailableError{Op: "token", Cause: errors.New("token endpoint gave no access token")}
	}
	c.tokenMu.Lock()
	c.token, c.tokenExp = t.AccessToken, time.Now().Add(time.Duration(t.ExpiresIn)*time.Second)
	c.tokenMu.Unlock()
	return t.AccessToken, nil
}

func (c *Client) postForm(ctx context.Context, path string, form url.Values) (int, []byte, error) {
	ctx = context.WithValue(ctx, operationKey{}, "POST "+path)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", c.basic)
	return c.do(req)
}

func (c *Client) send(ctx context.Context, method, path, contentType string, payload []byte, authorization string) (int, []byte, error) {
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return 0, nil, err
	}
	if payload != nil {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", authorization)
	return c.do(req)
}

func (c *Client) do(req *http.Request) (int, []byte, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return 0, nil, err
	}
	if len(body) > maxResponseBytes {
		return 0, nil, errors.New("core response too large")
	}
	return resp.StatusCode, body, nil
}

// coreError turns a 4xx answer of the core into an *identitycore.Error.
func coreError(status int, body []byte) error {
	var e struct {
		Code    string          `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	}
	_ = json.Unmarshal(body, &e) // a body that is not Logto-shaped leaves Code empty
	return &identitycore.Error{Status: status, Code: e.Code, Message: e.Message, Data: e.Data}
}

// errorCode extracts an OAuth or Logto error code from an error body, for logs.
func errorCode(body []byte) string {
	var e struct {
		Code  string `json:"code"`
		Error string `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	if e.Code != "" {
		return e.Code
	}
	return e.Error
}

// pathID returns id escaped for a core URL path, or ErrInvalidID when it cannot name anything at
// the core (identitycore.CoreID): a dot segment, a slash or a percent sign never reaches it.
func pathID(id string) (string, error) {
	if !identitycore.CoreID.Valid(id) {
		return "", identitycore.ErrInvalidID
	}
	return url.PathEscape(id), nil // a no-op for this alphabet; kept so the rule is visible
}

func basicAuth(user, pass string) string {
	req := http.Request{Header: http.Header{}}
	req.SetBasicAuth(user, pass)
	return req.Header.Get("Authorization")
}

var _ identitycore.Core = (*Client)(nil)
