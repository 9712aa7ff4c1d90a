// Package caddymodule registers the Account API as the Caddy HTTP handler
// http.handlers.account_api (Caddyfile directive account_api). It holds only Caddy glue: the
// configuration, its lifecycle, shared clients across reloads, and ServeHTTP; the API itself is
// in accountapi.
package caddymodule

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/accountedge/caddy-account-api/accountapi/accountcenter"
	"github.com/accountedge/caddy-account-api/accountapi/api"
	"github.com/accountedge/caddy-account-api/accountapi/auth"
	"github.com/accountedge/caddy-account-api/accountapi/identitycore/logto"
	"github.com/accountedge/caddy-account-api/accountapi/store"
	"github.com/accountedge/caddy-account-api/accountapi/verification"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler serves Logto's Account API (/api/my-account*, /api/verifications*) at the edge, in
// front of a Logto identity core; every other request goes to the next handler untouched.
//
// It validates the caller's bearer token (introspection at the core, or JWKS for JWT access
// tokens), caches the answer under a keyed hash of the token (in process, and in Redis when
// configured), enforces the account-center rules, keeps verification records for step-up, and
// makes the approved changes through the core's Management API. Errors are Logto-shaped JSON
// bodies written by the handler itself.
//
// A PATCH /api/account-center that passes through the same site to the core refreshes the
// cached account-center settings at once.
type Handler struct {
	// CoreURL is the base URL of the Logto core, e.g. "https://auth.example.com". Placeholders
	// such as {env.LOGTO_ENDPOINT} are resolved at provision time.
	CoreURL string `json:"core_url,omitempty"`

	// ClientID is the id of the machine-to-machine application the module uses for
	// introspection and the Management API.
	ClientID string `json:"client_id,omitempty"`

	// ClientSecret is that application's secret. Use a placeholder such as {env.M2M_SECRET}
	// rather than writing the secret into the configuration.
	ClientSecret string `json:"client_secret,omitempty"`

	// ManagementResource is the Management API's resource indicator. Default:
	// "https://default.logto.app/api" (Logto OSS).
	ManagementResource string `json:"management_resource,omitempty"`

	// ManagementScope is the scope requested for the machine-to-machine token. Default: "all".
	ManagementScope string `json:"management_scope,omitempty"`

	// CoreTimeout bounds every call to the core. Default: 5s.
	CoreTimeout caddy.Duration `json:"core_timeout,omitempty"`

	// JWT enables local validation of JWT access tokens against the core's JWKS. Without it,
	// every token is introspected (which is what Logto's own Account API accepts: opaque tokens).
	JWT *JWTConfig `json:"jwt,omitempty"`

	// CacheKey is the secret that keys the hashes under which token answers and verification
	// records are stored. Instances sharing a Redis must share it. Default: derived from
	// ClientSecret, which such instances share anyway.
	CacheKey string `json:"cache_key,omitempty"`

	// TokenCacheTTL is the longest a token's introspection answer is cached; it is never cached
	// past the token's expiry. Default: 5m.
	TokenCacheTTL caddy.Duration `json:"token_cache_ttl,omitempty"`

	// NegativeCacheTTL is how long an inactive token's answer is cached. Default: 10s.
	NegativeCacheTTL caddy.Duration `json:"negative_cache_ttl,omitempty"`

	// TokenCacheSize bounds the in-process token cache (entries). Default: 100000.
	TokenCacheSize int `json:"token_cache_size,omitempty"`

	// Redis, when set, shares token answers and verification records between instances.
	// Without it everything stays in process (one instance).
	Redis *RedisConfig `json:"redis,omitempty"`

	// AccountCenter sets where the account-center settings come from: the core (default,
	// cached) or static settings given here.
	AccountCenter *AccountCenterConfig `json:"account_center,omitempty"`

	// CORSOrigins are the browser origins allowed to call the API. Default: any origin (the
	// request's Origin is reflected), as Logto does.
	CORSOrigins []string `json:"cors_origins,omitempty"`

	// MaxBodySize bounds request bodies, in bytes. Default: 1 MiB (Logto's JSON limit).
	MaxBodySize int64 `json:"max_body_size,omitempty"`

	// PolicyCacheTTL is how long the sign-in experience's policies and application lookups are
	// cached. Default: 1m.
	PolicyCacheTTL caddy.Duration `json:"policy_cache_ttl,omitempty"`

	api      *api.Handler
	settings *accountcenter.Cached // nil with static settings
	redisKey string
	logger   *zap.Logger
	cancel   context.CancelFunc
}

