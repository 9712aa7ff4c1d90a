package logto

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
)

// fakeLogto is a scripted core: a token endpoint that counts token requests and a user endpoint
// whose behaviour each test sets.
type fakeLogto struct {
	tokens     atomic.Int64
	tokenTTL   int
	userStatus func(authorization string) (int, string)
}

func (f *fakeLogto) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/oidc/token":
		id, secret, _ := r.BasicAuth()
		if id != "m2m" || secret != "s3cret" || r.FormValue("resource") != "https://default.logto.app/api" {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"invalid_client"}`)
			return
		}
		n := f.tokens.Add(1)
		fmt.Fprintf(w, `{"access_token":"t%d","expires_in":%d,"token_type":"Bearer","scope":"all"}`, n, f.tokenTTL)
	case r.URL.Path == "/oidc/token/introspection":
		if _, secret, _ := r.BasicAuth(); secret != "s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"invalid_client"}`)
			return
		}
		if strings.Count(r.FormValue("token"), ".") == 2 { // as Logto answers any JWT
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"code":"oidc.unsupported_token_type","message":"An OIDC error occurred: oidc.unsupported_token_type.","error":"unsupported_token_type","error_description":"Structured JWT Tokens cannot be introspected via the introspection_endpoint"}`)
			return
		}
		fmt.Fprint(w, `{"active":true,"sub":"u1","client_id":"demo-app","scope":"openid","exp":9999999999}`)
	case strings.HasPrefix(r.URL.Path, "/api/users/"):
		status, body := f.userStatus(r.Header.Get("Authorization"))
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}
}

func newClient(t *testing.T, f *fakeLogto, secret string) *Client {
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := New(Config{Endpoint: srv.URL, ClientID: "m2m", ClientSecret: secret, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const userJSON = `{"id":"u1","username":"ada","customData":{},"identities":{},"profile":{},"createdAt":1,"updatedAt":2,"isSuspended":false,"hasPassword":true}`

func TestManagementTokenIsReusedAndRenewedOn401(t *testing.T) {
	f := &fakeLogto{tokenTTL: 3600}
	var rejected atomic.Bool
	f.userStatus = func(auth string) (int, string) {
		if auth == "Bearer t2" && rejected.CompareAndSwap(false, true) {
			// The core rotated its keys: the cached token stops working.
			return http.StatusUnauthorized, `{"code":"auth.unauthorized"}`
		}
		return http.StatusOK, userJSON
	}
	c := newClient(t, f, "s3cret")
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		if _, err := c.User(ctx, "u1", false); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.tokens.Load(); n != 1 {
		t.Fatalf("token requests = %d, want 1 (reused)", n)
	}
	c.tokenMu.Lock()
	c.tokenExp = time.Now().Add(30 * time.Second) // inside the refresh margin
	c.tokenMu.Unlock()
	if _, err := c.User(ctx, "u1", false); err != nil { // gets t2, refused once, retries with t3
		t.Fatal(err)
	}
	if n := f.tokens.Load(); n != 3 {
		t.Fatalf("token requests = %d, want 3 (renewed near expiry, then after a 401)", n)
	}
}

func TestCoreFailuresAreUnavailable(t *testing.T) {
	for name, behave := range map[string]func(string) (int, string){
		"5xx":          func(string) (int, string) { return http.StatusBadGateway, "upstream down" },
		"refuses m2m":  func(string) (int, string) { return http.StatusForbidden, `{"code":"auth.forbidden"}` },
		"always 401":   func(string) (int, string) { return http.StatusUnauthorized, `{"code":"auth.unauthorized"}` },
		"garbage body": func(string) (int, string) { return http.StatusOK, "<html>" },
		"slow": func(string) (int, string) {
			time.Sleep(time.Second)
			return http.StatusOK, userJSON
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := &fakeLogto{tokenTTL: 3600, userStatus: behave}
			c := newClient(t, f, "s3cret")
			start := time.Now()
			_, err := c.User(context.Background(), "u1", false)
			if _, ok := errors.AsType[*identitycore.UnavailableError](err); !ok {
				t.Fatalf("got %v, want UnavailableError", err)
			}
			if time.Since(start) > 900*time.Millisecond {
				t.Fatalf("took %v: the timeout must bound the call", time.Since(start))
			}
		})
	}
}

func TestCoreRefusalsKeepLogtoCodes(t *testing.T) {
	f := &fakeLogto{tokenTTL: 3600, userStatus: func(string) (int, string) {
		return http.StatusUnprocessableEntity, `{"code":"user.username_already_in_use","message":"This username is already in use."}`
	}}
	c := newClient(t, f, "s3cret")
	_, err := c.UpdateUser(context.Background(), "u1", map[string]any{"username": "x"})
	ce, ok := errors.AsType[*identitycore.Error](err)
	if !ok || ce.Status != 422 || ce.Code != "user.username_already_in_use" {
		t.Fatalf("got %v", err)
	}
}

func TestNotImplementedIsAnAnswer(t *testing.T) {
	f := &fakeLogto{tokenTTL: 3600, userStatus: func(string) (int, string) {
		return http.StatusNotImplemented, `{"code":"connector.not_found","message":"Cannot find any available connector for type: Email.","data":{"type":"Email"}}`
	}}
	c := newClient(t, f, "s3cret")
	_, err := c.User(context.Background(), "u1", false)
	ce, ok := errors.AsType[*identitycore.Error](err)
	if !ok || ce.Status != http.StatusNotImplemented || ce.Code != "connector.not_found" {
		t.Fatalf("got %v, want the core's 501 connector.not_found", err)
	}
}

func TestIntrospectionWithWrongGatewayCredentials(t *testing.T) {
	f := &fakeLogto{tokenTTL: 3600}
	c := newClient(t, f, "wrong")
	_, err := c.Introspect(context.Background(), "tok")
	if _, ok := errors.AsType[*identitycore.UnavailableError](err); !ok {
		t.Fatalf("got %v: the gateway's own credentials failing is not the user's fault", err)
	}
	if strings.Contains(err.Error(), "wrong") || strings.Contains(err.Error(), "tok") {
		t.Fatalf("error leaks a secret: %v", err)
	}
	good := newClient(t, f, "s3cret")
	in, err := good.Introspect(context.Background(), "tok")
	if err != nil || !in.Active || in.Subject != "u1" {
		t.Fatalf("introspection: %+v %v", in, err)
	}
}

func TestBuildPathChecksEachID(t *testing.T) {
	p, err := buildPath("/api/users/{}/identities/{}", []string{"u1", "google-2"})
	if err != nil || p != "/api/users/u1/identities/google-2" {
		t.Fatalf("%q %v", p, err)
	}
	for _, ids := range [][]string{{".."}, {"."}, {""}, {"a/../b"}, {"a%2Fb"}, {"a?b"}} {
		if _, err := buildPath("/api/connectors/{}", ids); err != identitycore.ErrInvalidID {
			t.Fatalf("%q: %v", ids, err)
		}
	}
	if _, err := buildPath("/api/users/{}", nil); err == nil {
		t.Fatal("a template with an unfilled id was built")
	}
}

// TestUninspectableTokenIsAVerdict: the core's 400 unsupported_token_type (any JWT) is an answer
// about the token, inactive, not a core failure.
func TestUninspectableTokenIsAVerdict(t *testing.T) {
	c := newClient(t, &fakeLogto{tokenTTL: 3600}, "s3cret")
	in, err := c.Introspect(context.Background(), "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.x")
	if err != nil || in.Active {
		t.Fatalf("got %+v, %v; want an inactive answer", in, err)
	}
}
