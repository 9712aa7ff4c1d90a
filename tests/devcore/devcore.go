// Package devcore is a development stand-in for a Logto 1.42 identity core: an in-memory HTTP
// server that speaks Logto's OIDC endpoints (discovery, JWKS, client-credentials token,
// introspection) and the part of the Management API the Account API gateway uses, with Logto's
// bodies, status codes and error shapes (see tests/testdata/logto, exchanges 0-6 and 35-44).
//
// It is NOT an identity provider: its sign-in is a plain dev-only form for the seeded users, and it
// has no persistence and no hardening. It exists so tests and the quickstart can run the gateway
// (and its account page) without a real Logto. Beyond Logto's routes it
// serves a small dev-only API under /dev (mint and revoke user tokens, stats, introspection delay,
// key rotation) that a real Logto does not have.
//
// Routes (the base URL and issuer follow the request's Host unless Config.Issuer is set):
//
//	GET    /oidc/.well-known/openid-configuration
//	GET    /oidc/jwks
//	POST   /oidc/token                      client_credentials (Management API), refresh_token
//	POST   /oidc/token/introspection        persisted opaque tokens; any JWT is 400 unsupported_token_type
//	POST   /oidc/token/revocation           RFC 7009; a public client names itself with client_id
//	GET    /oidc/auth, POST /oidc/auth/{uid}  code flow with PKCE for SPAs, a dev sign-in form (authorize.go)
//	GET|POST /oidc/session/end              RP-initiated logout (authorize.go)
//	GET    /api/.well-known/sign-in-exp     public: the sign-in experience and the social connectors
//	GET    /api/account-center              Management API: M2M JWT with scope "all"
//	PATCH  /api/account-center
//	GET    /api/sign-in-exp
//	PATCH  /api/sign-in-exp                 shallow merge of top-level keys
//	GET    /api/applications/{id}
//	POST   /api/users
//	GET    /api/users/{userId}              ?includeSsoIdentities=true adds "ssoIdentities": []
//	PATCH  /api/users/{userId}
//	PATCH  /api/users/{userId}/profile
//	POST   /api/users/{userId}/password/verify
//	PATCH  /api/users/{userId}/password
//	PUT    /api/users/{userId}/identities/{target}
//	DELETE /api/users/{userId}/identities/{target}
//	POST   /api/users/{userId}/identities   {connectorId, connectorData}: the mock social connector
//	POST   /api/verification-codes          {email} | {phone}: 204; 429 past 10 per 10 minutes
//	POST   /api/verification-codes/verify   {email|phone, verificationCode}
//	GET    /api/connectors, GET /api/connectors/{id}   mock social, email and SMS connectors
//	POST   /api/connectors/{connectorId}/authorization-uri
//	GET    /api/users/{userId}/mfa-verifications, POST, DELETE …/{verificationId}   (mfa.go)
//	GET    /api/users/{userId}/logto-configs, PATCH
//	GET    /api/users/{userId}/sessions     the user's OIDC sessions (minted tokens create them)
//	DELETE /api/users/{userId}/sessions/{sessionId}   ?revokeGrantsTarget=all|firstParty
//	GET    /api/users/{userId}/grants       ?appType=firstParty|thirdParty
//	DELETE /api/users/{userId}/grants/{grantId}
//	GET    /api/user-assets/service-status  ready by default; POST /dev/user-assets changes it
//	POST   /api/user-assets                 multipart "file"; stored in memory
//	GET    /dev/verification-codes?to=…     dev only: the last code sent to an address
//	POST   /dev/tokens                      dev only: {userId, scope, clientId?, expiresIn?, format?, audience?, sessionId?};
//	                                        offline_access in scope adds a refresh_token, openid an id_token
//	POST   /dev/user-assets                 dev only: {status?, maxUploadFileSize?, failUploads?}
//	GET    /dev/user-assets/{key}           dev only: an uploaded file, as stored
//	POST   /dev/tokens/revoke               dev only: {token}
//	GET    /dev/stats, POST /dev/stats/reset
//	POST   /dev/introspection-delay         dev only: {"ms": 200}
//	POST   /dev/keys/rotate                 dev only: answers {kid}
//	POST   /dev/user-token-ttl              dev only: {"seconds": n} for the code grant's next tokens
//	GET    /dev/mock-social                 dev only: the mock social provider's sign-in page
package devcore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// Seed data: the demo user the quickstart signs in as, a second user for collision tests, and
// the applications the gateway looks up.
const (
	DemoUserID   = "demouser0001"
	DemoUsername = "demo"
	DemoPassword = "Demo-Passw0rd!"
	DemoEmail    = "demo@example.com"

	OtherUserID   = "oracleuser01"
	OtherUsername = "oracle"
	OtherPassword = "Oracle-Passw0rd!"
	OtherEmail    = "oracle@example.com"

	// DemoAppID is Logto's built-in "Live Preview" SPA: the default client of minted user tokens.
	DemoAppID = "demo-app"
	// ThirdPartyAppID is a third-party application (isThirdParty true).
	ThirdPartyAppID = "third-party-app"
	// FirstPartyWebAppID is a first-party traditional web application.
	FirstPartyWebAppID = "first-party-web"
)

