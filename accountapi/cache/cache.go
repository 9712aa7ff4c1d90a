// Package cache is the module's one cache design: what it learns from the identity core (token
// answers, user records, account-center and sign-in-experience settings) is kept in process
// (otter) and, when configured, in a shared store (Redis), with
//
//   - coalescing: concurrent misses of one key make one load (otter's loader API);
//   - expiry counted from the moment the source answered, on both layers;
//   - per-subject epochs: everything about a subject (a user) can be voided at once, through an
//     index (cost proportional to the subject's entries), and a value loaded before such a voiding
//     is never stored after it, in process (epochs) nor in the shared store (store.Indexed);
//   - a bounded stale-if-error, for the values that allow it (settings, never tokens).
package cache

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/accountedge/caddy-account-api/accountapi/store"
)

// Metrics is told about lookups and coalesced loads. Implementations must be cheap and safe for
// concurrent use. layer is "local" or "shared".
type Metrics interface {
	CacheResult(layer, kind string, hit bool)
	CoalescedWait(kind string)
}

type noMetrics struct{}

func (noMetrics) CacheResult(string, string, bool) {}
func (noMetrics) CoalescedWait(string)             {}

// Config configures a Cache of values of type V.
type Config[V any] struct {
	// Kind names the values for Metrics ("token", "profile", "settings").
	Kind string
	// KindOf, when set, names one value for Metrics instead (e.g. "negative" for a refusal).
	KindOf func(V) string
	// Keyer hashes subjects into the shared store's index keys.
	Keyer *store.Keyer
	// Shared is the second level; nil keeps everything in process.
	Shared store.Indexed
	// SharedPrefix starts the shared store's keys, which are the cache's keys in base64url:
	// keys may be binary (store.Keyer.Raw).
	SharedPrefix string
	// Link, when set, names the shared key of the entry a request reads next after this value
	// (a token's answer links to its user's record): a shared read then brings both in one
	// round trip, and hands the linked one to the cache that reads it (see WithPrefetch).
	Link func(V) string
	// DisableLocal serves nothing from the in-process level (loads are still coalesced).
	DisableLocal bool
	// MaxEntries bounds the in-process level.
	MaxEntries int
	// TTL is how long a value may be served, from the moment its source answered; ≤ 0 is not
	// cached at all.
	TTL func(V) time.Duration
	// Deadline, when set, is a moment past which a value is never served, whenever it was
	// loaded (a token's expiry); the zero time means none.
	Deadline func(V) time.Time
	// Subject names whom a value is about, for InvalidateSubject; "" files it under no subject
	// (e.g. a refused token).
	Subject func(V) string
	// StaleIfError is how long past its TTL a value may still be served while loading it fails.
	// Zero (the default) never serves a stale value.
	StaleIfError time.Duration
	// Encode and Decode convert values for the shared store; JSON by default.
	Encode func(V) ([]byte, error)
	Decode func([]byte) (V, error)
	// LoadTimeout bounds one load, detached from the callers waiting for it. Default: 30s.
	LoadTimeout time.Duration
	Metrics     Metrics
	// OnStoreError is told about shared-store failures (which only cost a miss).
	OnStoreError func(error)
}

// entry is a cached value and when its source answered (Unix milliseconds).
type entry[V any] struct {
	value    V
	loadedAt int64
}

// Cache is a two-level cache of values of type V, keyed by strings that are not secrets.
type Cache[V any] struct {
	cfg   Config[V]
	local *otter.Cache[string, entry[V]]
	now   func() time.Time

	// epochs: seq moves on every voiding; voided[subject] is the seq of the subject's last
	// voiding and flushed that of the last FlushLocal. A load that started at seq s and whose
	// subject was voided after s is not stored.
	seq     atomic.Uint64
	flushed atomic.Uint64
	voided  *otter.Cache[string, uint64]

	// index files in-process keys under their subject.
	indexMu sync.Mutex
	index   map[string][]string // a user has a handful of entries: a slice is the smallest set

	// lastGood keeps the newest value of each key for StaleIfError (only when it is set: the
	// values allowing it are few, e.g. two settings documents).
	lastGood sync.Map
}

