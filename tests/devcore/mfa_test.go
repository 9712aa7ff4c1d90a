package devcore

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// validatedCalls returns a function that makes a Management API call to a new core, expects a
// status and checks the answer against the Management API document.
func validatedCalls(t *testing.T) func(method, path string, body any, status int) response {
	router := managementRouter(t)
	tc := newTestCore(t)
	tok := tc.m2mToken()
	return func(method, path string, body any, status int) response {
		t.Helper()
		req := tc.request(method, path, tok, body)
		resp := tc.send(req)
		if resp.status != status {
			t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.status, status, resp.body)
		}
		validateManagementResponse(t, router, req, resp)
		return resp
	}
}

// TestMfaVerifications drives the MFA Management API routes through Logto's rules and checks
// every answer against the Management API document.
func TestMfaVerifications(t *testing.T) {
	call := validatedCalls(t)
	base := "/api/users/" + DemoUserID
	list := func() []map[string]any {
		t.Helper()
		var out []map[string]any
		if err := json.Unmarshal(call("GET", base+"/mfa-verifications", nil, 200).body, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}

	if got := call("GET", base+"/mfa-verifications", nil, 200).body; string(got) != "[]" {
		t.Fatalf("a user without factors: %s", got)
	}
	// Backup codes cannot come first.
	expectError(t, call("POST", base+"/mfa-verifications", map[string]any{"type": "BackupCode"}, 422),
		422, "session.mfa.backup_code_can_not_be_alone", "Backup code can not be the only MFA.")
	// A bad secret is 422 here (the Account API says 400).
	expectError(t, call("POST", base+"/mfa-verifications", map[string]any{"type": "Totp", "secret": "not base32!"}, 422),
		422, "user.totp_secret_invalid", "")
	// No secret: one is generated, with a QR code of the key URI.
	r := call("POST", base+"/mfa-verifications", map[string]any{"type": "Totp"}, 200).json(t)
	if s, _ := r["secret"].(string); len(s) != 32 || strings.Trim(s, base32Alphabet) != "" {
		t.Fatalf("generated secret %v", r["secret"])
	}
	if qr, _ := r["secretQrCode"].(string); !strings.HasPrefix(qr, "data:image/png;base64,") {
		t.Fatalf("QR code %.40v", r["secretQrCode"])
	}
	expectError(t, call("POST", base+"/mfa-verifications", map[string]any{"type": "Totp", "secret": "JBSWY3DPEHPK3PXP"}, 422),
		422, "user.totp_already_in_use", "TOTP is already in use.")

	// Backup codes: the format, then generated ones.
	expectError(t, call("POST", base+"/mfa-verifications", map[string]any{"type": "BackupCode", "codes": []string{"0123456789"}}, 422),
		422, "user.wrong_backup_code_format", "")
	codes := make([]string, 10)
	for i := range codes {
		codes[i] = strings.Repeat(string("0123456789ABCDEF"[i]), 10) // either case is accepted
	}
	r = call("POST", base+"/mfa-verifications", map[string]any{"type": "BackupCode", "codes": codes}, 200).json(t)
	if r["type"] != "BackupCode" || len(r["codes"].([]any)) != 10 {
		t.Fatalf("%v", r)
	}
	expectError(t, call("POST", base+"/mfa-verifications", map[string]any{"type": "BackupCode"}, 422),
		422, "user.backup_code_already_in_use", "")

	factors := list()
	if len(factors) != 2 || factors[0]["type"] != "Totp" || factors[1]["type"] != "BackupCode" ||
		factors[1]["remainCodes"] != float64(10) || factors[0]["remainCodes"] != nil || factors[0]["key"] != nil {
		t.Fatalf("list: %v", factors)
	}
	if id := factors[0]["id"].(string); len(id) != 21 {
		t.Fatalf("id %q: Logto's ids are 21 characters", id)
	}

	// The body guard: an unknown type, a wrong member type.
	r = call("POST", base+"/mfa-verifications", map[string]any{"type": "WebAuthn"}, 400).json(t)
	if r["code"] != "guard.invalid_input" {
		t.Fatalf("%v", r)
	}
	call("POST", base+"/mfa-verifications", map[string]any{"type": "BackupCode", "codes": "x"}, 400)

	// Delete: unknown ids are 404; a factor goes away.
	expectError(t, call("DELETE", base+"/mfa-verifications/nope", nil, 404), 404, "entity.not_found", "")
	call("DELETE", base+"/mfa-verifications/"+factors[0]["id"].(string), nil, 204)
	if f := list(); len(f) != 1 || f[0]["type"] != "BackupCode" {
		t.Fatalf("after delete: %v", f)
	}
	// Unknown users.
	call("GET", "/api/users/nope/mfa-verifications", nil, 404)
	call("POST", "/api/users/nope/mfa-verifications", map[string]any{"type": "Totp"}, 404)
	call("DELETE", "/api/users/nope/mfa-verifications/x", nil, 404)
}

// TestLogtoConfigs checks GET/PATCH /api/users/{id}/logto-configs: defaults, a merge of the
// members given, additionalBindingSuggestionSkipped ignored, the guard, and the document.
func TestLogtoConfigs(t *testing.T) {
	calls := validatedCalls(t)
	call := func(method, path string, body any, status int) string {
		return string(calls(method, path, body, status).body)
	}
	path := "/api/users/" + DemoUserID + "/logto-configs"
	if got := call("GET", path, nil, 200); got != `{"mfa":{"skipped":false,"skipMfaOnSignIn":false},"passkeySignIn":{"skipped":false}}` {
		t.Fatalf("defaults (enabled unknown): %s", got)
	}
	got := call("PATCH", path, map[string]any{"mfa": map[string]any{"enabled": true, "additionalBindingSuggestionSkipped": true}}, 200)
	if got != `{"mfa":{"enabled":true,"skipped":false,"skipMfaOnSignIn":false},"passkeySignIn":{"skipped":false}}` {
		t.Fatalf("after enabling: %s", got)
	}
	got = call("PATCH", path, map[string]any{"mfa": map[string]any{"skipMfaOnSignIn": true}, "passkeySignIn": map[string]any{"skipped": true}}, 200)
	if got != `{"mfa":{"enabled":true,"skipped":false,"skipMfaOnSignIn":true},"passkeySignIn":{"skipped":true}}` {
		t.Fatalf("a merge keeps what is not given: %s", got)
	}
	if again := call("GET", path, nil, 200); again != got {
		t.Fatalf("GET after PATCH: %s", again)
	}
	call("PATCH", path, map[string]any{"mfa": map[string]any{"enabled": "yes"}}, 400)
	call("PATCH", path, map[string]any{"mfa": nil}, 400)
	call("GET", "/api/users/nope/logto-configs", nil, 404)
	call("PATCH", "/api/users/nope/logto-configs", map[string]any{}, 404)
}

// TestMfaFactorsInSignInExperience: the sign-in experience's mfa.factors can be switched.
func TestMfaFactorsInSignInExperience(t *testing.T) {
	tc := newTestCore(t)
	tok := tc.m2mToken()
	r := tc.do("PATCH", "/api/sign-in-exp", tok, map[string]any{"mfa": map[string]any{"factors": []string{"Totp", "BackupCode"}, "policy": "UserControlled"}})
	if r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	mfa := tc.do("GET", "/api/sign-in-exp", tok, nil).json(t)["mfa"].(map[string]any)
	if f := mfa["factors"].([]any); len(f) != 2 || f[0] != "Totp" {
		t.Fatalf("%v", mfa)
	}
}

// TestMfaFactorsAtStart: Config.MfaFactors (the quickstart's) are the seeded sign-in
// experience's mfa.factors, in the Management API's and the public view; by default none.
func TestMfaFactorsAtStart(t *testing.T) {
	for _, factors := range [][]string{nil, {"Totp", "BackupCode"}} {
		tc := newTestCoreWith(t, Config{MfaFactors: factors})
		for _, view := range []struct{ path, token string }{{"/api/sign-in-exp", tc.m2mToken()}, {"/api/.well-known/sign-in-exp", ""}} {
			mfa := tc.do("GET", view.path, view.token, nil).json(t)["mfa"].(map[string]any)
			got := []string{}
			for _, f := range mfa["factors"].([]any) {
				got = append(got, f.(string))
			}
			if !slices.Equal(got, factors) {
				t.Errorf("%s with MfaFactors %v: factors %v", view.path, factors, got)
			}
			if mfa["policy"] != "PromptAtSignInAndSignUp" {
				t.Errorf("%s: policy %v", view.path, mfa["policy"])
			}
		}
	}
}

// TestMfaPolicyGuard: PATCH /api/sign-in-exp refuses an mfa member Logto refuses.
func TestMfaPolicyGuard(t *testing.T) {
	tc := newTestCore(t)
	tok := tc.m2mToken()
	patch := func(mfa any) response {
		return tc.do("PATCH", "/api/sign-in-exp", tok, map[string]any{"mfa": mfa})
	}
	expectError(t, patch(map[string]any{"factors": []string{"Sms"}, "policy": "UserControlled"}), 400, "guard.invalid_input", "")
	expectError(t, patch(map[string]any{"factors": []string{"Totp"}}), 400, "guard.invalid_input", "")
	expectError(t, patch(map[string]any{"factors": []string{"Totp", "Totp"}, "policy": "UserControlled"}),
		400, "sign_in_experiences.duplicated_mfa_factors", "Duplicated MFA factors.")
	expectError(t, patch(map[string]any{"factors": []string{"BackupCode"}, "policy": "UserControlled"}),
		400, "sign_in_experiences.backup_code_cannot_be_enabled_alone", "")
	mfa := tc.do("GET", "/api/sign-in-exp", tok, nil).json(t)["mfa"].(map[string]any)
	if f := mfa["factors"].([]any); len(f) != 0 {
		t.Fatalf("a refused patch changed the factors: %v", mfa)
	}
}
