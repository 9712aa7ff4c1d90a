package tests

import (
	"net/http"
	"testing"
	"time"

	"github.com/accountedge/caddy-account-api/tests/devcore"
	"github.com/accountedge/caddy-account-api/tests/harness"
)

// TestRevokedTokenRefusedEverywhere: a token cached by two instances is revoked at the core.
// After the user's credentials change through one instance, or after a Logto webhook about the
// user reaches one instance, both instances refuse the token within a second.
func TestRevokedTokenRefusedEverywhere(t *testing.T) {
	for _, trigger := range []string{"webhook", "password change"} {
		t.Run(trigger, func(t *testing.T) {
			rs := harness.StartRedis(t)
			opts := options{redis: rs.Addr(), extra: "webhook /hooks/logto {\n\t\t\tsigning_key " + webhookKey + "\n\t\t}"}
			e := newEnv(t, opts)
			instances := []string{e.caddy.URL(), e.startCaddy(opts).URL()}
			victim := e.userToken(allScopes)
			for _, base := range instances {
				if r := e.call(base, "GET", "/api/my-account", victim, nil); r.status != 200 {
					t.Fatalf("%d %s", r.status, r.body)
				}
			}
			e.coreJSON("POST", "/dev/tokens/revoke", map[string]string{"token": victim}, nil)
			// Still cached: without a signal the edge keeps serving it until token_cache_ttl.
			if r := e.call(instances[1], "GET", "/api/my-account", victim, nil); r.status != 200 {
				t.Fatalf("the cached answer should still serve before any signal: %d", r.status)
			}

			start := time.Now()
			switch trigger {
			case "webhook":
				body := `{"event":"User.Data.Updated","createdAt":"` + createdAt(0) + `","params":{"userId":"` + devcore.DemoUserID + `"},"data":{"id":"` + devcore.DemoUserID + `"}}`
				if r := e.deliver(instances[0], webhookKey, body); r.status != http.StatusNoContent {
					t.Fatalf("webhook: %d %s", r.status, r.body)
				}
			case "password change":
				other := e.userToken(allScopes) // the user's session on another device
				vid := e.call(instances[1], "POST", "/api/verifications/password", other,
					map[string]any{"password": devcore.DemoPassword}).json(t)["verificationRecordId"].(string)
				r := e.call(instances[1], "POST", "/api/my-account/password", other,
					map[string]any{"password": "An0ther-Str0ng-Secret!"}, "logto-verification-id", vid)
				if r.status != http.StatusNoContent {
					t.Fatalf("password change: %d %s", r.status, r.body)
				}
			}
			for i, base := range instances {
				for {
					r := e.call(base, "GET", "/api/my-account", victim, nil)
					if r.status == http.StatusUnauthorized {
						t.Logf("instance %d refuses the revoked token %v after the %s", i+1, time.Since(start).Round(time.Millisecond), trigger)
						break
					}
					if time.Since(start) > time.Second {
						t.Fatalf("instance %d still accepts the revoked token 1s after the %s (%d)", i+1, trigger, r.status)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
}
