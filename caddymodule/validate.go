package caddymodule

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/accountedge/caddy-account-api/accountapi/accountcenter"
	"github.com/accountedge/caddy-account-api/accountapi/api"
	"github.com/accountedge/caddy-account-api/accountapi/auth"
)

// minCacheKeyLen is the shortest cache_key accepted: 16 bytes of secret keep the HMACs that
// name the cached answers unguessable.
const minCacheKeyLen = 16

// minSigningKeyLen is the shortest webhook signing_key accepted: whoever can guess the key can
// sign deliveries that evict caches at will. Logto's own keys are 32 characters.
const minSigningKeyLen = 16

// configure readies the configuration before anything is built from it: it resolves the
// placeholders of every string option, applies the defaults and validates the result, so that
// a mistake is refused before any client exists or any connection is tried.
func (h *Handler) configure(repl *caddy.Replacer) error {
	h.resolvePlaceholders(repl)
	h.setDefaults()
	return h.validate()
}

// resolvePlaceholders replaces the config-time placeholders ({env.X}, {file.X}, ...) of every
// string option. An option that was set but resolves to nothing is remembered by name, so the
// error about it can say which placeholder was empty.
func (h *Handler) resolvePlaceholders(repl *caddy.Replacer) {
	h.emptied = map[string]string{}
	one := func(option string, s *string) {
		if *s == "" {
			return
		}
		v := repl.ReplaceKnown(*s, "")
		if v == "" {
			h.emptied[option] = *s
		}
		*s = v
	}
	list := func(option string, l []string) {
		for i := range l {
			one(option, &l[i])
		}
	}
	one("core_url", &h.CoreURL)
	one("client_id", &h.ClientID)
	one("client_secret", &h.ClientSecret)
	one("management_resource", &h.ManagementResource)
	one("management_scope", &h.ManagementScope)
	one("cache_key", &h.CacheKey)
	list("cors_origins", h.CORSOrigins)
	if j := h.JWT; j != nil {
		list("jwt audience", j.Audiences)
		one("jwt issuer", &j.Issuer)
		one("jwt jwks_url", &j.JWKSURL)
		list("jwt algorithms", j.Algorithms)
	}
	if r := h.Redis; r != nil {
		one("redis url", &r.URL)
		list("redis address", r.Addresses)
		one("redis master_name", &r.MasterName)
		one("redis username", &r.Username)
		one("redis password", &r.Password)
		one("redis key_prefix", &r.KeyPrefix)
		if r.TLS != nil {
			one("redis tls ca_file", &r.TLS.CAFile)
			one("redis tls server_name", &r.TLS.ServerName)
		}
	}
	if w := h.Webhook; w != nil {
		one("webhook path", &w.Path)
		list("webhook signing_key", w.SigningKeys)
	}
	if p := h.Page; p != nil {
		one("page path", &p.Path)
		one("page client_id", &p.ClientID)
		one("page issuer", &p.Issuer)
		list("page scopes", p.Scopes)
	}
}

