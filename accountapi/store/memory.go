package store

import (
	"context"
	"time"

	"github.com/maypok86/otter/v2"
)

// Memory is an in-process Store, bounded in size, for a single instance (or as the fallback
// while Redis is unreachable).
type Memory struct {
	cache *otter.Cache[string, memoryEntry]
	index memoryIndex
}

type memoryEntry struct {
	value     []byte
	expiresAt time.Time
}

// NewMemory returns a Memory holding at most maxEntries entries; the least useful are evicted
// first.
func NewMemory(maxEntries int) *Memory {
	return &Memory{cache: otter.Must(&otter.Options[string, memoryEntry]{
		MaximumSize: maxEntries,
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, memoryEntry]) time.Duration {
			return time.Until(e.Value.expiresAt)
		}),
	})}
}

// Get implements Store.
func (m *Memory) Get(_ context.Context, key string) ([]byte, error) {
	e, ok := m.cache.GetIfPresent(key)
	// otter expires lazily in its maintenance cycle; the explicit check makes expiry exact.
	if !ok || !time.Now().Before(e.expiresAt) {
		return nil, ErrNotFound
	}
	return e.value, nil
}

// Set implements Store.
func (m *Memory) Set(_ context.Context, key string, value []byte, ttl time.Duration) error {
	if ttl <= 0 {
		m.cache.Invalidate(key)
		return nil
	}
	m.cache.Set(key, memoryEntry{value: value, expiresAt: time.Now().Add(ttl)})
	return nil
}

// Delete implements Store.
func (m *Memory) Delete(_ context.Context, keys ...string) error {
	for _, k := range keys {
		m.cache.Invalidate(k)
	}
	return nil
}

// Close stops the cache's background clean-up; the Memory must not be used afterwards.
func (m *Memory) Close() { m.cache.StopAllGoroutines() }

var _ Store = (*Memory)(nil)
