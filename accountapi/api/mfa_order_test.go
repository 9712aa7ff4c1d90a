package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/accountedge/caddy-account-api/accountapi/accountcenter"
	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
)

// Check order of the MFA routes (reference §3.3 N5–N8, N16–N20, N23): the cases TestCheckOrder
// runs, with the refusals of the routes' own work after the row's checks.

const benchSecret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

func benchCode(t *testing.T) string {
	code, err := totp.GenerateCode(benchSecret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return code
}

func fieldOff(field string) refusal {
	return refusal{"field " + field + " off", func(b *bench, _ *request) { b.settings.Fields[field] = accountcenter.Off },
		http.StatusBadRequest, "account_center.field_not_enabled"}
}

func factors(b *bench, fs ...string) { b.core.sie.Mfa.Factors = fs }

func factorDisabled(factor string) refusal {
	return refusal{factor + " not a sign-in factor", func(b *bench, _ *request) {
		b.core.sie.Mfa.Factors = slices.DeleteFunc(slices.Clone(b.core.sie.Mfa.Factors), func(f string) bool { return f == factor })
	}, http.StatusBadRequest, "session.mfa.mfa_factor_not_enabled"}
}

// bind gives the bench user a factor at the core.
func bind(b *bench, t string, codes int) {
	v := fakeFactor{MfaVerification: identitycore.MfaVerification{ID: "f-" + t, CreatedAt: "2026-12-01T00:00:00.000Z", Type: t}}
	if t == identitycore.MfaBackupCode {
		v.RemainCodes = &codes
	}
	b.core.mfa[benchUser] = append(b.core.mfa[benchUser], v)
}

func bound(t string, status int, code string) refusal {
	return refusal{t + " bound", func(b *bench, _ *request) { bind(b, t, 10) }, status, code}
}

// bodyMember changes one member of a JSON-object body that still has the good body's shape (a
// body an earlier refusal broke is left alone, so the refusals compose).
func bodyMember(name, key string, value any, status int, code string) refusal {
	return refusal{name, func(_ *bench, req *request) {
		var m map[string]any
		if json.Unmarshal([]byte(req.body), &m) != nil {
			return
		}
		if _, ok := m[key]; !ok {
			return
		}
		if _, wellTyped := m["type"].(string); !wellTyped && m["type"] != nil {
			return
		}
		m[key] = value
		req.body = bodyJSON(m)
	}, status, code}
}

func mfaOrderCases(t *testing.T) []orderCase {
	mfaUser := func(b *bench, req *request) {
		grant(b, "identities")
		editable(b, "mfa")
		withStepUp(b, req)
		factors(b, identitycore.MfaTotp, identitycore.MfaBackupCode)
	}
	stepUpWrite := func(field string) []refusal {
		return []refusal{noStepUp(), missingScope("identities", 401), thirdParty(), fieldReadOnly(field)}
	}
	return []orderCase{
		{
			name:     "GET /api/my-account/mfa-settings",
			req:      request{method: "GET", path: "/api/my-account/mfa-settings"},
			setup:    mfaUser,
			refusals: []refusal{noToken(), accountCenterOff(), missingScope("identities", 401), fieldOff("mfa")},
			ok:       http.StatusOK,
		},
		{
			name:     "PATCH /api/my-account/mfa-settings",
			req:      request{method: "PATCH", path: "/api/my-account/mfa-settings", body: `{"skipMfaOnSignIn":true}`},
			setup:    mfaUser,
			refusals: append([]refusal{revokedToken(), accountCenterOff(), badBody(`{}`)}, stepUpWrite("mfa")...),
			ok:       http.StatusOK,
		},
		{
			name: "GET /api/my-account/logto-configs",
			req:  request{method: "GET", path: "/api/my-account/logto-configs"},
			setup: func(b *bench, req *request) {
				mfaUser(b, req)
				editable(b, "passkey")
			},
			refusals: []refusal{noToken(), accountCenterOff(), missingScope("identities", 401), fieldOff("passkey")},
			ok:       http.StatusOK,
		},
		{
			name: "PATCH /api/my-account/logto-configs",
			req:  request{method: "PATCH", path: "/api/my-account/logto-configs", body: `{"mfa":{"skipped":true}}`},
			setup: func(b *bench, req *request) {
				mfaUser(b, req)
				editable(b, "passkey")
			},
			refusals: append([]refusal{revokedToken(), accountCenterOff(), badBody(`{"mfa":1}`)}, stepUpWrite("passkey")...),
			ok:       http.StatusOK,
		},
		{
			name:     "GET /api/my-account/mfa-verifications",
			req:      request{method: "GET", path: "/api/my-account/mfa-verifications"},
			setup:    mfaUser,
			refusals: []refusal{noToken(), accountCenterOff(), fieldOff("mfa"), missingScope("identities", 401)},
			ok:       http.StatusOK,
		},
		{
			name: "POST /api/my-account/mfa-verifications",
			req:  request{method: "POST", path: "/api/my-account/mfa-verifications"},
			setup: func(b *bench, req *request) {
				mfaUser(b, req)
				req.body = bodyJSON(map[string]string{"type": "Totp", "secret": benchSecret, "code": benchCode(t)})
			},
			refusals: []refusal{revokedToken(), accountCenterOff(), badBody(`{"type":"Sms"}`),
				noStepUp(), fieldReadOnly("mfa"), missingScope("identities", 401), thirdParty(),
				factorDisabled(identitycore.MfaTotp),
				bound(identitycore.MfaTotp, http.StatusUnprocessableEntity, "user.totp_already_in_use"),
				bodyMember("bad secret", "secret", "JBSWY3DPEHPK3PX", http.StatusBadRequest, "user.totp_secret_invalid"),
				bodyMember("wrong code", "code", "12345", http.StatusBadRequest, "session.mfa.invalid_totp_code")},
			ok: http.StatusNoContent,
		},
		{
			name: "PUT /api/my-account/mfa-verifications/totp",
			req:  request{method: "PUT", path: "/api/my-account/mfa-verifications/totp"},
			setup: func(b *bench, req *request) {
				mfaUser(b, req)
				bind(b, identitycore.MfaTotp, 0)
				req.body = bodyJSON(map[string]string{"secret": benchSecret, "code": benchCode(t)})
			},
			refusals: []refusal{revokedToken(), accountCenterOff(), badBody(`{"secret":"S"}`),
				noStepUp(), fieldReadOnly("mfa"), missingScope("identities", 401), thirdParty(),
				factorDisabled(identitycore.MfaTotp),
				bodyMember("bad secret", "secret", "short", http.StatusBadRequest, "user.totp_secret_invalid"),
				bodyMember("wrong code", "code", "abcdef", http.StatusBadRequest, "session.mfa.invalid_totp_code")},
			ok: http.StatusNoContent,
		},
		{
			name:     "POST /api/my-account/mfa-verifications/totp-secret/generate",
			req:      request{method: "POST", path: "/api/my-account/mfa-verifications/totp-secret/generate"},
			setup:    func(b *bench, _ *request) { thirdParty().breaks(b, nil) }, // no scope, field, step-up or first-party
			refusals: []refusal{noToken(), accountCenterOff()},
			ok:       http.StatusOK,
		},
		{
			name:     "POST /api/my-account/mfa-verifications/backup-codes/generate",
			req:      request{method: "POST", path: "/api/my-account/mfa-verifications/backup-codes/generate"},
			setup:    func(b *bench, _ *request) { thirdParty().breaks(b, nil) },
			refusals: []refusal{noToken(), accountCenterOff()},
			ok:       http.StatusOK,
		},
		{
			name: "DELETE /api/my-account/mfa-verifications/{verificationId}",
			req:  request{method: "DELETE", path: "/api/my-account/mfa-verifications/f-Totp"},
			setup: func(b *bench, req *request) {
				mfaUser(b, req)
				bind(b, identitycore.MfaTotp, 0)
			},
			refusals: []refusal{revokedToken(), accountCenterOff(), noStepUp(), missingScope("identities", 401), thirdParty(),
				{"unknown factor", func(_ *bench, req *request) { req.path = "/api/my-account/mfa-verifications/nope" },
					http.StatusBadRequest, "verification_record.not_found"},
				fieldReadOnly("mfa")},
			ok: http.StatusNoContent,
		},
	}
}

// More cases of POST /api/my-account/mfa-verifications: backup codes and WebAuthn.
func TestMfaBindingCheckOrder(t *testing.T) {
	for _, tc := range []orderCase{
		{
			name: "BackupCode",
			req:  request{method: "POST", path: "/api/my-account/mfa-verifications"},
			setup: func(b *bench, req *request) {
				grant(b, "identities")
				editable(b, "mfa")
				withStepUp(b, req)
				factors(b, identitycore.MfaTotp, identitycore.MfaBackupCode)
				bind(b, identitycore.MfaTotp, 0)
				bind(b, identitycore.MfaBackupCode, 0) // used up: a new set may come
				req.body = bodyJSON(map[string]any{"type": "BackupCode", "codes": []string{"0123456789", "abcdef0123", "ABCDEF0123",
					"1111111111", "2222222222", "3333333333", "4444444444", "5555555555", "6666666666", "7777777777"}})
			},
			refusals: []refusal{badBody(`{"type":"BackupCode"}`), noStepUp(), fieldReadOnly("mfa"),
				missingScope("identities", 401), thirdParty(), factorDisabled(identitycore.MfaBackupCode),
				bound(identitycore.MfaBackupCode, http.StatusUnprocessableEntity, "user.backup_code_already_in_use"),
				{"alone", func(b *bench, _ *request) {
					b.core.mfa[benchUser] = slices.DeleteFunc(b.core.mfa[benchUser], func(v fakeFactor) bool { return v.Type == identitycore.MfaTotp })
				}, http.StatusUnprocessableEntity, "session.mfa.backup_code_can_not_be_alone"},
				bodyMember("nine codes", "codes", []string{"0123456789"}, http.StatusUnprocessableEntity, "user.wrong_backup_code_format")},
			ok: http.StatusNoContent,
		},
		{
			name: "WebAuthn",
			req:  request{method: "POST", path: "/api/my-account/mfa-verifications", body: `{"type":"WebAuthn","newIdentifierVerificationRecordId":"r"}`},
			setup: func(b *bench, req *request) {
				grant(b, "identities")
				editable(b, "passkey")
				withStepUp(b, req)
				factors(b, identitycore.MfaWebAuthn)
			},
			refusals: []refusal{badBody(`{"type":"WebAuthn"}`), noStepUp(), fieldReadOnly("passkey"),
				missingScope("identities", 401), thirdParty(), factorDisabled(identitycore.MfaWebAuthn)},
			ok: http.StatusNotImplemented, // the Management API cannot write a WebAuthn credential
		},
	} {
		t.Run(tc.name, func(t *testing.T) { runOrderCase(t, tc) })
	}
}

// The work of the MFA routes: what reaches the core, mfa.enabled, and nothing half-written.
func TestMfaWork(t *testing.T) {
	setup := func() (*bench, map[string]string) {
		b := newBench(t)
		grant(b, "identities")
		editable(b, "mfa")
		factors(b, identitycore.MfaTotp, identitycore.MfaBackupCode)
		return b, map[string]string{verificationHeader: b.stepUpRecord()}
	}
	totpBody := func() string {
		return bodyJSON(map[string]string{"type": "Totp", "secret": benchSecret, "code": benchCode(t)})
	}

	// A binding sets mfa.enabled; the core keeps the secret; the user's cache entry goes.
	b, h := setup()
	if a := b.do(request{method: "POST", path: "/api/my-account/mfa-verifications", body: totpBody(), header: h}); a.status != http.StatusNoContent {
		t.Fatalf("bind: %d %s", a.status, a.body)
	}
	if f := b.core.mfa[benchUser]; len(f) != 1 || f[0].secret != benchSecret {
		t.Fatalf("factors %+v", f)
	}
	if e := b.core.logtoConfigs[benchUser].Mfa.Enabled; e == nil || !*e {
		t.Fatal("mfa.enabled not set")
	}
	if len(b.changed) != 1 {
		t.Fatalf("UserChanged %v", b.changed)
	}

	// mfa.enabled cannot be set: the factor is taken back, the answer is the core's failure.
	b, h = setup()
	b.core.fail["UpdateLogtoConfig"] = &identitycore.UnavailableError{Op: "test", Cause: errors.New("down")}
	if a := b.do(request{method: "POST", path: "/api/my-account/mfa-verifications", body: totpBody(), header: h}); a.status != http.StatusServiceUnavailable {
		t.Fatalf("bind with logto-configs down: %d %s", a.status, a.body)
	}
	if f := b.core.mfa[benchUser]; len(f) != 0 {
		t.Fatalf("a half-made binding stayed: %+v", f)
	}

	// The replacement: the old TOTP goes only after every check passed, then the new one comes.
	b, h = setup()
	bind(b, identitycore.MfaTotp, 0)
	bind(b, identitycore.MfaBackupCode, 10)
	b.core.fail["DeleteMfaVerification"] = &identitycore.UnavailableError{Op: "test", Cause: errors.New("down")}
	if a := b.do(request{method: "PUT", path: "/api/my-account/mfa-verifications/totp",
		body: bodyJSON(map[string]string{"secret": benchSecret, "code": benchCode(t)}), header: h}); a.status != http.StatusServiceUnavailable {
		t.Fatalf("replace with delete down: %d %s", a.status, a.body)
	}
	if slices.Contains(b.core.calls, "AddMfaVerification") || len(b.core.mfa[benchUser]) != 2 {
		t.Fatalf("the replacement went on after the old TOTP stayed: %v", b.core.calls)
	}
	delete(b.core.fail, "DeleteMfaVerification")
	if a := b.do(request{method: "PUT", path: "/api/my-account/mfa-verifications/totp",
		body: bodyJSON(map[string]string{"secret": benchSecret, "code": benchCode(t)}), header: h}); a.status != http.StatusNoContent {
		t.Fatalf("replace: %d %s", a.status, a.body)
	}
	f := b.core.mfa[benchUser]
	if len(f) != 2 || f[0].Type != identitycore.MfaBackupCode || f[1].Type != identitycore.MfaTotp || f[1].ID == "f-Totp" || f[1].secret != benchSecret {
		t.Fatalf("after the replacement: %+v", f)
	}

	// Deleting a WebAuthn factor needs passkey (when set), others mfa.
	b, h = setup()
	bind(b, identitycore.MfaWebAuthn, 0)
	b.settings.Fields["passkey"] = accountcenter.ReadOnly
	if a := b.do(request{method: "DELETE", path: "/api/my-account/mfa-verifications/f-WebAuthn", header: h}); a.code != "account_center.field_not_editable" {
		t.Fatalf("WebAuthn with passkey ReadOnly: %d %s", a.status, a.body)
	}
	delete(b.settings.Fields, "passkey")
	if a := b.do(request{method: "DELETE", path: "/api/my-account/mfa-verifications/f-WebAuthn", header: h}); a.status != http.StatusNoContent {
		t.Fatalf("WebAuthn with mfa Edit and no passkey field: %d %s", a.status, a.body)
	}
	// A factor deleted meanwhile is the Account API's 400, not the core's 404.
	bind(b, identitycore.MfaTotp, 0)
	b.core.fail["DeleteMfaVerification"] = notFound("entity.not_found")
	if a := b.do(request{method: "DELETE", path: "/api/my-account/mfa-verifications/f-Totp", header: h}); a.status != http.StatusBadRequest || a.code != "verification_record.not_found" {
		t.Fatalf("deleted meanwhile: %d %s", a.status, a.body)
	}
}
