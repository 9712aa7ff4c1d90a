package caddymodule

import (
	"context"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/goleak"

	"github.com/accountedge/caddy-account-api/tests/harness"
)

// TestCleanupStopsBackgroundWork provisions the handler with everything that starts goroutines
// (JWKS refresh, Redis client) and checks that Cleanup leaves none behind.
func TestCleanupStopsBackgroundWork(t *testing.T) {
	rs := harness.StartRedis(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for i := 0; i < 3; i++ { // as three successive config loads would
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		h := Handler{CoreURL: "http://127.0.0.1:1", ClientID: "m2m", ClientSecret: "s3cret",
			JWT:   &JWTConfig{Audiences: []string{"https://api.example"}},
			Redis: &RedisConfig{Addresses: []string{rs.Addr()}}}
		if err := h.Provision(ctx); err != nil {
			t.Fatal(err)
		}
		if err := h.Validate(); err != nil {
			t.Fatal(err)
		}
		if err := h.Cleanup(); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
}

// TestCleanupWithoutRedis: the in-process stores are stopped too.
func TestCleanupWithoutRedis(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	h := Handler{CoreURL: "http://127.0.0.1:1", ClientID: "m2m", ClientSecret: "s3cret"}
	if err := h.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Cleanup(); err != nil {
		t.Fatal(err)
	}
}
