package ratelimit

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/accountedge/caddy-account-api/accountapi/store"
	"github.com/accountedge/caddy-account-api/tests/harness"
)

func newLimiter(t *testing.T, shared store.Counter, onFailed func(error)) *Limiter {
	t.Helper()
	keyer, err := store.NewKeyer([]byte("0123456789abcdef-ratelimit"))
	if err != nil {
		t.Fatal(err)
	}
	return New(shared, keyer, onFailed)
}

// sharedRedis starts a redis-server for the test and returns a client of it and the store on it.
func sharedRedis(t *testing.T) (*redis.Client, *store.Redis) {
	t.Helper()
	rs := harness.StartRedis(t)
	client := redis.NewClient(&redis.Options{Addr: rs.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { client.Close() })
	return client, store.NewRedis(client, "rl-test:", time.Second)
}

// reserveBurst makes n reservations at once, spread over the instances, and returns the
// releases of those allowed and the counts the refused ones saw.
func reserveBurst(instances []*Limiter, n int, subject string, lim Limit) (releases []func(), refusedCounts []int64) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			release, d := instances[i%len(instances)].Reserve(context.Background(), "pw", subject, lim)
			mu.Lock()
			defer mu.Unlock()
			if d.Allowed {
				releases = append(releases, release)
			} else {
				refusedCounts = append(refusedCounts, d.Count)
			}
		}()
	}
	wg.Wait()
	return releases, refusedCounts
}

func TestTakeRefusesOverTheLimitUntilTheWindowEnds(t *testing.T) {
	l := newLimiter(t, store.NewMemory(100), nil)
	ctx := context.Background()
	lim := Limit{Max: 3, Window: 80 * time.Millisecond}
	for i := 1; i <= 3; i++ {
		if d := l.Take(ctx, "send", "a@example.com", lim); !d.Allowed || d.Count != int64(i) {
			t.Fatalf("event %d refused: %+v", i, d)
		}
	}
	d := l.Take(ctx, "send", "a@example.com", lim)
	if d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > lim.Window {
		t.Fatalf("4th event: %+v", d)
	}
	if !l.Take(ctx, "send", "b@example.com", lim).Allowed || !l.Take(ctx, "other", "a@example.com", lim).Allowed {
		t.Fatal("subjects and rules must be counted apart")
	}
	time.Sleep(90 * time.Millisecond)
	if d := l.Take(ctx, "send", "a@example.com", lim); !d.Allowed || d.Count != 1 {
		t.Fatalf("a new window must start afresh: %+v", d)
	}
}

func TestReserveBoundsParallelAttemptsAndReleaseGivesBack(t *testing.T) {
	l := newLimiter(t, nil, nil)
	ctx := context.Background()
	lim := Limit{Max: 3, Window: time.Minute}
	releases, _ := reserveBurst([]*Limiter{l}, 50, "10.0.0.1", lim)
	if len(releases) != 3 {
		t.Fatalf("%d of 50 parallel reservations allowed, want 3", len(releases))
	}
	releases[0]()
	releases[0]() // a second release gives nothing more back
	if _, d := l.Reserve(ctx, "pw", "10.0.0.1", lim); !d.Allowed {
		t.Fatal("a released reservation was not given back")
	}
	if _, d := l.Reserve(ctx, "pw", "10.0.0.1", lim); d.Allowed || d.RetryAfter <= 0 {
		t.Fatalf("over the limit: %+v", d)
	}
}

// TestReleaseCountsOnlyInItsWindow: a reservation given back after its window ended lends the
// next window nothing, in the shared store and in process.
func TestReleaseCountsOnlyInItsWindow(t *testing.T) {
	_, redisStore := sharedRedis(t)
	for name, shared := range map[string]store.Counter{
		"in process": nil,
		"redis":      redisStore,
	} {
		t.Run(name, func(t *testing.T) {
			l := newLimiter(t, shared, nil)
			ctx := context.Background()
			lim := Limit{Max: 1, Window: 150 * time.Millisecond}
			late, d := l.Reserve(ctx, "tok", "10.0.0.1", lim)
			if !d.Allowed {
				t.Fatal("first reservation refused")
			}
			time.Sleep(lim.Window + 30*time.Millisecond)
			if _, d := l.Reserve(ctx, "tok", "10.0.0.1", lim); !d.Allowed || d.Count != 1 {
				t.Fatalf("the next window's first reservation: %+v", d)
			}
			late()
			if _, d := l.Reserve(ctx, "tok", "10.0.0.1", lim); d.Allowed {
				t.Fatalf("a release from the window before lent this one an attempt: %+v", d)
			}
		})
	}
}

// outageCounter is a shared store that can be made to fail, as Redis does in an outage.
type outageCounter struct {
	store.Counter
	down atomic.Bool
}

func (o *outageCounter) Reserve(ctx context.Context, key string, limit int64, window time.Duration) (store.Reservation, error) {
	if o.down.Load() {
		return store.Reservation{}, errRedisDown
	}
	return o.Counter.Reserve(ctx, key, limit, window)
}