// Defaults of Config.
const (
	DefaultClientID           = "m2m-gateway"
	DefaultClientSecret       = "dev-gateway-secret"
	DefaultManagementResource = "https://default.logto.app/api"
)

// Config configures a Core. The zero value is usable.
type Config struct {
	// Issuer fixes the OIDC issuer, like Logto's ENDPOINT setting (plus /oidc). Empty: it is
	// derived from each request's Host, http://<host>/oidc, so one Core works on any port.
	Issuer string
	// ClientID and ClientSecret of the seeded machine-to-machine application (the gateway's).
	ClientID     string
	ClientSecret string
	// ManagementResource is the Management API's resource indicator (the audience of M2M tokens).
	ManagementResource string
	// AccountPageURLs are where the account page is served: each URL u registers u+"/callback" as
	// a redirect URI and u as a post-logout redirect URI of the AccountPageAppID application.
	// Default: DefaultAccountPageURLs.
	AccountPageURLs []string
	// MockSocialAuthorizeURL is where the mock social connector sends the browser. Default:
	// "http://mock-social/", as Logto's mock connector does. A path ("/dev/mock-social") is on
	// this core: a dev page that plays the provider, so a person can link an account.
	MockSocialAuthorizeURL string
	// MfaFactors are the sign-in experience's MFA factors (mfa.factors, e.g. "Totp",
	// "BackupCode") at start. Empty: none, Logto's default (exchange 42), so the Account API's
	// MFA routes refuse to bind until a test enables factors.
	MfaFactors []string
	// AccountCenterFields set account-center fields at start over the seed's (the nine seed
	// fields Edit, the others absent, so Off), e.g. {"mfa": "Edit", "session": "Edit"}. A field
	// or control Logto does not have makes New panic.
	AccountCenterFields map[string]string
}

func (c Config) withDefaults() Config {
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	if c.ClientSecret == "" {
		c.ClientSecret = DefaultClientSecret
	}
	if c.ManagementResource == "" {
		c.ManagementResource = DefaultManagementResource
	}
	if len(c.AccountPageURLs) == 0 {
		c.AccountPageURLs = DefaultAccountPageURLs
	}
	if c.MockSocialAuthorizeURL == "" {
		c.MockSocialAuthorizeURL = mockSocialAuthorize
	}
	return c
}

// Core is one in-memory identity core. All its state sits behind one mutex: a dev core does not
// need anything finer.
type Core struct {
	cfg     Config
	handler http.Handler

	mu            sync.Mutex
	keys          []*signingKey // newest first; new tokens are signed with keys[0]
	users         map[string]*user
	apps          map[string]*application
	clients       map[string]string // client id -> secret, for client authentication
	accountCenter accountCenter
	signInExp     ordered
	tokens        map[string]*tokenRecord // opaque access tokens by value
	sessions      map[string]*oidcSession // OIDC sessions by uid
	grants        map[string]*oidcGrant   // OIDC grants by id
	assets        userAssets
	introDelay    time.Duration
	mgmtDelay     time.Duration
	introLag      time.Duration
	stats         Stats

	connectors map[string]*connector
	passcodes  map[string]*passcode   // live code by recipient
	messages   map[string][]time.Time // send times by recipient, for the message rate limit
	sent       []SentCode             // what the mock connectors "sent" (dev only)

	browser *browserState // interactive sign-in: interactions, codes, browser sessions (authorize.go)
}

// Stats counts requests so tests can observe caching and coalescing in the gateway.
type Stats struct {
	// Introspections counts POST /oidc/token/introspection calls (all, even rejected ones).
	Introspections int64 `json:"introspections"`
	// TokenRequests counts POST /oidc/token calls.
	TokenRequests int64 `json:"tokenRequests"`
	// JWKSRequests counts GET /oidc/jwks calls.
	JWKSRequests int64 `json:"jwksRequests"`
	// Management counts Management API calls by route pattern, e.g. "GET /api/users/{userId}".
	Management map[string]int64 `json:"management"`
}

