package invalidation

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/accountedge/caddy-account-api/tests/harness"
)

func TestEventsReachOtherBusesAndSurviveARestart(t *testing.T) {
	rs := harness.StartRedis(t)
	client := redis.NewClient(&redis.Options{Addr: rs.Addr(), MaxRetries: 1})
	t.Cleanup(func() { client.Close() })
	a, b := New(client, "test:inv", time.Second), New(client, "test:inv", time.Second)
	got := make(chan Event, 10)
	resynced := make(chan struct{}, 10)
	a.Start(Handlers{Event: func(_ context.Context, e Event) { got <- e }})
	b.Start(Handlers{Event: func(_ context.Context, e Event) { got <- e }, Resync: func() { resynced <- struct{}{} }})
	t.Cleanup(a.Close)
	t.Cleanup(b.Close)
	ctx := context.Background()

	publish := func(bus *Bus, e Event) {
		t.Helper()
		// The subscription may still be starting: publish until someone hears it.
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			_ = bus.Publish(ctx, e)
			select {
			case ev := <-got:
				if ev.UserID != e.UserID || ev.Kind != e.Kind {
					t.Fatalf("got %+v, want %+v", ev, e)
				}
				return
			case <-time.After(100 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("event %+v never arrived", e)
			}
		}
	}
	publish(a, Event{UserID: "u1", Kind: Credentials})
	select { // a does not hear its own event
	case ev := <-got:
		t.Fatalf("the publisher heard its own event %+v", ev)
	case <-time.After(200 * time.Millisecond):
	}

	rs.Restart()
	select {
	case <-resynced:
	case <-time.After(30 * time.Second):
		t.Fatal("no resync after Redis came back")
	}
	publish(a, Event{UserID: "u2", Kind: Profile})
}
