package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
	"github.com/accountedge/caddy-account-api/accountapi/verification"
)

// The routes' own answers, after every check of their row passed.

func expect(t *testing.T, what string, a answer, status int, code string) {
	t.Helper()
	if a.status != status || a.code != code {
		t.Errorf("%s: %d %s %s, want %d %s", what, a.status, a.code, a.body, status, code)
	}
}

func TestPatchAccountOwnAnswers(t *testing.T) {
	b := newBench(t)
	grant(b, "profile")
	editable(b, "username")
	expect(t, "no known key", b.do(request{method: "PATCH", path: "/api/my-account", body: `{"unknown":1}`}),
		http.StatusUnprocessableEntity, "entity.invalid_input")

	b.core.users[benchUser].Username = strp("ada")
	b.core.users[benchUser].HasPassword = true
	req := request{method: "PATCH", path: "/api/my-account", body: `{"username":null}`, header: map[string]string{}}
	withStepUp(b, &req)
	expect(t, "removing the only identifier", b.do(req), http.StatusBadRequest, "user.last_sign_in_method_required")
	if b.core.users[benchUser].Username == nil {
		t.Error("the username went although it was the last identifier")
	}

	b.core.users[benchUser].PrimaryEmail = strp("ada@example.com")
	if a := b.do(req); a.status != http.StatusOK {
		t.Fatalf("removing the username with an email left: %d %s", a.status, a.code)
	}
	if b.core.users[benchUser].Username != nil || len(b.changed) == 0 {
		t.Error("username not removed, or the change not reported")
	}
}

// The sign-in experience (policies) is cached by the handler: set it before the first request.
func TestUpdatePasswordOwnAnswers(t *testing.T) {
	bench := func(minLength int) (*bench, request) {
		b := newBench(t)
		securedUser(b)
		editable(b, "password")
		if minLength > 0 {
			b.core.sie.PasswordPolicy.Length.Min = &minLength
		}
		req := request{method: "POST", path: "/api/my-account/password", header: map[string]string{}}
		withStepUp(b, &req)
		return b, req
	}
	b, req := bench(20)
	req.body = `{"password":"short-Passw0rd!"}`
	expect(t, "too short for the policy", b.do(req), http.StatusUnprocessableEntity, "password.rejected")
	b, req = bench(0)
	req.body = `{"password":"old-Passw0rd!x"}`
	expect(t, "same password", b.do(req), http.StatusUnprocessableEntity, "user.same_password")
	req.body = `{"password":"new-Passw0rd!x"}`
	b.core.fail["UpdatePassword"] = &identitycore.UnavailableError{Op: "update password", Cause: errors.New("timeout")}
	expect(t, "core down at the write", b.do(req), http.StatusServiceUnavailable, "identity_core.unavailable")
	if b.core.passwords[benchUser] != "old-Passw0rd!x" {
		t.Error("the password changed although the write failed")
	}
}

func TestSetPrimaryOwnAnswers(t *testing.T) {
	b := newBench(t)
	securedUser(b)
	grant(b, "email", "phone")
	editable(b, "email", "phone")
	b.core.sie.EmailBlocklistPolicy.CustomBlocklist = []string{"@blocked.example"} // before the first request: cached
	post := func(path, key, value, recordID string) answer {
		req := request{method: "POST", path: path, header: map[string]string{},
			body: bodyJSON(map[string]string{key: value, "newIdentifierVerificationRecordId": recordID})}
		withStepUp(b, &req)
		return b.do(req)
	}
	emailRecord := func(value string, verified bool) string {
		return newRecord(b, verification.Record{Type: verification.EmailVerificationCode, Verified: verified,
			Identifier: &verification.Identifier{Type: "email", Value: value}})
	}
	expect(t, "no such record", post("/api/my-account/primary-email", "email", "new@example.com", "nope"),
		http.StatusBadRequest, "verification_record.not_found")
	expect(t, "record for another address", post("/api/my-account/primary-email", "email", "new@example.com", emailRecord("other@example.com", true)),
		http.StatusBadRequest, "verification_record.not_found")
	expect(t, "unverified record", post("/api/my-account/primary-email", "email", "new@example.com", emailRecord("new@example.com", false)),
		http.StatusBadRequest, "verification_record.not_found")
	expect(t, "blocklisted", post("/api/my-account/primary-email", "email", "x@blocked.example", emailRecord("x@blocked.example", true)),
		http.StatusUnprocessableEntity, "session.email_blocklist.email_not_allowed")
	if a := post("/api/my-account/primary-email", "email", "new@example.com", emailRecord("new@example.com", true)); a.status != http.StatusNoContent {
		t.Fatalf("a good change: %d %s", a.status, a.code)
	}
	if got := b.core.users[benchUser].PrimaryEmail; got == nil || *got != "new@example.com" {
		t.Errorf("primary email %v, want new@example.com", got)
	}

	// Phones are stored in E.164 digits: a trunk 0 after the country code goes.
	phone := newRecord(b, verification.Record{Type: verification.PhoneVerificationCode, Verified: true,
		Identifier: &verification.Identifier{Type: "phone", Value: "4407700900123"}})
	if a := post("/api/my-account/primary-phone", "phone", "4407700900123", phone); a.status != http.StatusNoContent {
		t.Fatalf("a phone change: %d %s", a.status, a.code)
	}
	if got := b.core.users[benchUser].PrimaryPhone; got == nil || *got != "447700900123" {
		t.Errorf("primary phone %v, want 447700900123", *got)
	}
	// A phone record cannot set an email.
	expect(t, "phone record for an email", post("/api/my-account/primary-email", "email", "p@example.com",
		newRecord(b, verification.Record{Type: verification.PhoneVerificationCode, Verified: true,
			Identifier: &verification.Identifier{Type: "phone", Value: "p@example.com"}})),
		http.StatusBadRequest, "verification_record.not_found")
}

