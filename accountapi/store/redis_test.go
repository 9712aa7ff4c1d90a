package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/accountedge/caddy-account-api/tests/harness"
)

func newTestRedis(t *testing.T, timeout time.Duration) (*Redis, *redis.Client) {
	t.Helper()
	rs := harness.StartRedis(t)
	// A pool wide enough for one connection per caller: only pipelining keeps them few.
	client := redis.NewClient(&redis.Options{Addr: rs.Addr(), ContextTimeoutEnabled: true, ReadTimeout: timeout, WriteTimeout: timeout,
		PoolSize: 256})
	admin := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { client.Close(); admin.Close() })
	return NewRedis(client, "test:", timeout), admin
}

// commandCalls is how many times Redis ran cmd (INFO commandstats).
func commandCalls(t *testing.T, admin *redis.Client, cmd string) int {
	t.Helper()
	info, err := admin.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if rest, ok := strings.CutPrefix(line, "cmdstat_"+cmd+":calls="); ok {
			n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
			return n
		}
	}
	return 0
}

// TestConcurrentReadsArePipelined: reads of many concurrent callers come back right, each with
// its own value, and share a few connections (go-redis's pipeline pool), where one at a time
// they would each hold one of the pool's 256.
func TestConcurrentReadsArePipelined(t *testing.T) {
	r, admin := newTestRedis(t, time.Second)
	ctx := context.Background()
	const n = 200
	for i := range n {
		k := "tok:" + strconv.Itoa(i)
		_ = r.Set(ctx, "usr:"+strconv.Itoa(i), []byte("record "+strconv.Itoa(i)), time.Minute)
		_ = r.Set(ctx, k, AppendLink([]byte("answer "+strconv.Itoa(i)), "usr:"+strconv.Itoa(i)), time.Minute)
	}
	if _, _, err := r.GetLinked(ctx, "tok:0"); err != nil { // Redis learns the script
		t.Fatal(err)
	}
	before, _ := admin.ClientList(ctx).Result()
	start := make(chan struct{})
	errs := make(chan error, 2*n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			v, linked, err := r.GetLinked(ctx, "tok:"+strconv.Itoa(i))
			value, _, _ := SplitLink(v)
			if err != nil || string(value) != "answer "+strconv.Itoa(i) || string(linked) != "record "+strconv.Itoa(i) {
				errs <- fmt.Errorf("GetLinked %d: %q %q %v", i, value, linked, err)
			}
			if b, err := r.Get(ctx, "usr:"+strconv.Itoa(i)); err != nil || string(b) != "record "+strconv.Itoa(i) {
				errs <- fmt.Errorf("Get %d: %q %v", i, b, err)
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	after, _ := admin.ClientList(ctx).Result()
	conns := strings.Count(after, "\n") - strings.Count(before, "\n")
	t.Logf("%d concurrent callers made 2x%d reads over %d new connections", n, n, conns)
	if conns > redis.DefaultPipelinePoolSize {
		t.Fatalf("%d connections for %d concurrent callers: the reads were not pipelined", conns, n)
	}
}

// TestPipelinedScriptSurvivesScriptFlush: a Redis that forgot the script (restarted, or SCRIPT
// FLUSH) is sent it whole, and the read still answers.
func TestPipelinedScriptSurvivesScriptFlush(t *testing.T) {
	r, admin := newTestRedis(t, time.Second)
	ctx := context.Background()
	_ = r.Set(ctx, "usr:1", []byte("record"), time.Minute)
	_ = r.Set(ctx, "tok:1", AppendLink([]byte("answer"), "usr:1"), time.Minute)
	for round := range 3 {
		if err := admin.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, linked, err := r.GetLinked(ctx, "tok:1"); err != nil || string(linked) != "record" {
				t.Fatalf("round %d: %q %v", round, linked, err)
			}
		}
	}
	if evals := commandCalls(t, admin, "eval"); evals != 3 {
		t.Fatalf("%d EVALs for 3 flushes: the script must be sent whole once per flush, then by its hash", evals)
	}
}

// stallAfterWriting writes the record usr:1, then stalls Redis for a second (DEBUG SLEEP on the
// admin connection), and returns once the stall has begun.
func stallAfterWriting(t *testing.T, r *Redis, admin *redis.Client) {
	t.Helper()
	if err := r.Set(context.Background(), "usr:1", []byte("record"), time.Minute); err != nil {
		t.Fatal(err)
	}
	go admin.Do(context.Background(), "DEBUG", "SLEEP", "1")
	time.Sleep(50 * time.Millisecond)
}

// TestPipelinedReadKeepsItsTimeout: a read behind a stalled Redis gives up at the store's
// timeout, even while a batch is in flight ahead of it.
func TestPipelinedReadKeepsItsTimeout(t *testing.T) {
	r, admin := newTestRedis(t, 150*time.Millisecond)
	ctx := context.Background()
	stallAfterWriting(t, r, admin)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			start := time.Now()
			_, err := r.Get(ctx, "usr:1")
			took := time.Since(start)
			if err == nil || errors.Is(err, ErrNotFound) || took > 500*time.Millisecond {
				t.Errorf("read %d against a stalled Redis: %v after %v, want a timeout error within ~150ms", i, err, took)
			}
		})
	}
	wg.Wait()
}

// TestPipelinedReadsAreBounded: while Redis stalls, the reads waiting in the pipeliner stay
// under their bound; the ones past it fail at once, as misses, instead of queueing.
func TestPipelinedReadsAreBounded(t *testing.T) {
	defer func(n int) { maxQueuedReads = n }(maxQueuedReads)
	maxQueuedReads = 5
	r, admin := newTestRedis(t, 300*time.Millisecond)
	ctx := context.Background()
	stallAfterWriting(t, r, admin)
	var wg sync.WaitGroup
	var mu sync.Mutex
	rejected := 0
	for range 40 {
		wg.Go(func() {
			start := time.Now()
			_, err := r.Get(ctx, "usr:1")
			if errors.Is(err, redis.ErrAutoPipelineQueueFull) {
				mu.Lock()
				rejected++
				mu.Unlock()
				if took := time.Since(start); took > 100*time.Millisecond {
					t.Errorf("a read past the bound took %v to fail", took)
				}
			} else if err == nil {
				t.Error("a read against a stalled Redis succeeded")
			}
		})
	}
	wg.Wait()
	t.Logf("40 reads against a stalled Redis, bound 5: %d refused at once", rejected)
	if rejected < 40-2*maxQueuedReads {
		t.Fatalf("%d of 40 reads refused at once: the queue was not bounded", rejected)
	}
}
