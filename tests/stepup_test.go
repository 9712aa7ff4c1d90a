package tests

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/accountedge/caddy-account-api/tests/devcore"
	"github.com/accountedge/caddy-account-api/tests/harness"
)

// Tests of the sensitive routes (issue 3): verification codes, password, primary email and
// phone, social identities, with the recorded exchanges of logto-samples-stepup.json replayed
// through the real Caddy binary in front of the dev core, with a real Redis.

var stepupSamples = func(t *testing.T) []harness.Exchange {
	return harness.LoadSamples(t, "logto-samples-stepup.json")
}

const vidHeader = "logto-verification-id"

// newStepupEnv is an environment with a real Redis behind Caddy.
func newStepupEnv(t *testing.T, extra string) *env {
	t.Helper()
	return newEnv(t, options{redis: harness.StartRedis(t).Addr(), extra: extra})
}

// mgmt calls the core's Management API through Caddy (pass-through) with an M2M token.
func (e *env) mgmt(method, path string, body any) reply {
	e.t.Helper()
	r := e.call(e.caddy.URL(), method, path, e.m2mToken(), body)
	if r.status >= 300 {
		e.t.Fatalf("management %s %s: %d %s", method, path, r.status, r.body)
	}
	return r
}

// lastCode is the code the dev core's mock connector last sent to an address.
func (e *env) lastCode(to string) string {
	e.t.Helper()
	code, ok := e.core.Core.LastCode(to)
	if !ok {
		e.t.Fatalf("no code was sent to %s", to)
	}
	return code
}

func codeBody(typ, value string) map[string]any {
	return map[string]any{"identifier": map[string]string{"type": typ, "value": value}}
}

func verifyBody(typ, value, id, code string) map[string]any {
	return map[string]any{"identifier": map[string]string{"type": typ, "value": value}, "verificationId": id, "code": code}
}

// sendCode sends a code and returns the record id.
func (e *env) sendCode(tok, typ, value string) string {
	e.t.Helper()
	r := e.do("POST", "/api/verifications/verification-code", tok, codeBody(typ, value))
	if r.status != http.StatusCreated {
		e.t.Fatalf("send code to %s: %d %s", value, r.status, r.body)
	}
	return r.json(e.t)["verificationRecordId"].(string)
}

// provenAddress sends a code to an address and verifies it: a verified record id.
func (e *env) provenAddress(tok, typ, value string) string {
	e.t.Helper()
	id := e.sendCode(tok, typ, value)
	r := e.do("POST", "/api/verifications/verification-code/verify", tok, verifyBody(typ, value, id, e.lastCode(value)))
	if r.status != http.StatusOK {
		e.t.Fatalf("verify code of %s: %d %s", value, r.status, r.body)
	}
	return id
}

// passwordRecord proves the user by password: a step-up record id.
func (e *env) passwordRecord(tok, password string) string {
	e.t.Helper()
	r := e.do("POST", "/api/verifications/password", tok, map[string]any{"password": password})
	if r.status != http.StatusCreated {
		e.t.Fatalf("verify password: %d %s", r.status, r.body)
	}
	return r.json(e.t)["verificationRecordId"].(string)
}

// account reads the user's profile through Caddy.
func (e *env) account(tok string) map[string]any {
	e.t.Helper()
	r := e.do("GET", "/api/my-account", tok, nil)
	if r.status != 200 {
		e.t.Fatalf("GET /api/my-account: %d %s", r.status, r.body)
	}
	return r.json(e.t)
}

const demoPhone = "61401883386"

