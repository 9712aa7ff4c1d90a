// Package caddymodule registers the Account API as the Caddy HTTP handler
// http.handlers.account_api (Caddyfile directive account_api). It holds only Caddy glue: the
// configuration, its lifecycle, shared clients across reloads, and ServeHTTP; the API itself is
// in accountapi.
package caddymodule

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"net/http"
	"path"
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
	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
	"github.com/accountedge/caddy-account-api/accountapi/identitycore/logto"
	"github.com/accountedge/caddy-account-api/accountapi/invalidation"
	"github.com/accountedge/caddy-account-api/accountapi/profilecache"
	"github.com/accountedge/caddy-account-api/accountapi/store"
	"github.com/accountedge/caddy-account-api/accountapi/verification"
	"github.com/accountedge/caddy-account-api/accountapi/webhook"
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
//
// Every string option may hold placeholders such as {env.X}, resolved at provision time. A
// duration or number left out (zero) takes its default; a negative one is refused, as is every
// other value that cannot be right, with the option's name. After a request's token is
// accepted, the handler sets {http.auth.user.id} (the user id, which Caddy's access log writes
// as user_id), {http.vars.account_api.client_id} and {http.vars.account_api.scopes}.
type Handler struct {
	// CoreURL is the base URL of the Logto core, an absolute http or https URL such as
	// "https://auth.example.com". Required.
	CoreURL string `json:"core_url,omitempty"`

	// ClientID is the id of the machine-to-machine application the module uses for
	// introspection and the Management API. Required.
	ClientID string `json:"client_id,omitempty"`

	// ClientSecret is that application's secret. Required. Use a placeholder such as
	// {env.M2M_SECRET} rather than writing the secret into the configuration.
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
	// records are stored, at least 16 characters. Instances sharing a Redis must share it.
	// Default: derived from ClientSecret, which such instances share anyway.
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

	// CORSOrigins are the browser origins allowed to call the API, each as an Origin header
	// carries it: scheme://host[:port], no path. Default: any origin (the request's Origin is
	// reflected), as Logto does.
	CORSOrigins []string `json:"cors_origins,omitempty"`

	// MaxBodySize bounds request bodies, in bytes (in the Caddyfile, a size such as 1MiB or
	// 512KB). Default: 1 MiB (Logto's JSON limit).
	MaxBodySize int64 `json:"max_body_size,omitempty"`

	// BodyTimeout bounds how long an Account API request's (or a webhook delivery's) body may
	// take to arrive; a slower one is answered 408 and its connection closed, so slow senders
	// cannot hold connections. Default: 5s.
	BodyTimeout caddy.Duration `json:"body_timeout,omitempty"`

	// PolicyCacheTTL is how long the sign-in experience's policies and application lookups are
	// cached. Default: 1m.
	PolicyCacheTTL caddy.Duration `json:"policy_cache_ttl,omitempty"`

	// RateLimits sets the limits of the verification routes (code sends and checks, password
	// verifications). Default: see RateLimitsConfig.
	RateLimits *RateLimitsConfig `json:"rate_limits,omitempty"`

	// ProfileCache configures the cache of the users' records that GET /api/my-account is built
	// from. Default: on, in process and in Redis when configured, for at most 1m per record.
	ProfileCache *ProfileCacheConfig `json:"profile_cache,omitempty"`

	// DisableLocalCache keeps token answers and user records out of the in-process caches, so
	// that every lookup goes to Redis (or, without Redis, to the core). It exists to measure and
	// to debug the shared layer; the in-process caches are the fast path. Default: false.
	DisableLocalCache bool `json:"disable_local_cache,omitempty"`

	// Webhook receives Logto's webhooks about users (User.Data.Updated, User.Deleted,
	// User.SuspensionStatus.Updated, PostSignIn, ...), so that changes made at the core without
	// passing through this site drop the cached records at once. Default: off.
	Webhook *WebhookConfig `json:"webhook,omitempty"`

	api   *api.Handler
	authn *auth.Authenticator
	// managementChanged handles a Management API write to a user passing through the site.
	managementChanged func(ctx context.Context, userID string, credentials bool)
	settings          *accountcenter.Cached // nil with static settings
	profiles          *profilecache.Cache   // nil when the profile cache is off
	bus               *invalidation.Bus     // nil without Redis
	webhook           *webhook.Handler      // nil without a webhook
	redisKey          string
	logger            *zap.Logger
	cancel            context.CancelFunc
	// closers stop the in-process caches this config created.
	closers []func()
	// emptied maps each option set to a placeholder that resolved to nothing to that placeholder.
	emptied map[string]string
}

