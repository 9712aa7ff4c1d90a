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
	"path"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/accountedge/caddy-account-api/accountapi/accountcenter"
	"github.com/accountedge/caddy-account-api/accountapi/api"
	"github.com/accountedge/caddy-account-api/accountapi/cache"
	"github.com/accountedge/caddy-account-api/accountapi/page"
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

	// TokenCacheTTL is the longest a token's introspection answer is cached, counted from the
	// core's answer; it is never cached past the token's expiry. It is the window in which a
	// token revoked at the core (not through this site) can still read; writes always ask the
	// core. Default: 1m.
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
	// cached: the bound on how late a change made at the core by another way than this site
	// applies (a PATCH /api/sign-in-exp through the site applies at once on every instance).
	// While the core fails, the last sign-in experience serves up to 10m more. Default: 5s.
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

	// Page serves the account page, on which users sign in with the core and manage their
	// account through this API. Default: off.
	Page *PageConfig `json:"page,omitempty"`

	api  *api.Handler
	page *page.Handler // nil without a page
	// rt is the state shared with the other loaded configurations of the same deployment
	// (runtime.go); stateKey and runtimeKey are its keys in runtimes, released by Cleanup.
	rt                   *runtime
	stateKey, runtimeKey string
	// managementChanged handles a Management API write to a user passing through the site;
	// sessionEnded a sign-out passing through it.
	managementChanged, sessionEnded func(ctx context.Context, userID string, credentials bool)
	webhook                         *webhook.Handler // nil without a webhook
	logger                          *zap.Logger
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

	// Leeway is the clock skew tolerated on nbf and iat (never on exp: a token is refused from its
	// exp on); not negative. Default: 0.
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

	// CacheTTL is how long settings read from the core are kept: the bound on how late a change
	// made at the core by another way than this site applies. While the core fails, the last
	// settings serve up to 10m more. Default: 5s.
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

// Provision resolves placeholders, applies defaults, validates (configure), and loads the
// shared runtime, building it when no loaded configuration shares it.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if err := registerMetrics(ctx); err != nil {
		return err
	}
	if err := h.configure(caddy.NewReplacer()); err != nil {
		return err
	}
	for _, warning := range h.unencrypted() {
		h.logger.Warn("unencrypted connection: " + warning)
	}

	stateKey, err := h.stateKeyOf()
	if err != nil {
		return err
	}
	st, err := h.loadState(stateKey)
	if err != nil {
		return err
	}
	runtimeKey := h.runtimeKeyOf(stateKey)
	if h.rt, err = h.loadRuntime(st, runtimeKey); err != nil {
		_, _ = runtimes.Delete(stateKey)
		return err
	}
	h.stateKey, h.runtimeKey = stateKey, runtimeKey

	if h.Webhook != nil {
		h.webhook, err = webhook.New(webhook.Config{
			SigningKeys: h.Webhook.SigningKeys,
			UserChanged: h.rt.userChanged("webhook", true),
			Observe:     func(outcome string) { metrics.webhooks.WithLabelValues(outcome).Inc() },
			MaxAge:      time.Duration(h.Webhook.MaxAge),
			BodyTimeout: time.Duration(h.BodyTimeout),
			Seen:        h.rt.st.limiter,
		})
		if err != nil {
			return fmt.Errorf("account_api: %w", err)
		}
	}

	revocationFailed := storeErrorLogger(h.logger, "revocation")
	h.sessionEnded = logged(h.rt.userChanged("session_end", true), revocationFailed)
	h.managementChanged = logged(h.rt.userChanged("management_api", true), revocationFailed)
	if err := h.provisionPage(h.rt.source); err != nil {
		return err
	}
	h.api = api.New(api.Config{
		Core:             h.rt.apiCore,
		Auth:             h.rt.authn,
		AccountCenter:    h.rt.source,
		Verifications:    verification.NewStore(st.records, st.keyer),
		AllowedOrigins:   h.CORSOrigins,
		MaxBodyBytes:     h.MaxBodySize,
		BodyTimeout:      time.Duration(h.BodyTimeout),
		PolicyTTL:        time.Duration(h.PolicyCacheTTL),
		SignInExperience: h.rt.signIn,
		UserChanged:      logged(h.rt.userChanged("write", false), revocationFailed),
		Observe:          observeRequest,
		Authenticated:    setAuthPlaceholders,
		Logger:           h.logger,
		Protections:      h.protections(st.limiter),
	})
	return nil
}