func TestDeletePrimaryKeepsAnIdentifier(t *testing.T) {
	b := newBench(t)
	b.core.users[benchUser].PrimaryEmail = strp("ada@example.com")
	grant(b, "email")
	editable(b, "email")
	req := request{method: "DELETE", path: "/api/my-account/primary-email", header: map[string]string{}}
	withStepUp(b, &req)
	expect(t, "the only identifier", b.do(req), http.StatusBadRequest, "user.last_sign_in_method_required")
	b.core.users[benchUser].Identities = map[string]json.RawMessage{"github": json.RawMessage(`{}`)}
	if a := b.do(req); a.status != http.StatusNoContent || b.core.users[benchUser].PrimaryEmail != nil {
		t.Errorf("with a social identity left: %d %s, email %v", a.status, a.code, b.core.users[benchUser].PrimaryEmail)
	}
}

func TestIdentitiesOwnAnswers(t *testing.T) {
	b := newBench(t)
	securedUser(b)
	socialConnector(b)
	b.core.connectors["sms"] = &identitycore.Connector{ID: "sms", Type: "Sms", Target: "sms"}
	grant(b, "identities")
	editable(b, "social")
	send := func(method, connectorID string, linked bool) answer {
		req := request{method: method, path: "/api/my-account/identities", header: map[string]string{}}
		withStepUp(b, &req)
		id := newRecord(b, verification.Record{Type: verification.Social, Verified: true, ConnectorID: connectorID,
			ConnectorData: json.RawMessage(`{"code":"x"}`)})
		req.body = bodyJSON(map[string]string{"newIdentifierVerificationRecordId": id})
		if linked {
			b.core.users[benchUser].Identities = map[string]json.RawMessage{"github": json.RawMessage(`{"userId":"old"}`)}
		}
		return b.do(req)
	}
	expect(t, "unknown connector", send("POST", "gone", false), http.StatusUnprocessableEntity, "session.invalid_connector_id")
	expect(t, "not a social connector", send("POST", "sms", false), http.StatusBadRequest, "connector.unexpected_type")
	expect(t, "already linked (POST)", send("POST", "c1", true), http.StatusBadRequest, "user.identity_already_in_use")
	if a := send("PUT", "c1", true); a.status != http.StatusNoContent {
		t.Errorf("replace (PUT): %d %s", a.status, a.code)
	}
	if got := string(b.core.users[benchUser].Identities["github"]); !strings.Contains(got, "social-"+benchUser) {
		t.Errorf("identity after PUT %s, want the new social user", got)
	}

	req := request{method: "DELETE", path: "/api/my-account/identities/twitter", header: map[string]string{}}
	withStepUp(b, &req)
	expect(t, "unlink a target not linked", b.do(req), http.StatusNotFound, "user.identity_not_exist")
}