// validate checks the configuration without doing any I/O. Every error names the option (by its
// Caddyfile name) and the value it refuses, secrets excepted.
func (h *Handler) validate() error {
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("account_api: "+format, args...))
	}
	required := func(option, value string) {
		if value == "" {
			fail("%s is required%s", option, h.emptyHint(option))
		}
	}

	required("core_url", h.CoreURL)
	if h.CoreURL != "" && !isHTTPURL(h.CoreURL) {
		fail("core_url %q must be an absolute http:// or https:// URL", h.CoreURL)
	}
	required("client_id", h.ClientID)
	required("client_secret", h.ClientSecret)
	if h.CacheKey != "" && len(h.CacheKey) < minCacheKeyLen {
		fail("cache_key must be at least %d characters (it keys the HMACs of cached tokens)", minCacheKeyLen)
	} else if h.CacheKey == "" && h.emptied["cache_key"] != "" {
		fail("cache_key is empty%s", h.emptyHint("cache_key"))
	}
	// Whom to trust must not fall back to the default because a variable was unset.
	for _, option := range []string{"redis tls ca_file", "redis tls server_name"} {
		if h.emptied[option] != "" {
			fail("%s is empty%s", option, h.emptyHint(option))
		}
	}

	positive := func(option string, d caddy.Duration) {
		if d < 0 {
			fail("%s %s must be a positive duration such as 30s (leave it out for the default)", option, time.Duration(d))
		}
	}
	count := func(option string, n int64) {
		if n < 0 {
			fail("%s %d must be positive (leave it out for the default)", option, n)
		}
	}
	positive("core_timeout", h.CoreTimeout)
	positive("token_cache_ttl", h.TokenCacheTTL)
	positive("negative_cache_ttl", h.NegativeCacheTTL)
	positive("policy_cache_ttl", h.PolicyCacheTTL)
	positive("body_timeout", h.BodyTimeout)
	count("token_cache_size", int64(h.TokenCacheSize))
	count("max_body_size", h.MaxBodySize)
	if h.AccountCenter != nil {
		positive("account_center cache_ttl", h.AccountCenter.CacheTTL)
	}
	if h.ProfileCache != nil {
		positive("profile_cache max_age", h.ProfileCache.MaxAge)
		count("profile_cache max_entries", int64(h.ProfileCache.MaxEntries))
	}
	if h.Redis != nil {
		positive("redis timeout", h.Redis.Timeout)
		positive("redis dial_timeout", h.Redis.DialTimeout)
	}

	for _, o := range h.CORSOrigins {
		if err := checkOrigin(o); err != nil {
			fail("cors_origins %q: %v", o, err)
		}
	}
	if h.JWT != nil {
		errs = append(errs, h.JWT.validate(h)...)
	}
	if h.AccountCenter != nil {
		for field, control := range h.AccountCenter.Fields {
			if err := checkAccountCenterField(field, control); err != nil {
				fail("account_center fields: %v", err)
			}
		}
	}
	if w := h.Webhook; w != nil {
		positive("webhook max_age", w.MaxAge)
		if !strings.HasPrefix(w.Path, "/") || api.Owns(w.Path) {
			fail("webhook path %q must start with / and lie outside /api/my-account and /api/verifications", w.Path)
		}
		if len(w.SigningKeys) == 0 {
			fail("webhook needs a signing_key (JSON: signing_keys)")
		}
		for _, k := range w.SigningKeys {
			if k == "" {
				fail("webhook signing_key is empty%s", h.emptyHint("webhook signing_key"))
				break
			}
			if len(k) < minSigningKeyLen {
				fail("webhook signing_key must be at least %d characters (Logto's are 32): a short key lets anyone sign deliveries", minSigningKeyLen)
				break
			}
		}
	}
	if h.Redis != nil {
		errs = append(errs, h.Redis.validate()...)
	}
	if h.Page != nil {
		errs = append(errs, h.Page.validate(h)...)
	}
	errs = append(errs, h.RateLimits.validate()...)
	return errors.Join(errs...)
}

// emptyHint explains an empty option that was set to a placeholder resolving to nothing.
func (h *Handler) emptyHint(option string) string {
	if ph := h.emptied[option]; ph != "" {
		return fmt.Sprintf(" (it is %s, which is empty: is the variable set?)", ph)
	}
	return ""
}

// validate checks the JWT settings; h gives core_url, from which issuer and jwks_url default.
func (j *JWTConfig) validate(h *Handler) []error {
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("account_api: jwt "+format, args...))
	}
	if len(j.Audiences) == 0 {
		fail("needs an audience: the resource indicator of your API, e.g. audience https://api.example.com (issuer and jwks_url default from core_url)")
	}
	for _, a := range j.Audiences {
		if a == "" {
			fail("audience is empty%s", h.emptyHint("jwt audience"))
		}
	}
	if j.Issuer == "" {
		fail("issuer is empty%s", h.emptyHint("jwt issuer"))
	}
	if !isHTTPURL(j.JWKSURL) {
		fail("jwks_url %q must be an absolute http:// or https:// URL", j.JWKSURL)
	}
	for _, alg := range j.Algorithms {
		if !slices.Contains(auth.DefaultAlgorithms, alg) {
			fail("algorithms: %q is not allowed (want some of %s)", alg, strings.Join(auth.DefaultAlgorithms, " "))
		}
	}
	if j.Leeway < 0 {
		fail("leeway %s must not be negative", time.Duration(j.Leeway))
	}
	return errs
}

// validate checks the Redis settings, before any client or Sentinel lookup exists.
func (c *RedisConfig) validate() []error {
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("account_api: redis "+format, args...))
	}
	switch {
	case c.URL == "" && len(c.Addresses) == 0:
		fail("needs a url (redis redis://host:6379/0) or addresses (redis { address host:6379 })")
	case c.URL != "" && len(c.Addresses) > 0:
		fail("takes a url or addresses, not both: a url names one server; use addresses (with master_name for Sentinel) for several")
	case c.URL != "":
		if c.Username != "" || c.Password != "" || c.DB != 0 || c.MasterName != "" {
			fail("url already holds the username, password and db; give them in the url, or use addresses with username, password, db (and master_name)")
		}
		if opts, err := parseRedisURL(c.URL); err != nil {
			fail("url: %v", err)
		} else if c.TLS != nil && opts.TLSConfig == nil {
			fail("tls with a redis:// url, which is unencrypted: use rediss://")
		} else if c.TLS != nil && opts.TLSConfig.InsecureSkipVerify {
			fail("tls with a url that turns certificate checks off (skip_verify): drop skip_verify")
		}
	}
	if c.TLS != nil {
		if _, _, err := c.TLS.config(nil); err != nil {
			errs = append(errs, err)
		}
	}
	for _, a := range c.Addresses {
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
			fail("address %q must be host:port", a)
		}
	}
	if c.DB < 0 {
		fail("db %d must not be negative", c.DB)
	}
	return errs
}

