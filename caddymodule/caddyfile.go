package caddymodule

import (
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
//			address      <host:port...>
//			master_name  <name>
//			username     <username>
//			password     <password>
//			db           <number>
//			key_prefix   <prefix>
//			timeout      <duration>
//			dial_timeout <duration>
//		}
//		account_center {
//			enabled   true|false
//			fields {
//				<field> off|read_only|edit
//			}
//			cache_ttl <duration>
//		}
//		rate_limits {
//			code_send_per_identifier <max> <window>
//			code_send_per_user       <max> <window>
//			code_tries_per_record    <max>
//			code_check_per_user      <max> <window>
//			password_failures        <max> <window>
//		}
//		cors_origins     <origin...>
//		max_body_size    <size>
//		policy_cache_ttl <duration>
//		profile_cache off | {
//			max_age     <duration>
//			max_entries <users>
//		}
//		disable_local_cache
//		webhook [<path>] {
//			path        <path>
//			signing_key <key...>
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
			err = durationArg(d, &h.CoreTimeout)
		case "cache_key":
			err = oneArg(d, &h.CacheKey)
		case "token_cache_ttl":
			err = durationArg(d, &h.TokenCacheTTL)
		case "negative_cache_ttl":
			err = durationArg(d, &h.NegativeCacheTTL)
		case "token_cache_size":
			err = intArg(d, &h.TokenCacheSize)
		case "policy_cache_ttl":
			err = durationArg(d, &h.PolicyCacheTTL)
		case "cors_origins":
			h.CORSOrigins = append(h.CORSOrigins, d.RemainingArgs()...)
		case "max_body_size":
			var s string
			if err = oneArg(d, &s); err == nil {
				size, perr := humanize.ParseBytes(s)
				if perr != nil {
					return d.Errf("max_body_size: %v", perr)
				}
				h.MaxBodySize = int64(size)
			}
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
			err = intArg(d, &h.Redis.DB)
		case "key_prefix":
			err = oneArg(d, &h.Redis.KeyPrefix)
		case "timeout":
			err = durationArg(d, &h.Redis.Timeout)
		case "dial_timeout":
			err = durationArg(d, &h.Redis.DialTimeout)
		default:
			return d.Errf("unrecognized redis option %q", d.Val())
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
				h.AccountCenter.Fields[field] = v
			}
		case "cache_ttl":
			if err := durationArg(d, &h.AccountCenter.CacheTTL); err != nil {
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
			err = durationArg(d, &h.ProfileCache.MaxAge)
		case "max_entries":
			err = intArg(d, &h.ProfileCache.MaxEntries)
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

func durationArg(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	v, err := caddy.ParseDuration(s)
	if err != nil {
		return d.Errf("invalid duration %q: %v", s, err)
	}
	*dst = caddy.Duration(v)
	return nil
}

func intArg(d *caddyfile.Dispenser, dst *int) error {
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return d.Errf("invalid number %q", s)
	}
	*dst = v
	return nil
}