// JWTConfig configures validation of JWT access tokens (RFC 9068).
type JWTConfig struct {
	// Audiences: a JWT is accepted only if its aud names one of them. Required.
	Audiences []string `json:"audiences,omitempty"`

	// Issuer must equal the token's iss. Default: core_url + "/oidc".
	Issuer string `json:"issuer,omitempty"`

	// JWKSURL is where the signing keys are. Default: core_url + "/oidc/jwks".
	JWKSURL string `json:"jwks_url,omitempty"`

	// Algorithms allowed in the token header. Default: the asymmetric JWS algorithms.
	Algorithms []string `json:"algorithms,omitempty"`

	// Leeway tolerated on exp and nbf. Default: 0.
	Leeway caddy.Duration `json:"leeway,omitempty"`
}

// AccountCenterConfig sets the source of the account-center settings.
type AccountCenterConfig struct {
	// Enabled, when set, makes the settings static: the account center is on or off as given,
	// and Fields applies. When neither Enabled nor Fields is set, the settings are read from the
	// core's GET /api/account-center.
	Enabled *bool `json:"enabled,omitempty"`

	// Fields maps account-center fields (name, avatar, username, email, phone, profile,
	// customData, password, social, ...) to "Off", "ReadOnly" or "Edit". Missing fields are Off.
	Fields map[string]string `json:"fields,omitempty"`

	// CacheTTL is how long settings read from the core are kept. Default: 30s.
	CacheTTL caddy.Duration `json:"cache_ttl,omitempty"`
}

func (c *AccountCenterConfig) static() bool {
	return c != nil && (c.Enabled != nil || c.Fields != nil)
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.account_api",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision resolves placeholders, applies defaults and builds the clients.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	repl := caddy.NewReplacer()
	for _, s := range []*string{&h.CoreURL, &h.ClientID, &h.ClientSecret, &h.ManagementResource, &h.CacheKey} {
		*s = repl.ReplaceKnown(*s, "")
	}
	h.setDefaults()

	core, err := logto.New(logto.Config{
		Endpoint:     h.CoreURL,
		ClientID:     h.ClientID,
		ClientSecret: h.ClientSecret,
		Resource:     h.ManagementResource,
		Scope:        h.ManagementScope,
		Timeout:      time.Duration(h.CoreTimeout),
	})
	if err != nil {
		return err
	}

	keyer, err := store.NewKeyer(h.cacheSecret())
	if err != nil {
		return err
	}
	var shared store.Store
	records := store.Store(store.NewMemory(100_000))
	if h.Redis != nil {
		client, key, err := h.Redis.client(repl)
		if err != nil {
			return err
		}
		h.redisKey = key
		shared = store.NewRedis(client, h.Redis.KeyPrefix, time.Duration(h.Redis.Timeout))
		records = shared
	}

	// Background work (the JWKS refresh) lives until Cleanup, not until the next reload.
	bg, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	var jwtVerifier *auth.JWTVerifier
	if h.JWT != nil {
		jwtVerifier, err = auth.NewJWTVerifier(bg, auth.JWTConfig{
			JWKSURL:    h.JWT.JWKSURL,
			Issuer:     h.JWT.Issuer,
			Audiences:  h.JWT.Audiences,
			Algorithms: h.JWT.Algorithms,
			Leeway:     time.Duration(h.JWT.Leeway),
			HTTPClient: &http.Client{Timeout: time.Duration(h.CoreTimeout)},
		})
		if err != nil {
			return err
		}
	}

	var source accountcenter.Source
	if h.AccountCenter.static() {
		static, err := h.AccountCenter.settings()
		if err != nil {
			return err
		}
		source = accountcenter.Static(static)
	} else {
		h.settings = accountcenter.NewCached(core.AccountCenter, time.Duration(h.AccountCenter.CacheTTL))
		source = h.settings
	}

	h.api = api.New(api.Config{
		Core: core,
		Auth: auth.New(auth.Config{
			Introspector: core,
			JWT:          jwtVerifier,
			Keyer:        keyer,
			Shared:       shared,
			MaxTTL:       time.Duration(h.TokenCacheTTL),
			NegativeTTL:  time.Duration(h.NegativeCacheTTL),
			MaxEntries:   h.TokenCacheSize,
			OnStoreError: h.storeErrorLogger(),
		}),
		AccountCenter:  source,
		Verifications:  verification.NewStore(records, keyer),
		AllowedOrigins: h.CORSOrigins,
		MaxBodyBytes:   h.MaxBodySize,
		PolicyTTL:      time.Duration(h.PolicyCacheTTL),
		Logger:         h.logger,
	})
	return nil
}

