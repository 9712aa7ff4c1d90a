package tests

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/accountedge/caddy-account-api/tests/devcore"
)

// End-to-end tests of the MFA routes (issue 10, reference §3.2 N5–N8, N16–N20, N23) through the
// real Caddy in front of the dev core: each route's happy path, each refusal in Logto's check
// order, answers valid against Logto's user API document (e.do validates every one), the
// Management API effects at the core, and hostile factor ids.

const (
	mfaSettingsPath   = "/api/my-account/mfa-settings"
	logtoConfigsPath  = "/api/my-account/logto-configs"
	mfaPath           = "/api/my-account/mfa-verifications"
	mfaScopes         = "openid profile email identities"
	mfaNoScope        = "openid profile email"
	deleteFactorRoute = "DELETE /api/users/{userId}/mfa-verifications/{verificationId}"
)

// mfaEnv is an environment whose account center has mfa Edit and whose sign-in experience
// offers TOTP and backup codes. The policy cache is short so that tests can switch factors.
func mfaEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t, options{extra: "policy_cache_ttl 1ms"})
	e.setFields(map[string]string{"mfa": "Edit"})
	e.setFactors("Totp", "BackupCode")
	return e
}

// setFields sets the account center's fields: the nine SEED fields Edit, plus extra.
func (e *env) setFields(extra map[string]string) {
	e.t.Helper()
	fields := map[string]string{}
	for _, f := range []string{"name", "avatar", "profile", "email", "phone", "password", "username", "social", "customData"} {
		fields[f] = "Edit"
	}
	for k, v := range extra {
		fields[k] = v
	}
	e.mgmt("PATCH", "/api/account-center", map[string]any{"enabled": true, "fields": fields})
}

// setFactors sets the sign-in experience's MFA factors.
func (e *env) setFactors(factors ...string) {
	e.t.Helper()
	if factors == nil {
		factors = []string{}
	}
	e.mgmt("PATCH", "/api/sign-in-exp", map[string]any{"mfa": map[string]any{"factors": factors, "policy": "PromptAtSignInAndSignUp"}})
	time.Sleep(5 * time.Millisecond) // past policy_cache_ttl: not a timing assertion, a cache expiry
}

// mfaCallers are the demo user's tokens for the MFA tests: with every MFA scope and a step-up
// record, without the identities scope, and from a third-party client (which may use the
// record: records prove a user, whatever client made them, and a third-party client cannot make
// one).
func (e *env) mfaCallers() (tok, vid, noScope, third string) {
	e.t.Helper()
	tok = e.userToken(mfaScopes)
	vid = e.passwordRecord(tok, devcore.DemoPassword)
	noScope = e.userToken(mfaNoScope)
	third = e.token(devcore.MintRequest{Scope: mfaScopes, ClientID: devcore.ThirdPartyAppID})
	return tok, vid, noScope, third
}

