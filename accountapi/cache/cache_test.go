package cache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accountedge/caddy-account-api/accountapi/store"
)

type rec struct {
	Subject string `json:"s"`
	N       int64  `json:"n"`
}

func newTest(t *testing.T, shared store.Indexed, ttl time.Duration, mutate func(*Config[rec])) *Cache[rec] {
	t.Helper()
	keyer, _ := store.NewKeyer([]byte("0123456789abcdef-cache-test"))
	cfg := Config[rec]{Kind: "test", Keyer: keyer, Shared: shared, MaxEntries: 1000,
		TTL: func(rec) time.Duration { return ttl }, Subject: func(r rec) string { return r.Subject }}
	if mutate != nil {
		mutate(&cfg)
	}
	c := New(cfg)
	t.Cleanup(c.Close)
	return c
}

// source is a counting loader for one subject.
type source struct {
	calls atomic.Int64
	delay time.Duration
	fail  atomic.Bool
	gate  chan struct{} // when set, each load waits for it after reading its value
}

func (s *source) load(subject string) func(context.Context) (rec, error) {
	return func(context.Context) (rec, error) {
		n := s.calls.Add(1)
		time.Sleep(s.delay)
		if s.gate != nil {
			<-s.gate
		}
		if s.fail.Load() {
			return rec{}, errors.New("source down")
		}
		return rec{Subject: subject, N: n}, nil
	}
}

func TestConcurrentMissesLoadOnce(t *testing.T) {
	c := newTest(t, nil, time.Minute, nil)
	src := &source{delay: 50 * time.Millisecond}
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if v, err := c.Get(context.Background(), "k", src.load("u1")); err != nil || v.N != 1 {
				t.Errorf("%v %v", v, err)
			}
		}()
	}
	wg.Wait()
	if n := src.calls.Load(); n != 1 {
		t.Fatalf("%d loads for 100 concurrent misses", n)
	}
}

// TestLoadOvertakenByVoidingIsNotStored: a load that read its value before the subject was voided
// is neither kept in process nor in the shared store.
func TestLoadOvertakenByVoidingIsNotStored(t *testing.T) {
	shared := store.NewMemory(100)
	c := newTest(t, shared, time.Minute, nil)
	src := &source{gate: make(chan struct{})}
	done := make(chan rec)
	go func() { v, _ := c.Get(context.Background(), "k", src.load("u1")); done <- v }()
	for src.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	if err := c.InvalidateSubject(context.Background(), "u1"); err != nil {
		t.Fatal(err)
	}
	close(src.gate) // the first load answers now, with what it read before the voiding
	v := <-done
	if v.N != 2 {
		t.Fatalf("the caller got load %d; the load overtaken by the voiding must be done again", v.N)
	}
	// What is cached is the second load's answer, on both levels.
	if v, _ := c.Get(context.Background(), "k", src.load("u1")); v.N != 2 {
		t.Fatalf("cached %d", v.N)
	}
	other := newTest(t, shared, time.Minute, nil)
	if v, _ := other.Get(context.Background(), "k", src.load("u1")); v.N != 2 {
		t.Fatalf("shared %d", v.N)
	}
}

// TestSharedPutOvertakenByVoiding: a writer slower than a voiding on another instance undoes its
// own write (the shared epoch), so the pre-voiding value does not linger in the shared store.
func TestSharedPutOvertakenByVoiding(t *testing.T) {
	shared := store.NewMemory(100)
	since := time.Now()
	if err := shared.VoidSubject(context.Background(), "s"); err != nil {
		t.Fatal(err)
	}
	if stored, _ := shared.PutIndexed(context.Background(), "k", "s", []byte("v"), time.Minute, since); stored {
		t.Fatal("a value loaded before the voiding was stored after it")
	}
	if _, err := shared.Get(context.Background(), "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("the value lingers")
	}
}

// TestExpiryCountsFromTheLoad: a value copied from the shared store into the process keeps the
// moment its source answered; it does not get a new TTL.
func TestExpiryCountsFromTheLoad(t *testing.T) {
	shared := store.NewMemory(100)
	a := newTest(t, shared, time.Minute, nil)
	src := &source{}
	if _, err := a.Get(context.Background(), "k", src.load("u1")); err != nil {
		t.Fatal(err)
	}
	b := newTest(t, shared, time.Minute, nil)
	b.now = func() time.Time { return time.Now().Add(50 * time.Second) }
	if v, _ := b.Get(context.Background(), "k", src.load("u1")); v.N != 1 {
		t.Fatal("the shared value was not used")
	}
	b.now = func() time.Time { return time.Now().Add(61 * time.Second) }
	if v, _ := b.Get(context.Background(), "k", src.load("u1")); v.N != 2 {
		t.Fatalf("an answer copied from the shared store outlived its TTL from the load (%d)", v.N)
	}
}

