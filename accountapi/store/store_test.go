package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestKeyerHidesTheSecret(t *testing.T) {
	if _, err := NewKeyer([]byte("short")); err == nil {
		t.Fatal("a short cache key was accepted")
	}
	a, _ := NewKeyer([]byte("0123456789abcdef"))
	b, _ := NewKeyer([]byte("0123456789abcdeX"))
	k := a.Key("tok", "secret-token-value")
	if strings.Contains(k, "secret-token-value") || !strings.HasPrefix(k, "tok:") {
		t.Fatalf("key %q", k)
	}
	if k != a.Key("tok", "secret-token-value") || k == b.Key("tok", "secret-token-value") {
		t.Fatal("keys must be stable for one secret and differ between secrets")
	}
}

func TestMemoryExpiry(t *testing.T) {
	m := NewMemory(10)
	ctx := context.Background()
	_ = m.Set(ctx, "k", []byte("v"), 50*time.Millisecond)
	if v, err := m.Get(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatalf("get: %q %v", v, err)
	}
	time.Sleep(60 * time.Millisecond)
	if _, err := m.Get(ctx, "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired entry returned: %v", err)
	}
	_ = m.Set(ctx, "k", []byte("v"), time.Minute)
	_ = m.Delete(ctx, "k")
	if _, err := m.Get(ctx, "k"); !errors.Is(err, ErrNotFound) {
		t.Fatal("deleted entry returned")
	}
}
