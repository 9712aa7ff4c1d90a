package store

import (
	"context"
	"errors"
	"sync"
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

func TestMemoryCounter(t *testing.T) { testCounter(t, NewMemory(10)) }

func TestRedisCounter(t *testing.T) {
	rs := harness.StartRedis(t)
	client := redis.NewClient(&redis.Options{Addr: rs.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { client.Close() })
	testCounter(t, NewRedis(client, "test:", time.Second))
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
