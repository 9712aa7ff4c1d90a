// Package api serves the Account API routes (/api/my-account*, /api/verifications*) with
// Logto's check order: authentication, then the account-center switch, then the body, then each
// route's own checks (reference §0.1).
package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
	"go.uber.org/zap"

	"github.com/accountedge/caddy-account-api/accountapi/accountcenter"
	"github.com/accountedge/caddy-account-api/accountapi/apierror"
	"github.com/accountedge/caddy-account-api/accountapi/auth"
	"github.com/accountedge/caddy-account-api/accountapi/cache"
	"github.com/accountedge/caddy-account-api/accountapi/httpbody"
	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
	"github.com/accountedge/caddy-account-api/accountapi/verification"
)

// Config wires the handler to its collaborators.
type Config struct {
	Core          identitycore.Core
	Auth          Authenticator
	AccountCenter accountcenter.Source
	Verifications Records
	// AllowedOrigins limits CORS to these origins; empty reflects any origin, as Logto does.
	AllowedOrigins []string
	// MaxBodyBytes bounds request bodies.
	MaxBodyBytes int64
	// BodyTimeout bounds how long a request body may take to arrive (0: no bound).
	BodyTimeout time.Duration
	// PolicyTTL is how long the sign-in experience and application lookups are cached.
	PolicyTTL time.Duration
	// SignInExperience, when set, is the cached sign-in experience, shared with whoever
	// refreshes it (a change passing through the site, other instances); nil caches it here for
	// PolicyTTL.
	SignInExperience *cache.Value[*identitycore.SignInExperience]
	// UserChanged, when set, is told after the module changed a user at the core, so that what
	// is cached about that user (here and on other instances) can be dropped. credentials is
	// true for changes to how the user signs in or proves identity (username, password, primary
	// email or phone, social identities), after which cached token answers must go too.
	UserChanged func(ctx context.Context, userID string, credentials bool)
	// Observe, when set, is told the outcome of every routed request: the route's pattern (a
	// bounded label), the error code and status of a refusal ("" and 0 on success) and how long
	// it took.
	Observe func(route, code string, status int, elapsed time.Duration)
	// Authenticated, when set, is told who is calling as soon as the bearer token is accepted,
	// before the route's own checks: the host server records it for its logs and later
	// handlers (the Caddy module sets {http.auth.user.id} from it).
	Authenticated func(r *http.Request, p auth.Principal)
	// Protections are the rate limits, the breached-password list and the audit context.
	Protections Protections
	Logger      *zap.Logger
}

// Authenticator checks the bearer token of a request (auth.Authenticator).
type Authenticator interface {
	// Authenticate answers from the token caches when it can.
	Authenticate(ctx context.Context, header string) (auth.Principal, error)
	// Revalidate asks the core about the token, past every cache.
	Revalidate(ctx context.Context, header string) (auth.Principal, error)
}

// Records keeps the verification records (verification.Store).
type Records interface {
	Create(ctx context.Context, r verification.Record) (verification.Record, error)
	Get(ctx context.Context, id string) (verification.Record, error)
	Update(ctx context.Context, r verification.Record) error
	// Redeem returns a live, verified record of type t created by userID.
	Redeem(ctx context.Context, id, userID string, t verification.Type) (verification.Record, error)
	// IdentityVerified reports whether id is a live step-up record of userID.
	IdentityVerified(ctx context.Context, id, userID string) bool
}

// Handler serves the Account API.
type Handler struct {
	cfg     Config
	mux     *http.ServeMux
	signIn  *cache.Value[*identitycore.SignInExperience]
	ownsSIE bool // signIn was made here, and is closed with the handler
	assets  *cache.Value[*identitycore.UserAssetsStatus]
	apps    *otter.Cache[string, appAnswer]
	origins map[string]bool

	// uploadSlots holds one token per avatar upload in progress (see maxConcurrentUploads).
	uploadSlots chan struct{}
}

// New returns a Handler.
func New(cfg Config) *Handler {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	cfg.Protections = cfg.Protections.withDefaults()
	if cfg.Observe == nil {
		cfg.Observe = func(string, string, int, time.Duration) {}
	}
	if cfg.Authenticated == nil {
		cfg.Authenticated = func(*http.Request, auth.Principal) {}
	}
	if cfg.UserChanged == nil {
		cfg.UserChanged = func(context.Context, string, bool) {}
	}
	if cfg.PolicyTTL <= 0 {
		cfg.PolicyTTL = time.Minute
	}
	h := &Handler{
		cfg:    cfg,
		mux:    http.NewServeMux(),
		signIn: cfg.SignInExperience,
		assets: cache.NewValue("user_assets", cfg.Core.UserAssetsStatus, cfg.PolicyTTL, 0, nil),
		apps: otter.Must(&otter.Options[string, appAnswer]{
			MaximumSize:      10_000,
			ExpiryCalculator: otter.ExpiryWriting[string, appAnswer](cfg.PolicyTTL),
		}),
	}
	h.uploadSlots = make(chan struct{}, maxConcurrentUploads)
	if h.signIn == nil {
		h.signIn = cache.NewValue("sign_in_experience", cfg.Core.SignInExperience, cfg.PolicyTTL, 0, nil)
		h.ownsSIE = true
	}
	if len(cfg.AllowedOrigins) > 0 {
		h.origins = make(map[string]bool, len(cfg.AllowedOrigins))
		for _, o := range cfg.AllowedOrigins {
			h.origins[o] = true
		}
	}
	h.routes()
	return h
}