// retryStale is how long a stale value is served before the source is tried again.
const retryStale = 2 * time.Second

// New returns a Cache.
func New[V any](cfg Config[V]) *Cache[V] {
	if cfg.Metrics == nil {
		cfg.Metrics = noMetrics{}
	}
	if cfg.OnStoreError == nil {
		cfg.OnStoreError = func(error) {}
	}
	if cfg.LoadTimeout <= 0 {
		cfg.LoadTimeout = 30 * time.Second
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 10_000
	}
	if cfg.Subject == nil {
		cfg.Subject = func(V) string { return "" }
	}
	if cfg.KindOf == nil {
		cfg.KindOf = func(V) string { return cfg.Kind }
	}
	if cfg.Encode == nil {
		cfg.Encode = func(v V) ([]byte, error) { return json.Marshal(v) }
	}
	if cfg.Decode == nil {
		cfg.Decode = func(b []byte) (V, error) {
			var v V
			err := json.Unmarshal(b, &v)
			return v, err
		}
	}
	c := &Cache[V]{cfg: cfg, now: time.Now, index: map[string][]string{}}
	c.local = otter.Must(&otter.Options[string, entry[V]]{
		MaximumSize:      cfg.MaxEntries,
		ExpiryCalculator: expiry[V]{c},
		OnDeletion: func(e otter.DeletionEvent[string, entry[V]]) {
			if e.Cause != otter.CauseReplacement {
				c.unindex(cfg.Subject(e.Value.value), e.Key)
			}
		},
	})
	c.voided = otter.Must(&otter.Options[string, uint64]{
		MaximumSize: 1 << 20,
		// Longer than any load: an older voiding cannot concern a load still in flight.
		ExpiryCalculator: otter.ExpiryWriting[string, uint64](2 * cfg.LoadTimeout),
	})
	return c
}

// Close stops the background work of the in-process level.
func (c *Cache[V]) Close() {
	c.local.StopAllGoroutines()
	c.voided.StopAllGoroutines()
}

// Get returns the value of key from the caches, or from load (coalesced with every concurrent
// Get of the key). A failed load is not cached; with StaleIfError, a recent enough value is
// served instead.
func (c *Cache[V]) Get(ctx context.Context, key string, load func(context.Context) (V, error)) (V, error) {
	if !c.cfg.DisableLocal {
		e, ok := c.local.GetIfPresent(key)
		// otter expires lazily; the explicit check makes expiry exact.
		if ok && c.servable(e) {
			c.cfg.Metrics.CacheResult("local", c.cfg.KindOf(e.value), true)
			return e.value, nil
		}
		if ok {
			c.local.Invalidate(key) // expired, but otter's clean-up has not seen it yet
		}
		c.cfg.Metrics.CacheResult("local", c.cfg.Kind, false)
	} else if e, ok := c.fromShared(ctx, key); ok {
		return e.value, nil // without the in-process level, a shared hit needs no coalescing
	}
	led, start := false, uint64(0)
	e, err := c.local.Get(ctx, key, otter.LoaderFunc[string, entry[V]](func(ctx context.Context, key string) (e entry[V], err error) {
		led = true
		// Without the in-process level the shared store was read just above.
		e, start, err = c.load(ctx, key, load, !c.cfg.DisableLocal)
		return e, err
	}))
	if err != nil {
		return e.value, err
	}
	if led {
		c.voidedWhileStored(key, e, start)
	} else {
		c.cfg.Metrics.CoalescedWait(c.cfg.Kind)
	}
	return e.value, nil
}

// voidedWhileStored drops e from the in-process level when its subject, loaded from seq start,
// was voided after the load's last check: such a voiding may have landed before the level took
// e in and filed it in the index, where the voiding could not find it. (Later voidings find it
// there.) Its callers have the value already; it is only not served again. A newer value of
// the key, stored meanwhile, stays.
func (c *Cache[V]) voidedWhileStored(key string, e entry[V], start uint64) {
	if !c.voidedSince(c.cfg.Subject(e.value), start) {
		return
	}
	c.local.Compute(key, func(held entry[V], found bool) (entry[V], otter.ComputeOp) {
		if found && held.loadedAt == e.loadedAt {
			return held, otter.InvalidateOp
		}
		return held, otter.CancelOp
	})
}

