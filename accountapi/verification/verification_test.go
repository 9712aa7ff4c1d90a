package verification

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/accountedge/caddy-account-api/accountapi/store"
)

func newStore(t *testing.T) (*Store, *store.Memory) {
	keyer, err := store.NewKeyer([]byte("0123456789abcdef-test-key"))
	if err != nil {
		t.Fatal(err)
	}
	kv := store.NewMemory(100)
	return NewStore(kv, keyer), kv
}

func TestStepUpRules(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	mk := func(r Record) string {
		r, err := s.Create(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		return r.ID
	}
	password := mk(Record{UserID: "u1", Type: Password, Verified: true})
	ownCode := mk(Record{UserID: "u1", Type: EmailVerificationCode, Verified: true, TemplateType: UserPermissionValidation})
	newAddress := mk(Record{UserID: "u1", Type: EmailVerificationCode, Verified: true, TemplateType: BindNewIdentifier})
	unverified := mk(Record{UserID: "u1", Type: PhoneVerificationCode, TemplateType: UserPermissionValidation})
	social := mk(Record{UserID: "u1", Type: Social, Verified: true})

	for _, tc := range []struct {
		name, id, user string
		want           bool
	}{
		{"password", password, "u1", true},
		{"code to own address", ownCode, "u1", true},
		{"another user's record", password, "u2", false},
		{"code to a new address", newAddress, "u1", false},
		{"unverified code", unverified, "u1", false},
		{"social", social, "u1", false},
		{"unknown id", "bogus", "u1", false},
		{"empty id", "", "u1", false},
	} {
		if got := s.IdentityVerified(ctx, tc.id, tc.user); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestRecordsExpireAndIDsAreNotKeys(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	r, err := s.Create(ctx, Record{UserID: "u1", Type: Password, Verified: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.ID) != 21 || strings.Trim(r.ID, "abcdefghijklmnopqrstuvwxyz0123456789") != "" {
		t.Fatalf("id %q is not 21 lowercase alphanumerics", r.ID)
	}
	if d := r.ExpiresAt.Sub(r.CreatedAt); d != Lifetime {
		t.Fatalf("lifetime %v", d)
	}
	s.now = func() time.Time { return time.Now().Add(Lifetime + time.Second) }
	if _, err := s.Get(ctx, r.ID); err != ErrNotFound {
		t.Fatalf("expired record returned: %v", err)
	}
}

func TestRedeemOnlyByTheCreator(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	verified, _ := s.Create(ctx, Record{UserID: "u1", Type: EmailVerificationCode, Verified: true, TemplateType: BindNewIdentifier,
		Identifier: &Identifier{Type: "email", Value: "new@example.com"}})
	pending, _ := s.Create(ctx, Record{UserID: "u1", Type: EmailVerificationCode, TemplateType: BindNewIdentifier})
	if r, err := s.Redeem(ctx, verified.ID, "u1", EmailVerificationCode); err != nil || r.Identifier.Value != "new@example.com" {
		t.Fatalf("creator: %+v %v", r, err)
	}
	for name, try := range map[string]func() error{
		"other user": func() error { _, err := s.Redeem(ctx, verified.ID, "u2", EmailVerificationCode); return err },
		"wrong type": func() error { _, err := s.Redeem(ctx, verified.ID, "u1", PhoneVerificationCode); return err },
		"unverified": func() error { _, err := s.Redeem(ctx, pending.ID, "u1", EmailVerificationCode); return err },
		"unknown":    func() error { _, err := s.Redeem(ctx, "nope", "u1", EmailVerificationCode); return err },
	} {
		if err := try(); err != ErrNotFound {
			t.Errorf("%s: %v", name, err)
		}
	}
}
