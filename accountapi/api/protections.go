package api

import (
	"context"
	"crypto/rand"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/accountedge/caddy-account-api/accountapi/apierror"
	"github.com/accountedge/caddy-account-api/accountapi/auth"
	"github.com/accountedge/caddy-account-api/accountapi/policy"
	"github.com/accountedge/caddy-account-api/accountapi/ratelimit"
	"github.com/accountedge/caddy-account-api/accountapi/store"
	"github.com/accountedge/caddy-account-api/accountapi/verification"
)

// Protections are the edge's own defences of the sensitive routes (rate limits, the pwned
// list) and what their audit events need from the server (client IP, request id).
type Protections struct {
	// Limiter counts attempts; share its counter (Redis) so the limits hold across instances.
	// Default: an in-process limiter.
	Limiter Limiter
	// Limits are the limits applied. The zero value means DefaultLimits.
	Limits Limits
	// Pwned knows breached passwords. Default: policy.NewOfflinePwned.
	Pwned policy.PwnedChecker
	// ClientIP returns the caller's address (Caddy's, which honours trusted proxies). Default:
	// the host of RemoteAddr.
	ClientIP func(*http.Request) string
	// RequestID returns an id that ties an audit event to the server's other logs.
	RequestID func(*http.Request) string
}

// Limiter counts attempts per rule and subject (ratelimit.Limiter).
type Limiter interface {
	// Take records one event and says whether it is within lim.
	Take(ctx context.Context, rule, subject string, lim ratelimit.Limit) ratelimit.Decision
	// Reserve takes one event before the work it stands for; release gives it back.
	Reserve(ctx context.Context, rule, subject string, lim ratelimit.Limit) (release func(), d ratelimit.Decision)
	// Attempt reserves an attempt under Logto's sentinel policy; settle ends it.
	Attempt(ctx context.Context, rule, subject string, p ratelimit.Sentinel) (settle func(ctx context.Context, failed bool) ratelimit.Verdict, v ratelimit.Verdict)
	// Lock serialises the read-then-write rules of one subject until unlock.
	Lock(ctx context.Context, rule, subject string, ttl time.Duration) (unlock func(), err error)
}

// Limits are the edge's own limits. Password verification is also bound by Logto's sentinel
// policy, read from the sign-in experience (see verifyPassword).
type Limits struct {
	// CodeSendPerIdentifier bounds codes sent to one recipient, its address normalised (see
	// recipientKey) (Logto: 10 per 10 minutes).
	CodeSendPerIdentifier ratelimit.Limit
	// CodeSendPerUser bounds codes one user sends, whatever the addresses and client IPs.
	CodeSendPerUser ratelimit.Limit
	// CodeSendPerIP bounds codes sent from one client IP, whatever the users.
	CodeSendPerIP ratelimit.Limit
	// DistinctSubaddresses counts "name+tag@example.com" as its own recipient; by default it is
	// "name@example.com" (most providers deliver both to one mailbox).
	DistinctSubaddresses bool
	// CodeTriesPerRecord is how many codes may be tried on one record (Logto: 10); the record
	// is dead after that (400 verification_code.exceed_max_try, as Logto).
	CodeTriesPerRecord int
	// CodeCheckPerUser bounds code checks of one user over all records.
	CodeCheckPerUser ratelimit.Limit
	// PasswordFailuresPerIP optionally bounds wrong passwords from one client IP, on top of the
	// per-user sentinel lockout. Default: off.
	PasswordFailuresPerIP ratelimit.Limit
	// TokenFailuresPerIP bounds the failed token checks of one client IP: once it is reached,
	// tokens that would need asking the core are refused (429) until the window ends, so random
	// tokens cannot make the edge an introspection amplifier. Tokens already known to be valid
	// pass.
	TokenFailuresPerIP ratelimit.Limit
}

// DefaultLimits are the limits used when none are configured.
func DefaultLimits() Limits {
	return Limits{
		CodeSendPerIdentifier: ratelimit.Limit{Max: 10, Window: 10 * time.Minute},
		CodeSendPerUser:       ratelimit.Limit{Max: 20, Window: 10 * time.Minute},
		CodeSendPerIP:         ratelimit.Limit{Max: 50, Window: 10 * time.Minute},
		CodeTriesPerRecord:    10,
		CodeCheckPerUser:      ratelimit.Limit{Max: 30, Window: 10 * time.Minute},
		TokenFailuresPerIP:    ratelimit.Limit{Max: 60, Window: time.Minute},
	}
}