func (h *Handler) setDefaults() {
	if h.CoreTimeout <= 0 {
		h.CoreTimeout = caddy.Duration(5 * time.Second)
	}
	if h.TokenCacheTTL <= 0 {
		h.TokenCacheTTL = caddy.Duration(5 * time.Minute)
	}
	if h.NegativeCacheTTL <= 0 {
		h.NegativeCacheTTL = caddy.Duration(10 * time.Second)
	}
	if h.TokenCacheSize <= 0 {
		h.TokenCacheSize = 100_000
	}
	if h.MaxBodySize <= 0 {
		h.MaxBodySize = 1 << 20
	}
	if h.PolicyCacheTTL <= 0 {
		h.PolicyCacheTTL = caddy.Duration(time.Minute)
	}
	if h.AccountCenter == nil {
		h.AccountCenter = &AccountCenterConfig{}
	}
	if h.AccountCenter.CacheTTL <= 0 {
		h.AccountCenter.CacheTTL = caddy.Duration(30 * time.Second)
	}
	if h.JWT != nil {
		base := strings.TrimRight(h.CoreURL, "/")
		if h.JWT.Issuer == "" {
			h.JWT.Issuer = base + "/oidc"
		}
		if h.JWT.JWKSURL == "" {
			h.JWT.JWKSURL = base + "/oidc/jwks"
		}
	}
	if h.Redis != nil {
		h.Redis.setDefaults()
	}
}

// cacheSecret is the configured cache key, or one derived from the client secret so that every
// instance of a deployment derives the same key without extra configuration.
func (h *Handler) cacheSecret() []byte {
	if h.CacheKey != "" {
		return []byte(h.CacheKey)
	}
	m := hmac.New(sha256.New, []byte(h.ClientSecret))
	m.Write([]byte("caddy-account-api cache key v1"))
	return m.Sum(nil)
}

// storeErrorLogger logs shared-store failures at most once every 10 seconds: during a Redis
// outage every request would otherwise log one.
func (h *Handler) storeErrorLogger() func(error) {
	var last atomic.Int64
	return func(err error) {
		now, prev := time.Now().UnixNano(), last.Load()
		if now-prev < int64(10*time.Second) || !last.CompareAndSwap(prev, now) {
			return
		}
		h.logger.Warn("shared cache unavailable; serving from the in-process cache and the core", zap.Error(err))
	}
}

// Validate checks the configuration without doing any I/O.
func (h *Handler) Validate() error {
	if h.CoreURL == "" {
		return errors.New("account_api: core_url is required")
	}
	if h.ClientID == "" || h.ClientSecret == "" {
		return errors.New("account_api: client_id and client_secret are required")
	}
	if h.JWT != nil && len(h.JWT.Audiences) == 0 {
		return errors.New("account_api: jwt needs at least one audience")
	}
	if h.CacheKey != "" && len(h.CacheKey) < 16 {
		return errors.New("account_api: cache_key must be at least 16 characters")
	}
	if h.Redis != nil {
		return h.Redis.validate()
	}
	return nil
}

// Cleanup stops background work and releases the shared Redis client.
func (h *Handler) Cleanup() error {
	if h.cancel != nil {
		h.cancel()
	}
	if h.redisKey != "" {
		_, err := redisPool.Delete(h.redisKey)
		return err
	}
	return nil
}

// ServeHTTP serves Account API requests and passes every other request to next.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if api.Owns(r.URL.Path) {
		h.api.ServeHTTP(w, r)
		return nil
	}
	if h.settings != nil && r.Method == http.MethodPatch && r.URL.Path == "/api/account-center" {
		return next.ServeHTTP(&settingsWatcher{ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: w}, settings: h.settings}, r)
	}
	return next.ServeHTTP(w, r)
}

// settingsWatcher drops the cached account-center settings as soon as the core confirms an
// admin's change, before the response reaches the admin.
type settingsWatcher struct {
	*caddyhttp.ResponseWriterWrapper
	settings *accountcenter.Cached
}

func (s *settingsWatcher) WriteHeader(status int) {
	if status >= 200 && status < 300 {
		s.settings.Invalidate()
	}
	s.ResponseWriterWrapper.WriteHeader(status)
}

// Write covers a next handler that writes without WriteHeader (an implicit 200).
func (s *settingsWatcher) Write(b []byte) (int, error) {
	s.settings.Invalidate()
	return s.ResponseWriterWrapper.Write(b)
}

// settings converts static account-center settings.
func (c *AccountCenterConfig) settings() (accountcenter.Settings, error) {
	s := accountcenter.Settings{Enabled: c.Enabled == nil || *c.Enabled, Fields: map[string]accountcenter.Control{}}
	for field, v := range c.Fields {
		ctl, err := accountcenter.ParseControl(v)
		if err != nil {
			return s, fmt.Errorf("account_center field %s: %w", field, err)
		}
		s.Fields[field] = ctl
	}
	return s, nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ caddyfile.Unmarshaler       = (*Handler)(nil)
)
