package api

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

func TestTotpSecretFormat(t *testing.T) {
	secret := generateTotpSecret()
	if !regexp.MustCompile(`^[A-Z2-7]{32}$`).MatchString(secret) || !validTotpSecret(secret) {
		t.Fatalf("generated secret %q", secret)
	}
	// Logto's validateTotpSecret: 16-32 characters, whole base32 blocks, padding only at the end.
	for s, want := range map[string]bool{
		"JBSWY3DPEHPK3PXP":                   true,
		"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP":   true,
		"JBSWY3DPEHPK3PXPJB======":           true,
		"JBSWY3DPEHPK3PX":                    false, // 15
		"JBSWY3DPEHPK3PXPJ":                  false, // not a whole block
		"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXPAB": false, // 34
		"jbswy3dpehpk3pxp":                   false, // lower case
		"JBSWY3DPEHPK3PX1":                   false, // 1 is not base32
		"JBSWY3DP=HPK3PXP":                   false,
		"":                                   false,
	} {
		if got := validTotpSecret(s); got != want {
			t.Errorf("validTotpSecret(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestTotpCode(t *testing.T) {
	secret := generateTotpSecret()
	now := time.Now()
	code := func(at time.Time) string {
		c, err := totp.GenerateCode(secret, at)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, d := range []time.Duration{-30 * time.Second, 0, 30 * time.Second} {
		if !validTotpCode(secret, code(now.Add(d)), now) {
			t.Errorf("the code of %v is refused (one step of drift is allowed)", d)
		}
	}
	for _, d := range []time.Duration{-90 * time.Second, 90 * time.Second} {
		if c := code(now.Add(d)); c != code(now) && validTotpCode(secret, c, now) {
			t.Errorf("the code of %v is accepted", d)
		}
	}
	for _, bad := range []string{" " + code(now), code(now) + " ", code(now)[:5], "abcdef", ""} {
		if validTotpCode(secret, bad, now) {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestBackupCodes(t *testing.T) {
	codes := generateBackupCodes()
	if !validBackupCodes(codes) {
		t.Fatalf("generated codes refused: %v", codes)
	}
	seen := map[string]bool{}
	for _, c := range codes {
		if !regexp.MustCompile(`^[0-9a-f]{10}$`).MatchString(c) || seen[c] {
			t.Fatalf("code %q", c)
		}
		seen[c] = true
	}
	upper := make([]string, len(codes))
	for i, c := range codes {
		upper[i] = strings.ToUpper(c)
	}
	if !validBackupCodes(upper) {
		t.Error("Logto accepts either case")
	}
	if validBackupCodes(codes[:9]) || validBackupCodes(append(codes[:9:9], "0123456789a")) || validBackupCodes(append(codes[:9:9], "ghijklmnop")) {
		t.Error("a wrong set is accepted")
	}
}

func TestDecodeMfaBinding(t *testing.T) {
	for body, wantErr := range map[string]bool{
		`{"type":"Totp","secret":"S"}`:                                false,
		`{"type":"Totp","secret":"S","code":"1"}`:                     false,
		`{"type":"Totp"}`:                                             true,
		`{"type":"Totp","secret":"S","code":1}`:                       true,
		`{"type":"BackupCode","codes":["a"]}`:                         false,
		`{"type":"BackupCode","codes":[1]}`:                           true,
		`{"type":"BackupCode"}`:                                       true,
		`{"type":"WebAuthn","newIdentifierVerificationRecordId":"r"}`: false,
		`{"type":"WebAuthn"}`:                                         true,
		`{"type":"totp","secret":"S"}`:                                true,
		`{"type":1}`:                                                  true,
		`{}`:                                                          true,
	} {
		obj, err := decodeObject([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeMfaBinding(obj); (err != nil) != wantErr {
			t.Errorf("%s: error %v", body, err)
		}
	}
}