func TestStaleIfErrorIsBounded(t *testing.T) {
	c := newTest(t, nil, time.Second, func(cfg *Config[rec]) { cfg.StaleIfError = time.Minute })
	src := &source{}
	if _, err := c.Get(context.Background(), "k", src.load("s")); err != nil {
		t.Fatal(err)
	}
	src.fail.Store(true)
	c.now = func() time.Time { return time.Now().Add(30 * time.Second) }
	if v, err := c.Get(context.Background(), "k", src.load("s")); err != nil || v.N != 1 {
		t.Fatalf("within the bound the last value serves: %v %v", v, err)
	}
	c.InvalidateLocal("k")
	c.now = func() time.Time { return time.Now().Add(62 * time.Second) }
	if _, err := c.Get(context.Background(), "k", src.load("s")); err == nil {
		t.Fatal("a value past TTL + stale-if-error was served")
	}
	// Without StaleIfError a failure is a failure.
	strict := newTest(t, nil, time.Second, nil)
	ok := &source{}
	_, _ = strict.Get(context.Background(), "k", ok.load("s"))
	ok.fail.Store(true)
	strict.now = func() time.Time { return time.Now().Add(2 * time.Second) }
	if _, err := strict.Get(context.Background(), "k", ok.load("s")); err == nil {
		t.Fatal("stale value served without StaleIfError")
	}
}

// TestEvictionBySubjectUsesTheIndex: voiding one user among 100k cached entries touches only
// that user's entries, and the index follows what the cache holds.
func TestEvictionBySubjectUsesTheIndex(t *testing.T) {
	c := newTest(t, nil, time.Minute, func(cfg *Config[rec]) { cfg.MaxEntries = 200_000 })
	ctx := context.Background()
	src := &source{}
	for i := 0; i < 100_000; i++ {
		_, _ = c.Get(ctx, fmt.Sprint("k", i), src.load(fmt.Sprint("u", i%50_000)))
	}
	start := time.Now()
	c.InvalidateSubjectLocal("u7")
	took := time.Since(start)
	t.Logf("voiding one user's 2 entries among 100k: %v", took)
	if _, ok := c.Held("k7"); ok {
		t.Fatal("k7 survived")
	}
	if _, ok := c.Held("k50007"); ok {
		t.Fatal("k50007 survived")
	}
	if _, ok := c.Held("k8"); !ok {
		t.Fatal("another user's entry went")
	}
	c.local.CleanUp()
	c.indexMu.Lock()
	_, indexed := c.index["u7"]
	c.indexMu.Unlock()
	if indexed {
		t.Fatal("the index kept the voided entries")
	}
}

// countingStore counts the reads that reach the shared store.
type countingStore struct {
	*store.Memory
	gets atomic.Int64
}

func (s *countingStore) Get(ctx context.Context, key string) ([]byte, error) {
	s.gets.Add(1)
	return s.Memory.Get(ctx, key)
}

func (s *countingStore) GetLinked(ctx context.Context, key string) ([]byte, []byte, error) {
	s.gets.Add(1) // one round trip, as the Redis script is
	v, err := s.Memory.Get(ctx, key)
	if err != nil {
		return nil, nil, err
	}
	var linked []byte
	if _, link, ok := store.SplitLink(v); ok && link != "" {
		linked, _ = s.Memory.Get(ctx, link)
	}
	return v, linked, nil
}

