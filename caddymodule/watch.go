package caddymodule

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/accountedge/caddy-account-api/accountapi/ratelimit"
	"github.com/accountedge/caddy-account-api/accountapi/store"
)

// successWatcher calls fire once, as soon as the next handler's final status is a success and
// before the body reaches the client: a cache then drops what the core has just changed (an
// admin's account-center or user change passing through the site), and the admin's next read
// sees the change.
type successWatcher struct {
	*caddyhttp.ResponseWriterWrapper
	fire    func(status int)
	success func(status int) bool
	decided bool // the final status is known (and acted upon)
}

func watchSuccess(w http.ResponseWriter, fire func()) *successWatcher {
	return watchStatus(w, func(status int) bool { return status < 300 }, func(int) { fire() })
}

// watchStatus is watchSuccess for a response whose success may be a redirect (success tells,
// and fire is told the status).
func watchStatus(w http.ResponseWriter, success func(status int) bool, fire func(status int)) *successWatcher {
	return &successWatcher{ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: w}, fire: fire, success: success}
}

func (s *successWatcher) WriteHeader(status int) {
	if !s.decided && status >= 200 && s.success(status) {
		s.fire(status)
	}
	if status >= 200 {
		s.decided = true // 1xx responses come before the final one
	}
	s.ResponseWriterWrapper.WriteHeader(status)
}

// Write covers a next handler that writes without WriteHeader (an implicit 200).
func (s *successWatcher) Write(b []byte) (int, error) {
	if !s.decided {
		s.fire(http.StatusOK)
		s.decided = true
	}
	return s.ResponseWriterWrapper.Write(b)
}

// maxWatchedForm bounds the form read from a request the module watches on its way to the core
// (a token revocation is a few hundred bytes); a larger body passes through unread.
const maxWatchedForm = 16 << 10

// formValue reads one value of a form-encoded request body without consuming it: the body is
// put back whole for the next handler. "" when the body is not a small form.
func formValue(r *http.Request, name string) string {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" || r.Body == nil {
		return ""
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxWatchedForm+1))
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(b), r.Body), r.Body}
	if err != nil || len(b) > maxWatchedForm {
		return ""
	}
	form, err := url.ParseQuery(string(b))
	if err != nil {
		return ""
	}
	return form.Get(name)
}

// idTokenSubject is the sub of the id_token_hint of an end-session request, or "": from the
// query of a GET and the form of a POST, where oidc-provider reads it (a POST's query is not
// its parameters: a hint there is not the one the core checks). The hint is not verified here:
// the module acts on it only once the core, which verifies it, has accepted the sign-out.
func idTokenSubject(r *http.Request) string {
	hint := r.URL.Query().Get("id_token_hint")
	if r.Method == http.MethodPost {
		hint = formValue(r, "id_token_hint")
	}
	_, rest, ok := strings.Cut(hint, ".")
	payload, _, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return ""
	}
	var claims struct {
		Sub string `json:"sub"`
	}
	if json.Unmarshal(b, &claims) != nil {
		return ""
	}
	return claims.Sub
}

// sessionCookie is oidc-provider's browser session cookie (Logto keeps its name).
const sessionCookie = "_session"

// signOutWait bounds how long a sign-out the core asked the browser to confirm is remembered:
// Logto's confirmation form submits itself at once; someone pressing its no-script button
// takes longer.
const signOutWait = 10 * time.Minute

// signOutsPerUser bounds the sign-outs remembered for signOutWait per user and client address:
// each needs one of the user's ID tokens and a session cookie of the caller's choice, so without
// a bound one caller could fill the store, and counted per address, so that whoever holds a
// user's ID token cannot spend the user's own sign-outs. Past the bound a sign-out is still
// remembered, for signOutPastBound: Logto's form submits itself at once.
var signOutsPerUser = ratelimit.Limit{Max: 20, Window: signOutWait}

const signOutPastBound = 30 * time.Second

// signOutShown remembers whose sign-out the core showed this browser a confirmation for, under
// a keyed hash of the browser's session cookie: the confirmation, which ends the session and
// the tokens issued through it, names no user. A cookie shown again is not counted again.
func (rt *runtime) signOutShown(ctx context.Context, r *http.Request, sub string) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return
	}
	key, ttl := rt.st.keyer.Key("signout", c.Value), signOutWait
	if _, err := rt.st.signOuts.Get(ctx, key); errors.Is(err, store.ErrNotFound) &&
		!rt.st.limiter.Take(ctx, "signout-shown", sub+" "+clientIP(r), signOutsPerUser).Allowed {
		ttl = signOutPastBound
	}
	if err := rt.st.signOuts.Set(ctx, key, []byte(sub), ttl); err != nil {
		rt.invalidationFailed(err)
	}
}

// clientIP is the client's address as Caddy determined it (trusted proxies applied).
func clientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	return host
}

// signOutConfirming is the user whose sign-out this browser is confirming (POST
// /oidc/session/end/confirm), or "" when no instance showed it one.
func (rt *runtime) signOutConfirming(ctx context.Context, r *http.Request) (sub, key string) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return "", ""
	}
	key = rt.st.keyer.Key("signout", c.Value)
	v, err := rt.st.signOuts.Get(ctx, key)
	if err != nil {
		return "", ""
	}
	return string(v), key
}
