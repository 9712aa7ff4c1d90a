package tests

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/accountedge/caddy-account-api/tests/devcore"
	"github.com/accountedge/caddy-account-api/tests/harness"
)

// userReads counts the core's Management API reads of one user.
func (e *env) userReads() int64 { return e.stats().Management["GET /api/users/{userId}"] }

// name reads the demo user's name through base (a Caddy instance).
func (e *env) name(base, tok string) string {
	e.t.Helper()
	r := e.call(base, "GET", "/api/my-account", tok, nil)
	if r.status != http.StatusOK {
		e.t.Fatalf("GET /api/my-account: %d %s", r.status, r.body)
	}
	name, _ := r.json(e.t)["name"].(string)
	return name
}

// m2mTokenVia gets a Management API token through the Caddy instance at base (its issuer is
// that instance's address, as the core sees it).
func (e *env) m2mTokenVia(base string) string {
	e.t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "resource": {devcore.DefaultManagementResource}, "scope": {"all"}}
	req, _ := http.NewRequest("POST", base+"/oidc/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(devcore.DefaultClientID, devcore.DefaultClientSecret)
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.AccessToken == "" {
		e.t.Fatalf("no management token (status %d): %v", resp.StatusCode, err)
	}
	return out.AccessToken
}

// directM2MToken gets a Management API token from the core itself (its issuer is the core's
// address), for changes that bypass Caddy, as the Logto Console's would.
func (e *env) directM2MToken() string { return e.m2mTokenVia(e.core.URL) }

// renameAtCore changes the demo user's name at the core, bypassing Caddy.
func (e *env) renameAtCore(name string) {
	e.t.Helper()
	r := e.call(e.core.URL, "PATCH", "/api/users/"+devcore.DemoUserID, e.directM2MToken(), map[string]any{"name": name})
	if r.status != http.StatusOK {
		e.t.Fatalf("direct PATCH: %d %s", r.status, r.body)
	}
}

// eventually polls cond for up to 3 seconds: pub/sub delivery is asynchronous.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 3s", what)
		}
	}
}

func TestProfileCacheServesRepeatedReads(t *testing.T) {
	cacheModes(t, func(t *testing.T, e *env) {
		tok := e.userToken(allScopes)
		before := e.userReads()
		first := e.do("GET", "/api/my-account", tok, nil)
		for i := 0; i < 5; i++ {
			r := e.do("GET", "/api/my-account", tok, nil)
			if r.status != http.StatusOK || !sameJSON(r.body, first.body) {
				t.Fatalf("cached read %d: %d %s, first %s", i, r.status, r.body, first.body)
			}
		}
		if n := e.userReads() - before; n != 1 {
			t.Fatalf("6 reads made %d user reads at the core, want 1", n)
		}
	})
}

func TestProfileCacheDroppedByOwnWrites(t *testing.T) {
	cacheModes(t, func(t *testing.T, e *env) {
		tok := e.userToken(allScopes)
		_ = e.name(e.caddy.URL(), tok) // cached
		if r := e.do("PATCH", "/api/my-account", tok, map[string]any{"name": "Written Here"}); r.status != 200 {
			t.Fatalf("PATCH: %d %s", r.status, r.body)
		}
		if got := e.name(e.caddy.URL(), tok); got != "Written Here" {
			t.Fatalf("after PATCH /api/my-account the read says %q", got)
		}
		if r := e.do("PATCH", "/api/my-account/profile", tok, map[string]any{"nickname": "nick"}); r.status != 200 {
			t.Fatalf("PATCH profile: %d %s", r.status, r.body)
		}
		r := e.do("GET", "/api/my-account", tok, nil)
		if p, _ := r.json(t)["profile"].(map[string]any); p["nickname"] != "nick" {
			t.Fatalf("after PATCH /api/my-account/profile the read says %s", r.body)
		}
	})
}

