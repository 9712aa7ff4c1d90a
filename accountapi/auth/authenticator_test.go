package auth

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accountedge/caddy-account-api/accountapi/apierror"
	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
	"github.com/accountedge/caddy-account-api/accountapi/store"
)

// fakeCore answers introspection from a table and counts the calls.
type fakeCore struct {
	mu      sync.Mutex
	answers map[string]identitycore.Introspection
	calls   atomic.Int64
	delay   time.Duration
	err     error
}

func (f *fakeCore) Introspect(ctx context.Context, token string) (identitycore.Introspection, error) {
	f.calls.Add(1)
	select {
	case <-time.After(f.delay):
	case <-ctx.Done(): // as an HTTP request on ctx would
		return identitycore.Introspection{}, &identitycore.UnavailableError{Op: "introspection", Cause: ctx.Err()}
	}
	if f.err != nil {
		return identitycore.Introspection{}, f.err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.answers[token], nil
}

func (f *fakeCore) set(token string, in identitycore.Introspection) {
	f.mu.Lock()
	f.answers[token] = in
	f.mu.Unlock()
}

func newFake() *fakeCore { return &fakeCore{answers: map[string]identitycore.Introspection{}} }

func live(sub, scope string, ttl time.Duration) identitycore.Introspection {
	return identitycore.Introspection{Active: true, Subject: sub, ClientID: "demo-app", Scope: scope,
		ExpiresAt: time.Now().Add(ttl).Unix(), TokenType: "Bearer"}
}

func newAuth(t *testing.T, core Introspector, shared store.Indexed) *Authenticator {
	t.Helper()
	keyer, err := store.NewKeyer([]byte("0123456789abcdef-test-key"))
	if err != nil {
		t.Fatal(err)
	}
	return New(Config{Introspector: core, Keyer: keyer, Shared: shared,
		MaxTTL: time.Minute, NegativeTTL: time.Second, MaxEntries: 1000})
}

func wantCode(t *testing.T, err error, status int, code string) {
	t.Helper()
	e, ok := errors.AsType[*apierror.Error](err)
	if !ok || e.Status != status || e.Code != code {
		t.Fatalf("got %v, want %d %s", err, status, code)
	}
}

func TestBearerHeaderErrors(t *testing.T) {
	a := newAuth(t, newFake(), nil)
	for _, tc := range []struct {
		header string
		status int
		code   string
	}{
		{"", 401, "auth.authorization_header_missing"},
		{"Basic abc", 401, "auth.authorization_token_type_not_supported"},
		{"bearer abc", 401, "auth.authorization_token_type_not_supported"}, // Logto is case-sensitive
		{"Bearer ", 401, "auth.unauthorized"},
		{"Bearer a b", 401, "auth.unauthorized"},
		{"Bearer unknown", 401, "auth.unauthorized"},
	} {
		_, err := a.Authenticate(context.Background(), tc.header)
		wantCode(t, err, tc.status, tc.code)
	}
}

func TestChecksOnEveryAnswer(t *testing.T) {
	core := newFake()
	core.set("no-openid", live("u1", "profile", time.Hour))
	core.set("no-sub", live("", "openid", time.Hour))
	// A refresh token as Logto introspects it: active, the user's sub, no token_type.
	refresh := live("u1", "openid", time.Hour)
	refresh.TokenType = ""
	core.set("refresh", refresh)
	odd := live("u1", "openid", time.Hour)
	odd.TokenType = "refresh_token"
	core.set("odd-type", odd)
	// Client credentials: no end user (no sub, or the client itself).
	core.set("cc-no-sub", identitycore.Introspection{Active: true, ClientID: "m2m", Scope: "openid", TokenType: "Bearer"})
	core.set("cc-sub-client", identitycore.Introspection{Active: true, Subject: "m2m", ClientID: "m2m", Scope: "openid", TokenType: "Bearer"})
	core.set("ok", live("u1", "openid profile", time.Hour))
	a := newAuth(t, core, nil)
	ctx := context.Background()

	for i := 0; i < 2; i++ { // the second round is served from the cache: same verdicts
		_, err := a.Authenticate(ctx, "Bearer no-openid")
		wantCode(t, err, 403, "auth.forbidden")
		_, err = a.Authenticate(ctx, "Bearer no-sub")
		wantCode(t, err, 401, "auth.unauthorized")
		for _, tok := range []string{"refresh", "odd-type", "cc-no-sub", "cc-sub-client"} {
			_, err = a.Authenticate(ctx, "Bearer "+tok)
			wantCode(t, err, 401, "auth.unauthorized")
		}
		p, err := a.Authenticate(ctx, "Bearer ok")
		if err != nil || p.Subject != "u1" || p.ClientID != "demo-app" || !p.HasScope("profile") {
			t.Fatalf("ok token: %+v, %v", p, err)
		}
	}
	if n := core.calls.Load(); n != 7 {
		t.Fatalf("introspections = %d, want 7 (one per token)", n)
	}
}

func TestCachedAnswerNeverOutlivesExpiry(t *testing.T) {
	core := newFake()
	core.set("short", live("u1", "openid", 2*time.Second))
	a := newAuth(t, core, nil)
	ctx := context.Background()
	if _, err := a.Authenticate(ctx, "Bearer short"); err != nil {
		t.Fatal(err)
	}
	// The cache holds the answer; move the clock past exp instead of sleeping.
	a.now = func() time.Time { return time.Now().Add(3 * time.Second) }
	_, err := a.Authenticate(ctx, "Bearer short")
	wantCode(t, err, 401, "auth.unauthorized")
	if n := core.calls.Load(); n != 1 {
		t.Fatalf("introspections = %d, want 1: the refusal must come from the cached exp", n)
	}
}

func TestNegativeCacheIsShort(t *testing.T) {
	core := newFake()
	a := newAuth(t, core, nil)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		_, err := a.Authenticate(ctx, "Bearer nope")
		wantCode(t, err, 401, "auth.unauthorized")
	}
	if n := core.calls.Load(); n != 1 {
		t.Fatalf("introspections = %d, want 1 while the negative entry lives", n)
	}
	time.Sleep(1100 * time.Millisecond) // NegativeTTL is 1s
	core.set("nope", live("u1", "openid", time.Hour))
	if _, err := a.Authenticate(ctx, "Bearer nope"); err != nil {
		t.Fatalf("after the negative entry expired: %v", err)
	}
}

