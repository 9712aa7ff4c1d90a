package policy

import (
	"errors"
	"testing"

	"github.com/accountedge/caddy-account-api/accountapi/apierror"
	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
)

func TestCheckUsername(t *testing.T) {
	noUpper := identitycore.UsernamePolicy{}
	noUpper.AllowedChars = &struct {
		Lowercase  bool `json:"lowercase"`
		Uppercase  bool `json:"uppercase"`
		Numbers    bool `json:"numbers"`
		Underscore bool `json:"underscore"`
	}{Lowercase: true, Numbers: true, Underscore: false}
	for _, tc := range []struct {
		name, username string
		policy         identitycore.UsernamePolicy
		want           string
	}{
		{"default accepts", "Ada_99", identitycore.UsernamePolicy{}, ""},
		{"empty", "", identitycore.UsernamePolicy{}, "user.username_required"},
		{"starts with digit", "9ada", identitycore.UsernamePolicy{}, "user.username_starts_with_number"},
		{"charset", "ada-b", identitycore.UsernamePolicy{}, "user.username_invalid_charset_hard"},
		{"too short", "ab", identitycore.UsernamePolicy{MinLength: 3}, "user.username_too_short"},
		{"too long", "abcd", identitycore.UsernamePolicy{MaxLength: 3}, "user.username_too_long"},
		{"uppercase", "Ada", noUpper, "user.username_uppercase_not_allowed"},
		{"underscore", "a_b", noUpper, "user.username_underscore_not_allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckUsername(tc.username, tc.policy)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected %v", err)
				}
				return
			}
			e, ok := errors.AsType[*apierror.Error](err)
			if !ok || e.Status != 422 || e.Code != tc.want {
				t.Fatalf("got %v, want 422 %s", err, tc.want)
			}
		})
	}
}
