package webhook

import (
	"context"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/accountedge/caddy-account-api/accountapi/ratelimit"
	"github.com/accountedge/caddy-account-api/accountapi/store"
)

func TestDeliveries(t *testing.T) {
	type change struct {
		user        string
		credentials bool
	}
	var got []change
	keyer, _ := store.NewKeyer([]byte("0123456789abcdef-webhook"))
	seen := ratelimit.New(nil, keyer, nil)
	defer seen.Close()
	h, err := New(Config{SigningKeys: []string{"old-key", "new-key"}, Seen: seen,
		UserChanged: func(_ context.Context, id string, credentials bool) error {
			got = append(got, change{id, credentials})
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	deliver := func(key, body string, signature ...string) int {
		r := httptest.NewRequest("POST", "/hooks", strings.NewReader(body))
		switch {
		case len(signature) > 0:
			r.Header.Set(SignatureHeader, signature[0])
		case key != "":
			r.Header.Set(SignatureHeader, hex.EncodeToString(Sign([]byte(key), []byte(body))))
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	now := `"createdAt":"` + time.Now().UTC().Format("2006-01-02T15:04:05.000Z") + `",`
	updated := `{` + now + `"event":"User.Data.Updated","data":{"id":"u1","name":"x"}}`
	stale := `{"createdAt":"` + time.Now().Add(-6*time.Minute).UTC().Format(time.RFC3339) + `","event":"User.Deleted","params":{"userId":"u9"}}`
	for _, tc := range []struct {
		name, key, body string
		signature       []string
		status          int
	}{
		{"unsigned", "", updated, nil, http.StatusUnauthorized},
		{"unknown key", "other-key", updated, nil, http.StatusUnauthorized},
		{"not hex", "", updated, []string{"zz"}, http.StatusUnauthorized},
		{"signature of another body", "", updated, []string{hex.EncodeToString(Sign([]byte("new-key"), []byte("{}")))}, http.StatusUnauthorized},
		{"signed but not JSON", "new-key", "not json", nil, http.StatusBadRequest},
		{"not about a user", "new-key", `{` + now + `"event":"Role.Created","data":{"id":"r1"}}`, nil, http.StatusNoContent},
		{"data update, old key", "old-key", updated, nil, http.StatusNoContent},
		{"the same delivery again (ignored)", "old-key", updated, nil, http.StatusNoContent},
		{"older than max age (ignored)", "new-key", stale, nil, http.StatusNoContent},
		{"no createdAt (ignored)", "new-key", `{"event":"User.Deleted","params":{"userId":"u8"}}`, nil, http.StatusNoContent},
		{"deleted, by params", "new-key", `{` + now + `"event":"User.Deleted","params":{"userId":"u2"}}`, nil, http.StatusNoContent},
		{"suspended", "new-key", `{` + now + `"event":"User.SuspensionStatus.Updated","data":{"id":"u3","isSuspended":true}}`, nil, http.StatusNoContent},
	} {
		if status := deliver(tc.key, tc.body, tc.signature...); status != tc.status {
			t.Errorf("%s: %d, want %d", tc.name, status, tc.status)
		}
	}
	want := []change{{"u1", false}, {"u2", true}, {"u3", true}}
	if len(got) != len(want) {
		t.Fatalf("changes %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("changes %v, want %v", got, want)
		}
	}
}
