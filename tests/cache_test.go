package tests

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/accountedge/caddy-account-api/tests/devcore"
	"github.com/accountedge/caddy-account-api/tests/harness"
)

// cacheModes runs a test with the in-process store only, and with a real Redis as second level.
func cacheModes(t *testing.T, test func(t *testing.T, e *env)) {
	t.Run("in-process", func(t *testing.T) { test(t, newEnv(t, options{})) })
	t.Run("redis", func(t *testing.T) {
		test(t, newEnv(t, options{redis: harness.StartRedis(t).Addr()}))
	})
}

func TestTokenCacheHitsAndMisses(t *testing.T) {
	cacheModes(t, func(t *testing.T, e *env) {
		tok := e.userToken(allScopes)
		before := e.stats().Introspections
		for i := 0; i < 5; i++ {
			if r := e.do("GET", "/api/my-account", tok, nil); r.status != 200 {
				t.Fatalf("%d %s", r.status, r.body)
			}
		}
		if n := e.stats().Introspections - before; n != 1 {
			t.Fatalf("5 requests with one token made %d introspections, want 1", n)
		}
		// Negative entries: an unknown token is asked about once while its entry lives.
		for i := 0; i < 3; i++ {
			expectError(t, e.do("GET", "/api/my-account", "unknown-token", nil), http.StatusUnauthorized, "auth.unauthorized")
		}
		if n := e.stats().Introspections - before; n != 2 {
			t.Fatalf("introspections = %d, want 2 (one per token)", n)
		}
	})
}

func TestExpiredTokenRefusedWhileCached(t *testing.T) {
	cacheModes(t, func(t *testing.T, e *env) {
		ttl := int64(2)
		tok := e.token(devcore.MintRequest{Scope: allScopes, ExpiresIn: &ttl})
		if r := e.do("GET", "/api/my-account", tok, nil); r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		// token_cache_ttl is 5m, but the entry lives only as long as the token: past exp the
		// module either re-checks exp on a hit (unit test TestCachedAnswerNeverOutlivesExpiry moves
		// the clock to prove it) or finds no entry and asks the core, which says inactive.
		time.Sleep(2100 * time.Millisecond)
		for i := 0; i < 3; i++ {
			expectError(t, e.do("GET", "/api/my-account", tok, nil), http.StatusUnauthorized, "auth.unauthorized")
		}
	})
}

func TestConcurrentFirstRequestsMakeOneIntrospection(t *testing.T) {
	cacheModes(t, func(t *testing.T, e *env) {
		e.core.Core.SetIntrospectionDelay(300 * time.Millisecond)
		defer e.core.Core.SetIntrospectionDelay(0)
		tok := e.userToken(allScopes)
		before := e.stats().Introspections
		client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1000}}
		var wg sync.WaitGroup
		var ok, failed atomic.Int64
		start := make(chan struct{})
		for i := 0; i < 1000; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				req, _ := http.NewRequest("GET", e.caddy.URL()+"/api/my-account", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					return
				}
				resp.Body.Close()
				if resp.StatusCode == 200 {
					ok.Add(1)
				} else {
					failed.Add(1)
				}
			}()
		}
		close(start)
		wg.Wait()
		n := e.stats().Introspections - before
		t.Logf("1000 concurrent first requests: %d ok, %d failed, %d introspections", ok.Load(), failed.Load(), n)
		if failed.Load() != 0 || n != 1 {
			t.Fatalf("want 1000 ok and exactly 1 introspection")
		}
	})
}

func TestSensitiveRoutesAskTheCoreAgain(t *testing.T) {
	cacheModes(t, func(t *testing.T, e *env) {
		tok := e.userToken(allScopes)
		if r := e.do("GET", "/api/my-account", tok, nil); r.status != 200 {
			t.Fatal(r.status)
		}
		e.coreJSON("POST", "/dev/tokens/revoke", map[string]string{"token": tok}, nil)
		// Reads may be served from the cache until the entry expires...
		if r := e.do("GET", "/api/my-account", tok, nil); r.status != 200 {
			t.Fatalf("cached read: %d", r.status)
		}
		// ...but a credential check goes to the core and sees the revocation.
		expectError(t, e.do("POST", "/api/verifications/password", tok, map[string]any{"password": devcore.DemoPassword}),
			http.StatusUnauthorized, "auth.unauthorized")
		expectError(t, e.do("GET", "/api/my-account", tok, nil), http.StatusUnauthorized, "auth.unauthorized")
	})
}

