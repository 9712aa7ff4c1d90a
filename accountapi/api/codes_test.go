package api

import (
	"testing"

	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
)

func TestRecipientKeyNormalises(t *testing.T) {
	email := func(v string) identitycore.Identifier { return identitycore.Identifier{Type: "email", Value: v} }
	same := []string{"victim@example.com", "Victim@Example.COM", "victim+1@example.com", "VICTIM+promo+x@example.com",
		"victim@example.com.", `"victim"@example.com`, `"Victim+x"@example.com.`}
	for _, v := range same {
		if got := recipientKey(email(v), false); got != "email:victim@example.com" {
			t.Errorf("%s → %s", v, got)
		}
	}
	if recipientKey(email("victim+1@example.com"), true) == recipientKey(email("victim@example.com"), true) {
		t.Error("distinct subaddresses folded")
	}
	if got := recipientKey(email("+x@example.com"), false); got != "email:+x@example.com" {
		t.Errorf("a local part that is all tag: %s", got)
	}
	phone := func(v string) identitycore.Identifier { return identitycore.Identifier{Type: "phone", Value: v} }
	if recipientKey(phone("610489409039"), false) != recipientKey(phone("61489409039"), false) {
		t.Error("a phone with and without the trunk 0 counted apart")
	}
	if recipientKey(phone("0016148940000"), false) != recipientKey(phone("16148940000"), false) {
		t.Error("a phone with and without the international 00 prefix counted apart")
	}
	if recipientKey(email(`"a b"@example.com`), false) == recipientKey(email("ab@example.com"), false) {
		t.Error("a quoted local part that needs its quotes lost them")
	}
}
