package identitycore

import (
	"net/http"
	"net/url"
	"strings"
)

// IDRule is the shape of one kind of id that a route takes from a caller and places in a core
// URL: a length bound and a character set, both no wider than what Logto makes or accepts.
// Every such value goes through its rule before it reaches the core, and PathSegment escapes
// it there; "." and ".." are never ids.
type IDRule struct {
	max   int
	chars string // allowed beyond ASCII letters and digits
}

// The ids of Logto that routes take from callers.
var (
	// ConnectorID is a connector's id: Logto generates 12 lowercase letters and digits, and
	// accepts a proposed id of up to 128 characters; URL-safe ones are allowed.
	ConnectorID = IDRule{max: 128, chars: "-_."}
	// IdentityTarget is a social identity's target (a connector's metadata.target, such as
	// "google"), up to 128 URL-safe characters.
	IdentityTarget = IDRule{max: 128, chars: "-_."}
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

// ErrInvalidID is the core client's answer to an id it will not place in a URL (empty, "." or
// "..", or over 256 bytes): what the core would answer for an id it does not know. Routes check
// their ids with an IDRule first; this is the last line.
var ErrInvalidID = &Error{Status: http.StatusNotFound, Message: "an id that cannot be placed in a core URL"}

// PathSegment returns s escaped as one URL path segment, or ErrInvalidID.
func PathSegment(s string) (string, error) {
	if s == "" || s == "." || s == ".." || len(s) > 256 {
		return "", ErrInvalidID
	}
	return url.PathEscape(s), nil
}