func TestInstancesShareRedis(t *testing.T) {
	redis := harness.StartRedis(t)
	e := newEnv(t, options{redis: redis.Addr()})
	second := e.startCaddy(options{redis: redis.Addr()})
	tok := e.userToken(allScopes)
	before := e.stats().Introspections
	if r := e.do("GET", "/api/my-account", tok, nil); r.status != 200 {
		t.Fatal(r.status)
	}
	if r := e.call(second.URL(), "GET", "/api/my-account", tok, nil); r.status != 200 {
		t.Fatal(r.status)
	}
	if n := e.stats().Introspections - before; n != 1 {
		t.Fatalf("two instances made %d introspections for one token, want 1 (shared through Redis)", n)
	}
	// A verification record made on one instance is accepted by the other.
	vid := e.do("POST", "/api/verifications/password", tok, map[string]any{"password": devcore.DemoPassword}).json(t)["verificationRecordId"].(string)
	r := e.call(second.URL(), "PATCH", "/api/my-account", tok, map[string]any{"username": "shared_record"}, "logto-verification-id", vid)
	if r.status != 200 {
		t.Fatalf("record from the first instance refused by the second: %d %s", r.status, r.body)
	}
}

// TestWriteDecisionsReadFreshData: whether a password change needs step-up is decided on the
// user as the core has them now, not on the record the profile cache holds: a password set at
// the core (by no way the module hears of) makes step-up mandatory at once.
func TestWriteDecisionsReadFreshData(t *testing.T) {
	cacheModes(t, func(t *testing.T, e *env) {
		// A user with nothing to prove themselves with: no password, email or phone.
		r := e.call(e.core.URL, "POST", "/api/users", e.directM2MToken(), map[string]any{"username": "no_secrets_yet"})
		if r.status != http.StatusOK {
			t.Fatalf("create user: %d %s", r.status, r.body)
		}
		id := r.json(t)["id"].(string)
		tok := e.token(devcore.MintRequest{UserID: id, Scope: allScopes})
		if r := e.do("GET", "/api/my-account", tok, nil); r.status != 200 || r.json(t)["hasPassword"] != false {
			t.Fatalf("%d %s", r.status, r.body) // the record, without a password, is now cached
		}
		// A password is set at the core directly: the cached record does not know.
		if r := e.call(e.core.URL, "PATCH", "/api/users/"+id+"/password", e.directM2MToken(),
			map[string]any{"password": "Set-At-The-C0re!"}); r.status != http.StatusOK {
			t.Fatalf("direct password: %d %s", r.status, r.body)
		}
		if r := e.do("GET", "/api/my-account", tok, nil); r.json(t)["hasPassword"] != false {
			t.Fatal("the test needs the read to come from the cache")
		}
		r = e.do("POST", "/api/my-account/password", tok, map[string]any{"password": "Ch0sen-By-An-Attacker!"})
		expectError(t, r, http.StatusUnauthorized, "verification_record.permission_denied")
	})
}

// TestSuspensionStopsPasswordVerification: a user suspended at the core, while their record is
// cached, is refused at the right password with 401 user.suspended (the decision reads the core,
// not the cache) and told a wrong one is wrong, as Logto answers; their access token still reads
// (Logto revokes only refresh tokens). Reinstated through the site, the same password verifies.
func TestSuspensionStopsPasswordVerification(t *testing.T) {
	cacheModes(t, func(t *testing.T, e *env) {
		const password = "Suspend3d-Then-Back!"
		r := e.call(e.core.URL, "POST", "/api/users", e.directM2MToken(), map[string]any{"username": "to_be_suspended", "password": password})
		if r.status != http.StatusOK {
			t.Fatalf("create user: %d %s", r.status, r.body)
		}
		id := r.json(t)["id"].(string)
		tok := e.token(devcore.MintRequest{UserID: id, Scope: allScopes})
		if r := e.do("GET", "/api/my-account", tok, nil); r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body) // the record, not suspended, is now cached
		}
		suspend := map[string]any{"isSuspended": true}
		if r := e.call(e.core.URL, "PATCH", "/api/users/"+id+"/is-suspended", e.directM2MToken(), suspend); r.status != http.StatusOK {
			t.Fatalf("suspend at the core: %d %s", r.status, r.body)
		}
		if r := e.do("GET", "/api/my-account", tok, nil); r.status != 200 {
			t.Fatalf("Logto lets a suspended user's access token read until it expires: %d %s", r.status, r.body)
		}
		r = e.do("POST", "/api/verifications/password", tok, map[string]any{"password": password})
		expectError(t, r, http.StatusUnauthorized, "user.suspended")
		r = e.do("POST", "/api/verifications/password", tok, map[string]any{"password": "not-it"})
		expectError(t, r, http.StatusUnprocessableEntity, "session.invalid_credentials")
		e.mgmt("PATCH", "/api/users/"+id+"/is-suspended", map[string]any{"isSuspended": false})
		e.passwordRecord(tok, password)
	})
}