func TestConcurrentFirstRequestsCoalesce(t *testing.T) {
	core := newFake()
	core.delay = 100 * time.Millisecond
	core.set("new", live("u1", "openid", time.Hour))
	a := newAuth(t, core, nil)
	var wg sync.WaitGroup
	var failures atomic.Int64
	for i := 0; i < 1000; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := a.Authenticate(context.Background(), "Bearer new"); err != nil {
				failures.Add(1)
			}
		}()
	}
	wg.Wait()
	if failures.Load() != 0 || core.calls.Load() != 1 {
		t.Fatalf("failures=%d introspections=%d, want 0 and 1", failures.Load(), core.calls.Load())
	}
}

func TestCoreFailureIsNotAccessNorCached(t *testing.T) {
	core := newFake()
	core.err = &identitycore.UnavailableError{Op: "introspection", Cause: errors.New("connection refused")}
	a := newAuth(t, core, nil)
	_, err := a.Authenticate(context.Background(), "Bearer tok")
	wantCode(t, err, http.StatusServiceUnavailable, "identity_core.unavailable")
	core.err = nil
	core.set("tok", live("u1", "openid", time.Hour))
	if _, err := a.Authenticate(context.Background(), "Bearer tok"); err != nil {
		t.Fatalf("the failure was cached: %v", err)
	}
}

// TestWaiterThatGivesUpGetsAnAPIError: a request whose context ends while it waits on another
// request's introspection gets a Logto-shaped 503, never an unmapped error (a 500), and the
// load it waited on goes on for the others.
func TestWaiterThatGivesUpGetsAnAPIError(t *testing.T) {
	core := newFake()
	core.delay = 200 * time.Millisecond
	core.set("slow", live("u1", "openid", time.Hour))
	a := newAuth(t, core, nil)
	first := make(chan error, 1)
	go func() { _, err := a.Authenticate(context.Background(), "Bearer slow"); first <- err }()
	for core.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	_, err := a.Authenticate(ctx, "Bearer slow")
	cancel()
	wantCode(t, err, http.StatusServiceUnavailable, "identity_core.unavailable")
	if err := <-first; err != nil {
		t.Fatalf("the load waited on: %v", err)
	}
}

