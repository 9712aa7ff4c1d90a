package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/accountedge/caddy-account-api/accountapi/auth"
	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
	"github.com/accountedge/caddy-account-api/accountapi/profilecache"
	"github.com/accountedge/caddy-account-api/accountapi/store"
)

// fakeCore answers every introspection as active and every user read with a realistic record,
// instantly: the memory measurement is about what the caches keep, not about the core.
type fakeCore struct{ identitycore.Core }

func (fakeCore) Introspect(_ context.Context, token string) (identitycore.Introspection, error) {
	// Two tokens per user (a browser and a phone), as the core would answer them: each answer
	// decoded into its own strings.
	n, _ := strconv.Atoi(strings.TrimLeft(token[len("tok_"):], "0"))
	return identitycore.Introspection{Active: true, Subject: fmt.Sprintf("user%08d", n/2), ClientID: strings.Clone("demo-app"),
		Scope: strings.Clone("openid offline_access profile email phone identities custom_data address"), ExpiresAt: time.Now().Add(time.Hour).Unix(),
		TokenType: "Bearer"}, nil // no sid, as the recorded Logto introspection (one with a sid costs ~45 bytes more)
}

func (fakeCore) User(_ context.Context, id string, _ bool) (*identitycore.User, error) {
	name, email, username := "Ada Lovelace", id+"@example.com", "user_"+id
	return &identitycore.User{ID: id, Name: &name, PrimaryEmail: &email, Username: &username,
		CustomData: json.RawMessage(`{"plan":"pro","preferences":{"theme":"dark","language":"en"}}`),
		Identities: map[string]json.RawMessage{"github": json.RawMessage(`{"userId":"123456","details":{"id":"123456","name":"Ada"}}`)},
		Profile:    json.RawMessage(`{"givenName":"Ada","familyName":"Lovelace","locale":"en-GB"}`),
		CreatedAt:  1700000000000, UpdatedAt: 1700000000000, HasPassword: true}, nil
}

// rss is this process's resident set size in bytes (Linux).
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	return rssFrom(string(b))
}

func rssFrom(status string) uint64 {
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// measureCaches fills the module's own in-process caches (the token cache of package auth, the
// profile cache) with tokens and users, and reports the growth of the heap and of the RSS.
func measureCaches(tokens, users int) (heapGrowth, rssGrowth uint64, err error) {
	debug.FreeOSMemory()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	rssBefore := rss()

	keyer, _ := store.NewKeyer([]byte("bench-cache-key-0123456789"))
	core := fakeCore{}
	a := auth.New(auth.Config{Introspector: core, Keyer: keyer, MaxTTL: time.Hour, NegativeTTL: time.Minute, MaxEntries: tokens})
	p := profilecache.New(profilecache.Config{Core: core, Keyer: keyer, MaxAge: time.Hour, MaxEntries: users})
	ctx := context.Background()
	for i := range tokens {
		if _, err := a.Authenticate(ctx, fmt.Sprintf("Bearer tok_%038d", i)); err != nil {
			return 0, 0, err
		}
	}
	for i := range users {
		if _, err := p.User(ctx, fmt.Sprintf("u%011d", i), false); err != nil {
			return 0, 0, err
		}
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	rssAfter := rss()
	// Both caches must still be reachable here, or the GC would have freed them.
	runtime.KeepAlive(a)
	runtime.KeepAlive(p)
	return after.HeapAlloc - before.HeapAlloc, rssAfter - min(rssAfter, rssBefore), nil
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }

// tokenName is the bench's n-th token.
func tokenName(n int) string { return fmt.Sprintf("tok_%038d", n) }

// measureTokens fills a token cache with n answers and reports the heap they cost each, and how
// long voiding one user's answers takes with the cache full.
func measureTokens(n int) (bytesPerToken float64, evict time.Duration, err error) {
	debug.FreeOSMemory()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	keyer, _ := store.NewKeyer([]byte("bench-cache-key-0123456789"))
	a := auth.New(auth.Config{Introspector: fakeCore{}, Keyer: keyer, MaxTTL: time.Hour, NegativeTTL: time.Minute, MaxEntries: n})
	defer a.Close()
	ctx := context.Background()
	for i := range n {
		if _, err := a.Authenticate(ctx, "Bearer "+tokenName(i)); err != nil {
			return 0, 0, err
		}
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	bytesPerToken = float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
	start := time.Now()
	a.EvictSubjectLocal(fmt.Sprintf("user%08d", n/4))
	evict = time.Since(start)
	runtime.KeepAlive(a)
	return bytesPerToken, evict, nil
}
