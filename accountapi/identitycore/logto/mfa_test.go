package logto

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
)

// An id that is not one of Logto's never reaches a Management API URL: the call is refused with
// ErrInvalidID, without a request.
func TestMfaIDsArePathSafe(t *testing.T) {
	requests := 0
	f := &fakeLogto{tokenTTL: 3600, userStatus: func(string) (int, string) {
		requests++
		return http.StatusNoContent, ""
	}}
	c := newClient(t, f, "s3cret")
	ctx := context.Background()
	for _, id := range []string{"", ".", "..", "a/b", "a%2Fb", "a?b", "a#b", "a b", "é", "a\x00", strings.Repeat("a", 129)} {
		if err := c.DeleteMfaVerification(ctx, "u1", id); !errors.Is(err, identitycore.ErrInvalidID) {
			t.Errorf("factor id %q: %v", id, err)
		}
		if _, err := c.MfaVerifications(ctx, id); !errors.Is(err, identitycore.ErrInvalidID) {
			t.Errorf("user id %q accepted", id)
		}
	}
	if requests != 0 {
		t.Fatalf("%d requests with refused ids", requests)
	}
	for _, id := range []string{"abc123xyz", "A-b_C", strings.Repeat("a", 128)} {
		if err := c.DeleteMfaVerification(ctx, "u1", id); err != nil {
			t.Errorf("id %q: %v", id, err)
		}
	}
	if requests != 3 {
		t.Fatalf("%d requests, want 3", requests)
	}
}
