package caddymodule

import (
	"math"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("account_api", parseCaddyfile)
	// Before basic_auth, like other auth handlers: after request_body, rewrite and uri, and
	// before handle/route blocks and reverse_proxy, so nothing swallows the API's paths first.
	httpcaddyfile.RegisterDirectiveOrder("account_api", httpcaddyfile.Before, "basic_auth")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	account_api [<core_url>] {
//		core_url            <url>
//		client_id           <id>
//		client_secret       <secret>
//		management_resource <resource indicator>
//		management_scope    <scope>
//		core_timeout        <duration>
//		jwt {
//			audience   <aud...>
//			issuer     <iss>
//			jwks_url   <url>
//			algorithms <alg...>
//			leeway     <duration>
//		}
//		cache_key           <secret>
//		token_cache_ttl     <duration>
//		negative_cache_ttl  <duration>
//		token_cache_size    <entries>
//		redis [<url>] {
//			url          <url>
//			address      <host:port...>
//			master_name  <name>
//			username     <username>
//			password     <password>
//			db           <number>
//			key_prefix   <prefix>
//			timeout      <duration>
//			dial_timeout <duration>
//			tls [{
//				ca_file     <file>
//				server_name <name>
//			}]
//		}
//		account_center {
//			enabled   true|false
//			fields {
//				<field> off|read_only|edit
//			}
//			cache_ttl <duration>
//		}
//		rate_limits {
//			code_send_per_identifier  <max> <window> | off
//			code_send_per_user        <max> <window> | off
//			code_send_per_ip          <max> <window> | off
//			code_send_plus_addressing fold|distinct
//			code_tries_per_record     <max>
//			code_check_per_user       <max> <window> | off
//			password_failures_per_ip  <max> <window> | off
//			token_failures_per_ip     <max> <window> | off
//		}
//		cors_origins     <origin...>
//		max_body_size    <size>
//		body_timeout     <duration>
//		policy_cache_ttl <duration>
//		profile_cache off | {
//			max_age     <duration>
//			max_entries <users>
//		}
//		disable_local_cache
//		webhook [<path>] {
//			path        <path>
//			signing_key <key...>
//			max_age     <duration>
//		}
//		page [<path>] {
//			path      <path>
//			client_id <SPA app id>
//			issuer    <url>
//			scopes    <scope...>
//		}
//	}
//
// Without enabled or fields, the account-center settings are read from the core. Secrets should
// be given as placeholders, e.g. {env.ACCOUNT_API_CLIENT_SECRET}.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive name
	if d.NextArg() {
		h.CoreURL = d.Val()
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "core_url":
			err = oneArg(d, &h.CoreURL)
		case "client_id":
			err = oneArg(d, &h.ClientID)
		case "client_secret":
			err = oneArg(d, &h.ClientSecret)
		case "management_resource":
			err = oneArg(d, &h.ManagementResource)
		case "management_scope":
			err = oneArg(d, &h.ManagementScope)
		case "core_timeout":
			err = positiveDurationArg(d, &h.CoreTimeout)
		case "cache_key":
			err = oneArg(d, &h.CacheKey)
		case "token_cache_ttl":
			err = positiveDurationArg(d, &h.TokenCacheTTL)
		case "negative_cache_ttl":
			err = positiveDurationArg(d, &h.NegativeCacheTTL)
		case "token_cache_size":
			err = positiveIntArg(d, &h.TokenCacheSize)
		case "policy_cache_ttl":
			err = positiveDurationArg(d, &h.PolicyCacheTTL)
		case "cors_origins":
			h.CORSOrigins = append(h.CORSOrigins, d.RemainingArgs()...)
		case "max_body_size":
			err = sizeArg(d, &h.MaxBodySize)
		case "body_timeout":
			err = positiveDurationArg(d, &h.BodyTimeout)
		case "jwt":
			err = h.unmarshalJWT(d)
		case "redis":
			err = h.unmarshalRedis(d)
		case "account_center":
			err = h.unmarshalAccountCenter(d)
		case "rate_limits":
			err = h.unmarshalRateLimits(d)
		case "profile_cache":
			err = h.unmarshalProfileCache(d)
		case "disable_local_cache":
			if d.NextArg() {
				return d.ArgErr()
			}
			h.DisableLocalCache = true
		case "webhook":
			err = h.unmarshalWebhook(d)
		case "page":
			err = h.unmarshalPage(d)
		default:
			return d.Errf("unrecognized account_api option %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (h *Handler) unmarshalJWT(d *caddyfile.Dispenser) error {
	h.JWT = new(JWTConfig)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "audience", "audiences":
			h.JWT.Audiences = append(h.JWT.Audiences, d.RemainingArgs()...)
		case "issuer":
			err = oneArg(d, &h.JWT.Issuer)
		case "jwks_url":
			err = oneArg(d, &h.JWT.JWKSURL)
		case "algorithms":
			h.JWT.Algorithms = append(h.JWT.Algorithms, d.RemainingArgs()...)
		case "leeway":
			err = durationArg(d, &h.JWT.Leeway)
		default:
			return d.Errf("unrecognized jwt option %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (h *Handler) unmarshalRedis(d *caddyfile.Dispenser) error {
	h.Redis = new(RedisConfig)
	if d.NextArg() {
		h.Redis.URL = d.Val()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "url":
			err = oneArg(d, &h.Redis.URL)
		case "address", "addresses":
			h.Redis.Addresses = append(h.Redis.Addresses, d.RemainingArgs()...)
		case "master_name":
			err = oneArg(d, &h.Redis.MasterName)
		case "username":
			err = oneArg(d, &h.Redis.Username)
		case "password":
			err = oneArg(d, &h.Redis.Password)
		case "db":
			if err = intArg(d, &h.Redis.DB); err == nil && h.Redis.DB < 0 {
				err = d.Errf("db %d must not be negative", h.Redis.DB)
			}
		case "key_prefix":
			err = oneArg(d, &h.Redis.KeyPrefix)
		case "timeout":
			err = positiveDurationArg(d, &h.Redis.Timeout)
		case "dial_timeout":
			err = positiveDurationArg(d, &h.Redis.DialTimeout)
		case "tls":
			err = unmarshalRedisTLS(d, h.Redis)
		default:
			return d.Errf("unrecognized redis option %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func unmarshalRedisTLS(d *caddyfile.Dispenser, r *RedisConfig) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	r.TLS = new(RedisTLS)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "ca_file":
			err = oneArg(d, &r.TLS.CAFile)
		case "server_name":
			err = oneArg(d, &r.TLS.ServerName)
		default:
			return d.Errf("unrecognized redis tls option %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (h *Handler) unmarshalAccountCenter(d *caddyfile.Dispenser) error {
	h.AccountCenter = new(AccountCenterConfig)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "enabled":
			var s string
			if err := oneArg(d, &s); err != nil {
				return err
			}
			b, err := strconv.ParseBool(s)
			if err != nil {
				return d.Errf("enabled: want true or false, got %q", s)
			}
			h.AccountCenter.Enabled = &b
		case "fields":
			if h.AccountCenter.Fields == nil {
				h.AccountCenter.Fields = map[string]string{}
			}
			for fn := d.Nesting(); d.NextBlock(fn); {
				field := d.Val()
				var v string
				if err := oneArg(d, &v); err != nil {
					return err
				}
				if err := checkAccountCenterField(field, v); err != nil {
					return d.Errf("account_center fields: %v", err)
				}
				h.AccountCenter.Fields[field] = v
			}
		case "cache_ttl":
			if err := positiveDurationArg(d, &h.AccountCenter.CacheTTL); err != nil {
				return err
			}
		default:
			return d.Errf("unrecognized account_center option %q", d.Val())
		}
	}
	return nil
}

func (h *Handler) unmarshalProfileCache(d *caddyfile.Dispenser) error {
	h.ProfileCache = new(ProfileCacheConfig)
	if d.NextArg() {
		if d.Val() != "off" || d.NextArg() {
			return d.Errf("profile_cache: want off or a block, got %q", d.Val())
		}
		h.ProfileCache.Disabled = true
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "max_age":
			err = positiveDurationArg(d, &h.ProfileCache.MaxAge)
		case "max_entries":
			err = positiveIntArg(d, &h.ProfileCache.MaxEntries)
		default:
			return d.Errf("unrecognized profile_cache option %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (h *Handler) unmarshalWebhook(d *caddyfile.Dispenser) error {
	h.Webhook = new(WebhookConfig)
	if d.NextArg() {
		h.Webhook.Path = d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "path":
			if err := oneArg(d, &h.Webhook.Path); err != nil {
				return err
			}
		case "signing_key", "signing_keys":
			keys := d.RemainingArgs()
			if len(keys) == 0 {
				return d.ArgErr()
			}
			h.Webhook.SigningKeys = append(h.Webhook.SigningKeys, keys...)
		case "max_age":
			if err := positiveDurationArg(d, &h.Webhook.MaxAge); err != nil {
				return err
			}
		default:
			return d.Errf("unrecognized webhook option %q", d.Val())
		}
	}
	return nil
}

func oneArg(d *caddyfile.Dispenser, dst *string) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

// durationArg reads the option's one argument as a Caddy duration (30s, 5m, 1d) that is not
// negative.
func durationArg(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	option := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	v, err := caddy.ParseDuration(s)
	if err != nil || v < 0 {
		return d.Errf("%s: %q is not a duration such as 30s or 5m", option, s)
	}
	*dst = caddy.Duration(v)
	return nil
}

// positiveDurationArg is durationArg for the options where zero makes no sense (timeouts,
// cache lifetimes): leaving the option out gives its default.
func positiveDurationArg(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	option := d.Val()
	if err := durationArg(d, dst); err != nil {
		return err
	}
	if *dst <= 0 {
		return d.Errf("%s must be a positive duration such as 30s or 5m (leave it out for the default)", option)
	}
	return nil
}

// intArg reads the option's one argument as a whole number.
func intArg(d *caddyfile.Dispenser, dst *int) error {
	option := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return d.Errf("%s: %q is not a whole number", option, s)
	}
	*dst = v
	return nil
}

// positiveIntArg is intArg for counts and bounds, which must be at least 1.
func positiveIntArg(d *caddyfile.Dispenser, dst *int) error {
	option := d.Val()
	if err := intArg(d, dst); err != nil {
		return err
	}
	if *dst < 1 {
		return d.Errf("%s must be at least 1 (leave it out for the default)", option)
	}
	return nil
}

// sizeArg reads the option's one argument as a positive size in bytes, as Caddy's own size
// options (request_body max_size) read it: 1MiB, 512KB, 1048576.
func sizeArg(d *caddyfile.Dispenser, dst *int64) error {
	option := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	v, err := humanize.ParseBytes(s)
	if err != nil || v == 0 || v > math.MaxInt64 {
		return d.Errf("%s: %q is not a positive size such as 1MiB or 512KB", option, s)
	}
	*dst = int64(v)
	return nil
}
