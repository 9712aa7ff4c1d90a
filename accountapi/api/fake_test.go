package api

// Fakes for unit tests of the handler: an identity core, an authenticator and a limiter kept in
// memory, and a test bench that wires them (with the real record store over memory) into a
// Handler. Reuse them for new routes: add what the new route asks of the core to fakeCore.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accountedge/caddy-account-api/accountapi/accountcenter"
	"github.com/accountedge/caddy-account-api/accountapi/apierror"
	"github.com/accountedge/caddy-account-api/accountapi/auth"
	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
	"github.com/accountedge/caddy-account-api/accountapi/ratelimit"
	"github.com/accountedge/caddy-account-api/accountapi/store"
	"github.com/accountedge/caddy-account-api/accountapi/verification"
)

// fakeCore is an identity core in memory. Its users are changed by the writes; fail makes one
// method fail with the given error. calls logs the methods called, in order.
type fakeCore struct {
	mu         sync.Mutex
	users      map[string]*identitycore.User
	passwords  map[string]string // user id → password
	apps       map[string]*identitycore.Application
	connectors map[string]*identitycore.Connector
	sie        identitycore.SignInExperience
	codes      map[string]string // recipient value → live code
	fail       map[string]error  // method name → error
	calls      []string
	// mfa and logtoConfigs are the users' MFA factors (with their secrets) and settings
	// (mfa_fake_test.go).
	mfa          map[string][]fakeFactor
	logtoConfigs map[string]*identitycore.LogtoConfig
	fakeSessions // sessions, grants and user assets: fake_sessions_test.go
}

func newFakeCore() *fakeCore {
	return &fakeCore{
		users:      map[string]*identitycore.User{},
		passwords:  map[string]string{},
		apps:       map[string]*identitycore.Application{},
		connectors: map[string]*identitycore.Connector{},
		codes:      map[string]string{},
		fail:       map[string]error{},

		mfa:          map[string][]fakeFactor{},
		logtoConfigs: map[string]*identitycore.LogtoConfig{},
	}
}

var _ identitycore.Core = (*fakeCore)(nil)

// enter logs a call and returns the failure set for it.
func (f *fakeCore) enter(method string) error {
	f.calls = append(f.calls, method)
	return f.fail[method]
}

func notFound(code string) error { return &identitycore.Error{Status: http.StatusNotFound, Code: code} }

func (f *fakeCore) user(id string) (*identitycore.User, error) {
	u, ok := f.users[id]
	if !ok {
		return nil, notFound("entity.not_exists_with_id")
	}
	return u, nil
}

func (f *fakeCore) Introspect(context.Context, string) (identitycore.Introspection, error) {
	return identitycore.Introspection{}, errors.New("fakeCore: tokens are the fake authenticator's")
}

func (f *fakeCore) User(_ context.Context, id string, _ bool) (*identitycore.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("User"); err != nil {
		return nil, err
	}
	u, err := f.user(id)
	if err != nil {
		return nil, err
	}
	cp := *u
	return &cp, nil
}

func (f *fakeCore) UpdateUser(_ context.Context, id string, fields map[string]any) (*identitycore.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("UpdateUser"); err != nil {
		return nil, err
	}
	u, err := f.user(id)
	if err != nil {
		return nil, err
	}
	for k, v := range fields {
		s, _ := v.(*string)
		if str, ok := v.(string); ok {
			s = &str
		}
		switch k {
		case "name":
			u.Name = s
		case "avatar":
			u.Avatar = s
		case "username":
			u.Username = s
		case "primaryEmail":
			u.PrimaryEmail = s
		case "primaryPhone":
			u.PrimaryPhone = s
		case "customData":
			u.CustomData, _ = json.Marshal(v)
		}
	}
	cp := *u
	return &cp, nil
}

func (f *fakeCore) UpdateProfile(_ context.Context, id string, profile map[string]any) (json.RawMessage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("UpdateProfile"); err != nil {
		return nil, err
	}
	u, err := f.user(id)
	if err != nil {
		return nil, err
	}
	stored := map[string]any{}
	_ = json.Unmarshal(u.Profile, &stored)
	for k, v := range profile {
		stored[k] = v
	}
	u.Profile, _ = json.Marshal(stored)
	return u.Profile, nil
}

func (f *fakeCore) VerifyPassword(_ context.Context, id, password string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("VerifyPassword"); err != nil {
		return err
	}
	if want, ok := f.passwords[id]; !ok || want != password {
		return identitycore.ErrInvalidCredentials
	}
	return nil
}

func (f *fakeCore) AccountCenter(context.Context) (accountcenter.Settings, error) {
	return accountcenter.Settings{}, errors.New("fakeCore: settings come from the bench's Static source")
}

func (f *fakeCore) SignInExperience(context.Context) (*identitycore.SignInExperience, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("SignInExperience"); err != nil {
		return nil, err
	}
	sie := f.sie
	return &sie, nil
}

func (f *fakeCore) Application(_ context.Context, id string) (*identitycore.Application, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("Application"); err != nil {
		return nil, err
	}
	app, ok := f.apps[id]
	if !ok {
		return nil, notFound("entity.not_exists_with_id")
	}
	return app, nil
}

