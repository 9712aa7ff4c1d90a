package auth

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/maypok86/otter/v2"
	"golang.org/x/sync/singleflight"

	"github.com/accountedge/caddy-account-api/accountapi/apierror"
	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
	"github.com/accountedge/caddy-account-api/accountapi/store"
)

// Introspector asks the identity core about an opaque token.
type Introspector interface {
	Introspect(ctx context.Context, token string) (identitycore.Introspection, error)
}

// Config configures an Authenticator.
type Config struct {
	// Introspector validates opaque tokens.
	Introspector Introspector
	// JWT, when set, validates JWT access tokens locally; nil sends every token to introspection.
	JWT *JWTVerifier
	// Keyer derives cache keys from tokens.
	Keyer *store.Keyer
	// Shared is the second-level cache (Redis); nil when there is none.
	Shared store.Store
	// MaxTTL bounds how long a positive answer is cached; NegativeTTL how long an inactive one is.
	MaxTTL, NegativeTTL time.Duration
	// MaxEntries bounds the in-process cache.
	MaxEntries int
	// OnStoreError is told about shared-store failures (which only cost a cache miss).
	OnStoreError func(error)
	// DisableLocal skips the in-process cache: every lookup goes to Shared (benchmarks of the
	// shared layer, or deployments that want revocations seen by every instance at once).
	DisableLocal bool
	// Metrics, when set, is told about cache lookups and coalesced introspections.
	Metrics Metrics
}

// Metrics receives cache events. Implementations must be cheap and safe for concurrent use: they
// run on every request. layer is "local" or "shared"; kind is "token" for an active token's
// answer and "negative" for an inactive one (a miss is always "token": its kind is unknown).
type Metrics interface {
	CacheResult(layer, kind string, hit bool)
	CoalescedWait(kind string)
}

// noMetrics is the default Metrics: it keeps the hot path free of nil checks.
type noMetrics struct{}

func (noMetrics) CacheResult(string, string, bool) {}
func (noMetrics) CoalescedWait(string)             {}

// kindOf names an answer for Metrics.
func kindOf(ans answer) string {
	if ans.Active {
		return "token"
	}
	return "negative"
}

// Authenticator turns an Authorization header into a Principal, or a Logto-shaped error.
type Authenticator struct {
	cfg   Config
	local *otter.Cache[string, answer]
	group singleflight.Group
	now   func() time.Time
}

// New returns an Authenticator.
func New(cfg Config) *Authenticator {
	if cfg.OnStoreError == nil {
		cfg.OnStoreError = func(error) {}
	}
	if cfg.Metrics == nil {
		cfg.Metrics = noMetrics{}
	}
	return &Authenticator{
		cfg: cfg,
		local: otter.Must(&otter.Options[string, answer]{
			MaximumSize: cfg.MaxEntries,
			ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, answer]) time.Duration {
				return e.Value.ttl(time.Now(), cfg.MaxTTL, cfg.NegativeTTL)
			}),
		}),
		now: time.Now,
	}
}

// Close stops the in-process cache's background clean-up.
func (a *Authenticator) Close() { a.local.StopAllGoroutines() }

// Authenticate validates the request's Authorization header, from the caches when they hold an
// answer for the token. Errors are *apierror.Error values ready to send.
func (a *Authenticator) Authenticate(ctx context.Context, header string) (Principal, error) {
	return a.authenticate(ctx, header, false)
}

// Revalidate is Authenticate without the caches: sensitive writes ask the core again, so a
// token revoked since it was cached cannot change credentials. The fresh answer is cached.
func (a *Authenticator) Revalidate(ctx context.Context, header string) (Principal, error) {
	return a.authenticate(ctx, header, true)
}

func (a *Authenticator) authenticate(ctx context.Context, header string, fresh bool) (Principal, error) {
	token, err := bearerToken(header)
	if err != nil {
		return Principal{}, err
	}
	key := a.cfg.Keyer.Key("tok", token)
	ans, ok := answer{}, false
	if !fresh && !a.cfg.DisableLocal {
		ans, ok = a.local.GetIfPresent(key)
		if ok {
			a.cfg.Metrics.CacheResult("local", kindOf(ans), true)
		} else {
			a.cfg.Metrics.CacheResult("local", "token", false)
		}
	}
	if !ok {
		if ans, err = a.load(ctx, key, token, fresh); err != nil {
			return Principal{}, err
		}
	}
	return ans.check(a.now())
}

// maxTokenLength bounds what is hashed, cached or sent to the core: Logto's opaque tokens are 43
// characters and its JWTs well under 2 KiB.
const maxTokenLength = 4096

// bearerToken extracts the token as Logto's koaOidcAuth does (reference §1.3).
func bearerToken(header string) (string, error) {
	if header == "" {
		return "", apierror.HeaderMissing
	}
	if !strings.HasPrefix(header, "Bearer") {
		return "", apierror.TokenTypeUnsupported
	}
	token := strings.TrimPrefix(header, "Bearer ")
	if token == header || token == "" || len(token) > maxTokenLength || strings.ContainsAny(token, " \t") {
		return "", apierror.Unauthorized
	}
	return token, nil
}