func TestVerificationCodes(t *testing.T) {
	e := newStepupEnv(t, "")
	ex := stepupSamples(t)
	s := func(title string) harness.Exchange { return harness.Sample(t, ex, title) }
	e.mgmt("PATCH", "/api/users/"+devcore.DemoUserID, map[string]any{"primaryPhone": demoPhone})
	tok := e.userToken(allScopes)
	post := func(path string, body any) reply { return e.do("POST", "/api/verifications/"+path, tok, body) }

	// A code to the user's current email: a step-up record once verified.
	r := post("verification-code", codeBody("email", devcore.DemoEmail))
	matchSample(t, r, s("Send verification code to user's current email"))
	current := r.json(t)["verificationRecordId"].(string)
	matchSample(t, post("verification-code/verify", verifyBody("email", devcore.DemoEmail, current, "000000x")),
		s("Verify code for user's current email: wrong code"))
	matchSample(t, post("verification-code/verify", verifyBody("email", devcore.DemoEmail, "bogus-verification-id", e.lastCode(devcore.DemoEmail))),
		s("Verify code for user's current email: bad verificationId"))
	matchSample(t, post("verification-code/verify", verifyBody("email", devcore.DemoEmail, current, e.lastCode(devcore.DemoEmail))),
		s("Verify code for user's current email: right code"))

	// A code to a new email proves only that address.
	const newEmail = "ada.new@example.com"
	r = post("verification-code", codeBody("email", newEmail))
	matchSample(t, r, s("Send verification code to a NEW email (not the user's)"))
	fresh := r.json(t)["verificationRecordId"].(string)
	code := e.lastCode(newEmail)
	matchSample(t, post("verification-code/verify", verifyBody("email", newEmail, fresh, "000000x")),
		s("Verify code for a NEW email (not the user's): wrong code"))
	matchSample(t, post("verification-code/verify", verifyBody("email", newEmail, "bogus-verification-id", code)),
		s("Verify code for a NEW email (not the user's): bad verificationId"))
	r = post("verification-code/verify", verifyBody("email", newEmail, fresh, code))
	matchSample(t, r, s("Verify code for a NEW email (not the user's): right code"))
	if r.json(t)["verificationRecordId"] != fresh {
		t.Fatalf("verify answered %s", r.body)
	}
	matchSample(t, post("verification-code/verify", verifyBody("email", newEmail, fresh, code)),
		s("Verify code for a NEW email (not the user's): right code again (record already verified)"))
	matchSample(t, post("verification-code/verify", verifyBody("email", "other@example.com", fresh, code)),
		s("Verify code for a NEW email (not the user's): right code but a different identifier value"))
	matchSample(t, post("verification-code/verify", verifyBody("phone", "61434403459", fresh, code)),
		s("Verify code for a NEW email (not the user's): email record verified as a phone identifier"))
	// The new-email record is not a step-up proof; the current-email one is.
	expectError(t, e.do("DELETE", "/api/my-account/primary-phone", tok, nil, vidHeader, fresh),
		http.StatusUnauthorized, "verification_record.permission_denied")

	// Phones.
	r = post("verification-code", codeBody("phone", demoPhone))
	matchSample(t, r, s("Send verification code to user's current phone"))
	phoneRec := r.json(t)["verificationRecordId"].(string)
	matchSample(t, post("verification-code/verify", verifyBody("phone", demoPhone, phoneRec, "000000x")),
		s("Verify code for user's current phone: wrong code"))
	matchSample(t, post("verification-code/verify", verifyBody("phone", demoPhone, phoneRec, e.lastCode(demoPhone))),
		s("Verify code for user's current phone: right code"))
	r = post("verification-code", codeBody("phone", "610434403459"))
	matchSample(t, r, s("Send verification code to the leading-zero variant of A's new phone (6104... vs 614...)"))
	matchSample(t, post("verification-code/verify", verifyBody("phone", "61434403459", r.json(t)["verificationRecordId"].(string), e.lastCode("610434403459"))),
		s("Verify leading-zero phone record presenting the non-zero form as identifier"))

	// Body rules and authentication.
	for _, title := range []string{
		"Send verification code to a phone written with +, spaces and dashes",
		"Send verification code to a phone written with a leading + only",
		"Send verification code to an email that fails the email regex",
		"Send verification code with identifier type username",
	} {
		sm := s(title)
		matchSample(t, post("verification-code", json.RawMessage(sm.Request.Body)), sm)
	}
	sm := s("Send verification code without a bearer token")
	matchSample(t, e.do("POST", "/api/verifications/verification-code", "", json.RawMessage(sm.Request.Body)), sm)

	// The record sent to the current email works as step-up, on a route that needs it.
	if r := e.do("DELETE", "/api/my-account/primary-phone", tok, nil, vidHeader, current); r.status != http.StatusNoContent {
		t.Fatalf("step-up with a verified current-email code: %d %s", r.status, r.body)
	}
	// Third-party clients may not send codes.
	third := e.token(devcore.MintRequest{Scope: allScopes, ClientID: devcore.ThirdPartyAppID})
	expectError(t, e.do("POST", "/api/verifications/verification-code", third, codeBody("email", devcore.DemoEmail)),
		http.StatusForbidden, "auth.third_party_application_forbidden")
}