// Refresh asks the source again, ignoring what is cached, and caches the answer: for decisions
// that must not rest on an old answer (a write with a possibly revoked token).
func (c *Cache[V]) Refresh(ctx context.Context, key string, load func(context.Context) (V, error)) (V, error) {
	e, start, err := c.load(ctx, key, load, false)
	if err != nil {
		return e.value, err
	}
	if c.ttl(e) > 0 && !c.cfg.DisableLocal {
		c.local.Set(key, e) // also discards a load of the key in flight: this answer is newer
		c.voidedWhileStored(key, e, start)
	}
	return e.value, nil
}

// Peek returns the cached value of key without loading it: from the in-process level, then
// the shared one. ok is false when neither holds a servable value.
func (c *Cache[V]) Peek(ctx context.Context, key string) (v V, ok bool) {
	if !c.cfg.DisableLocal {
		if e, ok := c.local.GetIfPresent(key); ok && c.servable(e) {
			return e.value, true
		}
	}
	if e, ok := c.fromShared(ctx, key); ok {
		return e.value, true
	}
	return v, false
}

// Held returns the value this process holds for key, if it is servable.
func (c *Cache[V]) Held(key string) (V, bool) {
	e, ok := c.local.GetIfPresent(key)
	return e.value, ok && c.servable(e)
}

// load runs one load: the shared store (when readShared), else the source; the result is
// written to the shared store unless it came from there. A load during which its subject was
// voided is done again (the source answers after the voiding), and served but not stored if it
// keeps racing. start is the epoch of the attempt that answered, for voidedWhileStored (for a
// stale value served after a failure, the failed attempt's: the stale value is not checked
// against voidings older than that, and lives retryStale).
func (c *Cache[V]) load(ctx context.Context, key string, load func(context.Context) (V, error), readShared bool) (_ entry[V], start uint64, _ error) {
	// Detached from the first caller: one client going away must not fail the others.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.LoadTimeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		var since time.Time
		start, since = c.seq.Load(), c.now()
		e, fromShared := entry[V]{}, false
		if readShared {
			e, fromShared = c.fromShared(ctx, key)
		}
		if !fromShared {
			v, err := load(ctx)
			if err != nil {
				e, err := c.staleOr(key, err)
				return e, start, err
			}
			e = entry[V]{value: v, loadedAt: c.now().UnixMilli()}
		}
		subject := c.cfg.Subject(e.value)
		if c.voidedSince(subject, start) {
			if attempt < 2 {
				readShared = false
				continue
			}
			e.loadedAt = 0 // never servable from a cache
			return e, start, nil
		}
		if !fromShared {
			c.putShared(ctx, key, subject, e, since)
			// The shared write can take two round trips: a voiding here may land meanwhile.
			// (The shared store's own refusal is not followed here: it allows for clock skew
			// between instances, so it refuses every load of the second after a voiding.)
			if c.voidedSince(subject, start) {
				e.loadedAt = 0 // served to this load's callers, cached nowhere
				return e, start, nil
			}
		}
		if c.cfg.StaleIfError > 0 {
			c.lastGood.Store(key, e)
		}
		return e, start, nil
	}
}

// staleOr serves the newest value of key while it is at most StaleIfError past its TTL.
func (c *Cache[V]) staleOr(key string, err error) (entry[V], error) {
	if c.cfg.StaleIfError <= 0 {
		return entry[V]{}, err
	}
	v, ok := c.lastGood.Load(key)
	if !ok {
		return entry[V]{}, err
	}
	e := v.(entry[V])
	now := c.now()
	if now.After(time.UnixMilli(e.loadedAt).Add(c.cfg.TTL(e.value) + c.cfg.StaleIfError)) {
		return entry[V]{}, err
	}
	// Served as if loaded just long enough ago to expire retryStale from now: the source is
	// tried again then. It is not written to the shared store (only fresh loads are).
	e.loadedAt = now.Add(retryStale - c.cfg.TTL(e.value)).UnixMilli()
	return e, nil
}