func TestSharedStoreServesOtherInstances(t *testing.T) {
	core := newFake()
	core.set("tok", live("u1", "openid", time.Hour))
	shared := store.NewMemory(100)
	a, b := newAuth(t, core, shared), newAuth(t, core, shared)
	if _, err := a.Authenticate(context.Background(), "Bearer tok"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Authenticate(context.Background(), "Bearer tok"); err != nil {
		t.Fatal(err)
	}
	if n := core.calls.Load(); n != 1 {
		t.Fatalf("introspections = %d, want 1: the second instance must use the shared answer", n)
	}
}

func TestRevalidateAsksTheCore(t *testing.T) {
	core := newFake()
	core.set("tok", live("u1", "openid", time.Hour))
	a := newAuth(t, core, nil)
	ctx := context.Background()
	if _, err := a.Authenticate(ctx, "Bearer tok"); err != nil {
		t.Fatal(err)
	}
	core.set("tok", identitycore.Introspection{Active: false}) // revoked at the core
	if _, err := a.Authenticate(ctx, "Bearer tok"); err != nil {
		t.Fatalf("cached answer should still serve reads: %v", err)
	}
	_, err := a.Revalidate(ctx, "Bearer tok")
	wantCode(t, err, 401, "auth.unauthorized")
	_, err = a.Authenticate(ctx, "Bearer tok")
	wantCode(t, err, 401, "auth.unauthorized") // the fresh answer replaced the cached one
}

func TestEvictSubject(t *testing.T) {
	core := newFake()
	core.set("a1", live("u1", "openid", time.Hour))
	core.set("a2", live("u1", "openid", time.Hour))
	core.set("b1", live("u2", "openid", time.Hour))
	shared := store.NewMemory(100)
	a, peer := newAuth(t, core, shared), newAuth(t, core, shared)
	ctx := context.Background()
	for _, tok := range []string{"a1", "a2", "b1"} {
		if _, err := a.Authenticate(ctx, "Bearer "+tok); err != nil {
			t.Fatal(err)
		}
	}
	before := core.calls.Load()
	core.set("a1", identitycore.Introspection{Active: false}) // revoked at the core
	time.Sleep(2 * time.Millisecond)                          // the revocation is later than the cached answers
	if err := a.EvictSubject(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	_, err := a.Authenticate(ctx, "Bearer a1")
	wantCode(t, err, 401, "auth.unauthorized")
	// The peer has nothing in process; the shared answer cached before the revocation is void,
	// and it finds the fresh (negative) one this instance just shared.
	_, err = peer.Authenticate(ctx, "Bearer a1")
	wantCode(t, err, 401, "auth.unauthorized")
	if _, err := a.Authenticate(ctx, "Bearer a2"); err != nil {
		t.Fatalf("the user's other, live token: %v", err)
	}
	if _, err := a.Authenticate(ctx, "Bearer b1"); err != nil {
		t.Fatal(err)
	}
	// a1 and a2 asked again once each; b1 (another user) stayed cached.
	if n := core.calls.Load() - before; n != 2 {
		t.Fatalf("introspections after eviction = %d, want 2", n)
	}
	// An answer shared before the revocation is not used by a peer.
	core.set("a2", live("u1", "openid", time.Hour))
	fresh := newAuth(t, core, shared)
	time.Sleep(2 * time.Millisecond)
	_ = a.EvictSubject(ctx, "u1")
	before = core.calls.Load()
	if _, err := fresh.Authenticate(ctx, "Bearer a2"); err != nil {
		t.Fatal(err)
	}
	if n := core.calls.Load() - before; n != 1 {
		t.Fatalf("a peer used an answer cached before the revocation (%d introspections)", n)
	}
}

func TestSharedAnswerEncoding(t *testing.T) {
	for _, a := range []answer{
		newAnswer(true, "u1", "sid-1", grantOf("demo-app", "openid profile"), 1796111459),
		newAnswer(true, "u1", "", grantOf("demo-app", "openid profile"), 1796111459),
	} {
		b, _ := encodeAnswer(a)
		if got, err := decodeAnswer(b); err != nil || !reflect.DeepEqual(got, a) {
			t.Fatalf("round trip: %+v %v, want %+v", got, err, a)
		}
	}
	a := newAnswer(true, "u1", "sid-1", grantOf("demo-app", "openid profile"), 1796111459)
	b, _ := encodeAnswer(a)
	for i := 0; i < len(b); i++ { // every truncation is refused, never a partial answer
		if _, err := decodeAnswer(b[:i]); err == nil {
			t.Fatalf("a truncated answer (%d of %d bytes) was accepted", i, len(b))
		}
	}
}
