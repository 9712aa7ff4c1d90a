package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"github.com/accountedge/caddy-account-api/accountapi/apierror"
	"github.com/accountedge/caddy-account-api/accountapi/cache"
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
	Shared store.Indexed
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
	Metrics cache.Metrics
	// OnInactive, when set, is told the cache key of a token that was cached as active and that
	// the core now calls inactive (revoked): the other instances must drop it too.
	OnInactive func(key string)
	// UserRecordKey, when set, is the shared key of a user's cached record: an answer links to
	// it, so that a request missing both in process reads both from Redis in one round trip.
	UserRecordKey func(subject string) string
}

// kindOf names an answer for Metrics: "token" for an active token, "negative" for a refusal.
func kindOf(ans answer) string {
	if ans.active() {
		return "token"
	}
	return "negative"
}

// loadTimeout bounds one introspection, detached from the requests waiting for it.
const loadTimeout = 30 * time.Second

// Authenticator turns an Authorization header into a Principal, or a Logto-shaped error.
type Authenticator struct {
	cfg     Config
	answers *cache.Cache[answer]
	// seen marks the tokens the edge has found valid (on any instance, through the shared
	// store), keyed by the token's keyed hash and holding its exp: the gate never refuses them,
	// whatever their answer's cache says. A marker grants nothing; the token is still checked.
	seen *cache.Cache[int64]
	now  func() time.Time
}

// seenTTL bounds a marker of a token without exp. The others are kept seenGrace past the exp:
// a client retrying with its just-expired token is refused without the core, and uncounted.
const (
	seenTTL   = 24 * time.Hour
	seenGrace = 15 * time.Minute
)

// New returns an Authenticator.
func New(cfg Config) *Authenticator {
	if cfg.OnInactive == nil {
		cfg.OnInactive = func(string) {}
	}
	a := &Authenticator{cfg: cfg, now: time.Now}
	a.answers = cache.New(cache.Config[answer]{
		Kind:         "token",
		KindOf:       kindOf,
		Keyer:        cfg.Keyer,
		Shared:       cfg.Shared,
		SharedPrefix: "tok:",
		DisableLocal: cfg.DisableLocal,
		MaxEntries:   cfg.MaxEntries,
		TTL: func(ans answer) time.Duration {
			if !ans.active() {
				return cfg.NegativeTTL
			}
			return cfg.MaxTTL
		},
		Deadline: func(ans answer) time.Time {
			if ans.ExpiresAt == 0 {
				return time.Time{}
			}
			return time.Unix(ans.ExpiresAt, 0)
		},
		Subject: func(ans answer) string {
			if !ans.active() {
				return "" // a refusal is about no one
			}
			return ans.Subject
		},
		Link:         linkOf(cfg.UserRecordKey),
		Encode:       encodeAnswer,
		Decode:       decodeAnswer,
		LoadTimeout:  loadTimeout,
		Metrics:      cfg.Metrics,
		OnStoreError: cfg.OnStoreError,
	})
	a.seen = cache.New(cache.Config[int64]{
		Kind:         "seen",
		Keyer:        cfg.Keyer,
		Shared:       cfg.Shared,
		SharedPrefix: "seen:",
		// Always kept in process too: a marker only spares a valid token the gate, so it need
		// not follow revocations the way answers do (DisableLocal).
		MaxEntries: cfg.MaxEntries,
		TTL:        func(int64) time.Duration { return seenTTL },
		Deadline: func(exp int64) time.Time {
			if exp == 0 {
				return time.Time{}
			}
			return time.Unix(exp, 0).Add(seenGrace)
		},
		LoadTimeout:  loadTimeout,
		OnStoreError: cfg.OnStoreError,
	})
	return a
}

// linkOf links an active answer to its user's record.
func linkOf(recordKey func(string) string) func(answer) string {
	if recordKey == nil {
		return nil
	}
	return func(ans answer) string {
		if !ans.active() {
			return ""
		}
		return recordKey(ans.Subject)
	}
}

// Close stops the in-process cache's background clean-up.
func (a *Authenticator) Close() {
	a.answers.Close()
	a.seen.Close()
}

// Authenticate validates the request's Authorization header, from the caches when they hold an
// answer for the token. Errors are *apierror.Error values ready to send.
func (a *Authenticator) Authenticate(ctx context.Context, header string) (Principal, error) {
	token, err := bearerToken(header)
	if err != nil {
		return Principal{}, err
	}
	key := a.key(token)
	ans, err := a.answers.Get(ctx, key, func(ctx context.Context) (answer, error) {
		return a.validateGated(ctx, key, token)
	})
	if err != nil {
		return Principal{}, loadError(err)
	}
	return ans.check(a.now())
}

