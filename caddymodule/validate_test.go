package caddymodule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/accountedge/caddy-account-api/accountapi/auth"
)

// TestCaddyfileRefusesByName: a wrong value in the Caddyfile is refused as it is read, with the
// option's name (and the file's line) in the message.
func TestCaddyfileRefusesByName(t *testing.T) {
	for input, want := range map[string]string{
		"token_cache_ttl -1m":                             "token_cache_ttl",
		"token_cache_ttl 0s":                              "token_cache_ttl must be a positive duration",
		"negative_cache_ttl soon":                         `negative_cache_ttl: "soon" is not a duration`,
		"core_timeout 0":                                  "core_timeout must be a positive duration",
		"policy_cache_ttl -5s":                            "policy_cache_ttl",
		"token_cache_size 0":                              "token_cache_size must be at least 1",
		"token_cache_size many":                           `token_cache_size: "many" is not a whole number`,
		"max_body_size lots":                              `max_body_size: "lots" is not a positive size such as 1MiB`,
		"max_body_size 0":                                 "max_body_size",
		"max_body_size -1KB":                              "max_body_size",
		"jwt {\nleeway -1s\n}":                            "leeway",
		"account_center {\nfields {\nnickname edit\n}\n}": `unknown field "nickname" (Logto's fields: name, avatar, profile, email, phone, password, username, social, customData, mfa, passkey, session, trustedDevice)`,
		"account_center {\nfields {\nname write\n}\n}":    `field name: unknown account-center control "write"`,
		"account_center {\ncache_ttl -30s\n}":             "cache_ttl",
		"profile_cache {\nmax_age 0s\n}":                  "max_age must be a positive duration",
		"profile_cache {\nmax_entries -3\n}":              "max_entries must be at least 1",
		"redis {\ntimeout 0ms\n}":                         "timeout must be a positive duration",
		"redis {\ndial_timeout -1s\n}":                    "dial_timeout",
		"redis {\ndb -1\n}":                               "db -1 must not be negative",
	} {
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("account_api {\n" + input + "\n}"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want an error containing %q", input, err, want)
		}
	}
}

// TestCaddyfileSizes: sizes read as Caddy's own size options read them.
func TestCaddyfileSizes(t *testing.T) {
	for in, want := range map[string]int64{"1MiB": 1 << 20, "512KB": 512_000, "64KiB": 64 << 10, "2048": 2048, "1mb": 1_000_000} {
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("account_api {\nmax_body_size " + in + "\n}")); err != nil {
			t.Errorf("%s: %v", in, err)
		} else if h.MaxBodySize != want {
			t.Errorf("%s: %d bytes, want %d", in, h.MaxBodySize, want)
		}
	}
}

// base is the smallest valid configuration, for the tests to add one mistake to.
func base() Handler {
	return Handler{CoreURL: "https://auth.example.com", ClientID: "m2m", ClientSecret: "s3cret"}
}

