package ratelimit

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/accountedge/caddy-account-api/accountapi/store"
)

func newLimiter(t *testing.T, shared store.Counter, onFailed func(error)) *Limiter {
	t.Helper()
	keyer, err := store.NewKeyer([]byte("0123456789abcdef-ratelimit"))
	if err != nil {
		t.Fatal(err)
	}
	return New(shared, keyer, onFailed)
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

func TestLockoutCountsFailuresOnly(t *testing.T) {
	l := newLimiter(t, nil, nil)
	ctx := context.Background()
	lim := Limit{Max: 2, Window: time.Minute}
	for i := 0; i < 5; i++ {
		if !l.Check(ctx, "pw", "u1", lim).Allowed {
			t.Fatal("checks alone must not lock")
		}
	}
	l.Fail(ctx, "pw", "u1", lim)
	if !l.Check(ctx, "pw", "u1", lim).Allowed {
		t.Fatal("locked after one failure")
	}
	l.Fail(ctx, "pw", "u1", lim)
	if d := l.Check(ctx, "pw", "u1", lim); d.Allowed || d.RetryAfter <= 0 {
		t.Fatalf("not locked after two failures: %+v", d)
	}
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

func (brokenCounter) Incr(context.Context, string, int64, time.Duration) (int64, time.Duration, error) {
	return 0, 0, errors.New("redis down")
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

type recordingCounter struct{ keys []string }

func (r *recordingCounter) Incr(_ context.Context, key string, _ int64, _ time.Duration) (int64, time.Duration, error) {
	r.keys = append(r.keys, key)
	return 1, time.Minute, nil
}

func TestSubjectsNeverAppearInKeys(t *testing.T) {
	rc := &recordingCounter{}
	l := newLimiter(t, rc, nil)
	l.Take(context.Background(), "code-send", "secret@example.com", Limit{Max: 1, Window: time.Minute})
	if len(rc.keys) != 1 || strings.Contains(rc.keys[0], "secret") || !strings.HasPrefix(rc.keys[0], "rl:code-send:") {
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
