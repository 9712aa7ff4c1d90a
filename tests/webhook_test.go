package tests

import (
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/accountedge/caddy-account-api/accountapi/webhook"
	"github.com/accountedge/caddy-account-api/tests/devcore"
	"github.com/accountedge/caddy-account-api/tests/harness"
)

const webhookKey = "whsk_test_signing_key_0123456789"

// createdAt is a delivery's createdAt, age ago, as Logto writes it.
func createdAt(age time.Duration) string {
	return time.Now().Add(-age).UTC().Format("2006-01-02T15:04:05.000Z")
}

// deliver posts a webhook body to Caddy, signed with key ("" sends no signature).
func (e *env) deliver(base, key, body string) reply {
	e.t.Helper()
	headers := []string{"Content-Type", "application/json"}
	if key != "" {
		headers = append(headers, webhook.SignatureHeader, hex.EncodeToString(webhook.Sign([]byte(key), []byte(body))))
	}
	return e.call(base, "POST", "/hooks/logto", "", body, headers...)
}

func TestWebhookDropsTheCachedProfile(t *testing.T) {
	redis := harness.StartRedis(t)
	opts := options{redis: redis.Addr(), extra: "webhook /hooks/logto {\n\t\t\tsigning_key " + webhookKey + "\n\t\t}"}
	e := newEnv(t, opts)
	second := e.startCaddy(opts)
	tok := e.userToken(allScopes)
	old := e.name(e.caddy.URL(), tok)
	_ = e.name(second.URL(), tok)
	e.renameAtCore("Renamed In The Console")
	body := `{"event":"User.Data.Updated","createdAt":"` + createdAt(0) + `","params":{"userId":"` + devcore.DemoUserID +
		`"},"data":{"id":"` + devcore.DemoUserID + `","name":"Renamed In The Console"}}`

	// Refused: no signature, a wrong key, a body changed after signing.
	if r := e.deliver(e.caddy.URL(), "", body); r.status != http.StatusUnauthorized {
		t.Fatalf("unsigned delivery: %d", r.status)
	}
	if r := e.deliver(e.caddy.URL(), "another-key-0123456789", body); r.status != http.StatusUnauthorized {
		t.Fatalf("wrongly signed delivery: %d", r.status)
	}
	tampered := e.call(e.caddy.URL(), "POST", "/hooks/logto", "", strings.Replace(body, "Console", "Consols", 1),
		webhook.SignatureHeader, hex.EncodeToString(webhook.Sign([]byte(webhookKey), []byte(body))))
	if tampered.status != http.StatusUnauthorized {
		t.Fatalf("tampered delivery: %d", tampered.status)
	}
	if got := e.name(e.caddy.URL(), tok); got != old {
		t.Fatalf("a refused delivery changed the cached read to %q", got)
	}

	// Accepted: this instance drops the record, and tells the other one.
	if r := e.deliver(e.caddy.URL(), webhookKey, body); r.status != http.StatusNoContent {
		t.Fatalf("signed delivery: %d %s", r.status, r.body)
	}
	if got := e.name(e.caddy.URL(), tok); got != "Renamed In The Console" {
		t.Fatalf("after the webhook the read says %q", got)
	}
	eventually(t, "the other instance hears of the webhook", func() bool {
		return e.name(second.URL(), tok) == "Renamed In The Console"
	})

	// Interaction events carry the user at the top level; events about nothing cached are fine.
	e.renameAtCore("Signed In Again")
	if r := e.deliver(e.caddy.URL(), webhookKey, `{"event":"PostSignIn","createdAt":"`+createdAt(0)+`","userId":"`+devcore.DemoUserID+`","user":{"id":"`+devcore.DemoUserID+`"}}`); r.status != http.StatusNoContent {
		t.Fatalf("PostSignIn delivery: %d", r.status)
	}
	if got := e.name(e.caddy.URL(), tok); got != "Signed In Again" {
		t.Fatalf("after PostSignIn the read says %q", got)
	}
	if r := e.deliver(e.caddy.URL(), webhookKey, `{"event":"Role.Created","createdAt":"`+createdAt(0)+`","data":{"id":"r1"}}`); r.status != http.StatusNoContent {
		t.Fatalf("unrelated event: %d", r.status)
	}
	if r := e.deliver(e.caddy.URL(), webhookKey, `not json`); r.status != http.StatusBadRequest {
		t.Fatalf("signed garbage: %d", r.status)
	}
	// Other paths still go to the next handler.
	if r := e.call(e.caddy.URL(), "GET", "/hooks/logto-other", "", nil); r.status == http.StatusNoContent {
		t.Fatal("a neighbouring path was served by the webhook endpoint")
	}
}

func TestWebhookReplaysCostNothing(t *testing.T) {
	e, bases := topologies[1].instances(t, "webhook /hooks/logto {\n\t\t\tsigning_key "+webhookKey+"\n\t\t\tmax_age 2m\n\t\t}")
	tok := e.userToken(allScopes)
	body := `{"event":"User.Data.Updated","createdAt":"` + createdAt(0) + `","params":{"userId":"` + devcore.DemoUserID + `"},"data":{"id":"` + devcore.DemoUserID + `"}}`
	if r := e.deliver(bases[0], webhookKey, body); r.status != http.StatusNoContent {
		t.Fatalf("first delivery: %d %s", r.status, r.body)
	}
	// Both instances cache the record again, then the name changes at the core unseen.
	_ = e.name(bases[0], tok)
	_ = e.name(bases[1], tok)
	e.renameAtCore("Changed Quietly")
	// The captured delivery replayed at either instance, and a signed delivery older than
	// max_age, are answered 204 and drop nothing.
	for i, base := range []string{bases[0], bases[1], bases[0]} {
		if r := e.deliver(base, webhookKey, body); r.status != http.StatusNoContent {
			t.Fatalf("replay %d: %d", i, r.status)
		}
	}
	old := `{"event":"User.Data.Updated","createdAt":"` + createdAt(3*time.Minute) + `","params":{"userId":"` + devcore.DemoUserID + `"}}`
	if r := e.deliver(bases[1], webhookKey, old); r.status != http.StatusNoContent {
		t.Fatalf("stale delivery: %d", r.status)
	}
	for _, base := range []string{bases[0], bases[1]} {
		if got := e.name(base, tok); got == "Changed Quietly" {
			t.Fatal("a replayed or stale delivery dropped the cached record")
		}
	}
	if n := e.metric(`caddy_account_api_webhooks_total{outcome="replayed"}`); n != 2 {
		t.Fatalf("replays counted on the first instance: %v, want 2", n)
	}
	if n := e.metric(`caddy_account_api_webhooks_total{outcome="accepted"}`); n != 1 {
		t.Fatalf("accepted deliveries on the first instance: %v, want 1", n)
	}
	// A fresh delivery still works.
	fresh := `{"event":"User.Data.Updated","createdAt":"` + createdAt(0) + `","params":{"userId":"` + devcore.DemoUserID + `"},"data":{"id":"` + devcore.DemoUserID + `","n":2}}`
	if r := e.deliver(bases[1], webhookKey, fresh); r.status != http.StatusNoContent {
		t.Fatalf("fresh delivery: %d", r.status)
	}
	eventually(t, "the fresh delivery drops the record everywhere", func() bool {
		return e.name(bases[0], tok) == "Changed Quietly" && e.name(bases[1], tok) == "Changed Quietly"
	})
}