// factors lists the demo user's factors at the core (Management API, through Caddy).
func (e *env) factors(userID string) []map[string]any {
	e.t.Helper()
	var out []map[string]any
	if err := json.Unmarshal(e.mgmt("GET", "/api/users/"+userID+"/mfa-verifications", nil).body, &out); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// coreLogtoConfig reads a user's logto-configs at the core.
func (e *env) coreLogtoConfig(userID string) map[string]any {
	e.t.Helper()
	return e.mgmt("GET", "/api/users/"+userID+"/logto-configs", nil).json(e.t)
}

// totpCode is the authenticator's current code for secret.
func totpCode(t *testing.T, secret string) string {
	t.Helper()
	code, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// wrongTotpCode is a 6-digit code that is not valid now for secret (nor one step either side).
func wrongTotpCode(t *testing.T, secret string) string {
	t.Helper()
	valid := map[string]bool{}
	for _, d := range []time.Duration{-30 * time.Second, 0, 30 * time.Second} {
		c, _ := totp.GenerateCode(secret, time.Now().Add(d))
		valid[c] = true
	}
	for _, c := range []string{"000000", "111111", "222222", "333333"} {
		if !valid[c] {
			return c
		}
	}
	t.Fatal("no wrong code found")
	return ""
}

// newSecret asks the module for a TOTP secret.
func (e *env) newSecret(tok string) string {
	e.t.Helper()
	r := e.do("POST", mfaPath+"/totp-secret/generate", tok, nil)
	if r.status != http.StatusOK {
		e.t.Fatalf("generate secret: %d %s", r.status, r.body)
	}
	return r.json(e.t)["secret"].(string)
}

// bindTotp binds a TOTP for the token's user and returns its secret.
func (e *env) bindTotp(tok, vid string) string {
	e.t.Helper()
	secret := e.newSecret(tok)
	r := e.do("POST", mfaPath, tok, map[string]any{"type": "Totp", "secret": secret, "code": totpCode(e.t, secret)}, vidHeader, vid)
	if r.status != http.StatusNoContent {
		e.t.Fatalf("bind TOTP: %d %s", r.status, r.body)
	}
	return secret
}

func TestMfaGenerators(t *testing.T) {
	e := mfaEnv(t)
	// No scope beyond openid, no field, no step-up and no first-party check (N19, N20).
	for _, tok := range []string{e.userToken("openid"), e.token(devcore.MintRequest{Scope: "openid", ClientID: devcore.ThirdPartyAppID})} {
		secret := e.newSecret(tok)
		if !regexp.MustCompile(`^[A-Z2-7]{32}$`).MatchString(secret) {
			t.Fatalf("secret %q is not 20 bytes of unpadded base32", secret)
		}
		r := e.do("POST", mfaPath+"/backup-codes/generate", tok, nil)
		var body struct{ Codes []string }
		if r.status != http.StatusOK || json.Unmarshal(r.body, &body) != nil || len(body.Codes) != 10 {
			t.Fatalf("backup codes: %d %s", r.status, r.body)
		}
		seen := map[string]bool{}
		for _, c := range body.Codes {
			if !regexp.MustCompile(`^[0-9a-f]{10}$`).MatchString(c) || seen[c] {
				t.Fatalf("backup code %q (Logto: 10 distinct codes of 10 lower-case hex characters)", c)
			}
			seen[c] = true
		}
	}
	if a, b := e.newSecret(e.userToken("openid")), e.newSecret(e.userToken("openid")); a == b {
		t.Fatal("two generated secrets are equal")
	}
	// Nothing is stored.
	if f := e.factors(devcore.DemoUserID); len(f) != 0 {
		t.Fatalf("generators bound factors: %v", f)
	}
	// The account-center switch still applies.
	e.mgmt("PATCH", "/api/account-center", map[string]any{"enabled": false})
	expectError(t, e.do("POST", mfaPath+"/totp-secret/generate", e.userToken("openid"), nil), http.StatusBadRequest, "account_center.not_enabled")
	expectError(t, e.do("GET", mfaPath, e.userToken(mfaScopes), nil), http.StatusBadRequest, "account_center.not_enabled")
	expectError(t, e.do("POST", mfaPath+"/totp-secret/generate", "", nil), http.StatusUnauthorized, "auth.authorization_header_missing")
}

func TestMfaTotpBinding(t *testing.T) {
	e := mfaEnv(t)
	tok, vid, noScope, third := e.mfaCallers()
	secret := e.newSecret(tok)
	good := map[string]any{"type": "Totp", "secret": secret, "code": totpCode(t, secret)}

	// The body guard comes first (400), before step-up.
	r := e.do("POST", mfaPath, tok, map[string]any{"type": "Sms"})
	expectError(t, r, http.StatusBadRequest, "guard.invalid_input")
	if !strings.Contains(string(r.body), "invalid_union_discriminator") {
		t.Fatalf("discriminator issue: %s", r.body)
	}
	expectError(t, e.do("POST", mfaPath, tok, map[string]any{"type": "Totp"}), http.StatusBadRequest, "guard.invalid_input")
	expectError(t, e.do("POST", mfaPath, tok, map[string]any{"type": "Totp", "secret": 5}), http.StatusBadRequest, "guard.invalid_input")

	// Check order (N17): step-up, field, scope (401), first-party, factor enabled.
	expectError(t, e.do("POST", mfaPath, noScope, good), http.StatusUnauthorized, "verification_record.permission_denied")
	expectError(t, e.do("POST", mfaPath, tok, good, vidHeader, "bogus"), http.StatusUnauthorized, "verification_record.permission_denied")
	e.setFields(map[string]string{"mfa": "ReadOnly"})
	expectError(t, e.do("POST", mfaPath, noScope, good, vidHeader, vid), http.StatusBadRequest, "account_center.field_not_editable")
	e.setFields(map[string]string{"mfa": "Edit"})
	expectError(t, e.do("POST", mfaPath, noScope, good, vidHeader, vid), http.StatusUnauthorized, "auth.unauthorized")
	e.setFactors()
	// A step-up record proves the user, whatever client made it; a third-party client cannot make one.
	expectError(t, e.do("POST", mfaPath, third, good, vidHeader, vid), http.StatusForbidden, "auth.third_party_application_forbidden")
	expectError(t, e.do("POST", mfaPath, tok, good, vidHeader, vid), http.StatusBadRequest, "session.mfa.mfa_factor_not_enabled")
	e.setFactors("BackupCode", "WebAuthn")
	expectError(t, e.do("POST", mfaPath, tok, good, vidHeader, vid), http.StatusBadRequest, "session.mfa.mfa_factor_not_enabled")
	e.setFactors("Totp", "BackupCode")

	// The factor's own rules: the secret (400, where the Management API says 422), the code.
	for _, bad := range []string{"JBSWY3DPEHPK3PX", "jbswy3dpehpk3pxp", "JBSWY3DPEHPK3PXP1", strings.Repeat("A", 40), ""} {
		expectError(t, e.do("POST", mfaPath, tok, map[string]any{"type": "Totp", "secret": bad}, vidHeader, vid),
			http.StatusBadRequest, "user.totp_secret_invalid")
	}
	for _, code := range []string{wrongTotpCode(t, secret), " " + totpCode(t, secret), "12345", "abcdef"} {
		expectError(t, e.do("POST", mfaPath, tok, map[string]any{"type": "Totp", "secret": secret, "code": code}, vidHeader, vid),
			http.StatusBadRequest, "session.mfa.invalid_totp_code")
	}
	if f := e.factors(devcore.DemoUserID); len(f) != 0 {
		t.Fatalf("refusals bound a factor: %v", f)
	}
	if _, known := e.coreLogtoConfig(devcore.DemoUserID)["mfa"].(map[string]any)["enabled"]; known {
		t.Fatal("mfa.enabled set before any factor")
	}

	// Bound: the core has it, and mfa.enabled is set (the Management API's add does not).
	if r := e.do("POST", mfaPath, tok, good, vidHeader, vid); r.status != http.StatusNoContent || len(r.body) != 0 {
		t.Fatalf("bind: %d %s", r.status, r.body)
	}
	f := e.factors(devcore.DemoUserID)
	if len(f) != 1 || f[0]["type"] != "Totp" {
		t.Fatalf("factors after binding: %v", f)
	}
	if mfa := e.coreLogtoConfig(devcore.DemoUserID)["mfa"].(map[string]any); mfa["enabled"] != true {
		t.Fatalf("mfa.enabled not set: %v", mfa)
	}
	// One TOTP per user: 422, before the secret is looked at.
	expectError(t, e.do("POST", mfaPath, tok, map[string]any{"type": "Totp", "secret": "bad"}, vidHeader, vid),
		http.StatusUnprocessableEntity, "user.totp_already_in_use")

	// The list (N16): field readable first, then the scope (401).
	r = e.do("GET", mfaPath, tok, nil)
	var list []map[string]any
	if r.status != http.StatusOK || json.Unmarshal(r.body, &list) != nil || len(list) != 1 ||
		list[0]["type"] != "Totp" || list[0]["id"] != f[0]["id"] || list[0]["createdAt"] == nil || list[0]["key"] != nil {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	expectError(t, e.do("GET", mfaPath, noScope, nil), http.StatusUnauthorized, "auth.unauthorized")
	e.setFields(map[string]string{"mfa": "ReadOnly"})
	if r := e.do("GET", mfaPath, tok, nil); r.status != http.StatusOK {
		t.Fatalf("ReadOnly lists: %d %s", r.status, r.body)
	}
	e.setFields(map[string]string{"mfa": "Off"})
	expectError(t, e.do("GET", mfaPath, noScope, nil), http.StatusBadRequest, "account_center.field_not_enabled")

	// Another user binds without a code: Logto checks one only when it is given.
	otherTok := e.token(devcore.MintRequest{UserID: devcore.OtherUserID, Scope: mfaScopes})
	otherVid := e.passwordRecord(otherTok, devcore.OtherPassword)
	e.setFields(map[string]string{"mfa": "Edit"})
	if r := e.do("POST", mfaPath, otherTok, map[string]any{"type": "Totp", "secret": "JBSWY3DPEHPK3PXP", "code": ""}, vidHeader, otherVid); r.status != http.StatusNoContent {
		t.Fatalf("bind without a code: %d %s", r.status, r.body)
	}
	if f := e.factors(devcore.OtherUserID); len(f) != 1 {
		t.Fatalf("other user's factors: %v", f)
	}
	if f := e.factors(devcore.DemoUserID); len(f) != 1 {
		t.Fatalf("the demo user's factors changed: %v", f)
	}
}

func TestMfaWebAuthnNotServed(t *testing.T) {
	e := mfaEnv(t)
	tok := e.userToken(mfaScopes)
	vid := e.passwordRecord(tok, devcore.DemoPassword)
	body := map[string]any{"type": "WebAuthn", "newIdentifierVerificationRecordId": "x"}
	// Logto's checks first: step-up, passkey??mfa editable, scope, first-party ...
	expectError(t, e.do("POST", mfaPath, tok, body), http.StatusUnauthorized, "verification_record.permission_denied")
	e.setFields(map[string]string{"mfa": "Edit", "passkey": "ReadOnly"})
	expectError(t, e.do("POST", mfaPath, tok, body, vidHeader, vid), http.StatusBadRequest, "account_center.field_not_editable")
	e.setFields(map[string]string{"mfa": "Off", "passkey": "Edit"})
	// ... and WebAuthn enabled in the sign-in experience (as an MFA factor, or passkey sign-in) ...
	expectError(t, e.do("POST", mfaPath, tok, body, vidHeader, vid), http.StatusBadRequest, "session.mfa.mfa_factor_not_enabled")
	e.mgmt("PATCH", "/api/sign-in-exp", map[string]any{"passkeySignIn": map[string]any{"enabled": true}})
	time.Sleep(5 * time.Millisecond) // past policy_cache_ttl
	// ... then a stable 501: the Management API cannot write a WebAuthn credential.
	expectError(t, e.do("POST", mfaPath, tok, body, vidHeader, vid), http.StatusNotImplemented, "request.not_implemented")
	e.setFactors("WebAuthn")
	e.mgmt("PATCH", "/api/sign-in-exp", map[string]any{"passkeySignIn": map[string]any{"enabled": false}})
	time.Sleep(5 * time.Millisecond)
	expectError(t, e.do("POST", mfaPath, tok, body, vidHeader, vid), http.StatusNotImplemented, "request.not_implemented")
	expectError(t, e.do("POST", mfaPath, tok, map[string]any{"type": "WebAuthn"}, vidHeader, vid), http.StatusBadRequest, "guard.invalid_input")
}

func TestMfaBackupCodes(t *testing.T) {
	e := mfaEnv(t)
	tok := e.userToken(mfaScopes)
	vid := e.passwordRecord(tok, devcore.DemoPassword)
	var gen struct{ Codes []string }
	_ = json.Unmarshal(e.do("POST", mfaPath+"/backup-codes/generate", tok, nil).body, &gen)
	body := map[string]any{"type": "BackupCode", "codes": gen.Codes}

	expectError(t, e.do("POST", mfaPath, tok, map[string]any{"type": "BackupCode", "codes": "x"}, vidHeader, vid), http.StatusBadRequest, "guard.invalid_input")
	expectError(t, e.do("POST", mfaPath, tok, map[string]any{"type": "BackupCode", "codes": []any{"a", 1}}, vidHeader, vid), http.StatusBadRequest, "guard.invalid_input")
	// Backup codes are never the only factor.
	expectError(t, e.do("POST", mfaPath, tok, body, vidHeader, vid), http.StatusUnprocessableEntity, "session.mfa.backup_code_can_not_be_alone")
	e.bindTotp(tok, vid)
	e.setFactors("Totp")
	expectError(t, e.do("POST", mfaPath, tok, body, vidHeader, vid), http.StatusBadRequest, "session.mfa.mfa_factor_not_enabled")
	e.setFactors("Totp", "BackupCode")
	for _, codes := range [][]string{gen.Codes[:9], append(gen.Codes[:9:9], "xyz0123456"), append(gen.Codes[:9:9], "0123456789a")} {
		expectError(t, e.do("POST", mfaPath, tok, map[string]any{"type": "BackupCode", "codes": codes}, vidHeader, vid),
			http.StatusUnprocessableEntity, "user.wrong_backup_code_format")
	}
	if r := e.do("POST", mfaPath, tok, body, vidHeader, vid); r.status != http.StatusNoContent {
		t.Fatalf("bind backup codes: %d %s", r.status, r.body)
	}
	expectError(t, e.do("POST", mfaPath, tok, body, vidHeader, vid), http.StatusUnprocessableEntity, "user.backup_code_already_in_use")
	var list []map[string]any
	_ = json.Unmarshal(e.do("GET", mfaPath, tok, nil).body, &list)
	if len(list) != 2 || list[1]["type"] != "BackupCode" || list[1]["remainCodes"] != float64(10) {
		t.Fatalf("list: %v", list)
	}
	// Deleting the backup codes is deleting their entry (Logto has no other way).
	if r := e.do("DELETE", mfaPath+"/"+list[1]["id"].(string), tok, nil, vidHeader, vid); r.status != http.StatusNoContent {
		t.Fatalf("delete backup codes: %d %s", r.status, r.body)
	}
	if f := e.factors(devcore.DemoUserID); len(f) != 1 || f[0]["type"] != "Totp" {
		t.Fatalf("after deleting the backup codes: %v", f)
	}
}

func TestMfaTotpReplacement(t *testing.T) {
	e := mfaEnv(t)
	tok, vid, noScope, third := e.mfaCallers()
	put := func(body any, headers ...string) reply { return e.do("PUT", mfaPath+"/totp", tok, body, headers...) }

	// Without a TOTP, the replacement binds one.
	secret := e.newSecret(tok)
	if r := put(map[string]any{"secret": secret, "code": totpCode(t, secret)}, vidHeader, vid); r.status != http.StatusNoContent {
		t.Fatalf("first TOTP: %d %s", r.status, r.body)
	}
	old := e.factors(devcore.DemoUserID)
	if len(old) != 1 || old[0]["type"] != "Totp" || e.coreLogtoConfig(devcore.DemoUserID)["mfa"].(map[string]any)["enabled"] != true {
		t.Fatalf("after the first PUT: %v", old)
	}

	next := e.newSecret(tok)
	good := map[string]any{"secret": next, "code": totpCode(t, next)}
	expectError(t, put(map[string]any{"secret": next}), http.StatusBadRequest, "guard.invalid_input")
	// Check order (N18): step-up, field, scope (401), first-party, factor enabled, secret, code.
	expectError(t, put(good), http.StatusUnauthorized, "verification_record.permission_denied")
	e.setFields(map[string]string{"mfa": "ReadOnly"})
	expectError(t, e.do("PUT", mfaPath+"/totp", noScope, good, vidHeader, vid), http.StatusBadRequest, "account_center.field_not_editable")
	e.setFields(map[string]string{"mfa": "Edit"})
	expectError(t, e.do("PUT", mfaPath+"/totp", noScope, good, vidHeader, vid), http.StatusUnauthorized, "auth.unauthorized")
	e.setFactors("WebAuthn")
	expectError(t, e.do("PUT", mfaPath+"/totp", third, good, vidHeader, vid),
		http.StatusForbidden, "auth.third_party_application_forbidden")
	expectError(t, put(good, vidHeader, vid), http.StatusBadRequest, "session.mfa.mfa_factor_not_enabled")
	e.setFactors("Totp", "BackupCode")
	expectError(t, put(map[string]any{"secret": "short", "code": "000000"}, vidHeader, vid), http.StatusBadRequest, "user.totp_secret_invalid")
	expectError(t, put(map[string]any{"secret": next, "code": wrongTotpCode(t, next)}, vidHeader, vid), http.StatusBadRequest, "session.mfa.invalid_totp_code")
	// Every refusal left the old TOTP in place.
	if now := e.factors(devcore.DemoUserID); len(now) != 1 || now[0]["id"] != old[0]["id"] {
		t.Fatalf("a refused replacement touched the old TOTP: %v, was %v", now, old)
	}
	// Replaced: one TOTP, a new entry.
	if r := put(good, vidHeader, vid); r.status != http.StatusNoContent {
		t.Fatalf("replace: %d %s", r.status, r.body)
	}
	if now := e.factors(devcore.DemoUserID); len(now) != 1 || now[0]["type"] != "Totp" || now[0]["id"] == old[0]["id"] ||
		now[0]["createdAt"] == old[0]["createdAt"] {
		t.Fatalf("after the replacement: %v, was %v", now, old)
	}
}

func TestMfaFactorDeletion(t *testing.T) {
	e := mfaEnv(t)
	tok, vid, noScope, third := e.mfaCallers()
	e.bindTotp(tok, vid)
	id := e.factors(devcore.DemoUserID)[0]["id"].(string)
	otherTok := e.token(devcore.MintRequest{UserID: devcore.OtherUserID, Scope: mfaScopes})
	otherVid := e.passwordRecord(otherTok, devcore.OtherPassword)
	e.bindTotp(otherTok, otherVid)
	otherID := e.factors(devcore.OtherUserID)[0]["id"].(string)
	del := func(tok, id string, headers ...string) reply {
		return e.do("DELETE", mfaPath+"/"+id, tok, nil, headers...)
	}

	// Check order (N23): step-up, scope (401), first-party, the factor exists (400), its field.
	expectError(t, del(noScope, id), http.StatusUnauthorized, "verification_record.permission_denied")
	expectError(t, del(noScope, id, vidHeader, vid), http.StatusUnauthorized, "auth.unauthorized")
	expectError(t, del(third, id, vidHeader, vid), http.StatusForbidden, "auth.third_party_application_forbidden")
	e.setFields(map[string]string{"mfa": "ReadOnly"})
	expectError(t, del(tok, "nope", vidHeader, vid), http.StatusBadRequest, "verification_record.not_found")
	expectError(t, del(tok, id, vidHeader, vid), http.StatusBadRequest, "account_center.field_not_editable")
	e.setFields(map[string]string{"mfa": "Edit", "passkey": "Off"}) // passkey governs WebAuthn only
	// Someone else's factor is not the caller's, and hostile ids never reach the core.
	e.core.Core.ResetStats()
	hostile := []string{otherID, "..", "%2e%2e", "..%2f" + otherID, "x%2F..%2F..%2Fusers", "%00", "a%20b",
		strings.Repeat("a", 300), "%C3%A9t%C3%A9", "' OR '1'='1", id + "%3Fx=1"}
	for _, h := range hostile {
		r := del(tok, h, vidHeader, vid)
		if r.status != http.StatusBadRequest && r.status != http.StatusNotFound {
			t.Fatalf("DELETE %q: %d %s", h, r.status, r.body)
		}
		if code := r.json(t)["code"]; code != "verification_record.not_found" && code != "request.not_found" {
			t.Fatalf("DELETE %q: %s", h, r.body)
		}
	}
	if n := e.stats().Management[deleteFactorRoute]; n != 0 {
		t.Fatalf("%d hostile deletes reached the core", n)
	}
	if f := e.factors(devcore.OtherUserID); len(f) != 1 {
		t.Fatalf("the other user's factor: %v", f)
	}
	// Deleted: 204, gone; mfa.enabled stays, as Logto.
	if r := del(tok, id, vidHeader, vid); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if f := e.factors(devcore.DemoUserID); len(f) != 0 {
		t.Fatalf("after delete: %v", f)
	}
	if e.coreLogtoConfig(devcore.DemoUserID)["mfa"].(map[string]any)["enabled"] != true {
		t.Fatal("delete changed mfa.enabled")
	}
	expectError(t, del(tok, id, vidHeader, vid), http.StatusBadRequest, "verification_record.not_found")
}

func TestMfaSettings(t *testing.T) {
	e := mfaEnv(t)
	tok, vid, noScope, third := e.mfaCallers()

	if r := e.do("GET", mfaSettingsPath, tok, nil); r.status != http.StatusOK || string(r.body) != `{"skipMfaOnSignIn":false}` {
		t.Fatalf("GET: %d %s", r.status, r.body)
	}
	// GET (N5): scope (401) first, then mfa readable.
	e.setFields(map[string]string{"mfa": "Off"})
	expectError(t, e.do("GET", mfaSettingsPath, noScope, nil), http.StatusUnauthorized, "auth.unauthorized")
	expectError(t, e.do("GET", mfaSettingsPath, tok, nil), http.StatusBadRequest, "account_center.field_not_enabled")

	// PATCH (N6): guard, step-up, scope (401), first-party, mfa editable.
	on := map[string]any{"skipMfaOnSignIn": true}
	expectError(t, e.do("PATCH", mfaSettingsPath, noScope, map[string]any{}), http.StatusBadRequest, "guard.invalid_input")
	expectError(t, e.do("PATCH", mfaSettingsPath, noScope, map[string]any{"skipMfaOnSignIn": "yes"}), http.StatusBadRequest, "guard.invalid_input")
	expectError(t, e.do("PATCH", mfaSettingsPath, noScope, on), http.StatusUnauthorized, "verification_record.permission_denied")
	expectError(t, e.do("PATCH", mfaSettingsPath, noScope, on, vidHeader, vid), http.StatusUnauthorized, "auth.unauthorized")
	expectError(t, e.do("PATCH", mfaSettingsPath, third, on, vidHeader, vid), http.StatusForbidden, "auth.third_party_application_forbidden")
	e.setFields(map[string]string{"mfa": "ReadOnly"})
	expectError(t, e.do("PATCH", mfaSettingsPath, tok, on, vidHeader, vid), http.StatusBadRequest, "account_center.field_not_editable")
	e.setFields(map[string]string{"mfa": "Edit"})
	if r := e.do("PATCH", mfaSettingsPath, tok, on, vidHeader, vid); r.status != http.StatusOK || string(r.body) != `{"skipMfaOnSignIn":true}` {
		t.Fatalf("PATCH: %d %s", r.status, r.body)
	}
	if r := e.do("GET", mfaSettingsPath, tok, nil); string(r.body) != `{"skipMfaOnSignIn":true}` {
		t.Fatalf("GET after PATCH: %s", r.body)
	}
	if mfa := e.coreLogtoConfig(devcore.DemoUserID)["mfa"].(map[string]any); mfa["skipMfaOnSignIn"] != true {
		t.Fatalf("at the core: %v", mfa)
	}
}

func TestLogtoConfigs(t *testing.T) {
	e := mfaEnv(t)
	tok, vid, noScope, third := e.mfaCallers()

	r := e.do("GET", logtoConfigsPath, tok, nil)
	if r.status != http.StatusOK || string(r.body) != `{"mfa":{"skipped":false,"skipMfaOnSignIn":false},"passkeySignIn":{"skipped":false}}` {
		t.Fatalf("GET: %d %s", r.status, r.body)
	}
	// GET (N7): scope (401), then passkey??mfa readable: passkey when the settings have it.
	expectError(t, e.do("GET", logtoConfigsPath, noScope, nil), http.StatusUnauthorized, "auth.unauthorized")
	e.setFields(map[string]string{"mfa": "Edit", "passkey": "Off"})
	expectError(t, e.do("GET", logtoConfigsPath, tok, nil), http.StatusBadRequest, "account_center.field_not_enabled")
	e.setFields(map[string]string{"mfa": "Off", "passkey": "ReadOnly"})
	if r := e.do("GET", logtoConfigsPath, tok, nil); r.status != http.StatusOK {
		t.Fatalf("passkey ReadOnly reads: %d %s", r.status, r.body)
	}

	// PATCH (N8): guard, step-up, scope (401), first-party, passkey??mfa editable.
	body := map[string]any{"mfa": map[string]any{"skipped": true, "additionalBindingSuggestionSkipped": true}, "passkeySignIn": map[string]any{"skipped": true}}
	expectError(t, e.do("PATCH", logtoConfigsPath, noScope, map[string]any{"mfa": map[string]any{"skipped": 1}}), http.StatusBadRequest, "guard.invalid_input")
	expectError(t, e.do("PATCH", logtoConfigsPath, noScope, map[string]any{"passkeySignIn": nil}), http.StatusBadRequest, "guard.invalid_input")
	expectError(t, e.do("PATCH", logtoConfigsPath, noScope, body), http.StatusUnauthorized, "verification_record.permission_denied")
	expectError(t, e.do("PATCH", logtoConfigsPath, noScope, body, vidHeader, vid), http.StatusUnauthorized, "auth.unauthorized")
	expectError(t, e.do("PATCH", logtoConfigsPath, third, body, vidHeader, vid), http.StatusForbidden, "auth.third_party_application_forbidden")
	expectError(t, e.do("PATCH", logtoConfigsPath, tok, body, vidHeader, vid), http.StatusBadRequest, "account_center.field_not_editable")
	e.setFields(map[string]string{"mfa": "Edit"}) // no passkey: mfa governs
	r = e.do("PATCH", logtoConfigsPath, tok, body, vidHeader, vid)
	want := `{"mfa":{"skipped":true,"skipMfaOnSignIn":false},"passkeySignIn":{"skipped":true}}`
	if r.status != http.StatusOK || string(r.body) != want {
		t.Fatalf("PATCH: %d %s", r.status, r.body)
	}
	// A merge: what is not given stays.
	r = e.do("PATCH", logtoConfigsPath, tok, map[string]any{"mfa": map[string]any{"enabled": false}}, vidHeader, vid)
	if want = `{"mfa":{"enabled":false,"skipped":true,"skipMfaOnSignIn":false},"passkeySignIn":{"skipped":true}}`; string(r.body) != want {
		t.Fatalf("merge: %s", r.body)
	}
	if r := e.do("GET", logtoConfigsPath, tok, nil); string(r.body) != want {
		t.Fatalf("GET after PATCH: %s", r.body)
	}
}

// Every MFA write drops the user's cached record (as the other writes do) and leaves one audit
// entry without secrets.
func TestMfaWritesInvalidateAndAudit(t *testing.T) {
	e := mfaEnv(t)
	tok := e.userToken(mfaScopes)
	vid := e.passwordRecord(tok, devcore.DemoPassword)
	reads := func() int64 {
		e.account(tok)
		return e.userReads()
	}
	reads()
	secret := e.newSecret(tok)
	code := totpCode(t, secret)
	writes := []struct {
		op   string
		send func() reply
	}{
		{"account.mfa.bind", func() reply {
			return e.do("POST", mfaPath, tok, map[string]any{"type": "Totp", "secret": secret, "code": code}, vidHeader, vid)
		}},
		{"account.mfa.settings.update", func() reply {
			return e.do("PATCH", mfaSettingsPath, tok, map[string]any{"skipMfaOnSignIn": true}, vidHeader, vid)
		}},
		{"account.logtoConfigs.update", func() reply {
			return e.do("PATCH", logtoConfigsPath, tok, map[string]any{"mfa": map[string]any{"skipped": true}}, vidHeader, vid)
		}},
		{"account.mfa.totp.replace", func() reply {
			return e.do("PUT", mfaPath+"/totp", tok, map[string]any{"secret": secret, "code": code}, vidHeader, vid)
		}},
		{"account.mfa.delete", func() reply {
			return e.do("DELETE", mfaPath+"/"+e.factors(devcore.DemoUserID)[0]["id"].(string), tok, nil, vidHeader, vid)
		}},
	}
	for _, w := range writes {
		before := reads()
		if again := reads(); again != before {
			t.Fatalf("the profile is not cached: %d reads, then %d", before, again)
		}
		if r := w.send(); r.status >= 300 {
			t.Fatalf("%s: %d %s", w.op, r.status, r.body)
		}
		if after := reads(); after != before+1 {
			t.Fatalf("%s did not drop the cached profile (%d reads, then %d)", w.op, before, after)
		}
		if !e.caddy.WaitForLog(`"operation":"`+w.op+`"`, 5*time.Second) {
			t.Fatalf("no audit entry for %s", w.op)
		}
	}
	for _, line := range strings.Split(e.caddy.Logs(), "\n") {
		for _, s := range []string{secret, vid, tok, devcore.DemoPassword} {
			if strings.Contains(line, s) {
				t.Fatalf("a log line holds a secret: %s", line)
			}
		}
	}
}

// failOn makes the Management API calls with this method whose path ends in suffix fail.
func failOn(proxy *faultProxy, method, suffix string) {
	proxy.failWhen(func(r *http.Request) bool { return r.Method == method && strings.HasSuffix(r.URL.Path, suffix) })
}

// A core failure in the middle of a binding leaves nothing half-written: when mfa.enabled
// cannot be set, the new factor is taken back and a retry starts afresh; when the old TOTP
// cannot be removed, the replacement stops before adding.
func TestMfaCoreFailureMidWrite(t *testing.T) {
	e, proxy := newFaultEnv(t, options{extra: "policy_cache_ttl 1ms"})
	e.setFields(map[string]string{"mfa": "Edit"})
	e.setFactors("Totp", "BackupCode")
	tok := e.userToken(mfaScopes)
	vid := e.passwordRecord(tok, devcore.DemoPassword)
	secret := e.newSecret(tok)
	bind := map[string]any{"type": "Totp", "secret": secret, "code": totpCode(t, secret)}

	failOn(proxy, "PATCH", "/logto-configs")
	expectError(t, e.do("POST", mfaPath, tok, bind, vidHeader, vid), http.StatusServiceUnavailable, "identity_core.unavailable")
	if f := e.factors(devcore.DemoUserID); len(f) != 0 {
		t.Fatalf("a failed binding left a factor: %v", f)
	}
	proxy.set("pass")
	if r := e.do("POST", mfaPath, tok, bind, vidHeader, vid); r.status != http.StatusNoContent {
		t.Fatalf("retry: %d %s", r.status, r.body)
	}
	old := e.factors(devcore.DemoUserID)

	next := e.newSecret(tok)
	failOn(proxy, "DELETE", "/mfa-verifications/"+old[0]["id"].(string))
	expectError(t, e.do("PUT", mfaPath+"/totp", tok, map[string]any{"secret": next, "code": totpCode(t, next)}, vidHeader, vid),
		http.StatusServiceUnavailable, "identity_core.unavailable")
	if f := e.factors(devcore.DemoUserID); len(f) != 1 || f[0]["id"] != old[0]["id"] {
		t.Fatalf("a failed replacement lost the old TOTP: %v", f)
	}
	proxy.set("pass")
}

// A burst of concurrent bindings of the same factor: exactly one wins, the others get Logto's 422, and the core holds one factor of each kind.
func TestMfaBindingBurst(t *testing.T) {
	e := mfaEnv(t)
	tok := e.userToken(mfaScopes)
	vid := e.passwordRecord(tok, devcore.DemoPassword)
	secret := e.newSecret(tok)
	codes := []string{}
	for i := range 10 {
		codes = append(codes, strings.Repeat(string("0123456789"[i]), 10))
	}
	for _, body := range []map[string]any{
		{"type": "Totp", "secret": secret, "code": totpCode(t, secret)},
		{"type": "BackupCode", "codes": codes},
	} {
		const n = 12
		statuses := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := e.call(e.caddy.URL(), "POST", mfaPath, tok, body, vidHeader, vid)
				statuses[i] = r.status
			}()
		}
		wg.Wait()
		won := 0
		for _, s := range statuses {
			switch s {
			case http.StatusNoContent:
				won++
			case http.StatusUnprocessableEntity:
			default:
				t.Fatalf("%v: statuses %v", body["type"], statuses)
			}
		}
		if won != 1 {
			t.Fatalf("%v: %d bindings won: %v", body["type"], won, statuses)
		}
	}
	if f := e.factors(devcore.DemoUserID); len(f) != 2 || f[0]["type"] != "Totp" || f[1]["type"] != "BackupCode" {
		t.Fatalf("factors after the bursts: %v", f)
	}
}
