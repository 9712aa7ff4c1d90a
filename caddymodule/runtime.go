package caddymodule

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/accountedge/caddy-account-api/accountapi/accountcenter"
	"github.com/accountedge/caddy-account-api/accountapi/auth"
	"github.com/accountedge/caddy-account-api/accountapi/cache"
	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
	"github.com/accountedge/caddy-account-api/accountapi/identitycore/logto"
	"github.com/accountedge/caddy-account-api/accountapi/invalidation"
	"github.com/accountedge/caddy-account-api/accountapi/profilecache"
	"github.com/accountedge/caddy-account-api/accountapi/ratelimit"
	"github.com/accountedge/caddy-account-api/accountapi/store"
)

// What a `caddy reload` must not throw away lives in two objects shared through runtimes, as
// mholt/caddy-ratelimit and reverse_proxy keep their state: each configuration loads them by a
// key made of what must be equal to share them, and releases them in Cleanup; the last release
// stops them. A request still running on an old configuration reaches only objects the new
// configuration shares, or stopped ones that keep answering.
//
//   - state: the deployment's identity (core, gateway client, cache key, Redis): the core client
//     and its Management API token, verification records, rate-limit counters and lockouts;
//   - runtime: state plus the cache settings: token answers, user records, account-center
//     settings, the invalidation bus and the JWKS. A reload that changes a cache setting gets
//     new caches, and keeps the records and counters.
var runtimes = caddy.NewUsagePool()

// state is the part of a deployment that only its identity decides.
type state struct {
	core     *logto.Client
	keyer    *store.Keyer
	shared   *store.Redis // nil without Redis
	records  store.Store
	signOuts store.Store // the sign-outs a core asked a browser to confirm (watch.go)
	limiter  *ratelimit.Limiter
	redisKey string // in redisPool; "" without Redis
	memory   []*store.Memory
}

// Destruct implements caddy.Destructor.
func (s *state) Destruct() error {
	s.limiter.Close()
	for _, m := range s.memory {
		m.Close()
	}
	if s.redisKey != "" {
		_, err := redisPool.Delete(s.redisKey)
		return err
	}
	return nil
}

// runtime is the shared part that the cache settings decide too.
type runtime struct {
	st       *state
	logger   *zap.Logger
	authn    *auth.Authenticator
	profiles *profilecache.Cache   // nil when the profile cache is off
	settings *accountcenter.Cached // nil with static settings
	source   accountcenter.Source
	signIn   *cache.Value[*identitycore.SignInExperience]
	apiCore  identitycore.Core
	bus      *invalidation.Bus // nil without Redis
	cancel   context.CancelFunc
	// Shared-store failures met after a request's work, each logger built once so that its
	// throttle holds across calls.
	invalidationFailed, tokenCacheFailed func(error)
}

// Destruct implements caddy.Destructor.
func (rt *runtime) Destruct() error {
	rt.cancel()
	if rt.bus != nil {
		rt.bus.Close() // before the Redis client goes back to its pool, which may close it
	}
	if rt.profiles != nil {
		rt.profiles.Close()
	}
	if rt.settings != nil {
		rt.settings.Close()
	}
	rt.signIn.Close()
	rt.authn.Close()
	return nil
}

// poolKey hashes the parts of a configuration that must be equal to share an object.
func poolKey(kind string, parts ...any) string {
	b, _ := json.Marshal(parts)
	sum := sha256.Sum256(b)
	return "account_api." + kind + "." + hex.EncodeToString(sum[:])
}

// stateKeyOf is what must be equal to share a state. Secrets enter it hashed.
func (h *Handler) stateKeyOf() (string, error) {
	redisKey := ""
	var prefix string
	if h.Redis != nil {
		k, _, err := h.Redis.poolKey()
		if err != nil {
			return "", err
		}
		redisKey, prefix = k, h.Redis.KeyPrefix
	}
	return poolKey("state", h.CoreURL, h.ClientID, sha256.Sum256([]byte(h.ClientSecret)),
		h.ManagementResource, h.ManagementScope, h.CoreTimeout, sha256.Sum256(h.cacheSecret()), redisKey, prefix), nil
}

