// Package webhook receives Logto's webhooks about users, so that a change made at the core
// without passing through the module (the Console, another Management API client, a sign-in)
// drops what the module cached about that user at once instead of after the cache's maximum age.
//
// Logto signs each delivery: the hex HMAC-SHA256 of the raw body under the webhook's signing
// key, in the logto-signature-sha-256 header. Unsigned or wrongly signed deliveries are refused.
// A captured delivery replayed later costs nothing: deliveries older than MaxAge (by Logto's
// createdAt) and deliveries seen before (on any instance sharing the Redis) are ignored with a
// 2xx, so that Logto does not retry them.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/accountedge/caddy-account-api/accountapi/httpbody"
	"github.com/accountedge/caddy-account-api/accountapi/ratelimit"
)

// SignatureHeader carries Logto's signature of the body.
const SignatureHeader = "logto-signature-sha-256"

// maxBody bounds a delivery: a user record is a few KiB.
const maxBody = 1 << 20

// Outcome of a delivery, for metrics.
const (
	Accepted     = "accepted"
	Ignored      = "ignored"
	BadSignature = "bad_signature"
	BadRequest   = "bad_request"
	Stale        = "stale"
	Replayed     = "replayed"
	// Unrecorded: the change could not be recorded (Redis down); Logto will deliver again.
	Unrecorded = "unrecorded"
)

// DefaultMaxAge is how old a delivery may be by default: Logto delivers at once, and retries
// within seconds.
const DefaultMaxAge = 5 * time.Minute

// clockSkew is how far in the future a createdAt may be (the core's clock ahead of ours).
const clockSkew = time.Minute

// Config configures a Handler.
type Config struct {
	// SigningKeys are the signing keys of the Logto webhooks that deliver here; a delivery signed
	// with any of them is accepted (several webhooks, or a key rotation).
	SigningKeys []string
	// UserChanged is told about each user an accepted delivery concerns. credentials is true when
	// the user was deleted, suspended (or reinstated) or reset their password. An error means the
	// change could not be recorded for every instance: the delivery is answered 503, so that
	// Logto delivers it again.
	UserChanged func(ctx context.Context, userID string, credentials bool) error
	// Observe, when set, is told the outcome of each delivery.
	Observe func(outcome string)
	// BodyTimeout bounds how long a delivery's body may take to arrive (0: no bound).
	BodyTimeout time.Duration
	// MaxAge is how old (by its createdAt) a delivery may be. Default: DefaultMaxAge.
	MaxAge time.Duration
	// Seen remembers the deliveries handled (a hash of each, for MaxAge), shared by every
	// instance when its counters are in Redis. Required.
	Seen *ratelimit.Limiter
}

// Handler serves the webhook endpoint.
type Handler struct {
	cfg  Config
	keys [][]byte
}

// New returns a Handler; it needs at least one signing key.
func New(cfg Config) (*Handler, error) {
	h := &Handler{cfg: cfg}
	for _, k := range cfg.SigningKeys {
		if k != "" {
			h.keys = append(h.keys, []byte(k))
		}
	}
	if len(h.keys) == 0 {
		return nil, errors.New("webhook: a signing key is required")
	}
	if h.cfg.Seen == nil {
		return nil, errors.New("webhook: a store of seen deliveries is required")
	}
	if h.cfg.MaxAge <= 0 {
		h.cfg.MaxAge = DefaultMaxAge
	}
	if h.cfg.Observe == nil {
		h.cfg.Observe = func(string) {}
	}
	return h, nil
}

// delivery is what the module reads of a Logto webhook body. Data hooks (User.*) carry the user
// in data and the id in params.userId; interaction hooks (PostSignIn, PostResetPassword, ...)
// carry userId and user at the top level.
type delivery struct {
	Event     string    `json:"event"`
	CreatedAt time.Time `json:"createdAt"`
	UserID    string    `json:"userId"`
	User      *struct {
		ID string `json:"id"`
	} `json:"user"`
	Params *struct {
		UserID string `json:"userId"`
	} `json:"params"`
	Data json.RawMessage `json:"data"`
}