// A record used once for a link keeps the social identity: a second use links it again without
// a second exchange of the (single-use) provider code.
func TestSocialRecordReuseDoesNotExchangeAgain(t *testing.T) {
	b := newBench(t)
	socialConnector(b)
	grant(b, "identities")
	editable(b, "social")
	id := newRecord(b, verification.Record{Type: verification.Social, Verified: true, ConnectorID: "c1",
		ConnectorData: json.RawMessage(`{"code":"x"}`)})
	body := bodyJSON(map[string]string{"newIdentifierVerificationRecordId": id})
	for i := range 2 {
		if a := b.do(request{method: "PUT", path: "/api/my-account/identities", body: body}); a.status != http.StatusNoContent {
			t.Fatalf("use %d: %d %s", i+1, a.status, a.code)
		}
	}
	exchanges, puts := 0, 0
	for _, c := range b.core.calls {
		switch c {
		case "LinkSocialIdentity":
			exchanges++
		case "PutIdentity":
			puts++
		}
	}
	if exchanges != 1 || puts != 1 {
		t.Errorf("%d exchanges and %d direct links, want 1 and 1", exchanges, puts)
	}
}

func TestVerifyPasswordOwnAnswers(t *testing.T) {
	b := newBench(t)
	securedUser(b)
	expect(t, "wrong password", b.do(request{method: "POST", path: "/api/verifications/password", body: `{"password":"wrong"}`}),
		http.StatusUnprocessableEntity, "session.invalid_credentials")
	if b.limiter.taken["password"] != 1 {
		t.Errorf("%d failures recorded, want 1", b.limiter.taken["password"])
	}
	b.core.users[benchUser].IsSuspended = true
	expect(t, "suspended, right password", b.do(request{method: "POST", path: "/api/verifications/password", body: `{"password":"old-Passw0rd!x"}`}),
		http.StatusUnauthorized, "user.suspended")
	if b.limiter.taken["password"] != 1 {
		t.Error("a right password was counted as a failure")
	}
}

// A code sent to the user's own address and checked is a step-up record; one sent to a new
// address is not (it proves only the address).
func TestCodeRecordsAndStepUp(t *testing.T) {
	b := newBench(t)
	securedUser(b)
	grant(b, "email")
	editable(b, "email")
	sendAndCheck := func(address string) string {
		t.Helper()
		a := b.do(request{method: "POST", path: "/api/verifications/verification-code",
			body: bodyJSON(map[string]any{"identifier": map[string]string{"type": "email", "value": address}})})
		if a.status != http.StatusCreated {
			t.Fatalf("send to %s: %d %s", address, a.status, a.code)
		}
		var rec struct{ VerificationRecordID string }
		_ = json.Unmarshal(a.body, &rec)
		a = b.do(request{method: "POST", path: "/api/verifications/verification-code/verify",
			body: bodyJSON(map[string]any{"identifier": map[string]string{"type": "email", "value": address},
				"verificationId": rec.VerificationRecordID, "code": b.core.codes[address]})})
		if a.status != http.StatusOK {
			t.Fatalf("check for %s: %d %s", address, a.status, a.code)
		}
		return rec.VerificationRecordID
	}
	deleteWith := func(record string) answer {
		return b.do(request{method: "DELETE", path: "/api/my-account/primary-phone",
			header: map[string]string{verificationHeader: record}})
	}
	grant(b, "phone")
	editable(b, "phone")
	expect(t, "step-up with a new-address record", deleteWith(sendAndCheck("new@example.com")),
		http.StatusUnauthorized, "verification_record.permission_denied")
	if a := deleteWith(sendAndCheck("ada@example.com")); a.status != http.StatusNoContent {
		t.Errorf("step-up with a record of the user's own email: %d %s", a.status, a.code)
	}
}

func TestVerifyCodeOwnAnswers(t *testing.T) {
	b := newBench(t)
	record := func(userID string, verified bool) string {
		rec, err := b.records.Create(context.Background(), verification.Record{UserID: userID, Type: verification.EmailVerificationCode,
			Verified: verified, Identifier: &verification.Identifier{Type: "email", Value: "new@example.com"}})
		if err != nil {
			t.Fatal(err)
		}
		return rec.ID
	}
	b.core.codes["new@example.com"] = "123456"
	check := func(id, typ, value, code string) answer {
		return b.do(request{method: "POST", path: "/api/verifications/verification-code/verify",
			body: bodyJSON(map[string]any{"identifier": map[string]string{"type": typ, "value": value}, "verificationId": id, "code": code})})
	}
	expect(t, "no such record", check("nope", "email", "new@example.com", "123456"), http.StatusBadRequest, "verification_record.not_found")
	expect(t, "phone identifier, email record", check(record(benchUser, false), "phone", "123", "123456"), http.StatusBadRequest, "verification_record.not_found")
	expect(t, "another user's record", check(record("u2", false), "email", "new@example.com", "123456"), http.StatusBadRequest, "verification_code.not_found")
	expect(t, "a used record", check(record(benchUser, true), "email", "new@example.com", "123456"), http.StatusBadRequest, "verification_code.not_found")
	expect(t, "another address", check(record(benchUser, false), "email", "other@example.com", "123456"), http.StatusBadRequest, "verification_code.email_mismatch")
	b.limiter.deny["code-tries"] = true
	expect(t, "tries used up", check(record(benchUser, false), "email", "new@example.com", "123456"), http.StatusBadRequest, "verification_code.exceed_max_try")
	if _, ok := b.core.codes["new@example.com"]; !ok {
		t.Error("the code was consumed by a refused check")
	}
}