func (f *fakeCore) SendVerificationCode(_ context.Context, to identitycore.Identifier) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("SendVerificationCode"); err != nil {
		return err
	}
	f.codes[to.Value] = "123456"
	return nil
}

func (f *fakeCore) CheckVerificationCode(_ context.Context, to identitycore.Identifier, code string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("CheckVerificationCode"); err != nil {
		return err
	}
	if live, ok := f.codes[to.Value]; !ok || live != code {
		return &identitycore.Error{Status: http.StatusBadRequest, Code: "verification_code.code_mismatch"}
	}
	delete(f.codes, to.Value)
	return nil
}

func (f *fakeCore) UpdatePassword(_ context.Context, id, password string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("UpdatePassword"); err != nil {
		return err
	}
	u, err := f.user(id)
	if err != nil {
		return err
	}
	u.HasPassword, f.passwords[id] = true, password
	return nil
}

func (f *fakeCore) Connector(_ context.Context, id string) (*identitycore.Connector, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("Connector"); err != nil {
		return nil, err
	}
	conn, ok := f.connectors[id]
	if !ok {
		return nil, notFound("entity.not_found")
	}
	return conn, nil
}

func (f *fakeCore) AuthorizationURI(_ context.Context, connectorID, state, redirectURI string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("AuthorizationURI"); err != nil {
		return "", err
	}
	return "https://social.example/authorize?connector=" + connectorID + "&state=" + state, nil
}

func (f *fakeCore) LinkSocialIdentity(_ context.Context, id, connectorID string, _ json.RawMessage) (map[string]identitycore.Identity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("LinkSocialIdentity"); err != nil {
		return nil, err
	}
	u, err := f.user(id)
	if err != nil {
		return nil, err
	}
	conn := f.connectors[connectorID]
	identity := identitycore.Identity{UserID: "social-" + id}
	if u.Identities == nil {
		u.Identities = map[string]json.RawMessage{}
	}
	u.Identities[conn.Target], _ = json.Marshal(identity)
	return map[string]identitycore.Identity{conn.Target: identity}, nil
}

func (f *fakeCore) PutIdentity(_ context.Context, id, target string, identity identitycore.Identity) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("PutIdentity"); err != nil {
		return err
	}
	u, err := f.user(id)
	if err != nil {
		return err
	}
	if u.Identities == nil {
		u.Identities = map[string]json.RawMessage{}
	}
	u.Identities[target], _ = json.Marshal(identity)
	return nil
}

func (f *fakeCore) DeleteIdentity(_ context.Context, id, target string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("DeleteIdentity"); err != nil {
		return err
	}
	u, err := f.user(id)
	if err != nil {
		return err
	}
	delete(u.Identities, target)
	return nil
}

// fakeAuth knows bearer tokens by their text. Revalidate refuses the revoked ones, which
// Authenticate (a cache) still accepts.
type fakeAuth struct {
	mu          sync.Mutex
	tokens      map[string]auth.Principal
	revoked     map[string]bool
	revalidated int
}

var _ Authenticator = (*fakeAuth)(nil)

func newFakeAuth() *fakeAuth {
	return &fakeAuth{tokens: map[string]auth.Principal{}, revoked: map[string]bool{}}
}

func (a *fakeAuth) principal(header string, fresh bool) (auth.Principal, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	token, ok := strings.CutPrefix(header, "Bearer ")
	if header == "" {
		return auth.Principal{}, apierror.New(http.StatusUnauthorized, "auth.authorization_header_missing")
	}
	p, known := a.tokens[token]
	if fresh {
		a.revalidated++
	}
	if !ok || !known || (fresh && a.revoked[token]) {
		return auth.Principal{}, apierror.New(http.StatusUnauthorized, "auth.unauthorized")
	}
	return p, nil
}

func (a *fakeAuth) Authenticate(_ context.Context, header string) (auth.Principal, error) {
	return a.principal(header, false)
}

func (a *fakeAuth) Revalidate(_ context.Context, header string) (auth.Principal, error) {
	return a.principal(header, true)
}

func (a *fakeAuth) Close() {}

// fakeLimiter allows everything except the rules in deny.
type fakeLimiter struct {
	mu    sync.Mutex
	deny  map[string]bool
	taken map[string]int // rule → events taken or failures recorded
}

var _ Limiter = (*fakeLimiter)(nil)

func newFakeLimiter() *fakeLimiter {
	return &fakeLimiter{deny: map[string]bool{}, taken: map[string]int{}}
}

func (l *fakeLimiter) decide(rule string, count bool) ratelimit.Decision {
	l.mu.Lock()
	defer l.mu.Unlock()
	if count {
		l.taken[rule]++
	}
	if l.deny[rule] {
		return ratelimit.Decision{Allowed: false, RetryAfter: 1500e6}
	}
	return ratelimit.Decision{Allowed: true}
}

func (l *fakeLimiter) Take(_ context.Context, rule, _ string, _ ratelimit.Limit) ratelimit.Decision {
	return l.decide(rule, true)
}

