package store

import (
	"context"
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