// ProfileCacheConfig configures the profile cache. Every write the module makes, every
// Management API write to /api/users/{id}... that passes through the same site, and every
// webhook drops the user's record, on every instance sharing the Redis (through pub/sub).
type ProfileCacheConfig struct {
	// Disabled turns the cache off: every read of a profile goes to the core. In the
	// Caddyfile: profile_cache off.
	Disabled bool `json:"disabled,omitempty"`

	// MaxAge bounds how long a record is served from the cache: the staleness of a change that
	// reaches the module by none of the ways above. Default: 1m.
	MaxAge caddy.Duration `json:"max_age,omitempty"`

	// MaxEntries bounds the in-process cache (users). Default: 10000.
	MaxEntries int `json:"max_entries,omitempty"`
}

// WebhookConfig configures the endpoint that receives Logto's webhooks.
type WebhookConfig struct {
	// Path is where Logto delivers (the webhook's endpoint URL is this site plus Path); it must
	// not be an Account API path. Default: "/webhooks/logto".
	Path string `json:"path,omitempty"`

	// SigningKeys are the signing keys of the Logto webhooks (Console > Webhooks > the webhook >
	// Signing key); a delivery signed with none of them is refused. Use placeholders such as
	// {env.LOGTO_WEBHOOK_SIGNING_KEY}. Required. In the Caddyfile: signing_key (one or more
	// per line; signing_keys is accepted too).
	SigningKeys []string `json:"signing_keys,omitempty"`

	// MaxAge is how old (by Logto's createdAt) a delivery may be; older ones, and deliveries
	// seen before by any instance sharing the Redis, are ignored with 204 so that a captured
	// delivery cannot be replayed. Default: 5m.
	MaxAge caddy.Duration `json:"max_age,omitempty"`
}

// JWTConfig configures validation of JWT access tokens (RFC 9068).
type JWTConfig struct {
	// Audiences: a JWT is accepted only if its aud names one of them. Required. In the
	// Caddyfile: audience (one or more per line; audiences is accepted too).
	Audiences []string `json:"audiences,omitempty"`

	// Issuer must equal the token's iss. Default: core_url + "/oidc".
	Issuer string `json:"issuer,omitempty"`

	// JWKSURL is where the signing keys are. Default: core_url + "/oidc/jwks".
	JWKSURL string `json:"jwks_url,omitempty"`

	// Algorithms allowed in the token header, some of RS256, RS384, RS512, PS256, PS384, PS512,
	// ES256, ES384, ES512 and EdDSA. Default: all of them.
	Algorithms []string `json:"algorithms,omitempty"`

	// Leeway tolerated on exp and nbf; not negative. Default: 0.
	Leeway caddy.Duration `json:"leeway,omitempty"`
}