// New returns a seeded Core. It panics if the system cannot generate an RSA key, or on a Config
// field no Logto could have (AccountCenterFields).
func New(cfg Config) *Core {
	c := &Core{
		cfg:      cfg.withDefaults(),
		users:    map[string]*user{},
		tokens:   map[string]*tokenRecord{},
		sessions: map[string]*oidcSession{},
		grants:   map[string]*oidcGrant{},
		assets:   newUserAssets(),
		clients:  map[string]string{},

		connectors: seedConnectors(),
		passcodes:  map[string]*passcode{},
		messages:   map[string][]time.Time{},
		browser:    newBrowserState(),
	}
	key, err := newSigningKey()
	if err != nil {
		panic(fmt.Sprintf("devcore: generate signing key: %v", err))
	}
	c.keys = []*signingKey{key}
	c.stats.Management = map[string]int64{}
	c.seed()
	c.handler = c.routes()
	return c
}

// Handler serves the core: /oidc/*, /api/* (Management API) and /dev/*.
func (c *Core) Handler() http.Handler { return c.handler }

// Config returns the effective configuration (defaults filled in).
func (c *Core) Config() Config { return c.cfg }

// Stats returns a copy of the request counters.
func (c *Core) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Management = make(map[string]int64, len(c.stats.Management))
	for k, v := range c.stats.Management {
		s.Management[k] = v
	}
	return s
}

// ResetStats sets every counter back to zero.
func (c *Core) ResetStats() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats = Stats{Management: map[string]int64{}}
}

// SetIntrospectionDelay makes every introspection sleep d before answering (0 turns it off), so
// tests can pile concurrent requests onto one slow introspection.
func (c *Core) SetIntrospectionDelay(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.introDelay = d
}

// SetManagementDelay makes every Management API call sleep d before it is handled (0 turns it
// off): a slow core, so that tests can pile parallel requests into the gap between a read and a
// write, or between a guess and its verdict.
func (c *Core) SetManagementDelay(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mgmtDelay = d
}

// SetIntrospectionLag makes every introspection read the token's state first and answer d later
// (0 turns it off): the answer then describes the token as it was when asked, like a slow core
// whose answer is overtaken by a revocation.
func (c *Core) SetIntrospectionLag(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.introLag = d
}

// RotateKey adds a new signing key and returns its kid. New tokens are signed with it; the old
// keys stay in the JWKS so tokens already issued keep verifying, as after a Logto key rotation.
func (c *Core) RotateKey() (string, error) {
	key, err := newSigningKey()
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keys = append([]*signingKey{key}, c.keys...)
	return key.kid, nil
}