func TestPrimaryEmailAndPhone(t *testing.T) {
	e := newStepupEnv(t, "")
	ex := stepupSamples(t)
	s := func(title string) harness.Exchange { return harness.Sample(t, ex, title) }
	e.mgmt("PATCH", "/api/users/"+devcore.DemoUserID, map[string]any{"primaryPhone": demoPhone})
	const otherPhone = "61494277245"
	e.mgmt("PATCH", "/api/users/"+devcore.OtherUserID, map[string]any{"primaryPhone": otherPhone})
	tok := e.userToken(allScopes)
	pw := e.passwordRecord(tok, devcore.DemoPassword)
	const newEmail = "ada.new@example.com"
	newRec := e.provenAddress(tok, "email", newEmail)
	unverified := e.sendCode(tok, "email", "ada.unverified@example.com")
	newPhone := "61434403459"
	phoneRec := e.provenAddress(tok, "phone", newPhone)
	body := func(email, rec string) map[string]any {
		return map[string]any{"email": email, "newIdentifierVerificationRecordId": rec}
	}
	post := func(b any, stepUp string) reply {
		if stepUp == "" {
			return e.do("POST", "/api/my-account/primary-email", tok, b)
		}
		return e.do("POST", "/api/my-account/primary-email", tok, b, vidHeader, stepUp)
	}

	matchSample(t, post(body(newEmail, newRec), ""), s("POST primary-email without logto-verification-id"))
	matchSample(t, post(body(newEmail, newRec), "bogus-record-id"), s("POST primary-email with a bogus logto-verification-id"))
	matchSample(t, post(body("ada.unverified@example.com", unverified), pw), s("POST primary-email with identity record, new-identifier record unverified"))
	matchSample(t, post(body(newEmail, "bogus-new-record"), pw), s("POST primary-email with identity record, bogus new-identifier record id"))
	matchSample(t, post(body("mismatch@example.com", newRec), pw), s("POST primary-email with identity record, verified new-identifier record for a different email"))
	matchSample(t, post(body(newEmail, phoneRec), pw), s("POST primary-email with a PHONE verification record as new-identifier record"))
	matchSample(t, post(body(newEmail, newRec), pw), s("POST primary-email success"))
	if a := e.account(tok); a["primaryEmail"] != newEmail {
		t.Fatalf("after the change: %v", a)
	}
	matchSample(t, post(body(newEmail, newRec), pw), s("POST primary-email again with the same records (email unchanged now)"))
	matchSample(t, post(body("nope", newRec), pw), s("POST primary-email with an invalid email (guard)"))

	// Collisions, case-insensitive.
	matchSample(t, post(body(devcore.OtherEmail, e.provenAddress(tok, "email", devcore.OtherEmail)), pw),
		s("POST primary-email with an email already used by another user"))
	upper := strings.ToUpper(devcore.OtherEmail)
	matchSample(t, post(body(upper, e.provenAddress(tok, "email", upper)), pw),
		s("POST primary-email with another user's email in different case"))

	// Delete.
	matchSample(t, e.do("DELETE", "/api/my-account/primary-email", tok, nil), s("DELETE primary-email without logto-verification-id"))
	matchSample(t, e.do("DELETE", "/api/my-account/primary-email", tok, nil, vidHeader, pw), s("DELETE primary-email success (password identity record)"))
	if a := e.account(tok); a["primaryEmail"] != nil {
		t.Fatalf("after the delete: %v", a)
	}
	matchSample(t, e.do("DELETE", "/api/my-account/primary-email", tok, nil, vidHeader, pw),
		s("DELETE primary-email again (no email set any more), identity record = verified email code record"))

	// Phone.
	phoneBody := func(phone, rec string) map[string]any {
		return map[string]any{"phone": phone, "newIdentifierVerificationRecordId": rec}
	}
	postPhone := func(b any, stepUp string) reply {
		if stepUp == "" {
			return e.do("POST", "/api/my-account/primary-phone", tok, b)
		}
		return e.do("POST", "/api/my-account/primary-phone", tok, b, vidHeader, stepUp)
	}
	matchSample(t, postPhone(phoneBody(newPhone, phoneRec), ""), s("POST primary-phone without logto-verification-id"))
	matchSample(t, postPhone(phoneBody(newPhone, "bogus-new-record"), pw), s("POST primary-phone with identity record, bogus new-identifier record id"))
	matchSample(t, postPhone(phoneBody("61400649905", e.sendCode(tok, "phone", "61400649905")), pw),
		s("POST primary-phone with identity record, new-identifier record unverified"))
	matchSample(t, postPhone(phoneBody("+61 434-403-459", phoneRec), pw), s("POST primary-phone with +, spaces and dashes (guard)"))
	matchSample(t, postPhone(phoneBody("610434403459", phoneRec), pw), s("POST primary-phone with the leading-zero form while the record is for the non-zero form"))
	matchSample(t, postPhone(phoneBody(newPhone, phoneRec), pw), s("POST primary-phone success"))
	if a := e.account(tok); a["primaryPhone"] != newPhone {
		t.Fatalf("after the phone change: %v", a)
	}
	matchSample(t, postPhone(phoneBody("610494277245", e.provenAddress(tok, "phone", "610494277245")), pw),
		s("POST primary-phone with another user's phone in leading-zero form (normalised collision)"))
	matchSample(t, postPhone(phoneBody(otherPhone, e.provenAddress(tok, "phone", otherPhone)), pw),
		s("POST primary-phone with another user's phone (exact)"))
	// A leading-zero form of a free number is stored normalised (E.164 digits), as Logto does.
	const zeroForm = "6104" + "00111222"
	if r := postPhone(phoneBody(zeroForm, e.provenAddress(tok, "phone", zeroForm)), pw); r.status != http.StatusNoContent {
		t.Fatalf("leading-zero phone: %d %s", r.status, r.body)
	}
	if a := e.account(tok); a["primaryPhone"] != "61400111222" {
		t.Fatalf("phone stored as %v, want 61400111222", a["primaryPhone"])
	}
	matchSample(t, e.do("DELETE", "/api/my-account/primary-phone", tok, nil), s("DELETE primary-phone without logto-verification-id"))
	matchSample(t, e.do("DELETE", "/api/my-account/primary-phone", tok, nil, vidHeader, pw), s("DELETE primary-phone success"))

	// Keep one identifier: a user whose only identifier is an email, then a phone.
	r := e.mgmt("POST", "/api/users", map[string]any{"primaryEmail": "c.only@example.com", "password": "Lonely-Passw0rd!"})
	c := r.json(t)["id"].(string)
	ctok := e.token(devcore.MintRequest{UserID: c, Scope: allScopes})
	cpw := e.passwordRecord(ctok, "Lonely-Passw0rd!")
	matchSample(t, e.do("DELETE", "/api/my-account/primary-email", ctok, nil, vidHeader, cpw), s("DELETE primary-email when it is the only identifier"))
	e.mgmt("PATCH", "/api/users/"+c, map[string]any{"primaryEmail": nil, "primaryPhone": "61464761651"})
	matchSample(t, e.do("DELETE", "/api/my-account/primary-phone", ctok, nil, vidHeader, cpw), s("DELETE primary-phone when it is the only identifier"))

	// Field and scope rules, in Logto's order (step-up, field, scope).
	noEmailScope := e.userToken("openid profile phone")
	expectError(t, e.do("POST", "/api/my-account/primary-email", noEmailScope, body(newEmail, newRec), vidHeader, e.passwordRecord(noEmailScope, devcore.DemoPassword)),
		http.StatusBadRequest, "auth.unauthorized")

	// Records are the caller's: the other user cannot use A's step-up nor A's new-email record
	// (Logto accepts the latter: exchange 125).
	otok := e.token(devcore.MintRequest{UserID: devcore.OtherUserID, Scope: allScopes})
	opw := e.passwordRecord(otok, devcore.OtherPassword)
	matchSample(t, e.do("DELETE", "/api/my-account/primary-phone", otok, nil, vidHeader, pw), s("User B uses user A's record on DELETE primary-phone"))
	expectError(t, e.do("POST", "/api/my-account/primary-email", otok, body(newEmail, newRec), vidHeader, opw),
		http.StatusBadRequest, "verification_record.not_found")
	expectError(t, e.do("POST", "/api/verifications/verification-code/verify", otok, verifyBody("email", newEmail, newRec, "123456")),
		http.StatusBadRequest, "verification_code.not_found")
}

