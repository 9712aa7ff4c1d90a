package auth

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/accountedge/caddy-account-api/accountapi/apierror"
	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
	"github.com/accountedge/caddy-account-api/accountapi/store"
)

func TestGateGuardsOnlyWhatTheCoreMustBeAskedAbout(t *testing.T) {
	core := newFake()
	core.set("good", live("u1", "openid", time.Hour))
	a := newAuth(t, core, nil)
	defer a.Close()
	var asked, refused int
	open := true
	ctx := WithGate(context.Background(), func(context.Context) (func(bool), error) {
		asked++
		if !open {
			return nil, apierror.RateLimited
		}
		return func(r bool) {
			if r {
				refused++
			}
		}, nil
	})
	if _, err := a.Authenticate(ctx, "Bearer good"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, "Bearer random"); err == nil {
		t.Fatal("an unknown token passed")
	}
	if asked != 2 || refused != 1 {
		t.Fatalf("gate asked %d times, told of %d refusals; want 2 and 1", asked, refused)
	}
	// Closed: a cached good token still passes, even where the core is asked again; an unknown
	// token is refused without a call to the core.
	open = false
	calls := core.calls.Load()
	if _, err := a.Authenticate(ctx, "Bearer good"); err != nil {
		t.Fatalf("cached good token: %v", err)
	}
	if _, err := a.Revalidate(ctx, "Bearer good"); err != nil {
		t.Fatalf("revalidating a cached good token: %v", err)
	}
	if _, err := a.Authenticate(ctx, "Bearer other-random"); !errors.Is(err, apierror.RateLimited) {
		t.Fatalf("unknown token behind a closed gate: %v", err)
	}
	if n := core.calls.Load() - calls; n != 1 { // the revalidation only
		t.Fatalf("%d introspections behind a closed gate, want 1", n)
	}
}

// closedGate refuses every token it is asked about, and counts the questions.
func closedGate(asked *int) context.Context {
	return WithGate(context.Background(), func(context.Context) (func(bool), error) {
		*asked++
		return nil, apierror.RateLimited
	})
}

// openGate admits every token, and counts the questions.
func openGate(asked *int) context.Context {
	return WithGate(context.Background(), func(context.Context) (func(bool), error) {
		*asked++
		return func(bool) {}, nil
	})
}

// A token the edge has seen valid is never gated, on any instance and whatever its answer's
// cache holds; a revoked one loses that.
func TestGateNeverRefusesATokenSeenValid(t *testing.T) {
	core := newFake()
	core.set("good", live("u1", "openid", time.Hour))
	shared := store.NewMemory(100)
	a := newAuth(t, core, shared)
	keyer, _ := store.NewKeyer([]byte("0123456789abcdef-test-key"))
	b := New(Config{Introspector: core, Keyer: keyer, Shared: shared, MaxTTL: time.Minute,
		NegativeTTL: time.Second, MaxEntries: 100, OnInactive: a.EvictKeyLocal}) // the peers' channel
	defer a.Close()
	defer b.Close()
	var asked int
	if _, err := a.Authenticate(openGate(&asked), "Bearer good"); err != nil || asked != 1 {
		t.Fatalf("first sight of a good token: %v, gate asked %d times", err, asked)
	}
	closed := closedGate(&asked)
	asked = 0
	// Its answer gone from both caches (expired after token_cache_ttl): the core is asked, the
	// gate is not.
	if err := a.answers.Invalidate(context.Background(), a.key("good")); err != nil {
		t.Fatal(err)
	}
	calls := core.calls.Load()
	if _, err := a.Authenticate(closed, "Bearer good"); err != nil {
		t.Fatalf("seen token, answer expired, gate closed: %v", err)
	}
	// Another instance, which holds nothing of it, asks the core again for a write.
	if _, err := b.Revalidate(closed, "Bearer good"); err != nil {
		t.Fatalf("seen token, other instance, gate closed: %v", err)
	}
	if n := core.calls.Load() - calls; n != 2 || asked != 0 {
		t.Fatalf("%d introspections, gate asked %d times; want 2 and 0", n, asked)
	}
	// Never seen: refused unasked.
	if _, err := b.Authenticate(closed, "Bearer random"); !errors.Is(err, apierror.RateLimited) || asked != 1 {
		t.Fatalf("unknown token behind a closed gate: %v (gate asked %d times)", err, asked)
	}
	// Revoked at the core: refused, and from then on gated like any unknown token, on every
	// instance.
	core.set("good", identitycore.Introspection{})
	_, err := b.Revalidate(closed, "Bearer good")
	wantCode(t, err, 401, "auth.unauthorized")
	if _, err := a.Revalidate(closed, "Bearer good"); !errors.Is(err, apierror.RateLimited) {
		t.Fatalf("revoked token behind a closed gate: %v", err)
	}
}