// AccountCenterConfig sets the source of the account-center settings.
type AccountCenterConfig struct {
	// Enabled, when set, makes the settings static: the account center is on or off as given,
	// and Fields applies. When neither Enabled nor Fields is set, the settings are read from the
	// core's GET /api/account-center.
	Enabled *bool `json:"enabled,omitempty"`

	// Fields maps account-center fields to "Off", "ReadOnly" or "Edit" (or off, read_only,
	// edit). The fields are Logto's: name, avatar, profile, email, phone, password, username,
	// social, customData, mfa, passkey, session, trustedDevice; any other is refused. Missing
	// fields are Off.
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
	if err := registerMetrics(ctx); err != nil {
		return err
	}
	repl := caddy.NewReplacer()
	if err := h.configure(repl); err != nil {
		return err
	}

	core, err := logto.New(logto.Config{
		Endpoint:     h.CoreURL,
		ClientID:     h.ClientID,
		ClientSecret: h.ClientSecret,
		Resource:     h.ManagementResource,
		Scope:        h.ManagementScope,
		Timeout:      time.Duration(h.CoreTimeout),
		Transport:    timedTransport{next: http.DefaultTransport},
	})
	if err != nil {
		return err
	}

	keyer, err := store.NewKeyer(h.cacheSecret())
	if err != nil {
		return err
	}
	// Verification records live in Redis when there is one (every instance accepts them), in
	// process otherwise.
	var shared, records store.Store
	if h.Redis != nil {
		client, key, err := h.Redis.client()
		if err != nil {
			return err
		}
		h.redisKey = key
		shared = store.NewRedis(client, h.Redis.KeyPrefix, time.Duration(h.Redis.Timeout))
		records = shared
		h.bus = invalidation.New(client, h.Redis.KeyPrefix+"invalidate", time.Duration(h.Redis.Timeout))
	} else {
		memory := store.NewMemory(100_000)
		h.closers = append(h.closers, memory.Close)
		records = memory
	}

	// The API reads users through the profile cache; every other call goes to the core as is.
	var apiCore identitycore.Core = core
	if !h.ProfileCache.Disabled {
		h.profiles = profilecache.New(profilecache.Config{
			Core:         core,
			Keyer:        keyer,
			Shared:       shared,
			DisableLocal: h.DisableLocalCache,
			MaxAge:       time.Duration(h.ProfileCache.MaxAge),
			MaxEntries:   h.ProfileCache.MaxEntries,
			Metrics:      cacheMetrics{},
			OnStoreError: h.storeErrorLogger("profile_cache"),
		})
		apiCore = h.profiles
	}
	limiter, err := h.limiter(shared, keyer)
	if err != nil {
		return err
	}
	if h.Webhook != nil {
		h.webhook, err = webhook.New(webhook.Config{
			SigningKeys: h.Webhook.SigningKeys,
			UserChanged: h.userChanged("webhook", true),
			Observe:     func(outcome string) { metrics.webhooks.WithLabelValues(outcome).Inc() },
			MaxAge:      time.Duration(h.Webhook.MaxAge),
			BodyTimeout: time.Duration(h.BodyTimeout),
			Seen:        limiter,
		})
		if err != nil {
			return fmt.Errorf("account_api: %w", err)
		}
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
		loads := new(atomic.Uint64)
		h.settings = accountcenter.NewCached(countLoads(loads, core.AccountCenter), time.Duration(h.AccountCenter.CacheTTL))
		source = observedSettings{Source: h.settings, loads: loads}
	}

	h.managementChanged = h.userChanged("management_api", true)
	h.authn = auth.New(auth.Config{
		Introspector: core,
		JWT:          jwtVerifier,
		Keyer:        keyer,
		Shared:       shared,
		MaxTTL:       time.Duration(h.TokenCacheTTL),
		NegativeTTL:  time.Duration(h.NegativeCacheTTL),
		MaxEntries:   h.TokenCacheSize,
		OnStoreError: h.storeErrorLogger("token_cache"),
		DisableLocal: h.DisableLocalCache,
		Metrics:      cacheMetrics{},
	})
	h.api = api.New(api.Config{
		Core:           apiCore,
		Auth:           h.authn,
		AccountCenter:  source,
		Verifications:  verification.NewStore(records, keyer),
		AllowedOrigins: h.CORSOrigins,
		MaxBodyBytes:   h.MaxBodySize,
		BodyTimeout:    time.Duration(h.BodyTimeout),
		PolicyTTL:      time.Duration(h.PolicyCacheTTL),
		UserChanged:    h.userChanged("write", false),
		Observe:        observeRequest,
		Authenticated:  setAuthPlaceholders,
		Logger:         h.logger,
		Protections:    h.protections(limiter),
	})

	if h.bus != nil {
		busErrors := h.storeErrorLogger("invalidation")
		h.bus.Start(invalidation.Handlers{
			Event: func(ctx context.Context, e invalidation.Event) {
				if h.profiles != nil {
					h.profiles.Invalidate(ctx, e.UserID)
					metrics.invalidations.WithLabelValues("peer").Inc()
				}
				if e.Kind == invalidation.Credentials {
					h.authn.EvictSubjectLocal(e.UserID) // the sender recorded it in Redis already
				}
			},
			// Messages may have been lost while the subscription was down: forget what they
			// could have voided.
			Resync: func() {
				if h.profiles != nil {
					h.profiles.Flush()
					metrics.invalidations.WithLabelValues("resync").Inc()
				}
				h.authn.FlushLocal()
			},
			Error: busErrors,
		})
	}
	return nil
}

