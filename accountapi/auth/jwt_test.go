package auth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/accountedge/caddy-account-api/accountapi/store"
)

// jwksServer publishes the public halves of its keys and counts fetches.
type jwksServer struct {
	mu      sync.Mutex
	keys    []jwk.Key // private keys
	fetches atomic.Int64
	srv     *httptest.Server
}

func newJWKSServer(t testing.TB) *jwksServer {
	s := &jwksServer{}
	s.rotate(t)
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		set := jwk.NewSet()
		for _, k := range s.keys {
			pub, _ := k.PublicKey()
			_ = set.AddKey(pub)
		}
		s.mu.Unlock()
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// rotate adds a new signing key with a new kid.
func (s *jwksServer) rotate(t testing.TB) jwk.Key {
	raw, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := jwk.FromRaw(raw)
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = k.Set(jwk.KeyIDKey, "k"+string(rune('1'+len(s.keys))))
	_ = k.Set(jwk.AlgorithmKey, jwa.RS256)
	s.keys = append(s.keys, k)
	return k
}

func (s *jwksServer) sign(t testing.TB, key jwk.Key, typ string, mutate func(jwt.Token)) string {
	tok := jwt.New()
	_ = tok.Set(jwt.IssuerKey, "https://core.test/oidc")
	_ = tok.Set(jwt.SubjectKey, "u1")
	_ = tok.Set(jwt.AudienceKey, []string{"https://api.test"})
	_ = tok.Set(jwt.ExpirationKey, time.Now().Add(time.Hour))
	_ = tok.Set("scope", "openid profile")
	_ = tok.Set("client_id", "web")
	if mutate != nil {
		mutate(tok)
	}
	hdr := jws.NewHeaders()
	_ = hdr.Set(jws.TypeKey, typ)
	b, err := jwt.Sign(tok, jwt.WithKey(jwa.RS256, key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func newJWTAuth(t testing.TB, s *jwksServer) (*Authenticator, *fakeCore) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v, err := NewJWTVerifier(ctx, JWTConfig{JWKSURL: s.srv.URL, Issuer: "https://core.test/oidc",
		Audiences: []string{"https://api.test"}, RefreshInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	core := newFake()
	keyer, _ := store.NewKeyer([]byte("0123456789abcdef-test-key"))
	return New(Config{Introspector: core, JWT: v, Keyer: keyer, MaxTTL: time.Minute,
		NegativeTTL: time.Second, MaxEntries: 100}), core
}

func TestJWTAccessTokens(t *testing.T) {
	s := newJWKSServer(t)
	a, core := newJWTAuth(t, s)
	ctx := context.Background()
	key := s.keys[0]

	p, err := a.Authenticate(ctx, "Bearer "+s.sign(t, key, "at+jwt", nil))
	if err != nil || p.Subject != "u1" || p.ClientID != "web" || !p.HasScope("profile") {
		t.Fatalf("valid JWT: %+v %v", p, err)
	}
	good := s.sign(t, key, "at+jwt", nil)
	for name, tok := range map[string]string{
		"typ JWT":      s.sign(t, key, "JWT", nil),
		"other aud":    s.sign(t, key, "at+jwt", func(t jwt.Token) { _ = t.Set(jwt.AudienceKey, "https://other") }),
		"other issuer": s.sign(t, key, "at+jwt", func(t jwt.Token) { _ = t.Set(jwt.IssuerKey, "https://evil/oidc") }),
		"expired":      s.sign(t, key, "at+jwt", func(t jwt.Token) { _ = t.Set(jwt.ExpirationKey, time.Now().Add(-time.Minute)) }),
		"bad sig":      good[:len(good)-4] + "AAAA",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := a.Authenticate(ctx, "Bearer "+tok)
			wantCode(t, err, 401, "auth.unauthorized")
		})
	}
	if core.calls.Load() != 0 {
		t.Fatalf("JWTs must not be introspected, got %d calls", core.calls.Load())
	}
}

func TestJWTUnknownKidRefreshesOnce(t *testing.T) {
	s := newJWKSServer(t)
	a, _ := newJWTAuth(t, s)
	ctx := context.Background()
	if _, err := a.Authenticate(ctx, "Bearer "+s.sign(t, s.keys[0], "at+jwt", nil)); err != nil {
		t.Fatal(err)
	}
	before := s.fetches.Load()
	k2 := s.rotate(t)
	var wg sync.WaitGroup
	var failures atomic.Int64
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			tok := s.sign(t, k2, "at+jwt", func(t jwt.Token) { _ = t.Set(jwt.JwtIDKey, string(rune('a'+i))) })
			if _, err := a.Authenticate(ctx, "Bearer "+tok); err != nil {
				failures.Add(1)
			}
		}(i)
	}
	wg.Wait()
	if failures.Load() != 0 {
		t.Fatalf("%d tokens signed with the rotated key were refused", failures.Load())
	}
	if got := s.fetches.Load() - before; got != 1 {
		t.Fatalf("JWKS fetches after rotation = %d, want 1 (coalesced)", got)
	}
	// A kid that does not exist cannot force another refresh inside the interval.
	unknown := s.sign(t, s.rotate(t), "at+jwt", nil)
	s.mu.Lock()
	s.keys = s.keys[:2]
	s.mu.Unlock()
	_, err := a.Authenticate(ctx, "Bearer "+unknown)
	wantCode(t, err, 401, "auth.unauthorized")
	if got := s.fetches.Load() - before; got != 1 {
		t.Fatalf("JWKS fetches = %d, want still 1: refreshes are rate-limited", got)
	}
}

// The leeway tolerates skew on nbf and iat, never on exp: the verifier agrees with the answer
// check, which refuses every answer from its exp on.
func TestJWTLeewayNotOnExp(t *testing.T) {
	s := newJWKSServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v, err := NewJWTVerifier(ctx, JWTConfig{JWKSURL: s.srv.URL, Issuer: "https://core.test/oidc",
		Audiences: []string{"https://api.test"}, Leeway: time.Minute, RefreshInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	early := s.sign(t, s.keys[0], "at+jwt", func(t jwt.Token) {
		_ = t.Set(jwt.NotBeforeKey, time.Now().Add(10*time.Second))
		_ = t.Set(jwt.IssuedAtKey, time.Now().Add(10*time.Second))
	})
	if ans, err := v.verify(ctx, early); err != nil || !ans.active() {
		t.Fatalf("nbf and iat 10s ahead, leeway 1m: %+v %v", ans, err)
	}
	late := s.sign(t, s.keys[0], "at+jwt", func(t jwt.Token) { _ = t.Set(jwt.ExpirationKey, time.Now().Add(-10*time.Second)) })
	if ans, err := v.verify(ctx, late); err != nil || ans.active() {
		t.Fatalf("exp 10s ago, leeway 1m: %+v %v, want inactive", ans, err)
	}
}