func (o *outageCounter) Release(ctx context.Context, key, window string) (int64, time.Duration, error) {
	if o.down.Load() {
		return 0, 0, errRedisDown
	}
	return o.Counter.Release(ctx, key, window)
}

// TestReleaseGivesBackOnlyWhatItsStoreTook: a reservation taken in process while Redis was down,
// released once Redis is back, is not given to Redis, whose count never held it; and a release
// after Redis lost the key (a restart, a flush) lends the new window nothing.
func TestReleaseGivesBackOnlyWhatItsStoreTook(t *testing.T) {
	client, redisStore := sharedRedis(t)
	shared := &outageCounter{Counter: redisStore}
	l := newLimiter(t, shared, nil)
	ctx := context.Background()
	lim := Limit{Max: 2, Window: time.Minute}
	take := func(what string, want bool) func() {
		t.Helper()
		release, d := l.Reserve(ctx, "pw", "10.0.0.7", lim)
		if d.Allowed != want {
			t.Fatalf("%s: %+v, want allowed %v", what, d, want)
		}
		return release
	}
	take("r1, in Redis", true)
	shared.down.Store(true)
	r2 := take("r2, in process during the outage", true)
	shared.down.Store(false)
	take("r3, in Redis again", true)
	r2()
	take("r4, with r1 and r3 held in Redis", false)

	// The same after a flush: the key's new window owes the old one's reservation nothing.
	if err := client.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	lim.Max = 1
	old := take("after the flush", true)
	if err := client.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	take("in the window after a second flush", true)
	old()
	take("once the reservation of the lost window was released", false)
}

// TestReservationsAcrossInstances: two instances sharing Redis, bursts on both at once: the
// limit holds over both, refusals are not counted, and what is given back is taken again once.
func TestReservationsAcrossInstances(t *testing.T) {
	_, shared := sharedRedis(t)
	instances := []*Limiter{newLimiter(t, shared, nil), newLimiter(t, shared, nil)}
	lim := Limit{Max: 5, Window: time.Minute}
	burst := func() ([]func(), []int64) { return reserveBurst(instances, 100, "10.0.0.9", lim) }
	releases, refused := burst()
	if len(releases) != 5 || len(refused) != 95 {
		t.Fatalf("%d allowed, %d refused of 100; want 5 and 95", len(releases), len(refused))
	}
	for _, n := range refused {
		if n != 5 {
			t.Fatalf("a refusal saw the counter at %d: refusals must not count", n)
		}
	}
	releases[0]()
	releases[1]()
	again, _ := burst()
	if len(again) != 2 {
		t.Fatalf("%d allowed after 2 were given back, want 2", len(again))
	}
}

func TestSentinelLocksAfterMaxFailuresAsLogto(t *testing.T) {
	l := newLimiter(t, nil, nil)
	ctx := context.Background()
	p := Sentinel{MaxAttempts: 3, LockoutDuration: 80 * time.Millisecond, FailureWindow: time.Hour}
	try := func(failed bool) Verdict {
		settle, v := l.Attempt(ctx, "password", "u1", p)
		if !v.Allowed {
			return v
		}
		return settle(ctx, failed)
	}
	// Logto (logto-samples-tokens.json): wrong #1 and #2 are 422, wrong #3 is already refused.
	if !try(true).Allowed || !try(true).Allowed {
		t.Fatal("locked before maxAttempts")
	}
	if v := try(true); v.Allowed || v.LockedFor <= 0 {
		t.Fatalf("the third failure must lock: %+v", v)
	}
	if v := try(false); v.Allowed {
		t.Fatal("the right secret passed while locked")
	}
	// A success does not count; after the lock, one more failure within the window locks
	// again (the locking failure itself is not counted, as in Logto).
	time.Sleep(90 * time.Millisecond)
	if !try(false).Allowed {
		t.Fatal("still locked after the lockout")
	}
	if v := try(true); v.Allowed {
		t.Fatal("one failure after the lockout must lock again")
	}
}

func TestSentinelBoundsParallelAttempts(t *testing.T) {
	l := newLimiter(t, nil, nil)
	ctx := context.Background()
	p := Sentinel{MaxAttempts: 5, LockoutDuration: time.Minute, FailureWindow: time.Hour}
	var checked atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			settle, v := l.Attempt(ctx, "password", "u1", p)
			if !v.Allowed {
				return
			}
			checked.Add(1)
			time.Sleep(time.Millisecond) // the core checking
			settle(ctx, true)
		}()
	}
	wg.Wait()
	if checked.Load() > 5 {
		t.Fatalf("%d of 100 parallel wrong guesses were checked, want at most 5", checked.Load())
	}
	if _, v := l.Attempt(ctx, "password", "u1", p); v.Allowed {
		t.Fatal("not locked after the burst")
	}
}