// userChanged returns what to do when the user with userID may have changed (source names the
// way the module heard of it, for metrics): drop the cached record here and in Redis, void the
// cached answers about the user's tokens when their credentials changed, and tell the other
// instances. alwaysCredentials treats every change as one of credentials: a webhook or an admin
// write may have revoked the user's tokens, and only the core knows.
func (h *Handler) userChanged(source string, alwaysCredentials bool) func(ctx context.Context, userID string, credentials bool) {
	invalidations := metrics.invalidations.WithLabelValues(source)
	publishFailed := h.storeErrorLogger("invalidation")
	evictFailed := h.storeErrorLogger("token_cache")
	return func(ctx context.Context, userID string, credentials bool) {
		credentials = credentials || alwaysCredentials
		if h.profiles != nil {
			h.profiles.Invalidate(ctx, userID)
			invalidations.Inc()
		}
		if credentials {
			if err := h.authn.EvictSubject(ctx, userID); err != nil {
				evictFailed(err)
			}
		}
		if h.bus != nil {
			kind := invalidation.Profile
			if credentials {
				kind = invalidation.Credentials
			}
			if err := h.bus.Publish(ctx, invalidation.Event{UserID: userID, Kind: kind}); err != nil {
				publishFailed(err)
			}
		}
	}
}

// setDefaults fills in the options left out (zero). It leaves wrong values (a negative
// duration) as they are, for validate to refuse by name.
func (h *Handler) setDefaults() {
	if h.CoreTimeout == 0 {
		h.CoreTimeout = caddy.Duration(5 * time.Second)
	}
	if h.TokenCacheTTL == 0 {
		h.TokenCacheTTL = caddy.Duration(5 * time.Minute)
	}
	if h.NegativeCacheTTL == 0 {
		h.NegativeCacheTTL = caddy.Duration(10 * time.Second)
	}
	if h.TokenCacheSize == 0 {
		h.TokenCacheSize = 100_000
	}
	if h.MaxBodySize == 0 {
		h.MaxBodySize = 1 << 20
	}
	if h.BodyTimeout == 0 {
		h.BodyTimeout = caddy.Duration(5 * time.Second)
	}
	if h.PolicyCacheTTL == 0 {
		h.PolicyCacheTTL = caddy.Duration(time.Minute)
	}
	if h.AccountCenter == nil {
		h.AccountCenter = &AccountCenterConfig{}
	}
	if h.AccountCenter.CacheTTL == 0 {
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
	if h.ProfileCache == nil {
		h.ProfileCache = &ProfileCacheConfig{}
	}
	if h.ProfileCache.MaxAge == 0 {
		h.ProfileCache.MaxAge = caddy.Duration(time.Minute)
	}
	if h.ProfileCache.MaxEntries == 0 {
		h.ProfileCache.MaxEntries = 10_000
	}
	if h.Webhook != nil && h.Webhook.Path == "" {
		h.Webhook.Path = "/webhooks/logto"
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

// storeErrorLogger counts shared-store failures of a component and logs them at most once every
// 10 seconds: during a Redis outage every request would otherwise log one.
func (h *Handler) storeErrorLogger(component string) func(error) {
	var last atomic.Int64
	errs := metrics.redisErrors.WithLabelValues(component)
	return func(err error) {
		errs.Inc()
		now, prev := time.Now().UnixNano(), last.Load()
		if now-prev < int64(10*time.Second) || !last.CompareAndSwap(prev, now) {
			return
		}
		h.logger.Warn("shared cache unavailable; serving from the in-process cache and the core", zap.Error(err))
	}
}

// Validate checks the configuration without doing any I/O (Provision has already run the same
// checks, before it built anything; see configure).
func (h *Handler) Validate() error {
	return h.validate()
}

// Cleanup stops background work and releases the shared Redis client.
func (h *Handler) Cleanup() error {
	if h.cancel != nil {
		h.cancel()
	}
	if h.api != nil {
		h.api.Close()
	}
	for _, c := range h.closers {
		c()
	}
	if h.bus != nil {
		h.bus.Close() // before the client goes back to the pool, which may close it
	}
	if h.profiles != nil {
		h.profiles.Close()
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
	if h.webhook != nil && r.URL.Path == h.Webhook.Path {
		h.webhook.ServeHTTP(w, r)
		return nil
	}
	if h.settings != nil && r.Method == http.MethodPatch && path.Clean(r.URL.Path) == "/api/account-center" {
		return next.ServeHTTP(watchSuccess(w, h.settings.Invalidate), r)
	}
	if id := managementUserWrite(r); id != "" {
		// Any Management API write may touch sign-in data (username, email, password,
		// suspension): it counts as a credentials change.
		return next.ServeHTTP(watchSuccess(w, func() { h.managementChanged(r.Context(), id, true) }), r)
	}
	return next.ServeHTTP(w, r)
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