// TestSignInExperienceChangeReachesEveryInstance: a PATCH /api/sign-in-exp passing through one
// instance applies at once on both (the password policy refuses what it allowed just before).
func TestSignInExperienceChangeReachesEveryInstance(t *testing.T) {
	e, instances, _ := twoInstances(t)
	tok := e.userToken(allScopes)
	candidate := "Quite-Long-But-Not-40!"
	// Both instances cache the sign-in experience (a policy check reads it) before the change.
	for _, base := range instances {
		r := e.call(base, "POST", "/api/my-account/password", tok, map[string]any{"password": "x"},
			"logto-verification-id", e.passwordRecord(tok, devcore.DemoPassword))
		if r.status != http.StatusUnprocessableEntity {
			t.Fatalf("warming the policy: %d %s", r.status, r.body)
		}
	}
	e.mgmt("PATCH", "/api/sign-in-exp", map[string]any{"passwordPolicy": map[string]any{"length": map[string]any{"min": 40, "max": 256}}})
	for i, base := range instances {
		deadline := time.Now().Add(time.Second)
		for {
			r := e.call(base, "POST", "/api/my-account/password", tok, map[string]any{"password": candidate},
				"logto-verification-id", e.passwordRecord(tok, devcore.DemoPassword))
			if r.status == http.StatusUnprocessableEntity {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("instance %d still applies the old policy 1s after the change: %d %s", i+1, r.status, r.body)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestCachedReadsSurviveCoreOutage: with the core unreachable for longer than the settings'
// cache_ttl, a page load whose token and profile are cached still works (the settings serve
// stale, within their bound), and a write fails closed.
func TestCachedReadsSurviveCoreOutage(t *testing.T) {
	e, proxy := newFaultEnv(t, options{extra: "core_timeout 1s\naccount_center {\ncache_ttl 1s\n}"})
	tok := e.userToken(allScopes)
	if r := e.do("GET", "/api/my-account", tok, nil); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	proxy.set("down")
	time.Sleep(1500 * time.Millisecond) // past cache_ttl
	for i := 0; i < 3; i++ {
		if r := e.do("GET", "/api/my-account", tok, nil); r.status != 200 {
			t.Fatalf("a cached read during a core outage longer than cache_ttl: %d %s", r.status, r.body)
		}
	}
	expectError(t, e.do("PATCH", "/api/my-account", tok, map[string]any{"name": "x"}), http.StatusServiceUnavailable, "identity_core.unavailable")
	proxy.set("pass")
}

// TestSharedPathIsOneRoundTrip: with the in-process caches off, a page load reads the token's
// answer and the user's record from Redis in one round trip (one script call, no GET).
func TestSharedPathIsOneRoundTrip(t *testing.T) {
	rs := harness.StartRedis(t)
	e := newEnv(t, options{redis: rs.Addr(), extra: "disable_local_cache"})
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { rdb.Close() })
	tok := e.userToken(allScopes)
	for i := 0; i < 2; i++ { // the first loads both answers into Redis
		if r := e.do("GET", "/api/my-account", tok, nil); r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
	}
	ctx := context.Background()
	if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	const loads = 10
	for i := 0; i < loads; i++ {
		if r := e.do("GET", "/api/my-account", tok, nil); r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
	}
	stats, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	calls := func(cmd string) int {
		for _, line := range strings.Split(stats, "\n") {
			if rest, ok := strings.CutPrefix(line, "cmdstat_"+cmd+":calls="); ok {
				n, _ := strconv.Atoi(strings.SplitN(rest, ",", 2)[0])
				return n
			}
		}
		return 0
	}
	// Redis counts the reads a script makes as GETs: each page load is one script, whose two
	// reads (the answer, the record it links to) are all the GETs there are.
	t.Logf("%d page loads: %d EVALSHA, %d GET", loads, calls("evalsha"), calls("get"))
	if calls("evalsha") != loads || calls("get") != 2*loads {
		t.Fatalf("%d page loads made %d script calls and %d GETs, want %d and %d:\n%s", loads, calls("evalsha"), calls("get"), loads, 2*loads, stats)
	}
}
