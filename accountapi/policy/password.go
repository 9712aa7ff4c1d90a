package policy

import (
	"context"
	"crypto/sha1"
	_ "embed"
	"encoding/hex"
	"net/http"
	"strings"
	"unicode/utf16"

	"github.com/accountedge/caddy-account-api/accountapi/apierror"
	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
)

// PasswordIssue is one reason a password is rejected, as Logto reports it in the data of
// 422 password.rejected.
type PasswordIssue struct {
	Code          string         `json:"code"`
	Interpolation map[string]int `json:"interpolation,omitempty"`
}

// PwnedChecker says whether a password is known to attackers.
type PwnedChecker interface {
	Pwned(ctx context.Context, password string) (bool, error)
}

// UserInfo is what the user-info rule looks for in a password.
type UserInfo struct {
	Name, Username, Email, Phone string
}

// passwordSymbols are the characters Logto counts as symbols (with the space).
const passwordSymbols = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ "

// passwordSequences are the runs Logto treats as sequences (forwards, backwards, any case).
var passwordSequences = []string{"0123456789", "abcdefghijklmnopqrstuvwxyz", "qwertyuiop", "asdfghjkl",
	"zxcvbnm", "1qaz", "2wsx", "3edc", "4rfv", "5tgb", "6yhn", "7ujm", "8ik", "9ol"}

const (
	// repetitionAndSequenceThreshold is the shortest repetition or sequence that counts.
	repetitionAndSequenceThreshold = 3
	// restrictedPhrasesTolerance: a password with more than this many characters outside
	// restricted phrases is accepted.
	restrictedPhrasesTolerance = 3
)

// CheckPassword applies Logto's password policy (reference §6; Logto's PasswordPolicyChecker):
// length, character types, the pwned list, then the restricted phrases (repetitions, sequences,
// words, user info), which only reject when they cover all but at most three characters. It
// returns 422 password.rejected with the issues, or nil. Lengths are counted in UTF-16 units,
// as JavaScript does.
func CheckPassword(ctx context.Context, password string, p identitycore.PasswordPolicy, user UserInfo, pwned PwnedChecker) error {
	minLen, maxLen, minTypes := intOr(p.Length.Min, 8), intOr(p.Length.Max, 256), intOr(p.CharacterTypes.Min, 1)
	units := utf16.Encode([]rune(password))
	var issues []PasswordIssue
	switch {
	case len(units) < minLen:
		issues = append(issues, PasswordIssue{Code: "password_rejected.too_short", Interpolation: map[string]int{"min": minLen}})
	case len(units) > maxLen:
		issues = append(issues, PasswordIssue{Code: "password_rejected.too_long", Interpolation: map[string]int{"max": maxLen}})
	}
	if types, supported := characterTypes(password); !supported {
		issues = append(issues, PasswordIssue{Code: "password_rejected.unsupported_characters"})
	} else if types < minTypes {
		issues = append(issues, PasswordIssue{Code: "password_rejected.character_types", Interpolation: map[string]int{"min": minTypes}})
	}
	if boolOr(p.Rejects.Pwned, true) && pwned != nil {
		found, err := pwned.Pwned(ctx, password)
		if err != nil {
			return apierror.Internal(err)
		}
		if found {
			issues = append(issues, PasswordIssue{Code: "password_rejected.pwned"})
		}
	}
	issues = append(issues, restrictedPhrases(password, p, user)...)
	if len(issues) == 0 {
		return nil
	}
	return apierror.New(http.StatusUnprocessableEntity, "password.rejected").WithData(issues)
}

// restrictedPhrases marks every character covered by a repetition, a sequence, a rejected word
// or a piece of user info starting at any position, and reports the kinds found when the marked
// characters exceed the tolerance.
func restrictedPhrases(password string, p identitycore.PasswordPolicy, user UserInfo) []PasswordIssue {
	chars := []rune(password)
	marked := make([]bool, len(chars))
	var kinds []string
	mark := func(start, length int, kind string) {
		if length <= 0 {
			return
		}
		for i := start; i < start+length && i < len(marked); i++ {
			marked[i] = true
		}
		for _, k := range kinds {
			if k == kind {
				return
			}
		}
		kinds = append(kinds, kind)
	}
	seqs := boolOr(p.Rejects.RepetitionAndSequence, true)
	info := boolOr(p.Rejects.UserInfo, true)
	for i := range chars {
		rest := chars[i:]
		if seqs {
			mark(i, repetitionLength(rest), "restricted.repetition")
			mark(i, sequenceLength(rest), "restricted.sequence")
		}
		if len(p.Rejects.Words) > 0 {
			mark(i, wordLength(rest, p.Rejects.Words), "restricted.words")
		}
		if info {
			mark(i, userInfoLength(rest, user), "restricted.user_info")
		}
	}
	covered := 0
	for _, m := range marked {
		if m {
			covered++
		}
	}
	if covered <= max(1, len(utf16.Encode(chars))-restrictedPhrasesTolerance) {
		return nil
	}
	issues := make([]PasswordIssue, len(kinds))
	for i, k := range kinds {
		issues[i] = PasswordIssue{Code: "password_rejected." + k}
	}
	return issues
}

