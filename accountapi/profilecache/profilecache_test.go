package profilecache

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
	"github.com/accountedge/caddy-account-api/accountapi/store"
)

// countingCore serves one user record and counts the reads that reach it.
type countingCore struct {
	identitycore.Core // other methods are not used here
	reads             atomic.Int64
	mu                sync.Mutex
	name              string
}

func (c *countingCore) User(_ context.Context, id string, _ bool) (*identitycore.User, error) {
	c.reads.Add(1)
	time.Sleep(10 * time.Millisecond)
	c.mu.Lock()
	defer c.mu.Unlock()
	name := c.name
	return &identitycore.User{ID: id, Name: &name}, nil
}

func (c *countingCore) rename(n string) { c.mu.Lock(); c.name = n; c.mu.Unlock() }

func newCache(t *testing.T, core identitycore.Core, shared store.Indexed, maxAge time.Duration) *Cache {
	keyer, _ := store.NewKeyer([]byte("0123456789abcdef-profile"))
	c := New(Config{Core: core, Keyer: keyer, Shared: shared, MaxAge: maxAge, MaxEntries: 100})
	t.Cleanup(c.Close)
	return c
}

func TestReadThroughInvalidateAndShare(t *testing.T) {
	core := &countingCore{name: "Ada"}
	shared := store.NewMemory(100)
	a, b := newCache(t, core, shared, time.Minute), newCache(t, core, shared, time.Minute)
	ctx := context.Background()

	var wg sync.WaitGroup
	for i := 0; i < 20; i++ { // concurrent first reads of one user: one core read
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = a.User(ctx, "u1", false) }()
	}
	wg.Wait()
	if n := core.reads.Load(); n != 1 {
		t.Fatalf("core reads = %d, want 1", n)
	}
	if u, _ := b.User(ctx, "u1", false); *u.Name != "Ada" || core.reads.Load() != 1 {
		t.Fatalf("the second instance must use the shared record (reads %d)", core.reads.Load())
	}
	// A caller setting fields of its copy does not change the cache (the contract of User).
	u, _ := a.User(ctx, "u1", false)
	u.Name = nil
	if u, _ := a.User(ctx, "u1", false); u.Name == nil || *u.Name != "Ada" {
		t.Fatalf("the cached record was changed through a copy: %v", u.Name)
	}
	// Identifier counts before a write always come from the core.
	_, _ = a.User(ctx, "u1", true)
	if n := core.reads.Load(); n != 2 {
		t.Fatalf("withSSO must read the core (reads %d)", n)
	}

	core.rename("Grace")
	a.Invalidate(ctx, "u1") // both layers: the other instance reads the core too
	if u, _ := a.User(ctx, "u1", false); *u.Name != "Grace" {
		t.Fatalf("after Invalidate: %s", *u.Name)
	}
	b.Flush() // as on a peer's invalidation event
	if u, _ := b.User(ctx, "u1", false); *u.Name != "Grace" {
		t.Fatalf("the other instance still serves %s", *u.Name)
	}
}

func TestMaxAge(t *testing.T) {
	core := &countingCore{name: "Ada"}
	c := newCache(t, core, nil, 50*time.Millisecond)
	ctx := context.Background()
	_, _ = c.User(ctx, "u1", false)
	_, _ = c.User(ctx, "u1", false)
	time.Sleep(80 * time.Millisecond)
	_, _ = c.User(ctx, "u1", false)
	if n := core.reads.Load(); n != 2 {
		t.Fatalf("core reads = %d, want 2 (one more after max_age)", n)
	}
}
