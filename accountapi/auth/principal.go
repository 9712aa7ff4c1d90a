// Package auth authenticates the bearer token of an Account API request: opaque tokens by RFC
// 7662 introspection at the core, JWT access tokens against the core's JWKS. Answers are cached
// in process and, when configured, in a shared store, under keyed hashes of the token; every
// check runs again on every hit.
package auth

import (
	"slices"
	"strings"
	"time"
)

// Principal is what a valid token proves: whose it is, which client holds it, which scopes it
// carries and until when.
type Principal struct {
	Subject   string   `json:"sub,omitempty"`
	ClientID  string   `json:"cid,omitempty"`
	Scopes    []string `json:"scp,omitempty"`
	SessionID string   `json:"sid,omitempty"`
	// ExpiresAt is the token's exp in Unix seconds; 0 when the core did not say.
	ExpiresAt int64 `json:"exp,omitempty"`
}

// HasScope reports whether the token carries scope.
func (p Principal) HasScope(scope string) bool { return slices.Contains(p.Scopes, scope) }

// answer is what the cache keeps: the core's verdict on one token, before the per-request
// checks.
type answer struct {
	Active    bool      `json:"act"`
	TokenType string    `json:"typ,omitempty"`
	Principal Principal `json:"p"`
	// CachedAt (Unix milliseconds) lets a revocation recorded later void the answer.
	CachedAt int64 `json:"at,omitempty"`
}

// splitScope turns an RFC 6749 scope string into its values.
func splitScope(scope string) []string { return strings.Fields(scope) }

// ttl is how long the answer may be cached: never past the token's expiry, never longer than
// max, and only briefly for a negative answer.
func (a answer) ttl(now time.Time, max, negative time.Duration) time.Duration {
	if !a.Active {
		return negative
	}
	if a.Principal.ExpiresAt == 0 {
		return max
	}
	return min(time.Unix(a.Principal.ExpiresAt, 0).Sub(now), max)
}