// Close stops the background work of the handler (not of the collaborators it was given, which
// may outlive it).
func (h *Handler) Close() {
	h.apps.StopAllGoroutines()
	h.assets.Close()
	if h.ownsSIE {
		h.signIn.Close()
	}
}

// Prefixes are the paths the Account API owns; every other request belongs to the next handler.
var Prefixes = []string{"/api/my-account", "/api/verifications"}

// Owns reports whether a request path is an Account API path: a prefix itself or below it
// ("/api/my-accounts" is not). It decides on the path as a lenient router would read it, with
// dot segments resolved, slashes collapsed and case folded, so that "/api//my-account" or
// "/API/My-Account" can never slip past the module to a core that routes them to its own
// Account API.
func Owns(p string) bool {
	p = strings.ToLower(canonical(p))
	for _, prefix := range Prefixes {
		if rest, ok := strings.CutPrefix(p, prefix); ok && (rest == "" || rest[0] == '/') {
			return true
		}
	}
	return false
}

// canonical resolves dot segments and repeated slashes.
func canonical(p string) string {
	if p == "" {
		return "/"
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

func (h *Handler) routes() {
	for _, rt := range h.routeTable() {
		if err := validRoute(rt); err != nil {
			panic("account api route table: " + err.Error())
		}
		h.handle(rt)
	}
	// Everything else that Owns gives us (unknown routes, odd spellings) is a JSON 404.
	h.mux.HandleFunc("/", h.notFound)
}

// call is one authenticated request: who is calling, under which settings, and what the route's
// guard and checks found out on the way.
type call struct {
	w         http.ResponseWriter
	r         *http.Request
	principal auth.Principal
	settings  accountcenter.Settings
	// body is the JSON body's members, input what the route's guard decoded (see input).
	body  map[string]json.RawMessage
	input any
	// user is the caller, once a loadUser check read it.
	user *identitycore.User
}

func (h *Handler) handle(rt route) {
	h.mux.HandleFunc(rt.pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		status, code := 0, ""
		if err := h.serveRoute(w, r, rt); err != nil {
			e := apierror.As(err)
			status, code = e.Status, e.Code
			h.writeError(w, r, e)
		}
		h.cfg.Observe(rt.pattern, code, status, time.Since(start))
	})
}

// serveRoute runs a row of the route table: authentication, the account-center switch, then
// the route's guard, checks and work.
func (h *Handler) serveRoute(w http.ResponseWriter, r *http.Request, rt route) (err error) {
	ctx := r.Context()
	// Only reads may rest on a cached answer about the token: every other method asks the core
	// again, so a token revoked since it was cached cannot change anything, and reads the user
	// fresh from the core, so no decision about a write rests on a cached record. The rule is by
	// method: no route can be forgotten.
	authenticate := h.cfg.Auth.Authenticate
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		authenticate = h.cfg.Auth.Revalidate
		ctx = identitycore.WithFreshReads(ctx)
		r = r.WithContext(ctx)
	}
	var retry atomic.Int64 // set by the token gate, which may run in a coalesced load
	p, err := authenticate(h.tokenGate(ctx, r, &retry), r.Header.Get("Authorization"))
	if err != nil {
		if apierror.As(err).Code == apierror.RateLimited.Code {
			setRetryAfter(w, time.Duration(retry.Load()))
		}
		return err
	}
	h.cfg.Authenticated(r, p)
	settings, err := h.cfg.AccountCenter.Settings(ctx)
	if err != nil {
		return coreError(err)
	}
	if !settings.Enabled {
		return apierror.AccountCenterDisabled
	}
	c := &call{w: w, r: r, principal: p, settings: settings}
	if rt.audit != "" {
		defer h.audit(c, rt.audit, rt.auditFields, &err)
	}
	if rt.guard != nil {
		if err := rt.guard(h, c); err != nil {
			return err
		}
	}
	for _, ch := range rt.checks {
		if err := h.runCheck(ch, c); err != nil {
			return err
		}
	}
	return rt.serve(c)
}