func characterTypes(password string) (int, bool) {
	var lower, upper, digit, symbol bool
	for _, r := range password {
		switch {
		case r >= 'a' && r <= 'z':
			lower = true
		case r >= 'A' && r <= 'Z':
			upper = true
		case r >= '0' && r <= '9':
			digit = true
		case strings.ContainsRune(passwordSymbols, r):
			symbol = true
		default:
			return 0, false
		}
	}
	n := 0
	for _, b := range []bool{lower, upper, digit, symbol} {
		if b {
			n++
		}
	}
	return n, true
}

func repetitionLength(s []rune) int {
	n := 0
	for n < len(s) && s[n] == s[0] {
		n++
	}
	if n < repetitionAndSequenceThreshold {
		return 0
	}
	return n
}

func sequenceLength(s []rune) int {
	n := 0
	for n < len(s) && (n == 0 || isSequential(string(s[:n+1]))) {
		n++
	}
	if n < repetitionAndSequenceThreshold {
		return 0
	}
	return n
}

func isSequential(v string) bool {
	for _, seq := range passwordSequences {
		rev := reverse(seq)
		for _, candidate := range []string{seq, rev, strings.ToUpper(seq), strings.ToUpper(rev)} {
			if strings.Contains(candidate, v) {
				return true
			}
		}
	}
	return false
}

func reverse(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}

// wordLength is the longest rejected word the password starts with (case-insensitive).
func wordLength(s []rune, words []string) int {
	lower := strings.ToLower(string(s))
	n := 0
	for _, w := range words {
		if w != "" && strings.HasPrefix(lower, strings.ToLower(w)) {
			n = max(n, len([]rune(w)))
		}
	}
	return n
}

// userInfoLength is the longest piece of user info the password starts with: the name (whole,
// without spaces, or any of its words), the username, the local part of the email, the phone.
func userInfoLength(s []rune, u UserInfo) int {
	lower := strings.ToLower(string(s))
	n := 0
	try := func(v string) {
		if v != "" && strings.HasPrefix(lower, strings.ToLower(v)) {
			n = max(n, len([]rune(v)))
		}
	}
	if u.Name != "" {
		if strings.HasPrefix(lower, strings.ToLower(u.Name)) {
			try(u.Name)
		} else {
			try(strings.Join(strings.Fields(u.Name), ""))
			for _, w := range strings.Split(u.Name, " ") {
				try(w)
			}
		}
	}
	try(u.Username)
	if local, _, ok := strings.Cut(u.Email, "@"); ok {
		try(local)
	}
	if u.Phone != "" && strings.HasPrefix(string(s), u.Phone) {
		n = max(n, len([]rune(u.Phone)))
	}
	return n
}

func intOr(p *int, d int) int {
	if p == nil {
		return d
	}
	return *p
}

func boolOr(p *bool, d bool) bool {
	if p == nil {
		return d
	}
	return *p
}

// commonPasswords is an offline list of passwords seen in breaches, one per line (the most
// common ones of public breach corpora, plus the list Logto's integration tests use).
//
//go:embed common-passwords.txt
var commonPasswords string

// OfflinePwned is the pwned check without a network: it knows the passwords of an embedded
// list of the most common breached passwords, by SHA-1. Logto asks Have I Been Pwned's range
// API instead; this gateway cannot reach it, so the check is weaker (it misses rarer breached
// passwords) but never leaks a hash prefix nor depends on a third party.
type OfflinePwned struct {
	hashes map[string]bool
}

// NewOfflinePwned returns the checker on the embedded list.
func NewOfflinePwned() *OfflinePwned {
	o := &OfflinePwned{hashes: map[string]bool{}}
	for _, line := range strings.Split(commonPasswords, "\n") {
		if line = strings.TrimRight(line, "\r"); line != "" && !strings.HasPrefix(line, "#") {
			o.hashes[sha1Hex(line)] = true
		}
	}
	return o
}

// Pwned implements PwnedChecker.
func (o *OfflinePwned) Pwned(_ context.Context, password string) (bool, error) {
	return o.hashes[sha1Hex(password)], nil
}

func sha1Hex(s string) string {
	sum := sha1.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}
