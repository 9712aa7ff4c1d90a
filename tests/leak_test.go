package tests

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/accountedge/caddy-account-api/tests/devcore"
	"github.com/accountedge/caddy-account-api/tests/harness"
)

// accessLogFilter is the access-log configuration the README recommends.
const accessLogFilter = `log {
		format filter {
			fields {
				request>uri query {
					delete access_token
				}
				request>headers>Logto-Verification-Id delete
			}
		}
	}`

// TestNoSecretLeaks runs the integration traffic (successes, refusals, step-up, JWTs, bad input,
// a token in the query) with debug logging and access logs on, then searches every log line,
// error body, metric and Redis key and value for every secret it used.
func TestNoSecretLeaks(t *testing.T) {
	rs := harness.StartRedis(t)
	const aud = "https://api.example.test"
	e := newEnv(t, options{
		redis:  rs.Addr(),
		global: "\tdebug\n\tmetrics\n",
		// Caddy's access log records a copy of the request taken before any handler runs; the
		// README's filter keeps refused query tokens and step-up record ids out of it.
		site:  accessLogFilter,
		extra: "jwt {\n audience " + aud + "\n }",
	})

	secrets := map[string]string{"client secret": devcore.DefaultClientSecret, "demo password": devcore.DemoPassword}
	wrongPassword := "Wrong-Passw0rd-leakcheck"
	secrets["wrong password"] = wrongPassword
	token := e.userToken(allScopes)
	secrets["user token"] = token
	jwt := e.token(devcore.MintRequest{Scope: allScopes, Format: "jwt", Audience: aud})
	secrets["jwt"] = jwt
	third := e.token(devcore.MintRequest{Scope: allScopes, ClientID: devcore.ThirdPartyAppID})
	secrets["third-party token"] = third
	m2m := e.m2mToken()
	secrets["m2m token"] = m2m

	var errorBodies []string
	record := func(r reply) reply {
		if r.status >= 400 {
			errorBodies = append(errorBodies, string(r.body))
		}
		return r
	}
	record(e.do("GET", "/api/my-account", token, nil))
	record(e.do("GET", "/api/my-account", jwt, nil))
	record(e.do("GET", "/api/my-account", "", nil, "Authorization", "Basic "+token))
	record(e.do("GET", "/api/my-account?access_token="+token, "", nil))
	record(e.do("PATCH", "/api/my-account", token, map[string]any{"name": "Leak Check"}))
	record(e.do("PATCH", "/api/my-account", token, `{"name":`+"\""+token+"\"")) // malformed, holds the token
	record(e.do("PATCH", "/api/my-account", third, map[string]any{"name": "x"}))
	record(e.do("POST", "/api/verifications/password", token, map[string]any{"password": wrongPassword}))
	vr := record(e.do("POST", "/api/verifications/password", token, map[string]any{"password": devcore.DemoPassword}))
	vid := vr.json(t)["verificationRecordId"].(string)
	secrets["verification record id"] = vid
	record(e.do("PATCH", "/api/my-account", token, map[string]any{"username": "leak_check"}, "logto-verification-id", vid))
	record(e.do("PATCH", "/api/my-account", token, map[string]any{"username": "1bad"}, "logto-verification-id", vid))
	record(e.do("PATCH", "/api/my-account/profile", token, map[string]any{"nickname": token}))
	e.call(e.caddy.URL(), "GET", "/api/account-center", m2m, nil)
	// Codes: to the user's own address (step-up) and to a new one, a wrong try, then the email change.
	codeRecord := record(e.do("POST", "/api/verifications/verification-code", token, codeBody("email", devcore.DemoEmail))).json(t)["verificationRecordId"].(string)
	ownCode := e.lastCode(devcore.DemoEmail)
	wrong := "000000"
	if ownCode == wrong {
		wrong = "111111"
	}
	record(e.do("POST", "/api/verifications/verification-code/verify", token, verifyBody("email", devcore.DemoEmail, codeRecord, wrong)))
	mustStatus(t, record(e.do("POST", "/api/verifications/verification-code/verify", token, verifyBody("email", devcore.DemoEmail, codeRecord, ownCode))), http.StatusOK)
	const newAddress = "leak.check@example.com"
	newRecord := record(e.do("POST", "/api/verifications/verification-code", token, codeBody("email", newAddress))).json(t)["verificationRecordId"].(string)
	newCode := e.lastCode(newAddress)
	record(e.do("POST", "/api/verifications/verification-code/verify", token, verifyBody("email", newAddress, newRecord, newCode)))
	mustStatus(t, record(e.do("POST", "/api/my-account/primary-email", token, map[string]any{"email": newAddress, "newIdentifierVerificationRecordId": newRecord}, vidHeader, codeRecord)), http.StatusNoContent)
	secrets["code to own address"], secrets["code to new address"] = ownCode, newCode
	secrets["code record id"], secrets["new-address record id"] = codeRecord, newRecord
	// A password change, then a wrong try of the old password.
	newPassword := "Leak-Check-N3w-Passw0rd!"
	secrets["new password"] = newPassword
	mustStatus(t, record(e.do("POST", "/api/my-account/password", token, map[string]any{"password": newPassword}, vidHeader, vid)), http.StatusNoContent)
	record(e.do("POST", "/api/verifications/password", token, map[string]any{"password": devcore.DemoPassword}))
	expired := int64(-5)
	record(e.do("GET", "/api/my-account", e.token(devcore.MintRequest{Scope: "openid", ExpiresIn: &expired}), nil))

	// Logs: the module's, Caddy's debug logs and the access log.
	logs := e.caddy.Logs()
	if !strings.Contains(logs, `"logger":"http.log.access`) {
		t.Fatalf("access log missing: the scan would prove nothing\n%s", logs)
	}
	// Metrics from the admin endpoint.
	resp, err := http.Get(e.caddy.AdminURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	keys, values := redisContents(t, rs.Addr())

	places := map[string]string{
		"logs":         logs,
		"error bodies": strings.Join(errorBodies, "\n"),
		"metrics":      string(metrics),
		"Redis keys":   strings.Join(keys, "\n"),
		// A record's value names its own id; everything else must be absent.
		"Redis values": withoutRecordIDs(strings.Join(values, "\n"), vid, codeRecord, newRecord),
	}
	hits := 0
	for where, text := range places {
		for what, secret := range secrets {
			if strings.Contains(text, secret) {
				hits++
				for _, line := range strings.Split(text, "\n") {
					if strings.Contains(line, secret) {
						t.Errorf("%s found in %s: %s", what, where, strings.ReplaceAll(line, secret, "<"+what+">"))
						break
					}
				}
			}
		}
	}
	t.Logf("scanned %d log bytes, %d error bodies, %d metric bytes, %d Redis keys for %d secrets: %d hits",
		len(logs), len(errorBodies), len(metrics), len(keys), len(secrets), hits)
}

// redisContents is every key in the Redis at addr and every string value, for a leak scan;
// an empty Redis fails the test, as a scan of it would prove nothing.
func redisContents(t *testing.T, addr string) (keys, values []string) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("no Redis keys (%v): the scan would prove nothing", err)
	}
	for _, k := range keys {
		v, _ := rdb.Get(ctx, k).Result()
		values = append(values, v)
	}
	return keys, values
}

// withoutRecordIDs removes each record's own "id" member from the stored values.
func withoutRecordIDs(values string, ids ...string) string {
	for _, id := range ids {
		values = strings.ReplaceAll(values, `"id":"`+id+`"`, "")
	}
	return values
}

func mustStatus(t *testing.T, r reply, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
}
