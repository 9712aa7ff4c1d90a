package auth

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/accountedge/caddy-account-api/accountapi/apierror"
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