// setDefaults fills in the options left out (zero). It leaves wrong values (a negative
// duration) as they are, for validate to refuse by name.
func (h *Handler) setDefaults() {
	if h.CoreTimeout == 0 {
		h.CoreTimeout = caddy.Duration(5 * time.Second)
	}
	if h.TokenCacheTTL == 0 {
		h.TokenCacheTTL = caddy.Duration(time.Minute)
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
		h.PolicyCacheTTL = caddy.Duration(5 * time.Second)
	}
	if h.AccountCenter == nil {
		h.AccountCenter = &AccountCenterConfig{}
	}
	if h.AccountCenter.CacheTTL == 0 {
		h.AccountCenter.CacheTTL = caddy.Duration(5 * time.Second)
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
	if h.Page != nil && h.Page.Path == "" {
		h.Page.Path = "/account"
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

// Validate checks the configuration without doing any I/O (Provision has already run the same
// checks, before it built anything; see configure).
func (h *Handler) Validate() error {
	return h.validate()
}

// Cleanup releases this configuration's share of the runtime; the last configuration to
// release it stops it.
func (h *Handler) Cleanup() error {
	if h.api != nil {
		h.api.Close()
	}
	var errs []error
	for _, key := range []string{h.runtimeKey, h.stateKey} { // the runtime uses the state
		if key != "" {
			_, err := runtimes.Delete(key)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ServeHTTP serves Account API requests and passes every other request to next.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if api.Owns(r.URL.Path) {
		if h.rt.st.shared != nil {
			// A token's answer and its user's record then come from Redis in one round trip.
			r = r.WithContext(cache.WithPrefetch(r.Context()))
		}
		h.api.ServeHTTP(w, r)
		return nil
	}
	if h.page != nil && h.page.Owns(r.URL.Path) {
		h.page.ServeHTTP(w, r)
		return nil
	}
	if h.webhook != nil && r.URL.Path == h.Webhook.Path {
		h.webhook.ServeHTTP(w, r)
		return nil
	}
	if r.Method == http.MethodPost && path.Clean(r.URL.Path) == "/oidc/token/revocation" {
		if token := formValue(r, "token"); token != "" {
			return next.ServeHTTP(watchSuccess(w, func() { h.rt.tokenRevoked(r.Context(), token) }), r)
		}
	}
	// A sign-out ends the user's session at the core (and the tokens of its grants): the user's
	// cached answers go, on every instance. Without a browser session the core ends it at once;
	// with one, at the confirmation, which names no user, so the request before it is
	// remembered and the user's answers go at both steps.
	signedOut := func(status int) bool { return status < 400 }
	switch p := path.Clean(r.URL.Path); {
	case p == "/oidc/session/end" && (r.Method == http.MethodGet || r.Method == http.MethodPost):
		if sub := idTokenSubject(r); sub != "" {
			return next.ServeHTTP(watchStatus(w, signedOut, func(status int) {
				h.sessionEnded(r.Context(), sub, true)
				if status == http.StatusOK { // the confirmation page; a redirect ended it already
					h.rt.signOutShown(r.Context(), r, sub)
				}
			}), r)
		}
	case p == "/oidc/session/end/confirm" && r.Method == http.MethodPost:
		if sub, key := h.rt.signOutConfirming(r.Context(), r); sub != "" {
			return next.ServeHTTP(watchStatus(w, signedOut, func(int) {
				h.sessionEnded(r.Context(), sub, true)
				_ = h.rt.st.signOuts.Delete(context.WithoutCancel(r.Context()), key)
			}), r)
		}
	}
	if r.Method == http.MethodPatch {
		switch path.Clean(r.URL.Path) {
		case "/api/account-center":
			return next.ServeHTTP(watchSuccess(w, func() { h.rt.settingsChanged(accountCenterDoc) }), r)
		case "/api/sign-in-exp":
			return next.ServeHTTP(watchSuccess(w, func() { h.rt.settingsChanged(signInDoc) }), r)
		}
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
