package tests

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/accountedge/caddy-account-api/tests/devcore"
	"github.com/accountedge/caddy-account-api/tests/harness"
)

// TestReloadUnderLoad reloads the configuration several times while requests flow: none may
// fail, the Redis connections must be reused rather than reopened, and memory must stay flat.
func TestReloadUnderLoad(t *testing.T) {
	rs := harness.StartRedis(t)
	opts := options{redis: rs.Addr()}
	e := newEnv(t, opts)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { rdb.Close() })
	moduleConns := func() int {
		list, _ := rdb.ClientList(context.Background()).Result()
		return strings.Count(list, "name=caddy-account-api")
	}

	warm := e.userToken(allScopes)
	stop := make(chan struct{})
	load := runLoad(e, 4, func() string { return warm }, stop)
	fresh := runLoad(e, 1, func() string { return e.userToken(allScopes) }, stop)
	time.Sleep(500 * time.Millisecond)
	connsBefore := moduleConns()
	rssBefore, err := e.caddy.RSS()
	if err != nil {
		t.Fatal(err)
	}

	const reloads = 10
	for i := 0; i < reloads; i++ {
		opts.extra = "token_cache_ttl " + []string{"4m", "5m"}[i%2] // a real config change each time
		e.caddy.Reload(e.caddyfile(e.caddy.Ports(), opts))
		time.Sleep(300 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	connsAfter := moduleConns()
	rssAfter, _ := e.caddy.RSS()
	close(stop)
	time.Sleep(200 * time.Millisecond)
	ok, failed := load.snapshot()
	okFresh, failedFresh := fresh.snapshot()
	t.Logf("%d reloads under load: %d+%d requests ok, %d+%d failed, %d+%d dropped connections retried (%d+%d sent a third time); module Redis connections %d before, %d after; RSS %.1f MB before, %.1f MB after",
		reloads, ok, okFresh, failed, failedFresh, load.resets, fresh.resets, load.redials, fresh.redials, connsBefore, connsAfter, float64(rssBefore)/1e6, float64(rssAfter)/1e6)
	if failed+failedFresh != 0 {
		t.Fatalf("requests failed during reloads: %v %v", load.describe(), fresh.describe())
	}
	if ok == 0 || okFresh == 0 {
		t.Fatal("no traffic flowed: the test proves nothing")
	}
	// The pooled client survives reloads: its connections are reused, not multiplied.
	if connsAfter > connsBefore+2 {
		t.Fatalf("Redis connections grew from %d to %d over %d reloads", connsBefore, connsAfter, reloads)
	}
	if rssAfter > rssBefore+64<<20 {
		t.Fatalf("RSS grew by %.1f MB over %d reloads", float64(rssAfter-rssBefore)/1e6, reloads)
	}
}

// TestReloadControl measures what Caddy alone does on reload with keep-alive clients (a plain
// respond, no module): the dropped connections TestReloadUnderLoad retries are Caddy's, at the
// same rate.
func TestReloadControl(t *testing.T) {
	cfg := func(p harness.Ports, body string) string {
		return fmt.Sprintf("{\n%s}\nhttp://127.0.0.1:%d {\n\trespond %q\n}\n", harness.GlobalOptions(p), p.HTTP, body)
	}
	c := harness.StartCaddy(t, func(p harness.Ports) string { return cfg(p, "a") })
	stop := make(chan struct{})
	load := runLoadOn(&http.Client{Timeout: 10 * time.Second}, c.URL(), 4, func() string { return "" }, stop)
	for i := 0; i < 10; i++ {
		time.Sleep(300 * time.Millisecond)
		c.Reload(cfg(c.Ports(), []string{"b", "a"}[i%2]))
	}
	close(stop)
	time.Sleep(200 * time.Millisecond)
	ok, failed := load.snapshot()
	t.Logf("respond only, 10 reloads: %d ok, %d failed, %d dropped connections retried (%d sent a third time)", ok, failed, load.resets, load.redials)
	if failed != 0 || ok == 0 {
		t.Fatalf("control: %s", load.describe())
	}
}

// TestStateSurvivesReload: without Redis (everything in process), a step-up record and a
// password lockout (the sign-in experience's sentinelPolicy) made before a `caddy reload` are
// honoured after it, whether the reload changes an unrelated option or a cache setting (which
// gets new caches, not new records).
func TestStateSurvivesReload(t *testing.T) {
	opts := options{}
	e := newEnv(t, opts)
	e.setSentinel(3, 1)
	tok := e.userToken(allScopes)
	record := e.call(e.caddy.URL(), "POST", "/api/verifications/password", tok,
		map[string]any{"password": devcore.DemoPassword}).json(t)["verificationRecordId"].(string)
	locked := e.token(devcore.MintRequest{UserID: devcore.OtherUserID, Scope: allScopes})
	wrong := map[string]any{"password": "not-the-password"}
	for i := 0; i < 3; i++ {
		e.do("POST", "/api/verifications/password", locked, wrong)
	}
	expectError(t, e.do("POST", "/api/verifications/password", locked, map[string]any{"password": devcore.OtherPassword}),
		http.StatusBadRequest, blocked)

	for i, extra := range []string{"cors_origins https://app.example", "token_cache_ttl 30s"} {
		opts.extra = extra
		e.caddy.Reload(e.caddyfile(e.caddy.Ports(), opts))
		e.client.CloseIdleConnections() // Caddy drops keep-alive connections on reload
		expectError(t, e.do("POST", "/api/verifications/password", locked, map[string]any{"password": devcore.OtherPassword}),
			http.StatusBadRequest, blocked)
		if i == 0 {
			continue
		}
		// The record made before both reloads still authorises the change it was made for.
		r := e.do("PATCH", "/api/my-account", tok, map[string]any{"username": "after_reload"}, "logto-verification-id", record)
		if r.status != 200 {
			t.Fatalf("a step-up record made before the reload: %d %s", r.status, r.body)
		}
	}
}