// ttl is how long e may still be served.
func (c *Cache[V]) ttl(e entry[V]) time.Duration {
	now := c.now()
	if e.loadedAt == 0 {
		return 0
	}
	ttl := time.UnixMilli(e.loadedAt).Add(c.cfg.TTL(e.value)).Sub(now)
	if c.cfg.Deadline != nil {
		if d := c.cfg.Deadline(e.value); !d.IsZero() {
			ttl = min(ttl, d.Sub(now))
		}
	}
	return ttl
}

func (c *Cache[V]) servable(e entry[V]) bool { return c.ttl(e) > 0 }

// sharedHeader is the loading time, in front of the encoded value.
const sharedHeader = 8

func (c *Cache[V]) fromShared(ctx context.Context, key string) (entry[V], bool) {
	if c.cfg.Shared == nil {
		return entry[V]{}, false
	}
	b, err := c.sharedGet(ctx, c.sharedKey(key))
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			c.cfg.OnStoreError(err)
		}
		c.cfg.Metrics.CacheResult("shared", c.cfg.Kind, false)
		return entry[V]{}, false
	}
	var e entry[V]
	if len(b) >= sharedHeader {
		e.loadedAt = int64(binary.BigEndian.Uint64(b))
		e.value, err = c.cfg.Decode(b[sharedHeader:])
	}
	if len(b) < sharedHeader || err != nil || !c.servable(e) {
		c.cfg.Metrics.CacheResult("shared", c.cfg.Kind, false)
		return entry[V]{}, false
	}
	c.cfg.Metrics.CacheResult("shared", c.cfg.KindOf(e.value), true)
	return e, true
}

func (c *Cache[V]) putShared(ctx context.Context, key, subject string, e entry[V], since time.Time) {
	ttl := c.ttl(e)
	if c.cfg.Shared == nil || ttl <= 0 {
		return
	}
	body, err := c.cfg.Encode(e.value)
	if err != nil {
		c.cfg.OnStoreError(err)
		return
	}
	b := make([]byte, sharedHeader, sharedHeader+len(body)+64)
	binary.BigEndian.PutUint64(b, uint64(e.loadedAt))
	b = append(b, body...)
	if c.cfg.Link != nil {
		b = store.AppendLink(b, c.cfg.Link(e.value))
	}
	if subject == "" {
		err = c.cfg.Shared.Set(ctx, c.sharedKey(key), b, ttl)
	} else {
		_, err = c.cfg.Shared.PutIndexed(ctx, c.sharedKey(key), c.subjectKey(subject), b, ttl, since)
	}
	if err != nil {
		c.cfg.OnStoreError(err)
	}
}

// subjectKey is the shared name of a subject's index and epoch, per kind of value: voiding a
// user's records must not void their token answers.
func (c *Cache[V]) subjectKey(subject string) string {
	return c.cfg.Keyer.Key("sub:"+c.cfg.Kind, subject)
}

// InvalidateSubject voids everything cached about subject, here and in the shared store. An
// error means the shared store may still hold it: the caller must retry or report it.
func (c *Cache[V]) InvalidateSubject(ctx context.Context, subject string) error {
	c.InvalidateSubjectLocal(subject)
	if c.cfg.Shared == nil {
		return nil
	}
	return c.cfg.Shared.VoidSubject(ctx, c.subjectKey(subject))
}

// InvalidateSubjectLocal voids what this process holds about subject (another instance voided
// the shared store already), and makes loads in flight about it load again.
func (c *Cache[V]) InvalidateSubjectLocal(subject string) {
	c.voided.Set(subject, c.seq.Add(1))
	c.indexMu.Lock()
	keys := c.index[subject]
	delete(c.index, subject) // entries taken in from now on start a new set
	c.indexMu.Unlock()
	for _, k := range keys {
		c.local.Invalidate(k)
	}
}