// An email blocklist in the sign-in experience applies to codes for new addresses and to the
// primary email itself.
func TestEmailBlocklist(t *testing.T) {
	e := newStepupEnv(t, "policy_cache_ttl 1ms")
	tok := e.userToken(allScopes)
	pw := e.passwordRecord(tok, devcore.DemoPassword)
	rec := e.provenAddress(tok, "email", "me+tag@example.com")
	e.mgmt("PATCH", "/api/sign-in-exp", map[string]any{"emailBlocklistPolicy": map[string]any{
		"blockSubaddressing": true, "customBlocklist": []string{"@blocked.example"}}})
	expectError(t, e.do("POST", "/api/verifications/verification-code", tok, codeBody("email", "x@BLOCKED.example")),
		http.StatusUnprocessableEntity, "session.email_blocklist.email_not_allowed")
	expectError(t, e.do("POST", "/api/verifications/verification-code", tok, codeBody("email", "a+b@example.com")),
		http.StatusUnprocessableEntity, "session.email_blocklist.email_subaddressing_not_allowed")
	expectError(t, e.do("POST", "/api/my-account/primary-email", tok, map[string]any{"email": "me+tag@example.com", "newIdentifierVerificationRecordId": rec}, vidHeader, pw),
		http.StatusUnprocessableEntity, "session.email_blocklist.email_subaddressing_not_allowed")
	if _, ok := e.core.Core.LastCode("x@BLOCKED.example"); ok {
		t.Fatal("a code went to a blocked address")
	}
}

