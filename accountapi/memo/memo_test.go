package memo

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestValue(t *testing.T) {
	var loads atomic.Int64
	var fail atomic.Bool
	v := New(func(context.Context) (int64, error) {
		time.Sleep(20 * time.Millisecond)
		if fail.Load() {
			return 0, errors.New("core down")
		}
		return loads.Add(1), nil
	}, time.Hour)
	ctx := context.Background()

	var wg sync.WaitGroup
	for i := 0; i < 50; i++ { // concurrent first uses share one load
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = v.Get(ctx) }()
	}
	wg.Wait()
	if got, _ := v.Get(ctx); got != 1 || loads.Load() != 1 {
		t.Fatalf("value %d after %d loads, want 1 and 1", got, loads.Load())
	}
	v.Invalidate()
	fail.Store(true)
	if _, err := v.Get(ctx); err == nil {
		t.Fatal("a failed load was not reported")
	}
	fail.Store(false)
	if got, _ := v.Get(ctx); got != 2 {
		t.Fatalf("after a failed load the next Get must load again: %d", got)
	}
}