func (p Protections) withDefaults() Protections {
	if p.Limiter == nil {
		secret := make([]byte, 32)
		_, _ = rand.Read(secret)
		keyer, _ := store.NewKeyer(secret) // 32 bytes: cannot fail
		p.Limiter = ratelimit.New(nil, keyer, nil)
	}
	if p.Limits == (Limits{}) {
		p.Limits = DefaultLimits()
	}
	if p.Pwned == nil {
		p.Pwned = policy.NewOfflinePwned()
	}
	if p.ClientIP == nil {
		p.ClientIP = func(r *http.Request) string {
			host, _, err := net.SplitHostPort(r.RemoteAddr)
			if err != nil {
				return r.RemoteAddr
			}
			return host
		}
	}
	if p.RequestID == nil {
		p.RequestID = func(r *http.Request) string { return r.Header.Get("X-Request-Id") }
	}
	return p
}

// clientNetwork is the subject of the per-address limits: the client's IPv4 address, or the
// /64 of its IPv6 address. An IPv6 subscriber is given a whole /64 (RFC 6177) and can send from
// any of its 2^64 addresses, so counting addresses would give it a fresh budget per request.
func (p Protections) clientNetwork(r *http.Request) string {
	ip := p.ClientIP(r)
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	if addr = addr.Unmap(); addr.Is4() {
		return addr.String() // one form for an IPv4 client, also on a dual-stack socket
	}
	return netip.PrefixFrom(addr.WithZone(""), 64).Masked().String()
}

// limited answers a refused attempt: err with a Retry-After header.
func limited(c *call, d ratelimit.Decision, err *apierror.Error) error {
	setRetryAfter(c.w, d.RetryAfter)
	return err
}

// setRetryAfter sets Retry-After to d in whole seconds, rounded up.
func setRetryAfter(w http.ResponseWriter, d time.Duration) {
	secs := int((d + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
}

// tokenGate bounds the failed token checks of the client address: each token the core must be
// asked about reserves one failure, given back when the token is good. Past the limit, such
// tokens are refused with 429 unasked (retry says for how long); tokens the edge has seen
// valid, and JWTs verified locally, are not gated (see auth.Gate).
func (h *Handler) tokenGate(ctx context.Context, r *http.Request, retry *atomic.Int64) context.Context {
	p := h.cfg.Protections
	if p.Limits.TokenFailuresPerIP.Off() {
		return ctx
	}
	return auth.WithGate(ctx, func(ctx context.Context) (func(refused bool), error) {
		release, d := p.Limiter.Reserve(ctx, "token-failures-ip", p.clientNetwork(r), p.Limits.TokenFailuresPerIP)
		if !d.Allowed {
			retry.Store(int64(d.RetryAfter))
			return nil, apierror.RateLimited
		}
		return func(refused bool) {
			if !refused {
				release()
			}
		}, nil
	})
}

// audit logs one structured event for an account change or a verification outcome. It never
// logs a token, a password, a code or a record id; err points at the route's result.
func (h *Handler) audit(c *call, operation string, fields []string, err *error) {
	result, code := "success", ""
	if *err != nil {
		result, code = "failure", apierror.As(*err).Code
	}
	h.cfg.Logger.Named("audit").Info("account api audit",
		zap.String("user_id", c.principal.Subject),
		zap.String("client_id", c.principal.ClientID),
		zap.String("operation", operation),
		zap.Strings("fields", fields),
		zap.String("result", result),
		zap.String("code", code),
		zap.String("client_ip", h.cfg.Protections.ClientIP(c.r)),
		zap.String("request_id", h.cfg.Protections.RequestID(c.r)))
}

// storeError is the answer when the record store fails: refuse cleanly rather than hand out or
// accept a record that may not exist.
func storeError(err error) error {
	if err == verification.ErrNotFound {
		return apierror.RecordNotFound
	}
	return apierror.StoreUnavailable.WithCause(err)
}
