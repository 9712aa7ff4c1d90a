// Package verification keeps the Account API's verification records: the proofs a user makes
// (password, a code sent to an address, a social sign-in) that later requests present as step-up
// (the logto-verification-id header) or as proof of a new identifier.
package verification

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"time"

	"github.com/accountedge/caddy-account-api/accountapi/store"
)

// Lifetime is how long a record lives, from its creation (Logto: 10 minutes, not configurable).
const Lifetime = 10 * time.Minute

// Type is the kind of proof a record holds.
type Type string

// Record types used by the Account API (Logto's names).
const (
	Password              Type = "Password"
	EmailVerificationCode Type = "EmailVerificationCode"
	PhoneVerificationCode Type = "PhoneVerificationCode"
	Social                Type = "Social"
)

// Template types of code records: a code to the user's current address proves the user
// (UserPermissionValidation); a code to another address proves only that address.
const (
	UserPermissionValidation = "UserPermissionValidation"
	BindNewIdentifier        = "BindNewIdentifier"
)

// Identifier is the address a code record was sent to.
type Identifier struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// Record is one verification record.
//
// UserID is the user who created the record, for every type: step-up needs it, and unlike
// Logto (which stores new-identifier records without a user) a record proving a new address or
// social account is redeemable only by its creator (see Redeem).
type Record struct {
	ID           string      `json:"id"`
	UserID       string      `json:"userId,omitempty"`
	Type         Type        `json:"type"`
	Verified     bool        `json:"verified"`
	Identifier   *Identifier `json:"identifier,omitempty"`
	TemplateType string      `json:"templateType,omitempty"`
	CreatedAt    time.Time   `json:"createdAt"`
	ExpiresAt    time.Time   `json:"expiresAt"`

	// Social records: the connector, and what the provider answered (connectorData, kept for
	// the exchange at link time since authorization codes are single-use); after the first
	// exchange, the social identity it gave, so the record can be used again without a second
	// exchange of the same code.
	ConnectorID   string          `json:"connectorId,omitempty"`
	ConnectorData json.RawMessage `json:"connectorData,omitempty"`
	Target        string          `json:"target,omitempty"`
	SocialUserID  string          `json:"socialUserId,omitempty"`
	SocialDetails json.RawMessage `json:"socialDetails,omitempty"`
}

// ErrNotFound means no live record has that id.
var ErrNotFound = errors.New("verification record not found")

// Store keeps records in a store.Store under keyed hashes of their ids: a record id is a
// bearer capability, so it never appears as a key.
type Store struct {
	kv    store.Store
	keyer *store.Keyer
	now   func() time.Time
}

// NewStore returns a record Store on kv.
func NewStore(kv store.Store, keyer *store.Keyer) *Store {
	return &Store{kv: kv, keyer: keyer, now: time.Now}
}

// Create stores a new record, giving it an id and its lifetime.
func (s *Store) Create(ctx context.Context, r Record) (Record, error) {
	r.ID = newID()
	r.CreatedAt = s.now().UTC().Truncate(time.Millisecond)
	r.ExpiresAt = r.CreatedAt.Add(Lifetime)
	return r, s.put(ctx, r)
}

// Update stores r again; its expiry does not move.
func (s *Store) Update(ctx context.Context, r Record) error { return s.put(ctx, r) }

func (s *Store) put(ctx context.Context, r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.kv.Set(ctx, s.keyer.Key("vr", r.ID), b, r.ExpiresAt.Sub(s.now()))
}

// Get returns the live record with id. Store failures are returned as they are: the caller
// must refuse, never guess.
func (s *Store) Get(ctx context.Context, id string) (Record, error) {
	if id == "" {
		return Record{}, ErrNotFound
	}
	b, err := s.kv.Get(ctx, s.keyer.Key("vr", id))
	if errors.Is(err, store.ErrNotFound) {
		return Record{}, ErrNotFound
	}
	if err != nil {
		return Record{}, err
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil || r.ID != id || !s.now().Before(r.ExpiresAt) {
		return Record{}, ErrNotFound
	}
	return r, nil
}

// Redeem returns the live, verified record id of type t created by userID: the "new
// identifier" proof of POST /primary-email, /primary-phone and /identities. Any mismatch is
// ErrNotFound (400 verification_record.not_found), so a record of another user looks like no
// record at all. Store failures are returned as they are.
func (s *Store) Redeem(ctx context.Context, id, userID string, t Type) (Record, error) {
	r, err := s.Get(ctx, id)
	if err != nil {
		return Record{}, err
	}
	if r.Type != t || !r.Verified || r.UserID != userID {
		return Record{}, ErrNotFound
	}
	return r, nil
}

// IdentityVerified reports whether the record named by a logto-verification-id header proves
// userID's identity now (Logto NOW rules, reference §1.6): a verified password record, or a
// verified code record sent to the user's own address, bound to the same user and unexpired.
// Any failure, including a store failure, is simply "not verified".
func (s *Store) IdentityVerified(ctx context.Context, id, userID string) bool {
	r, err := s.Get(ctx, id)
	if err != nil || r.UserID != userID || !r.Verified {
		return false
	}
	switch r.Type {
	case Password:
		return true
	case EmailVerificationCode, PhoneVerificationCode:
		return r.TemplateType == UserPermissionValidation
	}
	return false
}

// newID returns a 21-character id of lowercase letters and digits, like Logto's.
func newID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	var b [21]byte
	// 256 % 36 != 0: reject bytes ≥ 252 so every character is equally likely.
	for i := 0; i < len(b); {
		var r [32]byte
		_, _ = rand.Read(r[:])
		for _, x := range r {
			if x < 252 && i < len(b) {
				b[i] = alphabet[x%36]
				i++
			}
		}
	}
	return string(b[:])
}