// runtimeKeyOf adds the cache settings to the state's key.
func (h *Handler) runtimeKeyOf(stateKey string) string {
	return poolKey("runtime", stateKey, h.TokenCacheTTL, h.NegativeCacheTTL, h.TokenCacheSize, h.JWT,
		h.ProfileCache, h.DisableLocalCache, h.AccountCenter, h.PolicyCacheTTL)
}

// loadState returns the state of this configuration's identity, building it if no loaded
// configuration shares it.
func (h *Handler) loadState(key string) (*state, error) {
	v, _, err := runtimes.LoadOrNew(key, func() (caddy.Destructor, error) {
		core, err := logto.New(logto.Config{
			Endpoint:     h.CoreURL,
			ClientID:     h.ClientID,
			ClientSecret: h.ClientSecret,
			Resource:     h.ManagementResource,
			Scope:        h.ManagementScope,
			Timeout:      time.Duration(h.CoreTimeout),
			Transport:    timedTransport{next: http.DefaultTransport},
		})
		if err != nil {
			return nil, err
		}
		keyer, err := store.NewKeyer(h.cacheSecret())
		if err != nil {
			return nil, err
		}
		s := &state{core: core, keyer: keyer}
		var counter store.Counter
		if h.Redis != nil {
			client, redisKey, err := h.Redis.client()
			if err != nil {
				return nil, err
			}
			s.redisKey = redisKey
			s.shared = store.NewRedis(client, h.Redis.KeyPrefix, time.Duration(h.Redis.Timeout))
			s.records, s.signOuts, counter = s.shared, s.shared, s.shared
		} else {
			// Verification records live in process with one instance; the sign-outs apart,
			// so that no flood of them can evict a step-up record.
			records, signOuts := store.NewMemory(100_000), store.NewMemory(10_000)
			s.records, s.signOuts, s.memory = records, signOuts, []*store.Memory{records, signOuts}
		}
		s.limiter = ratelimit.New(counter, keyer, storeErrorLogger(h.logger, "rate_limits"))
		return s, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*state), nil
}

// loadRuntime returns the runtime of this configuration, building it if no loaded
// configuration shares it.
func (h *Handler) loadRuntime(st *state, key string) (*runtime, error) {
	v, _, err := runtimes.LoadOrNew(key, func() (caddy.Destructor, error) { return h.newRuntime(st) })
	if err != nil {
		return nil, err
	}
	return v.(*runtime), nil
}

func (h *Handler) newRuntime(st *state) (*runtime, error) {
	// Background work (the JWKS refresh) lives as long as the runtime, not the configuration.
	bg, cancel := context.WithCancel(context.Background())
	rt := &runtime{st: st, logger: h.logger, cancel: cancel, apiCore: st.core,
		invalidationFailed: storeErrorLogger(h.logger, "invalidation"), tokenCacheFailed: storeErrorLogger(h.logger, "token_cache")}
	var indexed store.Indexed // nil without Redis
	if st.shared != nil {
		indexed = st.shared
		rt.bus = invalidation.New(st.shared.Client(), h.Redis.KeyPrefix+"invalidate", time.Duration(h.Redis.Timeout))
	}

	// The API reads users through the profile cache; every other call goes to the core as is.
	if !h.ProfileCache.Disabled {
		rt.profiles = profilecache.New(profilecache.Config{
			Core:         st.core,
			Keyer:        st.keyer,
			Shared:       indexed,
			DisableLocal: h.DisableLocalCache,
			MaxAge:       time.Duration(h.ProfileCache.MaxAge),
			MaxEntries:   h.ProfileCache.MaxEntries,
			Metrics:      cacheMetrics{},
			OnStoreError: storeErrorLogger(h.logger, "profile_cache"),
		})
		rt.apiCore = rt.profiles
	}

	var jwtVerifier *auth.JWTVerifier
	if h.JWT != nil {
		var err error
		jwtVerifier, err = auth.NewJWTVerifier(bg, auth.JWTConfig{
			JWKSURL:    h.JWT.JWKSURL,
			Issuer:     h.JWT.Issuer,
			Audiences:  h.JWT.Audiences,
			Algorithms: h.JWT.Algorithms,
			Leeway:     time.Duration(h.JWT.Leeway),
			HTTPClient: &http.Client{Timeout: time.Duration(h.CoreTimeout)},
		})
		if err != nil {
			cancel()
			return nil, err
		}
	}

	if h.AccountCenter.static() {
		static, err := h.AccountCenter.settings()
		if err != nil {
			cancel()
			return nil, err
		}
		rt.source = accountcenter.Static(static)
	} else {
		rt.settings = accountcenter.NewCached(st.core.AccountCenter, time.Duration(h.AccountCenter.CacheTTL), settingsStaleIfError, cacheMetrics{})
		rt.source = rt.settings
	}
	rt.signIn = cache.NewValue("sign_in_experience", st.core.SignInExperience, time.Duration(h.PolicyCacheTTL), settingsStaleIfError, cacheMetrics{})

	var userRecordKey func(string) string
	if rt.profiles != nil {
		userRecordKey = rt.profiles.SharedKey
	}
	rt.authn = auth.New(auth.Config{
		Introspector:  st.core,
		UserRecordKey: userRecordKey,
		JWT:           jwtVerifier,
		Keyer:         st.keyer,
		Shared:        indexed,
		OnInactive:    rt.tokenInactive,
		MaxTTL:        time.Duration(h.TokenCacheTTL),
		NegativeTTL:   time.Duration(h.NegativeCacheTTL),
		MaxEntries:    h.TokenCacheSize,
		OnStoreError:  rt.tokenCacheFailed,
		DisableLocal:  h.DisableLocalCache,
		Metrics:       cacheMetrics{},
	})

	if rt.bus != nil {
		rt.bus.Start(invalidation.Handlers{
			Event: rt.peerEvent,
			// Messages may have been lost while the subscription was down: forget what they
			// could have voided.
			Resync: func() {
				if rt.profiles != nil {
					rt.profiles.Flush()
					metrics.invalidations.WithLabelValues("resync").Inc()
				}
				rt.authn.FlushLocal()
			},
			Error: rt.invalidationFailed,
		})
	}
	return rt, nil
}

// peerEvent applies what another instance published. The sender has voided Redis already:
// only in-process entries go.
func (rt *runtime) peerEvent(_ context.Context, e invalidation.Event) {
	if rt.profiles != nil && e.UserID != "" {
		rt.profiles.InvalidateLocal(e.UserID)
		metrics.invalidations.WithLabelValues("peer").Inc()
	}
	switch e.Kind {
	case invalidation.Credentials:
		rt.authn.EvictSubjectLocal(e.UserID)
	case invalidation.Token:
		rt.authn.EvictKeyLocal(e.Key)
	case invalidation.Settings:
		rt.settingsChangedLocal(e.Key)
	}
}

// settingsStaleIfError is how long past their TTL settings read from the core still serve
// while the core fails: cached reads keep working through an outage longer than cache_ttl.
const settingsStaleIfError = 10 * time.Minute

// Settings documents the site watches on their way to the core.
const (
	accountCenterDoc = "account_center"
	signInDoc        = "sign_in_experience"
)

// settingsChanged reloads a settings document that an admin changed through the site, here
// at once and on every instance.
func (rt *runtime) settingsChanged(doc string) {
	rt.settingsChangedLocal(doc)
	if rt.bus == nil {
		return
	}
	if err := rt.bus.Publish(context.Background(), invalidation.Event{Kind: invalidation.Settings, Key: doc}); err != nil {
		rt.invalidationFailed(err)
	}
}

func (rt *runtime) settingsChangedLocal(doc string) {
	switch doc {
	case accountCenterDoc:
		if rt.settings != nil {
			rt.settings.Invalidate()
		}
	case signInDoc:
		rt.signIn.Invalidate()
	}
}

// userChanged returns what to do when the user with userID may have changed (source names the
// way the module heard of it, for metrics): drop the cached record here and in Redis, void the
// cached answers about the user's tokens when their credentials changed, and tell the other
// instances. alwaysCredentials treats every change as one of credentials: a webhook or an admin
// write may have revoked the user's tokens, and only the core knows.
//
// The work runs on its own context, bounded by afterWriteTimeout: the core has accepted the
// change, and a client going away must not leave stale answers behind. Voiding the token answers
// in Redis is retried; an error means it could not be recorded (a webhook answers 5xx for Logto
// to deliver again).
func (rt *runtime) userChanged(source string, alwaysCredentials bool) func(ctx context.Context, userID string, credentials bool) error {
	invalidations := metrics.invalidations.WithLabelValues(source)
	return func(ctx context.Context, userID string, credentials bool) error {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), afterWriteTimeout)
		defer cancel()
		credentials = credentials || alwaysCredentials
		var err error
		if rt.profiles != nil {
			err = retry(ctx, func() error { return rt.profiles.Invalidate(ctx, userID) })
			invalidations.Inc()
		}
		if credentials {
			err = errors.Join(err, retry(ctx, func() error { return rt.authn.EvictSubject(ctx, userID) }))
		}
		if rt.bus != nil {
			kind := invalidation.Profile
			if credentials {
				kind = invalidation.Credentials
			}
			if perr := rt.bus.Publish(ctx, invalidation.Event{UserID: userID, Kind: kind}); perr != nil {
				rt.invalidationFailed(perr)
			}
		}
		return err
	}
}

