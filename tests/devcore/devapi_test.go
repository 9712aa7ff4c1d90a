package devcore

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// verifyWithJWKS checks a JWT the way the gateway does (jwx v2 against the published JWKS).
func verifyWithJWKS(t *testing.T, tc *testCore, token, audience string) (jwt.Token, error) {
	t.Helper()
	set, err := jwk.Fetch(context.Background(), tc.url+"/oidc/jwks")
	if err != nil {
		t.Fatal(err)
	}
	return jwt.Parse([]byte(token), jwt.WithKeySet(set), jwt.WithValidate(true),
		jwt.WithIssuer(tc.url+"/oidc"), jwt.WithAudience(audience))
}

func TestDevMintTokens(t *testing.T) {
	tc := newTestCore(t)

	// Opaque (default): 43 base64url characters, the shape of the answer.
	r := tc.do(http.MethodPost, "/dev/tokens", "", MintRequest{UserID: DemoUserID, Scope: "openid profile"})
	if r.status != 200 || strings.Join(keysOf(t, r.body), ",") != "access_token,token_type,expires_in,scope,session_id,grant_id,id_token" {
		t.Fatalf("%d %s", r.status, r.body)
	}
	m := r.json(t)
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`).MatchString(m["access_token"].(string)) ||
		m["token_type"] != "Bearer" || m["expires_in"] != float64(3600) || m["scope"] != "openid profile" {
		t.Errorf("%s", r.body)
	}
	// Another client.
	tok := tc.mint(MintRequest{UserID: OtherUserID, Scope: "openid", ClientID: ThirdPartyAppID})
	if got := tc.introspect(tok); got["client_id"] != ThirdPartyAppID || got["sub"] != OtherUserID {
		t.Errorf("introspection %v", got)
	}

	// JWT: verifies against the JWKS with jwx; header typ at+jwt with a kid.
	aud := "https://api.example.com"
	token := tc.mint(MintRequest{UserID: DemoUserID, Scope: "openid email", Format: "jwt", Audience: aud})
	parsed, err := verifyWithJWKS(t, tc, token, aud)
	if err != nil {
		t.Fatalf("jwx: %v", err)
	}
	if parsed.Subject() != DemoUserID || parsed.PrivateClaims()["client_id"] != DemoAppID ||
		parsed.PrivateClaims()["scope"] != "openid email" || parsed.JwtID() == "" ||
		parsed.Expiration().Sub(parsed.IssuedAt()) != time.Hour {
		t.Errorf("claims %v", parsed.PrivateClaims())
	}
	msg, err := jws.Parse([]byte(token))
	if err != nil {
		t.Fatal(err)
	}
	hdr := msg.Signatures()[0].ProtectedHeaders()
	if hdr.Type() != "at+jwt" || hdr.KeyID() == "" || hdr.Algorithm().String() != "RS256" {
		t.Errorf("header typ %q kid %q alg %q", hdr.Type(), hdr.KeyID(), hdr.Algorithm())
	}
	// Expired JWT fails validation.
	past := int64(-30)
	expired := tc.mint(MintRequest{UserID: DemoUserID, Scope: "openid", Format: "jwt", Audience: aud, ExpiresIn: &past})
	if _, err := verifyWithJWKS(t, tc, expired, aud); err == nil {
		t.Error("expired JWT verified")
	}

	// Errors.
	expectError(t, tc.do(http.MethodPost, "/dev/tokens", "", MintRequest{UserID: "nope", Scope: "openid"}), 404, "entity.not_found", "")
	for _, bad := range []MintRequest{
		{Scope: "openid"},
		{UserID: DemoUserID, Format: "paseto"},
		{UserID: DemoUserID, Format: "jwt"},
		{UserID: DemoUserID, ClientID: "nope"},
	} {
		expectError(t, tc.do(http.MethodPost, "/dev/tokens", "", bad), 400, "dev.invalid_input", "")
	}
	expectError(t, tc.do(http.MethodPost, "/dev/tokens", "", `{"userId": 5}`), 400, "dev.invalid_input", "")
}

func TestKeyRotation(t *testing.T) {
	tc := newTestCore(t)
	aud := "https://api.example.com"
	oldToken := tc.mint(MintRequest{UserID: DemoUserID, Scope: "openid", Format: "jwt", Audience: aud})
	oldM2M := tc.m2mToken()

	r := tc.do(http.MethodPost, "/dev/keys/rotate", "", nil)
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	kid := r.json(t)["kid"].(string)

	set, err := jwk.Fetch(context.Background(), tc.url+"/oidc/jwks")
	if err != nil {
		t.Fatal(err)
	}
	if set.Len() != 2 {
		t.Fatalf("JWKS has %d keys, want both", set.Len())
	}
	first, _ := set.Key(0)
	if first.KeyID() != kid || first.Algorithm().String() != "RS256" || first.KeyUsage() != "sig" || first.KeyType() != "RSA" {
		t.Errorf("newest key %v", first)
	}

	newToken := tc.mint(MintRequest{UserID: DemoUserID, Scope: "openid", Format: "jwt", Audience: aud})
	msg, _ := jws.Parse([]byte(newToken))
	if msg.Signatures()[0].ProtectedHeaders().KeyID() != kid {
		t.Error("new tokens must use the new key")
	}
	for _, tok := range []string{oldToken, newToken} {
		if _, err := verifyWithJWKS(t, tc, tok, aud); err != nil {
			t.Errorf("verify after rotation: %v", err)
		}
	}
	// The old M2M token still opens the Management API; so does a new one.
	for _, tok := range []string{oldM2M, tc.m2mToken()} {
		if r := tc.do(http.MethodGet, "/api/users/"+DemoUserID, tok, nil); r.status != 200 {
			t.Errorf("management after rotation: %d %s", r.status, r.body)
		}
	}
}

func TestStartLoopbackOnly(t *testing.T) {
	core := New(Config{ClientID: "gw", ClientSecret: "s3cret"})
	srv, err := core.Start(":0")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Errorf("URL %s", srv.URL)
	}
	resp, err := http.Get(srv.URL + "/oidc/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("status %d", resp.StatusCode)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if core.Config().ClientID != "gw" || core.Config().ManagementResource != DefaultManagementResource {
		t.Errorf("config %+v", core.Config())
	}

	for _, addr := range []string{"0.0.0.0:0", "192.0.2.1:3001", "example.com:80", "[::]:0"} {
		if _, err := LoopbackAddr(addr); err == nil {
			t.Errorf("%s accepted", addr)
		}
	}
	for in, want := range map[string]string{":0": "127.0.0.1:0", "": "127.0.0.1:0", "127.0.0.1:3001": "127.0.0.1:3001", "[::1]:0": "[::1]:0", "localhost:0": "localhost:0"} {
		if got, err := LoopbackAddr(in); err != nil || got != want {
			t.Errorf("%q -> %q, %v", in, got, err)
		}
	}
}
