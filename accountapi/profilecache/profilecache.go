// Package profilecache keeps the identity core's user records (the source the account profile is
// filtered from) for a short while, so that a page load of GET /api/my-account costs the core
// nothing while the record is unchanged.
//
// Cache is a decorator of identitycore.Core: it embeds the core, so every method passes through
// untouched except User, which reads through an in-process cache (L1) and, when configured, a
// shared store such as Redis (L2). Whoever changes a user calls Invalidate; a maximum age bounds
// how stale a record can get when a change reaches no one (a write made straight at the core
// with no webhook configured).
package profilecache

import (
	"context"
	"time"

	"github.com/accountedge/caddy-account-api/accountapi/cache"
	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
	"github.com/accountedge/caddy-account-api/accountapi/store"
)

// KindProfile names the records for metrics.
const KindProfile = "profile"

// Config configures a Cache.
type Config struct {
	// Core is the identity core being decorated.
	Core identitycore.Core
	// Keyer derives the shared store's keys from user ids (a store dump shows no identifier).
	Keyer *store.Keyer
	// Shared is the second-level cache (Redis); nil when there is none.
	Shared store.Indexed
	// DisableLocal skips the in-process layer (every read goes to Shared, then the core).
	DisableLocal bool
	// MaxAge bounds how long a record is served from the caches, counted from the core's answer.
	MaxAge time.Duration
	// MaxEntries bounds the in-process layer.
	MaxEntries int
	// Metrics, when set, counts hits, misses and coalesced loads.
	Metrics cache.Metrics
	// OnStoreError is told about shared-store failures (which only cost a cache miss).
	OnStoreError func(error)
}

// Cache is an identitycore.Core whose User reads are cached (accountapi/cache: coalesced,
// per-user epochs, expiry from the core's answer on both levels).
type Cache struct {
	identitycore.Core
	keyer   *store.Keyer
	records *cache.Cache[*identitycore.User]
}

// New returns a Cache over cfg.Core.
func New(cfg Config) *Cache {
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = time.Minute
	}
	return &Cache{Core: cfg.Core, keyer: cfg.Keyer, records: cache.New(cache.Config[*identitycore.User]{
		Kind:         KindProfile,
		Keyer:        cfg.Keyer,
		Shared:       cfg.Shared,
		SharedPrefix: "usr:",
		DisableLocal: cfg.DisableLocal,
		MaxEntries:   cfg.MaxEntries,
		TTL:          func(*identitycore.User) time.Duration { return cfg.MaxAge },
		Subject:      func(u *identitycore.User) string { return u.ID },
		Encode:       encodeUser,
		Decode:       decodeUser,
		Metrics:      cfg.Metrics,
		OnStoreError: cfg.OnStoreError,
	})}
}

// User implements identitycore.Core. Reads with withSSO (identifier counts before a
// credential change) and reads on a context marked identitycore.WithFreshReads always go to
// the core: they decide a write and must be fresh.
//
// The returned record is shared with other callers through the cache: it is a shallow copy, so
// setting its fields is safe, but what they point to (strings behind pointers, maps, raw JSON)
// must not be modified in place. A deep copy would cost allocations on every cached read.
func (c *Cache) User(ctx context.Context, id string, withSSO bool) (*identitycore.User, error) {
	if withSSO || identitycore.FreshReads(ctx) {
		return c.Core.User(ctx, id, withSSO)
	}
	u, err := c.records.Get(ctx, c.key(id), func(ctx context.Context) (*identitycore.User, error) {
		return c.Core.User(ctx, id, false)
	})
	if err != nil {
		return nil, err
	}
	return copyUser(u), nil
}

// Invalidate drops the user's record from both layers; the next read goes to the core, and a
// read in flight is not stored. Call it after anything that may have changed the user, and on
// every instance told about such a change.
func (c *Cache) Invalidate(ctx context.Context, userID string) error {
	return c.records.InvalidateSubject(ctx, userID)
}

// InvalidateLocal drops the user's record from this process only (another instance voided the
// shared layer already).
func (c *Cache) InvalidateLocal(userID string) { c.records.InvalidateSubjectLocal(userID) }

// Flush drops every in-process record: after invalidation messages may have been missed (the
// subscription to other instances was down).
func (c *Cache) Flush() { c.records.FlushLocal() }

// Close stops the in-process cache's background goroutine (call it when the cache goes away).
func (c *Cache) Close() { c.records.Close() }

func (c *Cache) key(userID string) string { return c.keyer.Raw("usr", userID) }

// SharedKey is the shared store's key of the user's record: a token's cached answer links to
// it, so that both come from Redis in one round trip.
func (c *Cache) SharedKey(userID string) string { return c.records.SharedKey(c.key(userID)) }

// copyUser is a shallow copy: callers may set fields without touching the cached record.
func copyUser(u *identitycore.User) *identitycore.User {
	cp := *u
	return &cp
}

var _ identitycore.Core = (*Cache)(nil)
