package tests

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/accountedge/caddy-account-api/tests/harness"
)

// TestMemoryFlatUnderSoak drives a steady mix (a fixed set of users' tokens, reads and writes)
// for a bounded time and samples Caddy's RSS: once the caches are warm it must stay flat.
func TestMemoryFlatUnderSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak")
	}
	e := newEnv(t, options{redis: harness.StartRedis(t).Addr()})
	tokens := make([]string, 200)
	for i := range tokens {
		tokens[i] = e.userToken(allScopes)
	}
	var next atomic.Int64
	pick := func() string { return tokens[next.Add(1)%int64(len(tokens))] }
	stop := make(chan struct{})
	reads := runLoad(e, 4, pick, stop)
	writes := make(chan struct{})
	go func() { // a write every 20 ms keeps the invalidation paths busy
		defer close(writes)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				e.call(e.caddy.URL(), "PATCH", "/api/my-account", tokens[i%len(tokens)], map[string]any{"name": "soak"})
			}
		}
	}()
	time.Sleep(3 * time.Second) // warm-up: caches fill
	var samples []int64
	for i := 0; i < 6; i++ {
		rss, err := e.caddy.RSS()
		if err != nil {
			t.Fatal(err)
		}
		samples = append(samples, rss)
		time.Sleep(2 * time.Second)
	}
	close(stop)
	<-writes
	ok, failed := reads.snapshot()
	mb := func(b int64) float64 { return float64(b) / 1e6 }
	growth := samples[len(samples)-1] - samples[0]
	t.Logf("soak: %d reads ok, %d failed; RSS over 10 s after warm-up: %.1f MB -> %.1f MB (%+.1f MB)",
		ok, failed, mb(samples[0]), mb(samples[len(samples)-1]), mb(growth))
	if failed != 0 || ok == 0 {
		t.Fatalf("soak traffic: %s", reads.describe())
	}
	if growth > 16<<20 {
		t.Fatalf("RSS grew %.1f MB under a steady load: %v", mb(growth), samples)
	}
}
