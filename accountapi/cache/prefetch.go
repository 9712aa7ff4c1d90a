package cache

import (
	"context"
	"sync"
)

// A request that reads two linked entries from the shared store (a token's answer, then its
// user's record) gets both in one round trip: the first read keeps the linked entry on the
// request's context, where the second read finds it. Values read this way are checked like any
// other (expiry from their load); they only save the second round trip.

type prefetchKey struct{}

// prefetched holds the linked entries one request brought; a request has at most a few.
type prefetched struct {
	mu      sync.Mutex
	entries map[string][]byte
}

// WithPrefetch returns a context on which shared reads keep linked entries for later reads of
// the same request.
func WithPrefetch(ctx context.Context) context.Context {
	return context.WithValue(ctx, prefetchKey{}, &prefetched{})
}

func putPrefetched(ctx context.Context, key string, b []byte) {
	p, ok := ctx.Value(prefetchKey{}).(*prefetched)
	if !ok {
		return
	}
	p.mu.Lock()
	if p.entries == nil {
		p.entries = make(map[string][]byte, 1)
	}
	p.entries[key] = b
	p.mu.Unlock()
}

// takePrefetched returns (and forgets: it serves one read) the linked entry under key.
func takePrefetched(ctx context.Context, key string) ([]byte, bool) {
	p, ok := ctx.Value(prefetchKey{}).(*prefetched)
	if !ok {
		return nil, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	b, ok := p.entries[key]
	delete(p.entries, key)
	return b, ok
}
