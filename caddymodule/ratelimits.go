package caddymodule

import (
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/accountedge/caddy-account-api/accountapi/api"
	"github.com/accountedge/caddy-account-api/accountapi/ratelimit"
	"github.com/accountedge/caddy-account-api/accountapi/store"
)

// RateLimitsConfig sets the limits of the verification routes. Counters live in Redis when it
// is configured, so the limits hold across instances; a limit left out keeps its default.
// Refusals are 429 with Retry-After, except the per-record code tries, which end as Logto's
// 400 verification_code.exceed_max_try.
type RateLimitsConfig struct {
	// CodeSendPerIdentifier bounds the codes sent to one email address or phone number.
	// Default: 10 per 10m (Logto's own per-recipient limit).
	CodeSendPerIdentifier *RateLimit `json:"code_send_per_identifier,omitempty"`

	// CodeSendPerUser bounds the codes one user sends from one client IP. Default: 20 per 10m.
	CodeSendPerUser *RateLimit `json:"code_send_per_user,omitempty"`

	// CodeTriesPerRecord is how many codes may be tried on one verification record. Default: 10
	// (Logto's maxRetryAttempts).
	CodeTriesPerRecord int `json:"code_tries_per_record,omitempty"`

	// CodeCheckPerUser bounds the code checks of one user over all records. Default: 30 per 10m.
	CodeCheckPerUser *RateLimit `json:"code_check_per_user,omitempty"`

	// PasswordFailures locks password verification for a user and client IP after Max wrong
	// passwords, until Window has passed since the first. Default: 5 per 15m.
	PasswordFailures *RateLimit `json:"password_failures,omitempty"`
}

// RateLimit allows Max events per Window.
type RateLimit struct {
	// Max is the number of events allowed in a window.
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
		{c.CodeCheckPerUser, &l.CodeCheckPerUser},
		{c.PasswordFailures, &l.PasswordFailures},
	} {
		if m.src != nil {
			*m.dst = ratelimit.Limit{Max: m.src.Max, Window: time.Duration(m.src.Window)}
		}
	}
	if c.CodeTriesPerRecord > 0 {
		l.CodeTriesPerRecord = c.CodeTriesPerRecord
	}
	return l
}

// protections builds the API's rate limiter (on the shared store when there is one) and its
// view of the request: Caddy's client IP (which honours trusted_proxies) and request UUID.
func (h *Handler) protections(shared store.Store, keyer *store.Keyer) api.Protections {
	counter, _ := shared.(store.Counter)
	limiter := ratelimit.New(counter, keyer, h.storeErrorLogger("rate_limits"))
	h.closers = append(h.closers, limiter.Close)
	return api.Protections{
		Limiter: limiter,
		Limits:  h.RateLimits.limits(),
		ClientIP: func(r *http.Request) string {
			if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
				return ip
			}
			host, _, _ := net.SplitHostPort(r.RemoteAddr)
			return host
		},
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
//		code_send_per_identifier <max> <window>
//		code_send_per_user       <max> <window>
//		code_tries_per_record    <max>
//		code_check_per_user      <max> <window>
//		password_failures        <max> <window>
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
		case "code_check_per_user":
			dst = &c.CodeCheckPerUser
		case "password_failures":
			dst = &c.PasswordFailures
		case "code_tries_per_record":
			if err := intArg(d, &c.CodeTriesPerRecord); err != nil {
				return err
			}
			if c.CodeTriesPerRecord < 1 {
				return d.Errf("code_tries_per_record must be at least 1")
			}
			continue
		default:
			return d.Errf("unrecognized rate_limits option %q", name)
		}
		args := d.RemainingArgs()
		if len(args) != 2 {
			return d.Errf("%s: want <max> <window>", name)
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