func TestPasswordChange(t *testing.T) {
	e := newStepupEnv(t, "policy_cache_ttl 1ms")
	ex := stepupSamples(t)
	s := func(title string) harness.Exchange { return harness.Sample(t, ex, title) }
	// The recording's user A: its username appears in the rejected passwords.
	const password = "Oracle-Start-9x!"
	r := e.mgmt("POST", "/api/users", map[string]any{"username": "oracle_7d2fac54", "primaryEmail": "a.98cb1b@example.com", "password": password})
	id := r.json(t)["id"].(string)
	tok := e.token(devcore.MintRequest{UserID: id, Scope: allScopes})
	post := func(pw, stepUp string) reply {
		if stepUp == "" {
			return e.do("POST", "/api/my-account/password", tok, map[string]any{"password": pw})
		}
		return e.do("POST", "/api/my-account/password", tok, map[string]any{"password": pw}, vidHeader, stepUp)
	}
	matchSample(t, post("N3w-Str0ng-Passw0rd!", ""), s("POST password without a verification record (user has a password)"))
	vid := e.passwordRecord(tok, password)
	for _, title := range []string{
		"POST password, policy violation: too short",
		"POST password, policy violation: too simple: sequence with letters",
		"POST password, policy violation: pwned (INTEGRATION_TEST list)",
		"POST password, policy violation: contains the username (username + 1 char)",
		"POST password, policy violation: contains the username, upper case",
		"POST password, policy violation: too long (257 chars)",
		"POST password, policy violation: empty",
	} {
		sm := s(title)
		var b struct{ Password string }
		_ = json.Unmarshal(sm.Request.Body, &b)
		matchSample(t, post(b.Password, vid), sm)
	}
	// 12345678: Logto's recording used its integration-test pwned list; the offline list here
	// (like Have I Been Pwned) also knows it.
	r = post("12345678", vid)
	expectError(t, r, http.StatusUnprocessableEntity, "password.rejected")
	if got := string(mustJSON(t, r.json(t)["data"])); got != `[{"code":"password_rejected.pwned"},{"code":"password_rejected.restricted.sequence"}]` {
		t.Fatalf("12345678: %s", got)
	}
	// Username + 3 characters is within the tolerance.
	matchSample(t, post("oracle_7d2fac54x!Z", vid), s("POST password: username + 3 chars (within the restricted-phrase tolerance, accepted)"))
	matchSample(t, post("oracle_7d2fac54x!Z", vid), s("POST password, same as the current password"))
	matchSample(t, post("Brand-New-Secret-42", vid), s("POST password success"))
	matchSample(t, e.do("POST", "/api/verifications/password", tok, map[string]any{"password": "oracle_7d2fac54x!Z"}),
		s("Identity verification by the OLD password after the change"))
	matchSample(t, e.do("POST", "/api/verifications/password", tok, map[string]any{"password": "Brand-New-Secret-42"}),
		s("Identity verification by the NEW password"))

	// The strict policy of exchange 89.
	e.mgmt("PATCH", "/api/sign-in-exp", json.RawMessage(s("Management: PATCH a stricter password policy").Request.Body))
	for _, title := range []string{
		"POST password under the strict policy: too short",
		"POST password under the strict policy: too simple: sequence with letters",
		"POST password under the strict policy: pwned (INTEGRATION_TEST list)",
		"POST password under the strict policy: contains the username (username + 1 char)",
		"POST password under the strict policy: contains the username, upper case",
		"POST password under the strict policy: username + digit + upper (only user info)",
		"POST password under the strict policy: made of rejected words",
		"POST password under the strict policy: 11 chars, 3 types",
		"POST password under the strict policy: only 2 character types, 14 chars",
		"POST password under the strict policy: contains a custom rejected word once (within tolerance)",
	} {
		sm := s(title)
		var b struct{ Password string }
		_ = json.Unmarshal(sm.Request.Body, &b)
		matchSample(t, post(b.Password, vid), sm)
	}

	// Another user's record is no step-up (exchange 122).
	otok := e.token(devcore.MintRequest{UserID: devcore.OtherUserID, Scope: allScopes})
	matchSample(t, e.do("POST", "/api/my-account/password", otok, map[string]any{"password": "Zz9-12cd7ea6d727"}, vidHeader, vid),
		s("User B uses user A's identity verification record"))

	// A user with no password, email or phone sets a first password without step-up.
	r = e.mgmt("POST", "/api/users", map[string]any{"username": "fresh_user"})
	fresh := e.token(devcore.MintRequest{UserID: r.json(t)["id"].(string), Scope: "openid"})
	if r := e.do("POST", "/api/my-account/password", fresh, map[string]any{"password": "First-Passw0rd-7"}); r.status != http.StatusNoContent {
		t.Fatalf("first password: %d %s", r.status, r.body)
	}
	// ... and then needs it.
	expectError(t, e.do("POST", "/api/my-account/password", fresh, map[string]any{"password": "Second-Passw0rd-8"}),
		http.StatusUnauthorized, "verification_record.permission_denied")

	// Field rule after step-up; first-party check first of all.
	e.mgmt("PATCH", "/api/account-center", map[string]any{"fields": map[string]string{"password": "ReadOnly"}})
	expectError(t, e.do("POST", "/api/my-account/password", tok, map[string]any{"password": "Whatever-Passw0rd-1"}, vidHeader, vid),
		http.StatusBadRequest, "account_center.field_not_editable")
	third := e.token(devcore.MintRequest{UserID: id, Scope: allScopes, ClientID: devcore.ThirdPartyAppID})
	expectError(t, e.do("POST", "/api/my-account/password", third, map[string]any{"password": "Whatever-Passw0rd-1"}),
		http.StatusForbidden, "auth.third_party_application_forbidden")
}

