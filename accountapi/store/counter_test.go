package store

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/accountedge/caddy-account-api/tests/harness"
)

func testCounter(t *testing.T, c Counter) {
	t.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); _, _, _ = c.Incr(ctx, "k", 1, 200*time.Millisecond) }()
	}
	wg.Wait()
	n, ttl, err := c.Incr(ctx, "k", 0, 200*time.Millisecond)
	if err != nil || n != 50 || ttl <= 0 || ttl > 200*time.Millisecond {
		t.Fatalf("after 50 concurrent increments: %d %v %v", n, ttl, err)
	}
	time.Sleep(250 * time.Millisecond)
	if n, _, _ := c.Incr(ctx, "k", 1, time.Second); n != 1 {
		t.Fatalf("the window must end: %d", n)
	}
}

// testReserve: of parallel reservations exactly the limit is taken and the refusals change no
// count; a release gives back to its own window only, and never below zero.
func testReserve(t *testing.T, c Counter) {
	t.Helper()
	ctx := context.Background()
	const window = 300 * time.Millisecond
	var taken atomic.Int64
	var mu sync.Mutex
	windows := map[string]bool{}
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := c.Reserve(ctx, "r", 3, window)
			if err != nil || res.Count < 1 || res.Count > 3 || res.TTL <= 0 || res.TTL > window || res.Window == "" {
				t.Errorf("reserve: %+v %v", res, err)
			}
			if res.Taken {
				taken.Add(1)
			}
			mu.Lock()
			windows[res.Window] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(windows) != 1 {
		t.Fatalf("50 reservations in one window named %d windows", len(windows))
	}
	var w string
	for w = range windows {
	}
	if res, _ := c.Reserve(ctx, "r", 3, window); taken.Load() != 3 || res.Taken || res.Count != 3 {
		t.Fatalf("%d of 50 parallel reservations taken, counter at %d; want 3 and 3", taken.Load(), res.Count)
	}
	if n, _, err := c.Release(ctx, "r", "another window"); err != nil || n != 3 {
		t.Fatalf("a release for another window gave back: %d %v", n, err)
	}
	if n, _, err := c.Release(ctx, "r", w); err != nil || n != 2 {
		t.Fatalf("release: %d %v, want 2", n, err)
	}
	if res, _ := c.Reserve(ctx, "r", 3, window); !res.Taken || res.Count != 3 {
		t.Fatalf("the released count was not given back: %+v", res)
	}
	time.Sleep(window + 50*time.Millisecond)
	res, _ := c.Reserve(ctx, "r", 3, window)
	if !res.Taken || res.Count != 1 || res.Window == w {
		t.Fatalf("a new window must start afresh, under a new name: %+v (old %q)", res, w)
	}
	if n, _, _ := c.Release(ctx, "r", w); n != 1 {
		t.Fatalf("a release from the window before gave back in this one: %d", n)
	}
	if n, _, err := c.Release(ctx, "absent", w); err != nil || n != 0 {
		t.Fatalf("a release with nothing reserved: %d %v", n, err)
	}
	for range 2 {
		if n, _, _ := c.Release(ctx, "r", res.Window); n != 0 {
			t.Fatalf("releases went below zero: %d", n)
		}
	}
}

// TestCopyNeverFallsBehind: answers of the shared store copied in any order leave the in-process
// copy at the highest count of its window, and a copy of a new window starts afresh.
func TestCopyNeverFallsBehind(t *testing.T) {
	m := NewMemory(10)
	ctx := context.Background()
	m.SetCount("k", 5, 100*time.Millisecond)
	m.SetCount("k", 3, 100*time.Millisecond) // an earlier answer, arriving late
	if n, _, _ := m.Incr(ctx, "k", 0, time.Minute); n != 5 {
		t.Fatalf("the copy fell behind: %d, want 5", n)
	}
	time.Sleep(150 * time.Millisecond)
	m.SetCount("k", 1, time.Minute)
	if n, _, _ := m.Incr(ctx, "k", 0, time.Minute); n != 1 {
		t.Fatalf("a new window's copy: %d, want 1", n)
	}
}

func TestMemoryCounter(t *testing.T) {
	testCounter(t, NewMemory(10))
	testReserve(t, NewMemory(10))
}

func TestRedisCounter(t *testing.T) {
	rs := harness.StartRedis(t)
	client := redis.NewClient(&redis.Options{Addr: rs.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { client.Close() })
	testCounter(t, NewRedis(client, "test:", time.Second))
	testReserve(t, NewRedis(client, "reserve:", time.Second))
}

// commandCounter counts the commands a client sends.
type commandCounter struct{ n atomic.Int64 }

func (c *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { c.n.Add(1); return next(ctx, cmd) }
}
func (c *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { c.n.Add(int64(len(cmds))); return next(ctx, cmds) }
}

// TestRefusedReservationIsOneCommand: a burst over the limit costs Redis one command per
// refusal, with nothing to undo.
func TestRefusedReservationIsOneCommand(t *testing.T) {
	rs := harness.StartRedis(t)
	client := redis.NewClient(&redis.Options{Addr: rs.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { client.Close() })
	counted := &commandCounter{}
	client.AddHook(counted)
	r := NewRedis(client, "test:", time.Second)
	ctx := context.Background()
	if res, err := r.Reserve(ctx, "k", 1, time.Minute); !res.Taken || err != nil {
		t.Fatalf("first reservation: %+v %v", res, err)
	}
	before := counted.n.Load()
	for i := 0; i < 20; i++ {
		if res, err := r.Reserve(ctx, "k", 1, time.Minute); res.Taken || err != nil || res.Count != 1 {
			t.Fatalf("refusal %d: %+v %v", i, res, err)
		}
	}
	if sent := counted.n.Load() - before; sent != 20 {
		t.Fatalf("20 refusals sent %d commands, want 20", sent)
	}
}

// TestRedisGetLinked: a value and the entry its trailer links to come back from one script; a
// value without a link, or whose link is absent, alone.
func TestRedisGetLinked(t *testing.T) {
	rs := harness.StartRedis(t)
	client := redis.NewClient(&redis.Options{Addr: rs.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { client.Close() })
	r := NewRedis(client, "test:", time.Second)
	ctx := context.Background()
	_ = r.Set(ctx, "usr:1", []byte("record"), time.Minute)
	_ = r.Set(ctx, "tok:1", AppendLink([]byte("answer"), "usr:1"), time.Minute)
	_ = r.Set(ctx, "tok:2", AppendLink([]byte("refusal"), ""), time.Minute)
	_ = r.Set(ctx, "tok:3", AppendLink([]byte("orphan"), "usr:gone"), time.Minute)
	v, linked, err := r.GetLinked(ctx, "tok:1")
	if value, link, ok := SplitLink(v); err != nil || !ok || string(value) != "answer" || link != "usr:1" || string(linked) != "record" {
		t.Fatalf("linked: %q %q %v", v, linked, err)
	}
	for _, k := range []string{"tok:2", "tok:3"} {
		if v, linked, err := r.GetLinked(ctx, k); err != nil || linked != nil || len(v) == 0 {
			t.Fatalf("%s: %q %q %v", k, v, linked, err)
		}
	}
	if _, _, err := r.GetLinked(ctx, "tok:none"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("absent: %v", err)
	}
}
