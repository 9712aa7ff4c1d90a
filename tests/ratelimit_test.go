package tests

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/accountedge/caddy-account-api/tests/devcore"
	"github.com/accountedge/caddy-account-api/tests/harness"
)

// retryAfter asserts a 429 with a Retry-After of 1..max seconds.
func retryAfter(t *testing.T, r reply, max int) {
	t.Helper()
	n, err := strconv.Atoi(r.header.Get("Retry-After"))
	if r.status != http.StatusTooManyRequests || err != nil || n < 1 || n > max {
		t.Fatalf("want 429 with Retry-After 1..%d: %d %q %s", max, r.status, r.header.Get("Retry-After"), r.body)
	}
}

func TestCodeSendLimits(t *testing.T) {
	e := newStepupEnv(t, "rate_limits {\n code_send_per_user 15 1m\n }")
	ex := stepupSamples(t)
	tok := e.userToken(allScopes)
	// Per address: Logto's 10 per 10 minutes.
	for i := 1; i <= 10; i++ {
		e.sendCode(tok, "email", "rl@example.com")
	}
	r := e.do("POST", "/api/verifications/verification-code", tok, codeBody("email", "RL@example.com"))
	matchSample(t, r, harness.Sample(t, ex, "Send verification code to the same address, attempt #12 (refused)"))
	retryAfter(t, r, 600)
	// Per user, whatever the address: 15 per minute here (10 already sent).
	for i := 1; i <= 4; i++ {
		e.sendCode(tok, "email", "spread"+strconv.Itoa(i)+"@example.com")
	}
	retryAfter(t, e.do("POST", "/api/verifications/verification-code", tok, codeBody("email", "spread5@example.com")), 60)
	// Another user is not limited by this one.
	other := e.token(devcore.MintRequest{UserID: devcore.OtherUserID, Scope: allScopes})
	e.sendCode(other, "email", "someone@example.com")
	// The core's own per-recipient limit (shared with the Management API) comes through as is.
	for i := 0; i < 10; i++ {
		e.mgmt("POST", "/api/verification-codes", map[string]string{"phone": "61489409039"})
	}
	matchSample(t, e.do("POST", "/api/verifications/verification-code", other, codeBody("phone", "61489409039")),
		harness.Sample(t, ex, "Account API: send verification code to the phone rate-limited via the Management API"))
}

func TestCodeCheckLimits(t *testing.T) {
	e := newStepupEnv(t, "rate_limits {\n code_check_per_user 11 1m\n }")
	e.setSentinel(100, 60) // Logto's defaults: the per-record and per-user limits come first here
	tok := e.userToken(allScopes)
	check := func(id, to, code string) reply {
		return e.do("POST", "/api/verifications/verification-code/verify", tok, verifyBody("email", to, id, code))
	}
	// A brute force on one record: 10 wrong codes, then the record is dead, even for the right
	// code (Logto's maxRetryAttempts, and its answer).
	id := e.sendCode(tok, "email", "brute@example.com")
	right := e.lastCode("brute@example.com")
	wrong := "000000"
	if right == wrong {
		wrong = "111111"
	}
	for i := 1; i <= 10; i++ {
		expectError(t, check(id, "brute@example.com", wrong), http.StatusBadRequest, "verification_code.code_mismatch")
	}
	expectError(t, check(id, "brute@example.com", right), http.StatusBadRequest, "verification_code.exceed_max_try")
	// Spread over records, the per-user limit stops it: the dead record's refusal is no check,
	// so 11 checks were made; 11 are allowed per minute.
	id2 := e.sendCode(tok, "email", "brute2@example.com")
	expectError(t, check(id2, "brute2@example.com", wrong), http.StatusBadRequest, "verification_code.code_mismatch")
	r := check(id2, "brute2@example.com", e.lastCode("brute2@example.com"))
	expectError(t, r, http.StatusTooManyRequests, "session.verification_blocked_too_many_attempts")
	retryAfter(t, r, 60)
}

func TestInstancesShareVerificationRecords(t *testing.T) {
	redis := harness.StartRedis(t)
	e := newEnv(t, options{redis: redis.Addr()})
	second := e.startCaddy(options{redis: redis.Addr()})
	tok := e.userToken(allScopes)
	// A code sent through one instance is verified through the other, and the records are
	// used on either.
	const to = "shared@example.com"
	r := e.call(second.URL(), "POST", "/api/verifications/verification-code", tok, codeBody("email", to))
	if r.status != http.StatusCreated {
		t.Fatalf("send on the second instance: %d %s", r.status, r.body)
	}
	id := r.json(t)["verificationRecordId"].(string)
	if r := e.do("POST", "/api/verifications/verification-code/verify", tok, verifyBody("email", to, id, e.lastCode(to))); r.status != 200 {
		t.Fatalf("verify on the first instance: %d %s", r.status, r.body)
	}
	pw := e.passwordRecord(tok, devcore.DemoPassword)
	r = e.call(second.URL(), "POST", "/api/my-account/primary-email", tok,
		map[string]any{"email": to, "newIdentifierVerificationRecordId": id}, vidHeader, pw)
	if r.status != http.StatusNoContent {
		t.Fatalf("change on the second instance with records of the first: %d %s", r.status, r.body)
	}
	// Read at the core: the profile caches of the instances are not what this test is about.
	if got := e.mgmt("GET", "/api/users/"+devcore.DemoUserID, nil).json(t)["primaryEmail"]; got != to {
		t.Fatalf("primaryEmail %v", got)
	}
}