// Revalidate is Authenticate without the caches: writes ask the core again, so a token revoked
// since it was cached cannot change anything. The fresh answer replaces the cached one on both
// levels; when it says a token cached as active is now inactive, OnInactive tells the others.
func (a *Authenticator) Revalidate(ctx context.Context, header string) (Principal, error) {
	token, err := bearerToken(header)
	if err != nil {
		return Principal{}, err
	}
	key := a.key(token)
	// Whether some instance may hold an active answer: then a refusal must be told to them all.
	// A token never seen active (a guess, a typo) tells no one.
	prev, cached := a.answers.Peek(ctx, key)
	ans, err := a.answers.Refresh(ctx, key, func(ctx context.Context) (answer, error) {
		return a.validateGated(ctx, key, token)
	})
	if err != nil {
		return Principal{}, loadError(err)
	}
	if !ans.active() && cached && prev.active() {
		a.cfg.OnInactive(Printable(key))
	}
	return ans.check(a.now())
}

// loadError is what a request is told when its answer could not be had: the load's own
// *apierror.Error, or a 503 when the request stopped waiting (its context ended while it waited
// on a load, its own or another request's), so that it is never an unmapped 500.
func loadError(err error) error {
	if _, ok := errors.AsType[*apierror.Error](err); ok {
		return err
	}
	return apierror.CoreUnavailable.WithCause(err)
}

// key is the token's cache key: binary, the smallest in-process key (see Printable).
func (a *Authenticator) key(token string) string { return a.cfg.Keyer.Raw("tok", token) }

// Printable is the form of a cache key told to others (OnInactive, EvictToken, EvictKeyLocal):
// a keyed hash, no secret.
func Printable(key string) string { return base64.RawURLEncoding.EncodeToString([]byte(key)) }

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
	p := ans.principal()
	switch {
	case !ans.active(), p.Subject == "":
		return Principal{}, apierror.Unauthorized
	case p.ExpiresAt != 0 && now.Unix() >= p.ExpiresAt:
		return Principal{}, apierror.Unauthorized
	case !p.HasScope("openid"):
		return Principal{}, apierror.Forbidden
	}
	return p, nil
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
	return newAnswer(in.Active && isUserAccessToken(in), in.Subject, in.SessionID, grantOf(in.ClientID, in.Scope), in.ExpiresAt), nil
}

// Gate is consulted before the Authenticator asks the core about a token it has no cached
// answer for: an error refuses the token unasked; done hears whether the answer refused the
// token. Callers bound what unknown tokens can make the core do with it (failures per client
// address, say). It is not consulted for a token the edge has seen valid (on any instance, until
// the token's exp, which is then refused unasked), even when its cached answer expired or a
// write asks the core again, nor for a JWT when JWTs are verified locally: neither is what an
// amplification attack sends.
type Gate func(ctx context.Context) (done func(refused bool), err error)

type gateKey struct{}

// WithGate returns ctx carrying gate for the Authenticator.
func WithGate(ctx context.Context, gate Gate) context.Context {
	return context.WithValue(ctx, gateKey{}, gate)
}

// validateGated is validate behind the request's gate, if any. With a gate, a valid answer marks
// the token seen, and a refusal of a token seen valid (revoked) removes the mark; a token seen
// valid and now past its exp is refused unasked and uncounted.
func (a *Authenticator) validateGated(ctx context.Context, key, token string) (answer, error) {
	gate, _ := ctx.Value(gateKey{}).(Gate)
	if gate == nil || (a.cfg.JWT != nil && looksLikeJWT(token)) {
		return a.validate(ctx, token)
	}
	exp, seen := a.seen.Peek(ctx, key)
	if seen && exp != 0 && !a.now().Before(time.Unix(exp, 0)) {
		return answer{}, nil // valid until its exp, which has passed: no need to ask anyone
	}
	done := func(bool) {}
	if !seen {
		var err error
		if done, err = gate(ctx); err != nil {
			return answer{}, err
		}
	}
	ans, err := a.validate(ctx, token)
	if err != nil {
		done(false) // the core's failure, not the token's
		return answer{}, err
	}
	_, refused := ans.check(a.now())
	done(refused != nil)
	switch {
	case refused == nil && !seen:
		_, _ = a.seen.Refresh(ctx, key, func(context.Context) (int64, error) { return ans.ExpiresAt, nil })
	case refused != nil && seen:
		// Revoked: its requests count again. Should the store fail, it skips the gate until exp.
		if err := a.seen.Invalidate(ctx, key); err != nil {
			a.reportStoreError(err)
		}
	}
	return ans, nil
}

// reportStoreError tells OnStoreError, if set, about err.
func (a *Authenticator) reportStoreError(err error) {
	if a.cfg.OnStoreError != nil {
		a.cfg.OnStoreError(err)
	}
}

// looksLikeJWT is a cheap shape test: three dot-separated parts.
func looksLikeJWT(token string) bool { return strings.Count(token, ".") == 2 }

// isUserAccessToken reports whether an active introspection answer is about a user's access
// token, the only kind Logto's Account API accepts. oidc-provider also introspects refresh
// tokens (active, the user's sub, no token_type) and client-credentials tokens (no end user: no
// sub, or the client itself as sub).
func isUserAccessToken(in identitycore.Introspection) bool {
	return strings.EqualFold(in.TokenType, "Bearer") && in.Subject != "" && in.Subject != in.ClientID
}
