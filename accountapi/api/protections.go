package api

import (
	"context"
	"crypto/rand"
	"net"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/accountedge/caddy-account-api/accountapi/apierror"
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
	// Check says whether one more event would be within lim, recording none.
	Check(ctx context.Context, rule, subject string, lim ratelimit.Limit) ratelimit.Decision
	// Fail records one failure.
	Fail(ctx context.Context, rule, subject string, lim ratelimit.Limit)
}

// Limits are the rate limits of the verification routes.
type Limits struct {
	// CodeSendPerIdentifier bounds codes sent to one address (Logto: 10 per 10 minutes).
	CodeSendPerIdentifier ratelimit.Limit
	// CodeSendPerUser bounds codes one user sends from one client IP, whatever the addresses.
	CodeSendPerUser ratelimit.Limit
	// CodeTriesPerRecord is how many codes may be tried on one record (Logto: 10); the record
	// is dead after that (400 verification_code.exceed_max_try, as Logto).
	CodeTriesPerRecord int
	// CodeCheckPerUser bounds code checks of one user over all records.
	CodeCheckPerUser ratelimit.Limit
	// PasswordFailures locks password verification for a user and client IP after Max wrong
	// passwords, until Window has passed since the first one.
	PasswordFailures ratelimit.Limit
}

// DefaultLimits are the limits used when none are configured.
func DefaultLimits() Limits {
	return Limits{
		CodeSendPerIdentifier: ratelimit.Limit{Max: 10, Window: 10 * time.Minute},
		CodeSendPerUser:       ratelimit.Limit{Max: 20, Window: 10 * time.Minute},
		CodeTriesPerRecord:    10,
		CodeCheckPerUser:      ratelimit.Limit{Max: 30, Window: 10 * time.Minute},
		PasswordFailures:      ratelimit.Limit{Max: 5, Window: 15 * time.Minute},
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

// limited answers a refused attempt: err with a Retry-After header (whole seconds, rounded up).
func limited(c *call, d ratelimit.Decision, err *apierror.Error) error {
	secs := int((d.RetryAfter + time.Second - 1) / time.Second)
	c.w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	return err
}

// userAndIP is the subject of per-user limits: the user from this client address.
func (h *Handler) userAndIP(c *call) string {
	return c.principal.Subject + "|" + h.cfg.Protections.ClientIP(c.r)
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