func TestSendCodeLimitsPerAddress(t *testing.T) {
	b := newBench(t)
	b.limiter.deny["code-send-to"] = true
	a := b.do(request{method: "POST", path: "/api/verifications/verification-code",
		body: `{"identifier":{"type":"email","value":"new@example.com"}}`})
	expect(t, "address over its limit", a, http.StatusTooManyRequests, "request.message_rate_limited")
	if a.header.Get("Retry-After") != "2" {
		t.Errorf("Retry-After %q, want 2 (1.5 s rounded up)", a.header.Get("Retry-After"))
	}
	if _, sent := b.core.codes["new@example.com"]; sent {
		t.Error("a code was sent over the limit")
	}
}

func TestSocialVerificationOwnAnswers(t *testing.T) {
	b := newBench(t)
	socialConnector(b)
	expect(t, "empty state", b.do(request{method: "POST", path: "/api/verifications/social",
		body: `{"connectorId":"c1","state":"","redirectUri":"https://app.example/cb"}`}), http.StatusBadRequest, "session.insufficient_info")
	a := b.do(request{method: "POST", path: "/api/verifications/social",
		body: `{"connectorId":"c1","state":"s","redirectUri":"https://app.example/cb","scope":"read:user email"}`})
	if a.status != http.StatusCreated || !strings.Contains(string(a.body), `scope=read%3Auser+email`) {
		t.Errorf("with a scope: %d %s", a.status, a.body)
	}
	other, err := b.records.Create(context.Background(), verification.Record{UserID: "u2", Type: verification.Social, ConnectorID: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	expect(t, "another user's record", b.do(request{method: "POST", path: "/api/verifications/social/verify",
		body: bodyJSON(map[string]any{"verificationRecordId": other.ID, "connectorData": map[string]string{"code": "x"}})}),
		http.StatusBadRequest, "verification_record.not_found")
}

func TestCoreFailuresAreLogtoShaped(t *testing.T) {
	b := newBench(t)
	b.core.fail["User"] = &identitycore.Error{Status: http.StatusNotFound, Code: "user.not_found_secret_detail"}
	expect(t, "unknown core code", b.do(request{method: "GET", path: "/api/my-account"}), http.StatusBadGateway, "identity_core.bad_response")
	b.core.fail["User"] = context.DeadlineExceeded
	expect(t, "core timeout", b.do(request{method: "GET", path: "/api/my-account"}), http.StatusServiceUnavailable, "identity_core.unavailable")
	b.core.fail["User"] = &identitycore.Error{Status: http.StatusUnprocessableEntity, Code: "user.username_already_in_use"}
	expect(t, "known core code", b.do(request{method: "GET", path: "/api/my-account"}), http.StatusUnprocessableEntity, "user.username_already_in_use")
}

func TestUnroutedRequests(t *testing.T) {
	b := newBench(t)
	expect(t, "unknown route", b.do(request{method: "GET", path: "/api/my-account/nope"}), http.StatusNotFound, "request.not_found")
	expect(t, "dot segments", b.do(request{method: "GET", path: "/api/my-account/../my-account"}), http.StatusNotFound, "request.not_found")
	expect(t, "token in the query", b.do(request{method: "GET", path: "/api/my-account?access_token=x"}), http.StatusBadRequest, "request.token_in_query")
	for p, want := range map[string]bool{"/api/my-account": true, "/API//My-Account/x": true, "/api/my-accounts": false, "/api/verifications": true} {
		if Owns(p) != want {
			t.Errorf("Owns(%q) = %v, want %v", p, !want, want)
		}
	}
}