func TestLockSerialisesOneSubject(t *testing.T) {
	l := newLimiter(t, nil, nil)
	ctx := context.Background()
	var inside, most atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			unlock, err := l.Lock(ctx, "identifiers", "u1", time.Second)
			if err != nil {
				t.Error(err)
				return
			}
			n := inside.Add(1)
			if n > most.Load() {
				most.Store(n)
			}
			time.Sleep(time.Millisecond)
			inside.Add(-1)
			unlock()
		}()
	}
	wg.Wait()
	if most.Load() != 1 {
		t.Fatalf("%d holders at once", most.Load())
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	unlock, _ := l.Lock(ctx, "identifiers", "u1", time.Second)
	if _, err := l.Lock(short, "identifiers", "u1", time.Second); err == nil {
		t.Fatal("a held lock was taken twice")
	}
	unlock()
}

func TestOffLimitAllowsEverything(t *testing.T) {
	l := newLimiter(t, nil, nil)
	for i := 0; i < 10; i++ {
		if !l.Take(context.Background(), "x", "y", Limit{}).Allowed {
			t.Fatal("a zero limit refused")
		}
	}
}

type brokenCounter struct{}

var errRedisDown = errors.New("redis down")

func (brokenCounter) Incr(context.Context, string, int64, time.Duration) (int64, time.Duration, error) {
	return 0, 0, errRedisDown
}

func (brokenCounter) Reserve(context.Context, string, int64, time.Duration) (store.Reservation, error) {
	return store.Reservation{}, errRedisDown
}

func (brokenCounter) Release(context.Context, string, string) (int64, time.Duration, error) {
	return 0, 0, errRedisDown
}

func TestSharedFailureFallsBackToLocalCounts(t *testing.T) {
	var failures int
	l := newLimiter(t, brokenCounter{}, func(error) { failures++ })
	lim := Limit{Max: 1, Window: time.Minute}
	if !l.Take(context.Background(), "x", "y", lim).Allowed {
		t.Fatal("first event refused")
	}
	if l.Take(context.Background(), "x", "y", lim).Allowed {
		t.Fatal("the limit was lifted while the shared store failed")
	}
	if failures != 2 {
		t.Fatalf("%d failures reported", failures)
	}
}

// recordingCounter records the keys it is asked about, and counts in process.
// TestClientGoneIsNotAStoreFailure: a call cut short by its caller going away is not reported
// as a failure of the shared store (it would let anyone fill the logs), and still counts.
func TestClientGoneIsNotAStoreFailure(t *testing.T) {
	_, shared := sharedRedis(t)
	var failures atomic.Int64
	l := newLimiter(t, shared, func(error) { failures.Add(1) })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	lim := Limit{Max: 1, Window: time.Minute}
	if _, d := l.Reserve(ctx, "pw", "10.0.0.3", lim); !d.Allowed {
		t.Fatal("first reservation refused")
	}
	if d := l.Take(ctx, "send", "10.0.0.3", lim); !d.Allowed {
		t.Fatal("first event refused")
	}
	if n := failures.Load(); n != 0 {
		t.Fatalf("%d store failures reported for calls whose client went away", n)
	}
}

type recordingCounter struct {
	*store.Memory
	keys []string
}

func (r *recordingCounter) Incr(_ context.Context, key string, _ int64, _ time.Duration) (int64, time.Duration, error) {
	r.keys = append(r.keys, key)
	return 1, time.Minute, nil
}

func (r *recordingCounter) Reserve(ctx context.Context, key string, limit int64, window time.Duration) (store.Reservation, error) {
	r.keys = append(r.keys, key)
	return r.Memory.Reserve(ctx, key, limit, window)
}

func TestSubjectsNeverAppearInKeys(t *testing.T) {
	rc := &recordingCounter{Memory: store.NewMemory(10)}
	l := newLimiter(t, rc, nil)
	l.Take(context.Background(), "code-send", "secret@example.com", Limit{Max: 1, Window: time.Minute})
	l.Reserve(context.Background(), "token-failures", "secret@example.com", Limit{Max: 1, Window: time.Minute})
	if len(rc.keys) != 2 || strings.Contains(rc.keys[0]+rc.keys[1], "secret") ||
		!strings.HasPrefix(rc.keys[0], "rl:code-send:") || !strings.HasPrefix(rc.keys[1], "rv:token-failures:") {
		t.Fatalf("keys %v", rc.keys)
	}
}

func TestCloseStopsTheLocalCounter(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	keyer, _ := store.NewKeyer([]byte("0123456789abcdef-close"))
	l := New(nil, keyer, nil)
	if d := l.Take(context.Background(), "test", "subject", Limit{Max: 1, Window: time.Minute}); !d.Allowed {
		t.Fatal("first event refused")
	}
	l.Close()
}

// TestTakeAfterClose: a request still running when its configuration was cleaned up must not
// panic on the stopped counter, and the limit still holds for it.
func TestTakeAfterClose(t *testing.T) {
	keyer, _ := store.NewKeyer([]byte("0123456789abcdef"))
	l := New(nil, keyer, nil)
	l.Close()
	lim := Limit{Max: 1, Window: time.Minute}
	if d := l.Take(context.Background(), "r", "s", lim); !d.Allowed {
		t.Fatal("first event refused")
	}
	if d := l.Take(context.Background(), "r", "s", lim); d.Allowed {
		t.Fatal("the limit was lifted after Close")
	}
}
