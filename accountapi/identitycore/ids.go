package identitycore

import "strings"

// IDRule is the shape of one kind of id that a route takes from a caller and places in a core
// URL: a length bound and a character set, both no wider than what Logto makes or accepts
// (ASCII letters and digits, "-" and "_": Logto's standard ids and oidc-provider's nanoids).
// Routes check what they are given with the rule of its kind and answer as Logto does for an
// unknown one; the core client checks every id against CoreID again before it builds a URL (and
// answers ErrInvalidID), so "." and "..", a slash or a percent sign never reach the core.
type IDRule struct {
	max   int
	chars string // allowed beyond ASCII letters and digits
}

// The ids of Logto that routes take from callers.
var (
	// CoreID is any id the core client places in a URL (Logto keeps ids in varchar(128)).
	CoreID = IDRule{max: 128, chars: "-_"}
	// ConnectorID is a connector's id: Logto generates 12 lowercase letters and digits, and
	// accepts a proposed id of up to 128 characters.
	ConnectorID = IDRule{max: 128, chars: "-_"}
	// IdentityTarget is a social identity's target (a connector's metadata.target, such as
	// "google").
	IdentityTarget = IDRule{max: 128, chars: "-_"}
	// SessionID and GrantID are oidc-provider's ids (nanoid: letters, digits, "-" and "_").
	SessionID = IDRule{max: 64, chars: "-_"}
	GrantID   = IDRule{max: 64, chars: "-_"}
	// VerificationID is a verification record's id (Logto: 21 lowercase letters and digits).
	VerificationID = IDRule{max: 64, chars: "-_"}
	// UserID is a user's id (Logto: 12 lowercase letters and digits).
	UserID = IDRule{max: 128, chars: "-_"}
)

// Valid reports whether s is an id of this kind.
func (r IDRule) Valid(s string) bool {
	if s == "" || len(s) > r.max || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(r.chars, c) >= 0) {
			return false
		}
	}
	return true
}
