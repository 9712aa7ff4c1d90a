// Package auth authenticates the bearer token of an Account API request: opaque tokens by RFC
// 7662 introspection at the core, JWT access tokens against the core's JWKS. Answers are cached
// (accountapi/cache) in process and, when configured, in a shared store, under keyed hashes of
// the token; every check runs again on every hit.
package auth

import (
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"sync"
	"unique"
)

// Principal is what a valid token proves: whose it is, which client holds it, which scopes it
// carries and until when.
type Principal struct {
	Subject  string   `json:"sub,omitempty"`
	ClientID string   `json:"cid,omitempty"`
	Scopes   []string `json:"scp,omitempty"`
	// SessionID is the token's sid (its client's session at the core), when the core said.
	SessionID string `json:"sid,omitempty"`
	// ExpiresAt is the token's exp in Unix seconds; 0 when the core did not say.
	ExpiresAt int64 `json:"exp,omitempty"`
}

// HasScope reports whether the token carries scope.
func (p Principal) HasScope(scope string) bool { return slices.Contains(p.Scopes, scope) }

// answer is what the cache keeps: the core's verdict on one token, before the per-request
// checks. The cache holds up to token_cache_size of them, so it is small: the client and scopes
// are a shared grant (a deployment has a handful of client and scope pairs), the subject an
// interned string.
type answer struct {
	Subject   string
	SessionID *string // nil when the core gave no sid
	Grant     *grant  // nil for a refusal
	ExpiresAt int64
}

func newAnswer(active bool, subject, sessionID string, g *grant, exp int64) answer {
	a := answer{Subject: intern(subject), ExpiresAt: exp}
	if active {
		a.Grant = g
	}
	if sessionID != "" {
		a.SessionID = &sessionID
	}
	return a
}

// active reports whether the core said the token is live.
func (a answer) active() bool { return a.Grant != nil }

// grant is a client and the scopes it was given, shared by every answer with the same pair.
// It must not be modified.
type grant struct {
	ClientID string
	Scopes   []string
}

// principal is what the answer proves, for the request.
func (a answer) principal() Principal {
	p := Principal{Subject: a.Subject, ExpiresAt: a.ExpiresAt}
	if a.SessionID != nil {
		p.SessionID = *a.SessionID
	}
	if a.Grant != nil {
		p.ClientID, p.Scopes = a.Grant.ClientID, a.Grant.Scopes
	}
	return p
}

// intern returns the canonical copy of s: a user's id is held once however many of their
// tokens are cached.
func intern(s string) string { return unique.Make(s).Value() }

// grants holds the shared grants, bounded so that a core answering arbitrary scopes cannot
// grow it without limit (past the bound, answers get their own).
var grants struct {
	sync.RWMutex
	m map[[2]string]*grant
}

const maxGrants = 4096

// grantOf returns the shared grant of a client and an RFC 6749 scope string.
func grantOf(clientID, scope string) *grant {
	k := [2]string{clientID, scope}
	grants.RLock()
	g, ok := grants.m[k]
	grants.RUnlock()
	if ok {
		return g
	}
	g = &grant{ClientID: intern(clientID), Scopes: slices.Clip(strings.Fields(scope))}
	for i, s := range g.Scopes {
		g.Scopes[i] = intern(s)
	}
	grants.Lock()
	defer grants.Unlock()
	if shared, ok := grants.m[k]; ok {
		return shared
	}
	if grants.m == nil {
		grants.m = map[[2]string]*grant{}
	}
	if len(grants.m) < maxGrants {
		grants.m[[2]string{g.ClientID, intern(scope)}] = g
	}
	return g
}

// encodeAnswer and decodeAnswer are the shared store's form of an answer, read on every
// request when the in-process level is off, hence binary: a flag byte, exp, then the subject,
// client id, scope string and session id, each length-prefixed. The scope list comes back as a shared grant.
func encodeAnswer(a answer) ([]byte, error) {
	p := a.principal()
	scope := strings.Join(p.Scopes, " ")
	b := make([]byte, 0, 1+8+4*binary.MaxVarintLen32+len(p.Subject)+len(p.ClientID)+len(scope)+len(p.SessionID))
	var flag byte
	if a.active() {
		flag = 1
	}
	b = append(b, flag)
	b = binary.BigEndian.AppendUint64(b, uint64(a.ExpiresAt))
	for _, s := range []string{p.Subject, p.ClientID, scope, p.SessionID} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b, nil
}

var errBadAnswer = errors.New("auth: malformed cached answer")

func decodeAnswer(b []byte) (answer, error) {
	if len(b) < 9 || b[0] > 1 {
		return answer{}, errBadAnswer
	}
	active, exp := b[0] == 1, int64(binary.BigEndian.Uint64(b[1:9]))
	b = b[9:]
	var parts [4][]byte
	for i := range parts {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return answer{}, errBadAnswer
		}
		parts[i], b = b[k:k+int(n)], b[k+int(n):]
	}
	if len(b) != 0 {
		return answer{}, errBadAnswer
	}
	return newAnswer(active, string(parts[0]), string(parts[3]), grantOf(string(parts[1]), string(parts[2])), exp), nil
}