// afterWriteTimeout bounds the work after a write (cache invalidation, revocation records).
const afterWriteTimeout = 5 * time.Second

// retry runs op up to three times, a little apart, while ctx lives.
func retry(ctx context.Context, op func() error) error {
	var err error
	for wait := 50 * time.Millisecond; ; wait *= 4 {
		if err = op(); err == nil || wait > 800*time.Millisecond {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// logged adapts a change handler that reports failures to one that logs them (the change has
// already succeeded at the core; nothing is left to refuse).
func logged(f func(context.Context, string, bool) error, log func(error)) func(context.Context, string, bool) {
	return func(ctx context.Context, userID string, credentials bool) {
		if err := f(ctx, userID, credentials); err != nil {
			log(err)
		}
	}
}

// tokenInactive tells the other instances that a token cached as active is not (the core said
// so to a write): they drop their answer, and find the refusal this instance shared.
func (rt *runtime) tokenInactive(key string) {
	if rt.bus == nil {
		return
	}
	if err := rt.bus.Publish(context.Background(), invalidation.Event{Kind: invalidation.Token, Key: key}); err != nil {
		rt.invalidationFailed(err)
	}
}

// tokenRevoked drops the cached answer about a token revoked through the site (RFC 7009 at the
// core answered 200), here, in Redis and on every instance.
func (rt *runtime) tokenRevoked(ctx context.Context, token string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), afterWriteTimeout)
	defer cancel()
	key, err := rt.authn.EvictToken(ctx, token)
	if err != nil {
		rt.tokenCacheFailed(err)
	}
	rt.tokenInactive(key)
}

// storeErrorLogger counts shared-store failures of a component and logs them at most once every
// 10 seconds: during a Redis outage every request would otherwise log one.
func storeErrorLogger(logger *zap.Logger, component string) func(error) {
	var last atomic.Int64
	errs := metrics.redisErrors.WithLabelValues(component)
	return func(err error) {
		errs.Inc()
		now, prev := time.Now().UnixNano(), last.Load()
		if now-prev < int64(10*time.Second) || !last.CompareAndSwap(prev, now) {
			return
		}
		logger.Warn("shared cache unavailable; serving from the in-process cache and the core", zap.Error(err))
	}
}

// Interface guards
var (
	_ caddy.Destructor = (*state)(nil)
	_ caddy.Destructor = (*runtime)(nil)
)