func (l *fakeLimiter) Reserve(_ context.Context, rule, _ string, _ ratelimit.Limit) (func(), ratelimit.Decision) {
	d := l.decide(rule, true)
	return func() {
		l.mu.Lock()
		l.taken[rule]--
		l.mu.Unlock()
	}, d
}

// Attempt refuses when rule is denied (a locked-out subject); taken counts the failures settled.
func (l *fakeLimiter) Attempt(_ context.Context, rule, _ string, _ ratelimit.Sentinel) (func(context.Context, bool) ratelimit.Verdict, ratelimit.Verdict) {
	if !l.decide(rule, false).Allowed {
		return func(context.Context, bool) ratelimit.Verdict { return ratelimit.Verdict{} },
			ratelimit.Verdict{LockedFor: 10 * time.Minute}
	}
	return func(_ context.Context, failed bool) ratelimit.Verdict {
		l.decide(rule, failed)
		return ratelimit.Verdict{Allowed: true}
	}, ratelimit.Verdict{Allowed: true}
}

func (l *fakeLimiter) Lock(context.Context, string, string, time.Duration) (func(), error) {
	return func() {}, nil
}

// bench is a Handler on fakes. Build it with newBench, adjust core, tokens and settings, then
// send requests with do.
type bench struct {
	t        *testing.T
	core     *fakeCore
	auth     *fakeAuth
	limiter  *fakeLimiter
	records  *verification.Store
	settings accountcenter.Settings
	h        *Handler
	changed  []string // users reported by UserChanged
}

// The bench's caller: user "u1", first-party client "app1", token "t1"; client "tp" is a
// registered third-party client.
const (
	benchUser  = "u1"
	benchToken = "t1"
)

func newBench(t *testing.T) *bench {
	t.Helper()
	b := &bench{t: t, core: newFakeCore(), auth: newFakeAuth(), limiter: newFakeLimiter()}
	keyer, err := store.NewKeyer(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	b.records = verification.NewStore(store.NewMemory(1000), keyer)
	b.core.users[benchUser] = &identitycore.User{ID: benchUser}
	b.core.apps["app1"] = &identitycore.Application{ID: "app1"}
	b.core.apps["tp"] = &identitycore.Application{ID: "tp", IsThirdParty: true}
	b.auth.tokens[benchToken] = auth.Principal{Subject: benchUser, ClientID: "app1"}
	b.settings = accountcenter.Settings{Enabled: true, Fields: map[string]accountcenter.Control{}}
	b.h = New(Config{
		Core:          b.core,
		Auth:          b.auth,
		AccountCenter: settingsFunc(func() accountcenter.Settings { return b.settings }),
		Verifications: b.records,
		MaxBodyBytes:  64 << 10,
		UserChanged:   func(_ context.Context, id string, _ bool) { b.changed = append(b.changed, id) },
		Protections:   Protections{Limiter: b.limiter},
	})
	t.Cleanup(b.h.Close)
	return b
}

// settingsFunc is an accountcenter.Source that reads the bench's current settings.
type settingsFunc func() accountcenter.Settings

func (f settingsFunc) Settings(context.Context) (accountcenter.Settings, error) { return f(), nil }

// caller is the bench's principal, to change scopes or client.
func (b *bench) caller() *auth.Principal {
	p := b.auth.tokens[benchToken]
	return &p
}

// setCaller replaces the bench token's principal.
func (b *bench) setCaller(p auth.Principal) { b.auth.tokens[benchToken] = p }

// stepUpRecord creates a verified password record of the bench user and returns its id.
func (b *bench) stepUpRecord() string {
	b.t.Helper()
	rec, err := b.records.Create(context.Background(), verification.Record{
		UserID: benchUser, Type: verification.Password, Verified: true,
		Identifier: &verification.Identifier{Type: "userId", Value: benchUser},
	})
	if err != nil {
		b.t.Fatal(err)
	}
	return rec.ID
}

// request is one request to the bench.
type request struct {
	method, path, body string
	token              string            // default benchToken; "-" for none
	header             map[string]string // extra headers
}

// answer is the handler's response, with the Logto error code when it is an error.
type answer struct {
	status int
	code   string
	header http.Header
	body   []byte
}

func (b *bench) do(req request) answer {
	b.t.Helper()
	r := httptest.NewRequest(req.method, req.path, strings.NewReader(req.body))
	switch req.token {
	case "":
		r.Header.Set("Authorization", "Bearer "+benchToken)
	case "-":
	default:
		r.Header.Set("Authorization", "Bearer "+req.token)
	}
	for k, v := range req.header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	b.h.ServeHTTP(w, r)
	a := answer{status: w.Code, header: w.Header(), body: w.Body.Bytes()}
	if w.Code >= 400 {
		var e struct {
			Code string `json:"code"`
		}
		if err := json.Unmarshal(a.body, &e); err != nil {
			b.t.Fatalf("%s %s: error body %q is not JSON: %v", req.method, req.path, a.body, err)
		}
		a.code = e.Code
	}
	return a
}

func strp(s string) *string { return &s }
