package cache

import (
	"context"
	"time"
)

// Value is one document kept under a fixed key (settings read from the core): a Cache of one
// entry, with its loader.
type Value[V any] struct {
	c    *Cache[V]
	key  string
	load func(context.Context) (V, error)
}

// NewValue returns a Value loaded with load, kept ttl in process and, while load fails, served
// up to staleIfError past its TTL.
func NewValue[V any](kind string, load func(context.Context) (V, error), ttl, staleIfError time.Duration, m Metrics) *Value[V] {
	return &Value[V]{key: kind, load: load, c: New(Config[V]{
		Kind:         kind,
		MaxEntries:   1,
		TTL:          func(V) time.Duration { return ttl },
		Subject:      func(V) string { return kind },
		StaleIfError: staleIfError,
		Metrics:      m,
	})}
}

// Get returns the value, loading it when it is absent or expired (coalesced).
func (v *Value[V]) Get(ctx context.Context) (V, error) { return v.c.Get(ctx, v.key, v.load) }

// Invalidate makes the next Get load again; a load in flight is not kept.
func (v *Value[V]) Invalidate() { v.c.InvalidateSubjectLocal(v.key) }

// Close stops the background work.
func (v *Value[V]) Close() { v.c.Close() }
