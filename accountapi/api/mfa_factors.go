package api

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/hex"
	"regexp"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// TOTP secrets and backup codes in Logto's formats (core/src/libraries/verification-helpers:
// totp-validation.ts, backup-code-validation.ts). Logto uses otplib's authenticator; the same
// RFC 6238 parameters here are SHA-1, 6 digits, 30-second steps, one step of drift either way.

// totpSecretBytes is the size of a generated secret: otplib's generateSecret(20), 160 bits as
// RFC 6238 recommends, 32 base32 characters.
const totpSecretBytes = 20

// totpSecretPattern is Logto's validateTotpSecret: upper-case base32 in whole 8-character
// blocks, the last one possibly padded with '='.
var totpSecretPattern = regexp.MustCompile(`^(?:[2-7A-Z]{8})*(?:[2-7A-Z]{2}={6}|[2-7A-Z]{4}={4}|[2-7A-Z]{5}={3}|[2-7A-Z]{7}=)?$`)

// totpCodePattern is otplib's token check: the code must be digits only, of the right length
// (pquerna/otp would also accept surrounding spaces, otplib does not).
var totpCodePattern = regexp.MustCompile(`^\d{6}$`)

var totpOptions = totp.ValidateOpts{Period: 30, Skew: 1, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// generateTotpSecret returns a new random secret, unpadded base32 as otplib makes it.
func generateTotpSecret() string {
	b := make([]byte, totpSecretBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b)
}

// validTotpSecret is Logto's validateTotpSecret: 16 to 32 characters of base32.
func validTotpSecret(secret string) bool {
	return len(secret) >= 16 && len(secret) <= 32 && totpSecretPattern.MatchString(secret)
}

// validTotpCode checks a code against a secret at time now, with one step of drift.
func validTotpCode(secret, code string, now time.Time) bool {
	if !totpCodePattern.MatchString(code) {
		return false
	}
	ok, err := totp.ValidateCustom(code, secret, now, totpOptions)
	return err == nil && ok
}

// backupCodeCount and backupCodeLength are Logto's: 10 codes of 10 hex characters.
const (
	backupCodeCount  = 10
	backupCodeLength = 10
)

var backupCodePattern = regexp.MustCompile(`^(?i)[\da-f]{10}$`)

// generateBackupCodes returns a new set of codes, lower-case hex as Logto's nanoid alphabet
// "0123456789abcdef" gives them.
func generateBackupCodes() []string {
	codes := make([]string, backupCodeCount)
	b := make([]byte, backupCodeLength/2)
	for i := range codes {
		_, _ = rand.Read(b)
		codes[i] = hex.EncodeToString(b)
	}
	return codes
}

// validBackupCodes is Logto's validateBackupCodes: exactly 10 codes of 10 hex characters, in
// either case.
func validBackupCodes(codes []string) bool {
	if len(codes) != backupCodeCount {
		return false
	}
	for _, c := range codes {
		if !backupCodePattern.MatchString(c) {
			return false
		}
	}
	return true
}