// Invalidate drops key here and in the shared store.
func (c *Cache[V]) Invalidate(ctx context.Context, key string) error {
	c.InvalidateLocal(key)
	if c.cfg.Shared == nil {
		return nil
	}
	return c.cfg.Shared.Delete(ctx, c.sharedKey(key))
}

// sharedGet reads a shared entry: with Link, together with the entry it links to (kept for the
// request, see WithPrefetch); without, from what an earlier read of the request brought, if it
// did.
func (c *Cache[V]) sharedGet(ctx context.Context, sharedKey string) ([]byte, error) {
	if c.cfg.Link == nil {
		if b, ok := takePrefetched(ctx, sharedKey); ok {
			return b, nil
		}
		return c.cfg.Shared.Get(ctx, sharedKey)
	}
	b, linked, err := c.cfg.Shared.GetLinked(ctx, sharedKey)
	if err != nil {
		return nil, err
	}
	b, link, ok := store.SplitLink(b)
	if !ok {
		return nil, errors.New("cache: shared entry without its link trailer")
	}
	if linked != nil {
		putPrefetched(ctx, link, linked)
	}
	return b, nil
}

// SharedKey is the shared store's key of an entry (for another cache's Link).
func (c *Cache[V]) SharedKey(key string) string { return c.sharedKey(key) }

func (c *Cache[V]) sharedKey(key string) string {
	return c.cfg.SharedPrefix + base64.RawURLEncoding.EncodeToString([]byte(key))
}

// InvalidateLocal drops key from this process (a load of it in flight is discarded).
func (c *Cache[V]) InvalidateLocal(key string) { c.local.Invalidate(key) }

// FlushLocal drops every in-process value, e.g. after invalidation messages may have been
// missed; loads in flight are not stored.
func (c *Cache[V]) FlushLocal() {
	c.flushed.Store(c.seq.Add(1))
	c.local.InvalidateAll()
}

// voidedSince reports whether subject was voided (or the cache flushed) after seq start.
func (c *Cache[V]) voidedSince(subject string, start uint64) bool {
	if c.flushed.Load() > start {
		return true
	}
	if subject == "" {
		return false
	}
	at, ok := c.voided.GetIfPresent(subject)
	return ok && at > start
}

func (c *Cache[V]) indexAdd(subject, key string) {
	if subject == "" {
		return
	}
	c.indexMu.Lock()
	if keys := c.index[subject]; !slices.Contains(keys, key) {
		c.index[subject] = append(keys, key)
	}
	c.indexMu.Unlock()
}

func (c *Cache[V]) unindex(subject, key string) {
	if subject == "" {
		return
	}
	c.indexMu.Lock()
	if keys := c.index[subject]; keys != nil {
		if i := slices.Index(keys, key); i >= 0 {
			keys = slices.Delete(keys, i, i+1)
		}
		if len(keys) == 0 {
			delete(c.index, subject)
		} else {
			c.index[subject] = keys
		}
	}
	c.indexMu.Unlock()
}

// expiry gives in-process entries their remaining lifetime and files them in the index as the
// cache takes them in: the index then follows exactly what the cache holds.
type expiry[V any] struct{ c *Cache[V] }

func (x expiry[V]) ExpireAfterCreate(e otter.Entry[string, entry[V]]) time.Duration {
	ttl := x.c.ttl(e.Value)
	if x.c.cfg.DisableLocal {
		return 0
	}
	if ttl > 0 {
		x.c.indexAdd(x.c.cfg.Subject(e.Value.value), e.Key)
	}
	return ttl
}

func (x expiry[V]) ExpireAfterUpdate(e otter.Entry[string, entry[V]], _ entry[V]) time.Duration {
	return x.ExpireAfterCreate(e)
}

func (x expiry[V]) ExpireAfterRead(e otter.Entry[string, entry[V]]) time.Duration {
	return e.ExpiresAfter()
}
