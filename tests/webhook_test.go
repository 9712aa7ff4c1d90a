package tests

import (
	"encoding/hex"
	"net/http"
	"strings"
	"testing"

	"github.com/accountedge/caddy-account-api/accountapi/webhook"
	"github.com/accountedge/caddy-account-api/tests/devcore"
	"github.com/accountedge/caddy-account-api/tests/harness"
)

const webhookKey = "whsk_test_signing_key_0123456789"

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
	body := `{"event":"User.Data.Updated","createdAt":"2026-11-24T10:00:00.000Z","params":{"userId":"` + devcore.DemoUserID +
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
	if r := e.deliver(e.caddy.URL(), webhookKey, `{"event":"PostSignIn","userId":"`+devcore.DemoUserID+`","user":{"id":"`+devcore.DemoUserID+`"}}`); r.status != http.StatusNoContent {
		t.Fatalf("PostSignIn delivery: %d", r.status)
	}
	if got := e.name(e.caddy.URL(), tok); got != "Signed In Again" {
		t.Fatalf("after PostSignIn the read says %q", got)
	}
	if r := e.deliver(e.caddy.URL(), webhookKey, `{"event":"Role.Created","data":{"id":"r1"}}`); r.status != http.StatusNoContent {
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