// Without an in-process answer cache and without a shared store, a token seen valid still
// passes a closed gate when a write asks the core again.
func TestGateSeenTokensWithoutLocalAnswers(t *testing.T) {
	core := newFake()
	core.set("good", live("u1", "openid", time.Hour))
	keyer, _ := store.NewKeyer([]byte("0123456789abcdef-test-key"))
	a := New(Config{Introspector: core, Keyer: keyer, DisableLocal: true,
		MaxTTL: time.Minute, NegativeTTL: time.Second, MaxEntries: 100})
	defer a.Close()
	var asked int
	if _, err := a.Authenticate(openGate(&asked), "Bearer good"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Revalidate(closedGate(&asked), "Bearer good"); err != nil || asked != 1 {
		t.Fatalf("seen token, no local cache, gate closed: %v (gate asked %d times)", err, asked)
	}
}

// A JWT costs the core nothing: the gate is not asked about it; opaque tokens are still gated.
func TestGateSkipsJWTs(t *testing.T) {
	s := newJWKSServer(t)
	a, core := newJWTAuth(t, s)
	defer a.Close()
	var asked int
	closed := closedGate(&asked)
	if _, err := a.Authenticate(closed, "Bearer "+s.sign(t, s.keys[0], "at+jwt", nil)); err != nil {
		t.Fatalf("valid JWT behind a closed gate: %v", err)
	}
	_, err := a.Authenticate(closed, "Bearer "+s.sign(t, s.keys[0], "JWT", nil))
	wantCode(t, err, 401, "auth.unauthorized")
	if asked != 0 {
		t.Fatalf("gate asked %d times about JWTs", asked)
	}
	if _, err := a.Authenticate(closed, "Bearer opaque"); !errors.Is(err, apierror.RateLimited) || core.calls.Load() != 0 {
		t.Fatalf("opaque token behind a closed gate: %v, %d introspections", err, core.calls.Load())
	}
}

// A token seen valid and now past its exp (a client retrying before it refreshes) is refused
// without asking the core, and is not counted as a failure.
func TestGateExpiredSeenTokenIsRefusedUncounted(t *testing.T) {
	core := newFake()
	core.set("good", live("u1", "openid", time.Hour))
	a := newAuth(t, core, nil)
	defer a.Close()
	var asked int
	if _, err := a.Authenticate(openGate(&asked), "Bearer good"); err != nil {
		t.Fatal(err)
	}
	a.now = func() time.Time { return time.Now().Add(time.Hour + time.Minute) }
	if err := a.answers.Invalidate(context.Background(), a.key("good")); err != nil {
		t.Fatal(err)
	}
	asked = 0
	calls := core.calls.Load()
	_, err := a.Authenticate(closedGate(&asked), "Bearer good")
	wantCode(t, err, 401, "auth.unauthorized")
	if asked != 0 || core.calls.Load() != calls {
		t.Fatalf("expired seen token: gate asked %d times, %d introspections; want 0 and 0", asked, core.calls.Load()-calls)
	}
}