// routes wires every endpoint. Method-qualified patterns make ServeMux answer 405 for a wrong
// method, and the patterns double as the stats keys of the Management API.
func (c *Core) routes() http.Handler {
	mux := http.NewServeMux()

	// OIDC (oidc-provider inside Logto).
	mux.HandleFunc("GET /oidc/.well-known/openid-configuration", c.handleDiscovery)
	mux.HandleFunc("GET /oidc/jwks", c.handleJWKS)
	mux.HandleFunc("POST /oidc/token", c.handleToken)
	mux.HandleFunc("POST /oidc/token/introspection", c.handleIntrospection)
	mux.HandleFunc("POST /oidc/token/revocation", c.handleRevocation)
	mux.HandleFunc("GET /api/.well-known/sign-in-exp", c.handlePublicSignInExp)
	mux.HandleFunc("GET /oidc/auth", c.handleAuthorize)
	mux.HandleFunc("POST /oidc/auth/{uid}", c.handleSignInSubmit)
	mux.HandleFunc("GET /oidc/session/end", c.handleEndSession)
	mux.HandleFunc("POST /oidc/session/end", c.handleEndSession)
	mux.HandleFunc("POST /oidc/session/end/confirm", c.handleEndSessionConfirm)

	// Management API: every route is counted and authenticated first.
	for pattern, h := range map[string]http.HandlerFunc{
		"GET /api/account-center":                              c.handleGetAccountCenter,
		"PATCH /api/account-center":                            c.handlePatchAccountCenter,
		"GET /api/sign-in-exp":                                 c.handleGetSignInExp,
		"PATCH /api/sign-in-exp":                               c.handlePatchSignInExp,
		"GET /api/applications/{id}":                           c.handleGetApplication,
		"POST /api/users":                                      c.handleCreateUser,
		"GET /api/users/{userId}":                              c.handleGetUser,
		"PATCH /api/users/{userId}":                            c.handlePatchUser,
		"PATCH /api/users/{userId}/profile":                    c.handlePatchProfile,
		"POST /api/users/{userId}/password/verify":             c.handleVerifyPassword,
		"PATCH /api/users/{userId}/password":                   c.handlePatchPassword,
		"PATCH /api/users/{userId}/is-suspended":               c.handlePatchIsSuspended,
		"PUT /api/users/{userId}/identities/{target}":          c.handlePutIdentity,
		"DELETE /api/users/{userId}/identities/{target}":       c.handleDeleteIdentity,
		"POST /api/users/{userId}/identities":                  c.handleLinkIdentity,
		"POST /api/verification-codes":                         c.handleSendCode,
		"POST /api/verification-codes/verify":                  c.handleCheckCode,
		"GET /api/connectors":                                  c.handleListConnectors,
		"GET /api/connectors/{id}":                             c.handleGetConnector,
		"POST /api/connectors/{connectorId}/authorization-uri": c.handleAuthorizationURI,
		"GET /api/users/{userId}/sessions":                     c.handleListSessions,
		"DELETE /api/users/{userId}/sessions/{sessionId}":      c.handleDeleteSession,
		"GET /api/users/{userId}/grants":                       c.handleListGrants,
		"DELETE /api/users/{userId}/grants/{grantId}":          c.handleDeleteGrant,
		"GET /api/user-assets/service-status":                  c.handleUserAssetsStatus,
		"POST /api/user-assets":                                c.handleUploadUserAsset,
	} {
		mux.Handle(pattern, c.management(pattern, h))
	}
	for pattern, h := range c.mfaRoutes() {
		mux.Handle(pattern, c.management(pattern, h))
	}

	// Dev-only API (no auth): exists only in this stand-in.
	mux.HandleFunc("POST /dev/tokens", c.handleDevMintToken)
	mux.HandleFunc("POST /dev/tokens/revoke", c.handleDevRevokeToken)
	mux.HandleFunc("GET /dev/stats", c.handleDevStats)
	mux.HandleFunc("POST /dev/stats/reset", c.handleDevResetStats)
	mux.HandleFunc("POST /dev/introspection-delay", c.handleDevIntrospectionDelay)
	mux.HandleFunc("POST /dev/keys/rotate", c.handleDevRotateKey)
	mux.HandleFunc("GET /dev/verification-codes", c.handleDevLastCode)
	mux.HandleFunc("DELETE /dev/connectors/{id}", c.handleDevDeleteConnector)
	mux.HandleFunc("POST /dev/user-assets", c.handleDevUserAssets)
	mux.HandleFunc("GET /dev/user-assets/{key...}", c.handleDevGetUserAsset)
	mux.HandleFunc("POST /dev/user-token-ttl", c.handleDevUserTokenTTL)
	mux.HandleFunc("GET /dev/mock-social", c.handleDevMockSocial)
	return mux
}

// baseURL is where the client reached us: Logto builds its discovery URLs the same way.
func baseURL(r *http.Request) string { return "http://" + r.Host }

// issuer is the OIDC issuer for this request.
func (c *Core) issuer(r *http.Request) string {
	if c.cfg.Issuer != "" {
		return c.cfg.Issuer
	}
	return baseURL(r) + "/oidc"
}

// Server is a Core listening on a loopback address.
type Server struct {
	// URL is the base URL, e.g. http://127.0.0.1:41234.
	URL  string
	Core *Core
	srv  *http.Server
	done chan error
}

// Start serves the core on addr, which must be a loopback address ("" or ":0" picks a free port
// on 127.0.0.1). The dev core refuses other interfaces: it has no security worth exposing.
func (c *Core) Start(addr string) (*Server, error) {
	addr, err := LoopbackAddr(addr)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{
		URL:  "http://" + ln.Addr().String(),
		Core: c,
		srv:  &http.Server{Handler: c.Handler(), ReadHeaderTimeout: 10 * time.Second},
		done: make(chan error, 1),
	}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

// Close stops the server and waits for in-flight requests (at most 5 seconds).
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if serveErr := <-s.done; !errors.Is(serveErr, http.ErrServerClosed) && err == nil {
		err = serveErr
	}
	return err
}

// LoopbackAddr normalises a listen address and refuses anything but loopback: an empty host
// becomes 127.0.0.1, an empty address 127.0.0.1:0.
func LoopbackAddr(addr string) (string, error) {
	if addr == "" {
		addr = ":0"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("listen address %q: %v", addr, err)
	}
	switch {
	case host == "":
		host = "127.0.0.1"
	case host == "localhost":
	default:
		ip := net.ParseIP(host)
		if ip == nil || !ip.IsLoopback() {
			return "", fmt.Errorf("refusing to listen on %q: the dev core is a development stand-in for Logto and only listens on loopback", host)
		}
	}
	return net.JoinHostPort(host, port), nil
}