// sampleJSON decodes a recorded response body.
func sampleJSON(t *testing.T, ex harness.Exchange) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(ex.Response.Body, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSocialIdentities(t *testing.T) {
	e := newStepupEnv(t, "")
	ex := stepupSamples(t)
	s := func(title string) harness.Exchange { return harness.Sample(t, ex, title) }
	tok := e.userToken(allScopes)
	pw := e.passwordRecord(tok, devcore.DemoPassword)
	start := func(tok, connector string, scope ...string) reply {
		b := map[string]any{"connectorId": connector, "state": "fake_state", "redirectUri": "http://localhost:3000/redirect"}
		if len(scope) > 0 {
			b["scope"] = scope[0]
		}
		return e.do("POST", "/api/verifications/social", tok, b)
	}
	verify := func(tok, rec string, data map[string]any) reply {
		return e.do("POST", "/api/verifications/social/verify", tok, map[string]any{"verificationRecordId": rec, "connectorData": data})
	}
	link := func(method, tok, rec, stepUp string) reply {
		b := map[string]any{"newIdentifierVerificationRecordId": rec}
		if stepUp == "" {
			return e.do(method, "/api/my-account/identities", tok, b)
		}
		return e.do(method, "/api/my-account/identities", tok, b, vidHeader, stepUp)
	}

	matchSample(t, start(tok, "invalid-connector-id"), s("Create social verification: unknown connector"))
	matchSample(t, start(tok, devcore.MockEmailConnectorID), s("Create social verification: an email connector"))
	r := start(tok, devcore.MockSocialConnectorID, "profile custom_scope")
	matchSample(t, r, s("Create social verification with the mock social connector"))
	if uri := r.json(t)["authorizationUri"]; uri != sampleJSON(t, s("Create social verification with the mock social connector"))["authorizationUri"] {
		t.Fatalf("authorizationUri %v", uri)
	}
	rec := r.json(t)["verificationRecordId"].(string)
	expectError(t, e.do("POST", "/api/verifications/social", tok, map[string]any{"connectorId": devcore.MockSocialConnectorID, "state": "", "redirectUri": "x"}),
		http.StatusBadRequest, "session.insufficient_info")
	matchSample(t, verify(tok, "bogus-social-record", map[string]any{"code": "fake_code", "userId": "mock-social-sub-1"}),
		s("Verify social authorization: bogus verificationRecordId"))
	matchSample(t, verify(tok, rec, map[string]any{"code": "fake_code", "userId": "mock-social-sub-1", "email": "s.1@example.com"}),
		s("Verify social authorization (mock connector accepts {code, userId?})"))

	// Connector data the provider rejects: Logto refuses it at /social/verify; the gateway can
	// only know at link time (see accountapi/api/social.go), and answers the same error there.
	bad := start(tok, devcore.MockSocialConnectorID).json(t)["verificationRecordId"].(string)
	if r := verify(tok, bad, map[string]any{"state": "fake_state"}); r.status != http.StatusOK {
		t.Fatalf("verify: %d %s", r.status, r.body)
	}
	if r, sm := link("POST", tok, bad, pw), s("Verify social authorization: connectorData without code"); r.status != sm.Response.Status || !sameJSON(r.body, sm.Response.Body) {
		t.Fatalf("link with rejected connector data: %d %s, Logto's verify answered %s", r.status, r.body, sm.Response.Body)
	}
	matchSample(t, link("POST", tok, rec, ""), s("POST identities without logto-verification-id"))
	matchSample(t, link("POST", tok, "bogus-social-record", pw), s("POST identities with a bogus new-identifier record"))
	before := e.stats().Management["POST /api/users/{userId}/identities"]
	matchSample(t, link("POST", tok, rec, pw), s("POST identities success"))
	ids := e.account(tok)["identities"].(map[string]any)
	want := sampleJSON(t, s("GET /api/my-account after linking (identities)"))["identities"].(map[string]any)
	if got := ids[devcore.MockSocialTarget].(map[string]any); got["userId"] != "mock-social-sub-1" ||
		!strings.Contains(string(mustJSON(t, got["details"])), `"rawData":{"code":"fake_code","email":"s.1@example.com","userId":"mock-social-sub-1"}`) ||
		len(want) != len(ids) {
		t.Fatalf("identities %v, Logto shows %v", ids, want)
	}
	matchSample(t, link("POST", tok, rec, pw), s("POST identities again with the same record (identity already linked)"))
	second := start(tok, devcore.MockSocialConnectorID).json(t)["verificationRecordId"].(string)
	verify(tok, second, map[string]any{"code": "fake_code", "userId": "mock-social-sub-1-2"})
	matchSample(t, link("POST", tok, second, pw), s("POST identities with a fresh record for the same connector (target already linked, different social id)"))

	// User B cannot link A's social account (422), nor use A's social record (400).
	otok := e.token(devcore.MintRequest{UserID: devcore.OtherUserID, Scope: allScopes})
	opw := e.passwordRecord(otok, devcore.OtherPassword)
	orec := start(otok, devcore.MockSocialConnectorID).json(t)["verificationRecordId"].(string)
	matchSample(t, verify(otok, orec, map[string]any{"code": "fake_code", "userId": "mock-social-sub-1"}),
		s("User B verifies a social authorization for the social id already linked to user A"))
	matchSample(t, link("POST", otok, orec, opw), s("User B links the social id already linked to user A"))
	expectError(t, link("POST", otok, rec, opw), http.StatusBadRequest, "verification_record.not_found")
	expectError(t, verify(otok, rec, map[string]any{"code": "x"}), http.StatusBadRequest, "verification_record.not_found")

	// PUT replaces the identity of the target; the record exchanged once is not exchanged again
	// (authorization codes are single-use): A's link and B's refused one were the exchanges.
	exchanges := func() int64 { return e.stats().Management["POST /api/users/{userId}/identities"] - before }
	if n := exchanges(); n != 2 {
		t.Fatalf("%d exchanges of connectorData, want 2", n)
	}
	if r := link("PUT", tok, second, pw); r.status != http.StatusNoContent {
		t.Fatalf("PUT identities: %d %s", r.status, r.body)
	}
	if r := link("PUT", tok, second, pw); r.status != http.StatusNoContent {
		t.Fatalf("PUT identities again: %d %s", r.status, r.body)
	}
	if got := e.account(tok)["identities"].(map[string]any)[devcore.MockSocialTarget].(map[string]any)["userId"]; got != "mock-social-sub-1-2" {
		t.Fatalf("after PUT: %v", got)
	}
	if n, puts := exchanges(), e.stats().Management["PUT /api/users/{userId}/identities/{target}"]; n != 3 || puts != 1 {
		t.Fatalf("a used record must be linked again without a second exchange (%d exchanges, %d PUTs)", n, puts)
	}

	// Unlink.
	matchSample(t, e.do("DELETE", "/api/my-account/identities/unknown-target", tok, nil, vidHeader, pw), s("DELETE identities/unknown-target"))
	matchSample(t, e.do("DELETE", "/api/my-account/identities/mock-social", tok, nil), s("DELETE identities/mock-social without logto-verification-id"))
	matchSample(t, e.do("DELETE", "/api/my-account/identities/mock-social", tok, nil, vidHeader, pw), s("DELETE identities/mock-social success"))
	matchSample(t, e.do("DELETE", "/api/my-account/identities/mock-social", tok, nil, vidHeader, pw), s("DELETE identities/mock-social again (no longer linked)"))

	// Scope rules: 401 on POST/PUT, 400 on DELETE (Logto NOW).
	noIdentities := e.userToken("openid profile email")
	expectError(t, link("POST", noIdentities, rec, pw), http.StatusUnauthorized, "auth.unauthorized")
	expectError(t, e.do("DELETE", "/api/my-account/identities/mock-social", noIdentities, nil, vidHeader, pw), http.StatusBadRequest, "auth.unauthorized")

	// A social-only user links and unlinks without step-up, but keeps one identifier.
	r = e.mgmt("POST", "/api/users", map[string]any{"name": "Social Only"})
	sid := r.json(t)["id"].(string)
	stok := e.token(devcore.MintRequest{UserID: sid, Scope: allScopes})
	srec := start(stok, devcore.MockSocialConnectorID).json(t)["verificationRecordId"].(string)
	verify(stok, srec, map[string]any{"code": "c", "userId": "social-only-1"})
	if r := link("POST", stok, srec, ""); r.status != http.StatusNoContent {
		t.Fatalf("social-only link: %d %s", r.status, r.body)
	}
	expectError(t, e.do("DELETE", "/api/my-account/identities/mock-social", stok, nil), http.StatusBadRequest, "user.last_sign_in_method_required")
}

// Every verification outcome and account change leaves one structured audit entry, and no
// entry holds a password, a code, a token or a record id.
func TestAuditEvents(t *testing.T) {
	e := newStepupEnv(t, "")
	tok := e.userToken(allScopes)
	expectError(t, e.do("POST", "/api/verifications/password", tok, map[string]any{"password": "Wrong-Secret-123"}),
		http.StatusUnprocessableEntity, "session.invalid_credentials")
	pw := e.passwordRecord(tok, devcore.DemoPassword)
	id := e.sendCode(tok, "email", "audit@example.com")
	code := e.lastCode("audit@example.com")
	e.do("POST", "/api/verifications/verification-code/verify", tok, verifyBody("email", "audit@example.com", id, code))
	if r := e.do("POST", "/api/my-account/password", tok, map[string]any{"password": "Audited-Passw0rd-9"}, vidHeader, pw); r.status != http.StatusNoContent {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if !e.caddy.WaitForLog(`"operation":"account.password.update"`, 5*time.Second) {
		t.Fatalf("no audit entry for the password change:\n%s", e.caddy.Logs())
	}
	var events []map[string]any
	for _, line := range strings.Split(e.caddy.Logs(), "\n") {
		if !strings.Contains(line, `"account api audit"`) {
			continue
		}
		for _, secret := range []string{devcore.DemoPassword, "Wrong-Secret-123", "Audited-Passw0rd-9", code, tok, pw, id} {
			if strings.Contains(line, secret) {
				t.Fatalf("audit entry leaks a secret: %s", line)
			}
		}
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("audit entry is not JSON: %s", line)
		}
		events = append(events, ev)
	}
	want := []struct{ op, result, code string }{
		{"verification.password", "failure", "session.invalid_credentials"},
		{"verification.password", "success", ""},
		{"verification.code.send", "success", ""},
		{"verification.code.verify", "success", ""},
		{"account.password.update", "success", ""},
	}
	if len(events) != len(want) {
		t.Fatalf("%d audit entries, want %d: %v", len(events), len(want), events)
	}
	for i, w := range want {
		ev := events[i]
		if ev["operation"] != w.op || ev["result"] != w.result || ev["code"] != w.code || ev["user_id"] != devcore.DemoUserID ||
			ev["request_id"] == "" || ev["request_id"] == nil {
			t.Errorf("entry %d: %v, want %+v", i, ev, w)
		}
	}
	if f, _ := events[4]["fields"].([]any); len(f) != 1 || f[0] != "password" {
		t.Errorf("fields of the password change: %v", events[4]["fields"])
	}
}

// TestNoMessageConnector: with no email connector at the core, sending a code answers Logto's
// 501 connector.not_found (not a 503: the core is up and said why).
func TestNoMessageConnector(t *testing.T) {
	e := newEnv(t, options{})
	tok := e.userToken(allScopes)
	req, _ := http.NewRequest("DELETE", e.core.URL+"/dev/connectors/"+devcore.MockEmailConnectorID, nil)
	resp, err := e.client.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("remove the email connector: %v %v", err, resp)
	}
	resp.Body.Close()
	r := e.do("POST", "/api/verifications/verification-code", tok, codeBody("email", "new.address@example.com"))
	expectError(t, r, http.StatusNotImplemented, "connector.not_found")
	// Phones still work: only the email connector is gone.
	if r := e.do("POST", "/api/verifications/verification-code", tok, codeBody("phone", "15551234567")); r.status != http.StatusCreated {
		t.Fatalf("phone code: %d %s", r.status, r.body)
	}
}