// ServeHTTP serves an Account API request (one for which Owns is true).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r = h.bodyFirst(w, r)
	if h.cors(w, r) {
		return
	}
	// A body that did not arrive in time leaves nothing to authenticate it for: the server
	// gives up on the connection (and the request's context) at once.
	if err, _ := r.Context().Value(bodyKey{}).(error); errors.Is(err, httpbody.ErrTimeout) {
		h.writeError(w, r, apierror.BodyTimeout)
		return
	}
	switch {
	// Only the exact spelling is routed: ServeMux would answer a non-canonical path with a
	// redirect, and a redirect to another spelling helps no legitimate client.
	case canonical(r.URL.Path) != r.URL.Path, strings.Contains(r.URL.RawPath, "%2"):
		h.writeError(w, r, apierror.RouteNotFound)
	// RFC 6750 §2.3 allows tokens in the query, but they end up in access logs and browser
	// history (RFC 9700 §4.3.2): refuse them rather than ignore them silently.
	case r.URL.RawQuery != "" && r.URL.Query().Has("access_token"): // no query map to build otherwise
		h.writeError(w, r, apierror.TokenInQuery)
	default:
		h.mux.ServeHTTP(w, r)
	}
}

func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	h.writeError(w, r, apierror.RouteNotFound)
}

// cors sets Logto's CORS headers on an Account API response (reference §0.3) and answers
// preflight requests; it reports whether the request was fully answered.
func (h *Handler) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	hdr := w.Header()
	hdr.Add("Vary", "Origin")
	allowed := origin == "" || h.origins == nil || h.origins[origin]
	if allowed {
		if origin == "" {
			origin = "*"
		}
		hdr.Set("Access-Control-Allow-Origin", origin)
		hdr.Set("Access-Control-Expose-Headers", "*")
	}
	if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
		return false
	}
	if allowed {
		hdr.Set("Access-Control-Allow-Methods", "GET,HEAD,PUT,POST,DELETE,PATCH")
		if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
			hdr.Set("Access-Control-Allow-Headers", req)
			hdr.Add("Vary", "Access-Control-Request-Headers")
		}
		hdr.Set("Access-Control-Max-Age", "600")
	}
	w.WriteHeader(http.StatusNoContent)
	return true
}

// writeError sends err as a Logto error, with RFC 6750's challenge on 401 and 403, and logs what
// the user must not see.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := apierror.As(err)
	switch {
	case e.Status >= 500:
		h.cfg.Logger.Error("account api request failed",
			zap.String("method", r.Method), zap.String("path", r.URL.Path),
			zap.String("code", e.Code), zap.Error(e.Unwrap()))
	case e.Status == http.StatusUnauthorized && strings.HasPrefix(e.Code, "auth."):
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	case e.Status == http.StatusForbidden && strings.HasPrefix(e.Code, "auth."):
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="openid"`)
	}
	if e.Code == "auth.authorization_header_missing" || e.Code == "auth.authorization_token_type_not_supported" {
		w.Header().Set("WWW-Authenticate", `Bearer`) // RFC 6750 §3.1: no error code without credentials
	}
	apierror.Write(w, e)
}

// appender is a body that encodes itself without reflection (the profile, on every page load).
type appender interface{ AppendJSON([]byte) []byte }

// bodies recycles the buffers of appender bodies: the hot path then allocates no body.
var bodies = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// writeJSON sends a successful JSON response.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	if a, ok := v.(appender); ok {
		buf := bodies.Get().(*[]byte)
		*buf = a.AppendJSON((*buf)[:0])
		writeBody(w, status, *buf)
		if cap(*buf) <= 64<<10 { // a rare huge profile is not kept
			bodies.Put(buf)
		}
		return nil
	}
	body, err := json.Marshal(v)
	if err != nil {
		return apierror.Internal(err)
	}
	writeBody(w, status, body)
	return nil
}

// jsonHeaders are set by assigning prepared slices: Header.Set would canonicalise the names and
// allocate a new slice for each value on every response.
var (
	contentTypeJSON = []string{"application/json; charset=utf-8"}
	noStore         = []string{"no-store"}
)

func writeBody(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = contentTypeJSON
	h["Cache-Control"] = noStore
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// coreError maps a failure of the identity core to what the user is told: the core's own Logto
// code when it is one the Account API knows, a 503 when the core is unreachable, a 502 otherwise.
// The core's body is never passed on as it is.
func coreError(err error) error {
	if ae, ok := errors.AsType[*apierror.Error](err); ok {
		return ae
	}
	if errors.Is(err, identitycore.ErrInvalidCredentials) {
		return apierror.InvalidCredentials
	}
	if ce, ok := errors.AsType[*identitycore.Error](err); ok && apierror.Known(ce.Code) {
		e := apierror.New(ce.Status, ce.Code)
		if len(ce.Data) > 0 && string(ce.Data) != "null" {
			e = e.WithData(ce.Data)
		}
		return e
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return apierror.CoreUnavailable.WithCause(err)
	}
	if _, ok := errors.AsType[*identitycore.UnavailableError](err); ok {
		return apierror.CoreUnavailable.WithCause(err)
	}
	return apierror.CoreBadResponse.WithCause(err)
}