// validate checks limits given in JSON (the Caddyfile refuses bad ones as it reads them).
func (c *RateLimitsConfig) validate() []error {
	if c == nil {
		return nil
	}
	var errs []error
	for _, l := range []struct {
		option string
		limit  *RateLimit
	}{
		{"code_send_per_identifier", c.CodeSendPerIdentifier},
		{"code_send_per_user", c.CodeSendPerUser},
		{"code_send_per_ip", c.CodeSendPerIP},
		{"code_check_per_user", c.CodeCheckPerUser},
		{"password_failures_per_ip", c.PasswordFailuresPerIP},
		{"token_failures_per_ip", c.TokenFailuresPerIP},
	} {
		off := l.limit != nil && l.limit.Max == 0 && l.limit.Window == 0
		if l.limit != nil && !off && (l.limit.Max < 1 || l.limit.Window <= 0) {
			errs = append(errs, fmt.Errorf("account_api: rate_limits %s: want a max of at least 1 and a positive window (or both 0: off), got %d %s",
				l.option, l.limit.Max, time.Duration(l.limit.Window)))
		}
	}
	if p := c.CodeSendPlusAddressing; p != "" && p != "fold" && p != "distinct" {
		errs = append(errs, fmt.Errorf("account_api: rate_limits code_send_plus_addressing %q: want fold or distinct", p))
	}
	if c.CodeTriesPerRecord < 0 {
		errs = append(errs, fmt.Errorf("account_api: rate_limits code_tries_per_record %d must be at least 1", c.CodeTriesPerRecord))
	}
	return errs
}

// checkAccountCenterField checks a static account-center field: a name Logto's account center
// knows and one of the three controls.
func checkAccountCenterField(field, control string) error {
	if !slices.Contains(accountcenter.Fields, field) {
		return fmt.Errorf("unknown field %q (Logto's fields: %s)", field, strings.Join(accountcenter.Fields, ", "))
	}
	if _, err := accountcenter.ParseControl(control); err != nil {
		return fmt.Errorf("field %s: %w", field, err)
	}
	return nil
}

// checkOrigin accepts a browser origin as the Origin header carries it: scheme://host[:port],
// nothing after. Anything else would never equal a request's Origin, and so refuse every caller.
func checkOrigin(o string) error {
	if o == "*" {
		return errors.New("leave cors_origins out to allow any origin")
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("want an origin such as https://app.example.com")
	}
	if u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return errors.New("an origin is scheme://host[:port] with no path, not even a trailing slash")
	}
	return nil
}

// isHTTPURL reports whether s is an absolute http or https URL with a host.
func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// unencrypted names the connections the configuration leaves unencrypted beyond this machine,
// each with what crosses it, for Provision to warn of: the module works over them, but a
// security reviewer must hear of it.
func (h *Handler) unencrypted() []string {
	var found []string
	if u, err := url.Parse(h.CoreURL); err == nil && u.Scheme == "http" && !isLoopback(u.Hostname()) {
		found = append(found, "core_url is http://: the client secret, users' tokens, passwords and codes cross the network in clear; use https://")
	}
	if r := h.Redis; r != nil {
		opts, err := r.options()
		if err != nil {
			return found // refused by validate already
		}
		if opts.TLSConfig != nil && opts.TLSConfig.InsecureSkipVerify {
			found = append(found, "redis url turns certificate checks off (skip_verify): any server can pose as Redis and read or forge cached token answers")
		}
		// A unix socket (unix:// url, no host) stays on this machine.
		if opts.TLSConfig == nil && slices.ContainsFunc(opts.Addrs, func(a string) bool {
			host, _, err := net.SplitHostPort(a)
			return err == nil && !isLoopback(host)
		}) {
			found = append(found, "redis is not encrypted: cached token answers, profiles and verification records cross the network in clear; use rediss:// or tls")
		}
	}
	return found
}

// isLoopback reports whether host (a name or an IP) is this machine.
func isLoopback(host string) bool {
	if strings.TrimSuffix(host, ".") == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
