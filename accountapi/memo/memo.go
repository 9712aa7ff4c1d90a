// Package memo keeps one value that is slow to load (settings read from the identity core) for a
// while: loaded on first use, shared by all callers, loaded again after its TTL or when
// invalidated. Concurrent loads are coalesced into one.
package memo

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Value is a memoised value of type T.
type Value[T any] struct {
	load func(context.Context) (T, error)
	ttl  time.Duration

	mu         sync.RWMutex
	value      T
	loadedAt   time.Time
	valid      bool
	generation uint64
	group      singleflight.Group
}

// New returns a Value that loads with load and keeps the result for ttl.
func New[T any](load func(context.Context) (T, error), ttl time.Duration) *Value[T] {
	return &Value[T]{load: load, ttl: ttl}
}

// Get returns the value, loading it when it is absent or older than the TTL. A failed load is
// not remembered.
func (v *Value[T]) Get(ctx context.Context) (T, error) {
	v.mu.RLock()
	if v.valid && time.Since(v.loadedAt) < v.ttl {
		val := v.value
		v.mu.RUnlock()
		return val, nil
	}
	gen := v.generation
	v.mu.RUnlock()

	res, err, _ := v.group.Do("", func() (any, error) {
		val, err := v.load(context.WithoutCancel(ctx))
		if err != nil {
			return val, err
		}
		v.mu.Lock()
		// A load that began before Invalidate may be stale: serve it to this call only.
		if gen == v.generation {
			v.value, v.loadedAt, v.valid = val, time.Now(), true
		}
		v.mu.Unlock()
		return val, nil
	})
	if err != nil {
		var zero T
		return zero, err
	}
	return res.(T), nil
}

// Invalidate makes the next Get load again.
func (v *Value[T]) Invalidate() {
	v.mu.Lock()
	v.valid = false
	v.generation++
	v.mu.Unlock()
	v.group.Forget("")
}