// check runs the per-request checks on a (possibly cached) answer: they never come from the
// cache, so a cached answer cannot outlive the token.
func (ans answer) check(now time.Time) (Principal, error) {
	p := ans.Principal
	switch {
	case !ans.Active, p.Subject == "":
		return Principal{}, apierror.Unauthorized
	case p.ExpiresAt != 0 && now.Unix() >= p.ExpiresAt:
		return Principal{}, apierror.Unauthorized
	// RFC 7662 lets a core introspect refresh tokens too: only access tokens open this API.
	case ans.TokenType != "" && !strings.EqualFold(ans.TokenType, "Bearer") &&
		ans.TokenType != "access_token":
		return Principal{}, apierror.Unauthorized
	case !p.HasScope("openid"):
		return Principal{}, apierror.Forbidden
	}
	return p, nil
}

// load finds the answer for one token in the shared store or at the core. Concurrent loads of
// one token are coalesced into one; each waiter still honours its own context.
func (a *Authenticator) load(ctx context.Context, key, token string, fresh bool) (answer, error) {
	flight := key
	if fresh {
		flight = "fresh:" + key
	}
	leader := false
	ch := a.group.DoChan(flight, func() (any, error) {
		leader = true
		// Detached from the first caller: one client going away must not fail the others.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if !fresh {
			if ans, ok := a.fromShared(ctx, key); ok {
				if !a.cfg.DisableLocal {
					a.local.Set(key, ans)
				}
				return ans, nil
			}
		}
		done, err := a.admit(ctx, key)
		if err != nil {
			return answer{}, err
		}
		ans, err := a.validate(ctx, token)
		if err != nil {
			done(false) // the core's failure, not the token's
			return answer{}, err
		}
		_, refused := ans.check(a.now())
		done(refused != nil)
		a.remember(ctx, key, ans)
		return ans, nil
	})
	select {
	case <-ctx.Done():
		return answer{}, apierror.CoreUnavailable.WithCause(ctx.Err())
	case res := <-ch:
		if !leader {
			a.cfg.Metrics.CoalescedWait("token")
		}
		if res.Err != nil {
			return answer{}, res.Err
		}
		return res.Val.(answer), nil
	}
}

func (a *Authenticator) fromShared(ctx context.Context, key string) (answer, bool) {
	if a.cfg.Shared == nil {
		return answer{}, false
	}
	b, err := a.cfg.Shared.Get(ctx, key)
	if err != nil {
		a.cfg.Metrics.CacheResult("shared", "token", false)
		if !errors.Is(err, store.ErrNotFound) {
			a.cfg.OnStoreError(err)
		}
		return answer{}, false
	}
	var ans answer
	if err := json.Unmarshal(b, &ans); err != nil || a.revokedAfterCaching(ctx, ans) {
		a.cfg.Metrics.CacheResult("shared", "token", false)
		return answer{}, false
	}
	a.cfg.Metrics.CacheResult("shared", kindOf(ans), true)
	return ans, true
}

func (a *Authenticator) remember(ctx context.Context, key string, ans answer) {
	ans.CachedAt = a.now().UnixMilli()
	ttl := ans.ttl(a.now(), a.cfg.MaxTTL, a.cfg.NegativeTTL)
	if ttl <= 0 {
		return
	}
	if !a.cfg.DisableLocal {
		a.local.Set(key, ans)
	}
	if a.cfg.Shared == nil {
		return
	}
	b, _ := json.Marshal(ans)
	if err := a.cfg.Shared.Set(ctx, key, b, ttl); err != nil {
		a.cfg.OnStoreError(err)
	}
}

// validate asks the authority for this token: the JWKS for a JWT (when configured), the core's
// introspection otherwise. A failure to get an answer is an error, never access.
func (a *Authenticator) validate(ctx context.Context, token string) (answer, error) {
	if a.cfg.JWT != nil && looksLikeJWT(token) {
		return a.cfg.JWT.verify(ctx, token)
	}
	in, err := a.cfg.Introspector.Introspect(ctx, token)
	if err != nil {
		return answer{}, apierror.CoreUnavailable.WithCause(err)
	}
	return answer{
		Active:    in.Active,
		TokenType: in.TokenType,
		Principal: Principal{
			Subject:   in.Subject,
			ClientID:  in.ClientID,
			Scopes:    splitScope(in.Scope),
			SessionID: in.SessionID,
			ExpiresAt: in.ExpiresAt,
		},
	}, nil
}

// Gate is consulted before the Authenticator asks the core (introspection or JWKS) about a token
// it has no cached answer for: an error refuses the token unasked; done hears whether the
// answer refused the token. Callers bound what unknown tokens can make the core do with it
// (per client address, say); a token with a valid answer in the in-process cache is never gated,
// even when a sensitive route asks the core again about it.
type Gate func(ctx context.Context) (done func(refused bool), err error)

type gateKey struct{}

// WithGate returns ctx carrying gate for the Authenticator.
func WithGate(ctx context.Context, gate Gate) context.Context {
	return context.WithValue(ctx, gateKey{}, gate)
}

// admit runs the request's gate, if any, unless the token is already known to be valid.
func (a *Authenticator) admit(ctx context.Context, key string) (done func(refused bool), err error) {
	gate, _ := ctx.Value(gateKey{}).(Gate)
	if gate == nil {
		return func(bool) {}, nil
	}
	if !a.cfg.DisableLocal {
		if ans, ok := a.local.GetIfPresent(key); ok {
			if _, err := ans.check(a.now()); err == nil {
				return func(bool) {}, nil
			}
		}
	}
	return gate(ctx)
}

// looksLikeJWT is a cheap shape test: three dot-separated parts.
func looksLikeJWT(token string) bool { return strings.Count(token, ".") == 2 }