// TestConfigureRefusesByName: the JSON form (and whatever the Caddyfile cannot see, such as
// placeholders) is refused at provision time, naming the option, before anything is built.
func TestConfigureRefusesByName(t *testing.T) {
	neg := caddy.Duration(-time.Minute)
	for name, c := range map[string]struct {
		edit func(h *Handler)
		want string
	}{
		"no core":          {func(h *Handler) { h.CoreURL = "" }, "core_url is required"},
		"relative core":    {func(h *Handler) { h.CoreURL = "auth.example.com" }, `core_url "auth.example.com" must be an absolute http:// or https:// URL`},
		"no client id":     {func(h *Handler) { h.ClientID = "" }, "client_id is required"},
		"unset secret":     {func(h *Handler) { h.ClientSecret = "{env.ACCOUNT_API_TEST_UNSET}" }, "client_secret is required (it is {env.ACCOUNT_API_TEST_UNSET}, which is empty"},
		"negative ttl":     {func(h *Handler) { h.TokenCacheTTL = neg }, "token_cache_ttl -1m0s must be a positive duration"},
		"negative timeout": {func(h *Handler) { h.CoreTimeout = neg }, "core_timeout"},
		"negative neg ttl": {func(h *Handler) { h.NegativeCacheTTL = neg }, "negative_cache_ttl"},
		"negative policy":  {func(h *Handler) { h.PolicyCacheTTL = neg }, "policy_cache_ttl"},
		"negative size":    {func(h *Handler) { h.MaxBodySize = -1 }, "max_body_size -1 must be positive"},
		"negative entries": {func(h *Handler) { h.TokenCacheSize = -1 }, "token_cache_size"},
		"negative max_age": {func(h *Handler) { h.ProfileCache = &ProfileCacheConfig{MaxAge: neg} }, "profile_cache max_age"},
		"negative center":  {func(h *Handler) { h.AccountCenter = &AccountCenterConfig{CacheTTL: neg} }, "account_center cache_ttl"},
		"short cache key":  {func(h *Handler) { h.CacheKey = "short" }, "cache_key must be at least 16 characters"},
		"unset cache key":  {func(h *Handler) { h.CacheKey = "{env.ACCOUNT_API_TEST_UNSET}" }, "cache_key is empty (it is {env.ACCOUNT_API_TEST_UNSET}"},
		"unknown field": {func(h *Handler) {
			h.AccountCenter = &AccountCenterConfig{Fields: map[string]string{"nickname": "Edit"}}
		}, `account_center fields: unknown field "nickname"`},
		"bad control":       {func(h *Handler) { h.AccountCenter = &AccountCenterConfig{Fields: map[string]string{"name": "Write"}} }, "field name: unknown account-center control"},
		"origin with slash": {func(h *Handler) { h.CORSOrigins = []string{"https://app.example.com/"} }, `cors_origins "https://app.example.com/": an origin is scheme://host[:port]`},
		"origin star":       {func(h *Handler) { h.CORSOrigins = []string{"*"} }, "leave cors_origins out to allow any origin"},
		"jwt no audience":   {func(h *Handler) { h.JWT = &JWTConfig{} }, "jwt needs an audience"},
		"jwt bad jwks":      {func(h *Handler) { h.JWT = &JWTConfig{Audiences: []string{"a"}, JWKSURL: "jwks"} }, `jwt jwks_url "jwks"`},
		"jwt bad alg":       {func(h *Handler) { h.JWT = &JWTConfig{Audiences: []string{"a"}, Algorithms: []string{"HS256"}} }, `jwt algorithms: "HS256" is not allowed`},
		"jwt neg leeway":    {func(h *Handler) { h.JWT = &JWTConfig{Audiences: []string{"a"}, Leeway: neg} }, "jwt leeway -1m0s must not be negative"},
		"redis nothing":     {func(h *Handler) { h.Redis = &RedisConfig{} }, "redis needs a url"},
		"redis url and addr": {func(h *Handler) {
			h.Redis = &RedisConfig{URL: "redis://127.0.0.1:1", Addresses: []string{"127.0.0.1:2"}}
		}, "redis takes a url or addresses, not both"},
		"redis url and db":  {func(h *Handler) { h.Redis = &RedisConfig{URL: "redis://127.0.0.1:1", DB: 2} }, "redis url already holds"},
		"redis bad url":     {func(h *Handler) { h.Redis = &RedisConfig{URL: "http://127.0.0.1:1"} }, "redis url:"},
		"redis bad address": {func(h *Handler) { h.Redis = &RedisConfig{Addresses: []string{"localhost"}} }, `redis address "localhost" must be host:port`},
		"redis neg timeout": {func(h *Handler) { h.Redis = &RedisConfig{Addresses: []string{"127.0.0.1:1"}, Timeout: neg} }, "redis timeout"},
		"webhook api path":  {func(h *Handler) { h.Webhook = &WebhookConfig{Path: "/api/my-account/hook", SigningKeys: []string{"k"}} }, "webhook path"},
		"webhook no key":    {func(h *Handler) { h.Webhook = &WebhookConfig{} }, "webhook needs a signing_key"},
		"webhook short key": {func(h *Handler) { h.Webhook = &WebhookConfig{Path: "/hooks/logto", SigningKeys: []string{"k1"}} }, "webhook signing_key must be at least 16 characters"},
		"webhook unset key": {func(h *Handler) { h.Webhook = &WebhookConfig{SigningKeys: []string{"{env.ACCOUNT_API_TEST_UNSET}"}} }, "webhook signing_key is empty (it is {env.ACCOUNT_API_TEST_UNSET}"},
		"rate limit max 0": {func(h *Handler) {
			h.RateLimits = &RateLimitsConfig{PasswordFailuresPerIP: &RateLimit{Window: caddy.Duration(time.Minute)}}
		}, "rate_limits password_failures_per_ip"},
		"plus addressing": {func(h *Handler) {
			h.RateLimits = &RateLimitsConfig{CodeSendPlusAddressing: "maybe"}
		}, "rate_limits code_send_plus_addressing"},
	} {
		h := base()
		c.edit(&h)
		err := h.configure(caddy.NewReplacer())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", name, err, c.want)
		}
	}
	h := base()
	if err := h.configure(caddy.NewReplacer()); err != nil {
		t.Fatalf("the base configuration is refused: %v", err)
	}
}

