package caddymodule

import (
	"net/http"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/accountedge/caddy-account-api/accountapi/api"
	"github.com/accountedge/caddy-account-api/accountapi/ratelimit"
)

// RateLimitsConfig sets the edge's own limits. Counters live in Redis when it is configured,
// so the limits hold across instances (and in process while Redis fails); a limit left out
// keeps its default, and "off" turns one off. Refusals are 429 with Retry-After, except the
// per-record code tries, which end as Logto's 400 verification_code.exceed_max_try.
//
// Password verification is locked per user by Logto's own sentinel policy, read from the sign-in
// experience (sentinelPolicy.maxAttempts and lockoutDuration; Logto's defaults, 100 failures and
// 60 minutes, when unset), whatever the client addresses and instances.
type RateLimitsConfig struct {
	// CodeSendPerIdentifier bounds the codes sent to one email address or phone number,
	// normalised: case-folded, without "+tag" (see CodeSendPlusAddressing), phones in E.164.
	// Default: 10 per 10m (Logto's own per-recipient limit).
	CodeSendPerIdentifier *RateLimit `json:"code_send_per_identifier,omitempty"`

	// CodeSendPerUser bounds the codes one user sends, whatever the addresses and client IPs.
	// Default: 20 per 10m.
	CodeSendPerUser *RateLimit `json:"code_send_per_user,omitempty"`

	// CodeSendPerIP bounds the codes sent from one client IP, whatever the users. Default: 50
	// per 10m.
	CodeSendPerIP *RateLimit `json:"code_send_per_ip,omitempty"`

	// CodeSendPlusAddressing says how "name+tag@example.com" counts for CodeSendPerIdentifier:
	// "fold" (default) counts it as name@example.com, whose mailbox receives it at most
	// providers; "distinct" counts it as its own recipient.
	CodeSendPlusAddressing string `json:"code_send_plus_addressing,omitempty"`

	// CodeTriesPerRecord is how many codes may be tried on one verification record. Default: 10
	// (Logto's maxRetryAttempts).
	CodeTriesPerRecord int `json:"code_tries_per_record,omitempty"`

	// CodeCheckPerUser bounds the code checks of one user over all records. Default: 30 per 10m.
	CodeCheckPerUser *RateLimit `json:"code_check_per_user,omitempty"`

	// PasswordFailuresPerIP bounds the wrong passwords from one client IP, on top of the
	// per-user sentinel lockout. Default: off.
	PasswordFailuresPerIP *RateLimit `json:"password_failures_per_ip,omitempty"`

	// TokenFailuresPerIP bounds the failed token checks of one client IP: past it, a token that
	// would have to be asked about at the core is refused with 429 until the window ends, so
	// random tokens cannot turn the edge into an introspection amplifier. Tokens already known
	// to be valid still pass. Default: 60 per 1m.
	TokenFailuresPerIP *RateLimit `json:"token_failures_per_ip,omitempty"`
}

// RateLimit allows Max events per Window.
type RateLimit struct {
	// Max is the number of events allowed in a window; 0 turns the limit off.
	Max int `json:"max"`

	// Window is the length of the window, counted from its first event.
	Window caddy.Duration `json:"window"`
}

// limits merges the configured limits over the defaults.
func (c *RateLimitsConfig) limits() api.Limits {
	l := api.DefaultLimits()
	if c == nil {
		return l
	}
	for _, m := range []struct {
		src *RateLimit
		dst *ratelimit.Limit
	}{
		{c.CodeSendPerIdentifier, &l.CodeSendPerIdentifier},
		{c.CodeSendPerUser, &l.CodeSendPerUser},
		{c.CodeSendPerIP, &l.CodeSendPerIP},
		{c.CodeCheckPerUser, &l.CodeCheckPerUser},
		{c.PasswordFailuresPerIP, &l.PasswordFailuresPerIP},
		{c.TokenFailuresPerIP, &l.TokenFailuresPerIP},
	} {
		if m.src != nil {
			*m.dst = ratelimit.Limit{Max: m.src.Max, Window: time.Duration(m.src.Window)}
		}
	}
	if c.CodeTriesPerRecord > 0 {
		l.CodeTriesPerRecord = c.CodeTriesPerRecord
	}
	l.DistinctSubaddresses = c.CodeSendPlusAddressing == "distinct"
	return l
}

// protections gives the API the runtime's rate limiter (on the shared store when there is one)
// and its view of the request: Caddy's client IP (which honours trusted_proxies) and request UUID.
func (h *Handler) protections(limiter *ratelimit.Limiter) api.Protections {
	return api.Protections{
		Limiter:  limiter,
		Limits:   h.RateLimits.limits(),
		ClientIP: clientIP,
		RequestID: func(r *http.Request) string {
			if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
				return repl.ReplaceAll("{http.request.uuid}", "")
			}
			return ""
		},
	}
}

// unmarshalRateLimits parses:
//
//	rate_limits {
//		code_send_per_identifier  <max> <window> | off
//		code_send_per_user        <max> <window> | off
//		code_send_per_ip          <max> <window> | off
//		code_send_plus_addressing fold|distinct
//		code_tries_per_record     <max>
//		code_check_per_user       <max> <window> | off
//		password_failures_per_ip  <max> <window> | off
//		token_failures_per_ip     <max> <window> | off
//	}
func (h *Handler) unmarshalRateLimits(d *caddyfile.Dispenser) error {
	if h.RateLimits == nil {
		h.RateLimits = new(RateLimitsConfig)
	}
	c := h.RateLimits
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		var dst **RateLimit
		switch name {
		case "code_send_per_identifier":
			dst = &c.CodeSendPerIdentifier
		case "code_send_per_user":
			dst = &c.CodeSendPerUser
		case "code_send_per_ip":
			dst = &c.CodeSendPerIP
		case "code_check_per_user":
			dst = &c.CodeCheckPerUser
		case "password_failures_per_ip":
			dst = &c.PasswordFailuresPerIP
		case "token_failures_per_ip":
			dst = &c.TokenFailuresPerIP
		case "code_send_plus_addressing":
			if !d.NextArg() || (d.Val() != "fold" && d.Val() != "distinct") || d.NextArg() {
				return d.Errf("code_send_plus_addressing: want fold or distinct")
			}
			c.CodeSendPlusAddressing = d.Val()
			continue
		case "code_tries_per_record":
			if err := intArg(d, &c.CodeTriesPerRecord); err != nil {
				return err
			}
			if c.CodeTriesPerRecord < 1 {
				return d.Errf("code_tries_per_record must be at least 1")
			}
			continue
		default:
			if name == "password_failures" { // the option of earlier versions
				return d.Errf("password_failures is gone: password verification is locked per user by the sign-in experience's sentinelPolicy (set it at the core); password_failures_per_ip adds a per-address limit")
			}
			return d.Errf("unrecognized rate_limits option %q", name)
		}
		args := d.RemainingArgs()
		if len(args) == 1 && args[0] == "off" {
			*dst = &RateLimit{}
			continue
		}
		if len(args) != 2 {
			return d.Errf("%s: want <max> <window> or off", name)
		}
		var lim RateLimit
		var err error
		if lim.Max, err = strconv.Atoi(args[0]); err != nil || lim.Max < 1 {
			return d.Errf("%s: max %q must be a number of at least 1", name, args[0])
		}
		w, err := caddy.ParseDuration(args[1])
		if err != nil || w <= 0 {
			return d.Errf("%s: invalid window %q", name, args[1])
		}
		lim.Window = caddy.Duration(w)
		*dst = &lim
	}
	return nil
}
