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
	"encoding/json"
	"errors"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
	"golang.org/x/sync/singleflight"

	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
	"github.com/accountedge/caddy-account-api/accountapi/store"
)

// Layer and kind names given to Metrics.
const (
	LayerLocal  = "local"
	LayerShared = "shared"
	KindProfile = "profile"
)

// Metrics is told about cache lookups and coalesced loads. Implementations must be cheap and
// safe for concurrent use; the arguments are constants.
type Metrics interface {
	CacheResult(layer, kind string, hit bool)
	CoalescedWait(kind string)
}

// Config configures a Cache.
type Config struct {
	// Core is the identity core being decorated.
	Core identitycore.Core
	// Keyer derives the shared store's keys from user ids (for uniformity with the other keys:
	// a store dump shows no identifier).
	Keyer *store.Keyer
	// Shared is the second-level cache (Redis); nil when there is none.
	Shared store.Store
	// DisableLocal skips the in-process layer (every read goes to Shared, then the core).
	DisableLocal bool
	// MaxAge bounds how long a record is served from the caches.
	MaxAge time.Duration
	// MaxEntries bounds the in-process layer.
	MaxEntries int
	// Metrics, when set, counts hits, misses and coalesced loads.
	Metrics Metrics
	// OnStoreError is told about shared-store failures (which only cost a cache miss).
	OnStoreError func(error)
}

// Cache is an identitycore.Core whose User reads are cached.
type Cache struct {
	identitycore.Core
	cfg   Config
	local *otter.Cache[string, entry]
	group singleflight.Group
	// generation moves on every invalidation: a load that started before one may carry the old
	// record, and must not be stored.
	generation atomic.Uint64
}

// entry is one cached record and when it was read from the core (the maximum age counts from
// there, across both layers).
type entry struct {
	User     *identitycore.User `json:"u"`
	LoadedAt int64              `json:"t"` // Unix milliseconds
}

// New returns a Cache over cfg.Core.
func New(cfg Config) *Cache {
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = time.Minute
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 10_000
	}
	if cfg.OnStoreError == nil {
		cfg.OnStoreError = func(error) {}
	}
	c := &Cache{Core: cfg.Core, cfg: cfg}
	if !cfg.DisableLocal {
		c.local = otter.Must(&otter.Options[string, entry]{
			MaximumSize: cfg.MaxEntries,
			ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, entry]) time.Duration {
				return time.Until(time.UnixMilli(e.Value.LoadedAt).Add(cfg.MaxAge))
			}),
		})
	}
	return c
}

// User implements identitycore.Core. Reads with withSSO (identifier counts before a
// credential change) always go to the core: they decide a write and must be fresh.
//
// The returned record is shared with other callers through the cache: it is a shallow copy, so
// setting its fields is safe, but what they point to (strings behind pointers, maps, raw JSON)
// must not be modified in place. A deep copy would cost allocations on every cached read.
func (c *Cache) User(ctx context.Context, id string, withSSO bool) (*identitycore.User, error) {
	if withSSO {
		return c.Core.User(ctx, id, true)
	}
	now := time.Now()
	if c.local != nil {
		e, ok := c.local.GetIfPresent(id)
		// otter expires in its maintenance cycle; the explicit check makes the maximum age exact.
		ok = ok && c.fresh(e, now)
		c.observe(LayerLocal, ok)
		if ok {
			return copyUser(e.User), nil
		}
	}
	leader := false
	ch := c.group.DoChan(id, func() (any, error) {
		leader = true
		// Detached from the first caller: one client going away must not fail the others.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		return c.load(ctx, id)
	})
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case res := <-ch:
		if !leader && c.cfg.Metrics != nil {
			c.cfg.Metrics.CoalescedWait(KindProfile)
		}
		if res.Err != nil {
			return nil, res.Err
		}
		return copyUser(res.Val.(*identitycore.User)), nil
	}
}

// load finds the record in the shared store or at the core, and caches it.
func (c *Cache) load(ctx context.Context, id string) (*identitycore.User, error) {
	gen := c.generation.Load()
	if e, ok := c.fromShared(ctx, id); ok {
		if c.local != nil && gen == c.generation.Load() {
			c.local.Set(id, e)
		}
		return e.User, nil
	}
	u, err := c.Core.User(ctx, id, false)
	if err != nil {
		return nil, err
	}
	if gen != c.generation.Load() {
		return u, nil // serve it to these callers only
	}
	e := entry{User: u, LoadedAt: time.Now().UnixMilli()}
	if c.local != nil {
		c.local.Set(id, e)
	}
	if c.cfg.Shared != nil {
		b, err := json.Marshal(e)
		if err == nil {
			err = c.cfg.Shared.Set(ctx, c.key(id), b, c.cfg.MaxAge)
		}
		if err != nil {
			c.cfg.OnStoreError(err)
		}
	}
	return u, nil
}

func (c *Cache) fromShared(ctx context.Context, id string) (entry, bool) {
	if c.cfg.Shared == nil {
		return entry{}, false
	}
	b, err := c.cfg.Shared.Get(ctx, c.key(id))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		c.cfg.OnStoreError(err)
	}
	var e entry
	ok := err == nil && json.Unmarshal(b, &e) == nil && e.User != nil && c.fresh(e, time.Now())
	c.observe(LayerShared, ok)
	return e, ok
}

// Invalidate drops the user's record from both layers; the next read goes to the core. Call it
// after anything that may have changed the user, and on every instance told about such a change:
// an instance that stored a record it read just before the change clears it again that way.
func (c *Cache) Invalidate(ctx context.Context, userID string) {
	c.generation.Add(1)
	c.group.Forget(userID)
	if c.local != nil {
		c.local.Invalidate(userID)
	}
	if c.cfg.Shared != nil {
		if err := c.cfg.Shared.Delete(ctx, c.key(userID)); err != nil {
			c.cfg.OnStoreError(err)
		}
	}
}

// Flush drops every in-process record: after invalidation messages may have been missed (the
// subscription to other instances was down).
func (c *Cache) Flush() {
	c.generation.Add(1)
	if c.local != nil {
		c.local.InvalidateAll()
	}
}

// Close stops the in-process cache's background goroutine (call it when the config goes away).
func (c *Cache) Close() {
	if c.local != nil {
		c.local.StopAllGoroutines()
	}
}

func (c *Cache) fresh(e entry, now time.Time) bool {
	return now.Sub(time.UnixMilli(e.LoadedAt)) < c.cfg.MaxAge
}

func (c *Cache) key(userID string) string { return c.cfg.Keyer.Key("usr", userID) }

func (c *Cache) observe(layer string, hit bool) {
	if c.cfg.Metrics != nil {
		c.cfg.Metrics.CacheResult(layer, KindProfile, hit)
	}
}

// copyUser is a shallow copy: callers may set fields without touching the cached record.
func copyUser(u *identitycore.User) *identitycore.User {
	cp := *u
	return &cp
}

var _ identitycore.Core = (*Cache)(nil)
