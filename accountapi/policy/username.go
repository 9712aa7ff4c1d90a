// Package policy enforces the sign-in experience's rules on new account values that Logto's
// Management API does not check itself (it trusts its admin caller): the username policy here,
// password and email rules beside it.
package policy

import (
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/accountedge/caddy-account-api/accountapi/apierror"
	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
)

// CheckUsername applies Logto's usernamePolicy (reference §6) and returns the first violation as
// a 422 user.username_<violation>, or nil.
func CheckUsername(username string, p identitycore.UsernamePolicy) error {
	minLen, maxLen := p.MinLength, p.MaxLength
	if minLen <= 0 {
		minLen = 1
	}
	if maxLen <= 0 {
		maxLen = 128
	}
	lower, upper, numbers, underscore := true, true, true, true
	if a := p.AllowedChars; a != nil {
		lower, upper, numbers, underscore = a.Lowercase, a.Uppercase, a.Numbers, a.Underscore
	}
	violation := func() string {
		switch {
		case username == "":
			return "required"
		case username[0] >= '0' && username[0] <= '9':
			return "starts_with_number"
		case strings.IndexFunc(username, func(r rune) bool {
			return r > unicode.MaxASCII || !(r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r))
		}) >= 0:
			return "invalid_charset_hard"
		case utf8.RuneCountInString(username) < minLen:
			return "too_short"
		case utf8.RuneCountInString(username) > maxLen:
			return "too_long"
		case !upper && strings.ContainsFunc(username, unicode.IsUpper):
			return "uppercase_not_allowed"
		case !lower && strings.ContainsFunc(username, unicode.IsLower):
			return "lowercase_not_allowed"
		case !numbers && strings.ContainsFunc(username, unicode.IsDigit):
			return "numbers_not_allowed"
		case !underscore && strings.Contains(username, "_"):
			return "underscore_not_allowed"
		}
		return ""
	}()
	if violation == "" {
		return nil
	}
	return apierror.New(http.StatusUnprocessableEntity, "user.username_"+violation)
}