// TestProvisionRefusesRedisBeforeConnecting: a redis url together with Sentinel addresses is
// refused by Provision itself, before any client (and so any Sentinel lookup) exists.
func TestProvisionRefusesRedisBeforeConnecting(t *testing.T) {
	h := base()
	h.Redis = &RedisConfig{URL: "redis://127.0.0.1:1/0", Addresses: []string{"127.0.0.1:2"}, MasterName: "mymaster"}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	err := h.Provision(ctx)
	if err == nil || !strings.Contains(err.Error(), "redis takes a url or addresses, not both") {
		t.Fatalf("got %v", err)
	}
	if h.stateKey != "" || h.rt != nil || h.api != nil {
		t.Fatalf("Provision built clients before refusing the configuration (state %q)", h.stateKey)
	}
}

// TestJWTDefaultsFromCoreURL: issuer and jwks_url default as the README says, and an audience
// is all that jwt needs.
func TestJWTDefaultsFromCoreURL(t *testing.T) {
	h := base()
	h.CoreURL = "https://auth.example.com/"
	h.JWT = &JWTConfig{Audiences: []string{"https://api.example.com"}}
	if err := h.configure(caddy.NewReplacer()); err != nil {
		t.Fatal(err)
	}
	if h.JWT.Issuer != "https://auth.example.com/oidc" || h.JWT.JWKSURL != "https://auth.example.com/oidc/jwks" {
		t.Fatalf("issuer %q, jwks_url %q", h.JWT.Issuer, h.JWT.JWKSURL)
	}
	h = base()
	h.JWT = &JWTConfig{}
	err := h.configure(caddy.NewReplacer())
	// One error, about the audience: issuer and jwks_url have their defaults.
	if err == nil || !strings.Contains(err.Error(), "jwt needs an audience") || strings.Count(err.Error(), "account_api:") != 1 {
		t.Fatalf("jwt without an audience: %v", err)
	}
}

// TestPlaceholdersInEveryStringOption: {env.*} resolves in every string option, lists included.
func TestPlaceholdersInEveryStringOption(t *testing.T) {
	t.Setenv("AA_CORE", "https://auth.example.com")
	t.Setenv("AA_ISS", "https://issuer.example.com/oidc")
	t.Setenv("AA_JWKS", "https://issuer.example.com/oidc/jwks")
	t.Setenv("AA_AUD", "https://api.example.com")
	t.Setenv("AA_ORIGIN", "https://app.example.com")
	t.Setenv("AA_HOOK", "/hooks/logto")
	t.Setenv("AA_KEY", "signing-key-0123456789")
	t.Setenv("AA_REDIS", "127.0.0.1:6390")
	t.Setenv("AA_PREFIX", "acct:")
	h := Handler{CoreURL: "{env.AA_CORE}", ClientID: "m2m", ClientSecret: "s3cret",
		JWT:         &JWTConfig{Issuer: "{env.AA_ISS}", JWKSURL: "{env.AA_JWKS}", Audiences: []string{"{env.AA_AUD}"}},
		CORSOrigins: []string{"{env.AA_ORIGIN}"},
		Webhook:     &WebhookConfig{Path: "{env.AA_HOOK}", SigningKeys: []string{"{env.AA_KEY}"}},
		Redis:       &RedisConfig{Addresses: []string{"{env.AA_REDIS}"}, KeyPrefix: "{env.AA_PREFIX}"},
	}
	if err := h.configure(caddy.NewReplacer()); err != nil {
		t.Fatal(err)
	}
	got := []string{h.CoreURL, h.JWT.Issuer, h.JWT.JWKSURL, h.JWT.Audiences[0], h.CORSOrigins[0],
		h.Webhook.Path, h.Webhook.SigningKeys[0], h.Redis.Addresses[0], h.Redis.KeyPrefix}
	want := []string{"https://auth.example.com", "https://issuer.example.com/oidc", "https://issuer.example.com/oidc/jwks",
		"https://api.example.com", "https://app.example.com", "/hooks/logto", "signing-key-0123456789", "127.0.0.1:6390", "acct:"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("option %d resolved to %q, want %q", i, got[i], want[i])
		}
	}
}

// TestAuthPlaceholders: the caller is recorded as Caddy's authentication handler records it.
func TestAuthPlaceholders(t *testing.T) {
	repl := caddy.NewReplacer()
	r := httptest.NewRequest(http.MethodGet, "/api/my-account", nil)
	ctx := context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl)
	ctx = context.WithValue(ctx, caddyhttp.VarsCtxKey, map[string]any{})
	r = r.WithContext(ctx)
	setAuthPlaceholders(r, auth.Principal{Subject: "user123", ClientID: "spa", Scopes: []string{"openid", "profile"}})
	if v, _ := repl.GetString("http.auth.user.id"); v != "user123" {
		t.Errorf("http.auth.user.id = %q", v)
	}
	if v := caddyhttp.GetVar(ctx, "account_api.client_id"); v != "spa" {
		t.Errorf("client_id var = %v", v)
	}
	if v := caddyhttp.GetVar(ctx, "account_api.scopes"); v != "openid profile" {
		t.Errorf("scopes var = %v", v)
	}
}