// credentialEvents end or change a user's ability to sign in.
var credentialEvents = map[string]bool{
	"User.Deleted":                  true,
	"User.SuspensionStatus.Updated": true,
	"PostResetPassword":             true,
}

// ServeHTTP verifies and handles one delivery: 204 when accepted or not about a user, 401 for a
// bad signature, 400 for a body that is not a Logto delivery.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	httpbody.Start(w, r, h.cfg.BodyTimeout)
	body, err := httpbody.Read(w, r, maxBody)
	if errors.Is(err, httpbody.ErrTimeout) {
		h.refuse(w, BadRequest, http.StatusRequestTimeout)
		return
	}
	if err != nil {
		h.refuse(w, BadRequest, http.StatusBadRequest)
		return
	}
	if !h.verify(body, r.Header.Get(SignatureHeader)) {
		h.refuse(w, BadSignature, http.StatusUnauthorized)
		return
	}
	var d delivery
	if err := json.Unmarshal(body, &d); err != nil || d.Event == "" {
		h.refuse(w, BadRequest, http.StatusBadRequest)
		return
	}
	// A delivery without a createdAt is no fresh one either.
	if age := time.Since(d.CreatedAt); age > h.cfg.MaxAge || age < -clockSkew {
		h.ignore(w, Stale)
		return
	}
	// Reserved, not taken: a delivery whose change could not be recorded is given back, so that
	// Logto's redelivery is handled rather than ignored as a replay.
	seen := ratelimit.Limit{Max: 1, Window: h.cfg.MaxAge + clockSkew}
	unsee, first := h.cfg.Seen.Reserve(r.Context(), "webhook-delivery", string(body), seen)
	if !first.Allowed {
		h.ignore(w, Replayed)
		return
	}
	id := d.userID()
	if id == "" || !(strings.HasPrefix(d.Event, "User.") || strings.HasPrefix(d.Event, "Post")) {
		h.ignore(w, Ignored)
		return
	}
	if err := h.cfg.UserChanged(r.Context(), id, credentialEvents[d.Event]); err != nil {
		unsee()
		h.refuse(w, Unrecorded, http.StatusServiceUnavailable)
		return
	}
	h.cfg.Observe(Accepted)
	w.WriteHeader(http.StatusNoContent)
}

// ignore answers a delivery the module does nothing with: 204, so Logto does not retry it.
func (h *Handler) ignore(w http.ResponseWriter, outcome string) {
	h.cfg.Observe(outcome)
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) refuse(w http.ResponseWriter, outcome string, status int) {
	h.cfg.Observe(outcome)
	http.Error(w, http.StatusText(status), status)
}

// verify compares the header with the body's HMAC under each key, in constant time.
func (h *Handler) verify(body []byte, header string) bool {
	got, err := hex.DecodeString(strings.TrimSpace(header))
	if err != nil || len(got) != sha256.Size {
		return false
	}
	for _, k := range h.keys {
		if hmac.Equal(got, Sign(k, body)) {
			return true
		}
	}
	return false
}

// Sign returns the HMAC-SHA256 of body under key, as Logto computes it (the header carries its
// hex form).
func Sign(key, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return m.Sum(nil)
}

// userID finds the user a delivery is about.
func (d *delivery) userID() string {
	if d.Params != nil && d.Params.UserID != "" {
		return d.Params.UserID
	}
	if strings.HasPrefix(d.Event, "User.") && len(d.Data) > 0 {
		var u struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(d.Data, &u) == nil && u.ID != "" {
			return u.ID
		}
	}
	if d.UserID != "" {
		return d.UserID
	}
	if d.User != nil {
		return d.User.ID
	}
	return ""
}