func TestProfileCacheDroppedByManagementWritesThroughCaddy(t *testing.T) {
	cacheModes(t, func(t *testing.T, e *env) {
		tok := e.userToken(allScopes)
		_ = e.name(e.caddy.URL(), tok)
		r := e.call(e.caddy.URL(), "PATCH", "/api/users/"+devcore.DemoUserID, e.m2mToken(), map[string]any{"name": "Admin Rename"})
		if r.status != http.StatusOK {
			t.Fatalf("Management API PATCH through Caddy: %d %s", r.status, r.body)
		}
		if got := e.name(e.caddy.URL(), tok); got != "Admin Rename" {
			t.Fatalf("after a Management API write through Caddy the read says %q", got)
		}
		// A refused write changes nothing and keeps the entry.
		before := e.userReads()
		r = e.call(e.caddy.URL(), "PATCH", "/api/users/"+devcore.DemoUserID, "bad-token", map[string]any{"name": "x"})
		if r.status != http.StatusUnauthorized {
			t.Fatalf("unauthenticated write: %d", r.status)
		}
		_ = e.name(e.caddy.URL(), tok)
		if n := e.userReads() - before; n != 0 {
			t.Fatalf("a refused write dropped the cached record (%d core reads)", n)
		}
	})
}

func TestProfileCacheMaxAgeAndOff(t *testing.T) {
	t.Run("max_age", func(t *testing.T) {
		e := newEnv(t, options{extra: "profile_cache {\n\t\t\tmax_age 1s\n\t\t}"})
		tok := e.userToken(allScopes)
		old := e.name(e.caddy.URL(), tok)
		e.renameAtCore("Changed Behind The Edge")
		// Nothing told the module: the old record is served until it is 1s old.
		if got := e.name(e.caddy.URL(), tok); got != old {
			t.Fatalf("read right after a direct change says %q, want the cached %q", got, old)
		}
		time.Sleep(1100 * time.Millisecond)
		if got := e.name(e.caddy.URL(), tok); got != "Changed Behind The Edge" {
			t.Fatalf("after max_age the read says %q", got)
		}
	})
	t.Run("off", func(t *testing.T) {
		e := newEnv(t, options{extra: "profile_cache off"})
		tok := e.userToken(allScopes)
		before := e.userReads()
		for i := 0; i < 3; i++ {
			_ = e.name(e.caddy.URL(), tok)
		}
		if n := e.userReads() - before; n != 3 {
			t.Fatalf("with profile_cache off, 3 reads made %d core reads", n)
		}
	})
}

func TestProfileCacheInvalidatedAcrossInstances(t *testing.T) {
	redis := harness.StartRedis(t)
	e := newEnv(t, options{redis: redis.Addr()})
	second := e.startCaddy(options{redis: redis.Addr()})
	tok := e.userToken(allScopes)
	before := e.userReads()
	_ = e.name(e.caddy.URL(), tok)
	_ = e.name(second.URL(), tok) // from Redis, then in the second's own memory
	if n := e.userReads() - before; n != 1 {
		t.Fatalf("two instances made %d core reads of one user, want 1 (shared through Redis)", n)
	}
	if r := e.do("PATCH", "/api/my-account", tok, map[string]any{"name": "Seen Everywhere"}); r.status != 200 {
		t.Fatalf("PATCH: %d %s", r.status, r.body)
	}
	eventually(t, "the second instance sees the first one's write", func() bool {
		return e.name(second.URL(), tok) == "Seen Everywhere"
	})
	// And a Management API write through the second instance reaches the first.
	r := e.call(second.URL(), "PATCH", "/api/users/"+devcore.DemoUserID, e.m2mTokenVia(second.URL()), map[string]any{"name": "Back Again"})
	if r.status != http.StatusOK {
		t.Fatalf("Management API PATCH: %d %s", r.status, r.body)
	}
	eventually(t, "the first instance sees a Management API write made through the second", func() bool {
		return e.name(e.caddy.URL(), tok) == "Back Again"
	})
}

func TestProfileCacheSurvivesRedisRestart(t *testing.T) {
	redis := harness.StartRedis(t)
	e := newEnv(t, options{redis: redis.Addr()})
	second := e.startCaddy(options{redis: redis.Addr()})
	tok := e.userToken(allScopes)
	_ = e.name(e.caddy.URL(), tok)
	_ = e.name(second.URL(), tok)
	redis.Restart()
	// The subscription comes back by itself; what was cached before may have missed events and
	// is dropped, and later events arrive again.
	eventually(t, "a write on one instance reaches the other after a Redis restart", func() bool {
		name := "After Restart " + time.Now().Format("150405.000")
		if r := e.call(e.caddy.URL(), "PATCH", "/api/my-account", tok, map[string]any{"name": name}); r.status != 200 {
			return false
		}
		time.Sleep(100 * time.Millisecond)
		return e.name(second.URL(), tok) == name
	})
}