// TestLinkedEntriesComeInOneRead: a value linking to another cache's entry brings it along, and
// the second cache takes it from the request instead of the shared store.
func TestLinkedEntriesComeInOneRead(t *testing.T) {
	shared := &countingStore{Memory: store.NewMemory(100)}
	local := func(c *Config[rec]) { c.DisableLocal = true }
	records := newTest(t, shared, time.Minute, func(c *Config[rec]) { local(c); c.SharedPrefix = "usr:" })
	tokens := newTest(t, shared, time.Minute, func(c *Config[rec]) {
		local(c)
		c.SharedPrefix = "tok:"
		c.Link = func(r rec) string { return records.SharedKey("rec-" + r.Subject) }
	})
	ctx := context.Background()
	src := &source{}
	_, _ = records.Get(ctx, "rec-u1", src.load("u1"))
	_, _ = tokens.Get(ctx, "tok-1", src.load("u1"))
	shared.gets.Store(0)

	req := WithPrefetch(ctx)
	if _, err := tokens.Get(req, "tok-1", src.load("u1")); err != nil {
		t.Fatal(err)
	}
	if v, err := records.Get(req, "rec-u1", src.load("u1")); err != nil || v.N != 1 {
		t.Fatalf("linked record: %v %v", v, err)
	}
	if n := shared.gets.Load(); n != 1 {
		t.Fatalf("%d shared reads for a token and its linked record, want 1", n)
	}
	// Served once: a later read of the request goes to the store again.
	_, _ = records.Get(req, "rec-u1", src.load("u1"))
	if n := shared.gets.Load(); n != 2 {
		t.Fatalf("%d shared reads, want 2", n)
	}
}

// voidingStore voids a subject in process while a write of it is on its way to the shared store,
// as a webhook or a peer's message can.
type voidingStore struct {
	*store.Memory
	during func()
}

func (v voidingStore) PutIndexed(ctx context.Context, key, subject string, value []byte, ttl time.Duration, since time.Time) (bool, error) {
	v.during()
	return v.Memory.PutIndexed(ctx, key, subject, value, ttl, since)
}

// TestVoidingDuringTheSharedWriteKeepsTheValueOutOfTheProcess: a value whose subject is voided
// while it is written to the shared store is served to its load's callers, not cached.
func TestVoidingDuringTheSharedWriteKeepsTheValueOutOfTheProcess(t *testing.T) {
	var c *Cache[rec]
	c = newTest(t, voidingStore{store.NewMemory(100), func() { _ = c.InvalidateSubject(context.Background(), "u1") }}, time.Minute, nil)
	src := &source{}
	for range 2 {
		if _, err := c.Get(context.Background(), "k", src.load("u1")); err != nil {
			t.Fatal(err)
		}
	}
	if n := src.calls.Load(); n != 2 {
		t.Fatalf("%d loads for 2 reads: a value voided during its shared write was cached in process", n)
	}
}

// TestMissWithoutTheLocalLevelReadsTheSharedStoreOnce: with DisableLocal, a miss in the shared
// store goes to the source after one shared read, not two.
func TestMissWithoutTheLocalLevelReadsTheSharedStoreOnce(t *testing.T) {
	shared := &countingStore{Memory: store.NewMemory(100)}
	c := newTest(t, shared, time.Minute, func(c *Config[rec]) { c.DisableLocal = true })
	src := &source{}
	if _, err := c.Get(context.Background(), "k", src.load("u1")); err != nil {
		t.Fatal(err)
	}
	if n := shared.gets.Load(); n != 1 || src.calls.Load() != 1 {
		t.Fatalf("a miss made %d shared reads and %d loads, want 1 and 1", n, src.calls.Load())
	}
}

// TestVoidingBetweenTheLoadAndItsStoreIsNotLost: a voiding that lands after the load's last
// epoch check but before the in-process level takes the value in (the index does not know the
// key yet, so the voiding cannot reach it) still keeps the value from being served afterwards,
// for Get and for Refresh.
func TestVoidingBetweenTheLoadAndItsStoreIsNotLost(t *testing.T) {
	for _, refresh := range []bool{false, true} {
		var c *Cache[rec]
		var calls atomic.Int64
		c = newTest(t, nil, time.Minute, func(cfg *Config[rec]) {
			cfg.Subject = func(r rec) string {
				// The second call is the in-process level filing the value as it takes it in.
				if calls.Add(1) == 2 {
					c.InvalidateSubjectLocal(r.Subject)
				}
				return r.Subject
			}
		})
		src := &source{}
		ctx := context.Background()
		var err error
		if refresh {
			_, err = c.Refresh(ctx, "k", src.load("u1"))
		} else {
			_, err = c.Get(ctx, "k", src.load("u1"))
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Get(ctx, "k", src.load("u1")); err != nil {
			t.Fatal(err)
		}
		if n := src.calls.Load(); n != 2 {
			t.Fatalf("refresh %v: %d loads for 2 reads: a value voided while it was being stored was served afterwards", refresh, n)
		}
	}
}
