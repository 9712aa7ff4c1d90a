package devcore

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// tokenSample is the recorded answer of a live Logto 1.42 to one exchange of
// tests/testdata/logto/logto-samples-tokens.json.
func tokenSample(t *testing.T, title string) (int, json.RawMessage) {
	t.Helper()
	for _, ex := range loadSamplesFile(t, "logto-samples-tokens.json") {
		if strings.HasPrefix(ex.Title, title) {
			return ex.Response.Status, ex.Response.Body
		}
	}
	t.Fatalf("no sample %q", title)
	return 0, nil
}

// sampleKeys are the members of a recorded JSON object, in recorded order.
func sampleKeys(t *testing.T, body json.RawMessage) string {
	t.Helper()
	return strings.Join(keysOf(t, body), ",")
}

// TestTokenKindsIntrospectLikeLogto: refresh tokens, client-credentials tokens and JWTs come out
// of introspection exactly as a live Logto answers them.
func TestTokenKindsIntrospectLikeLogto(t *testing.T) {
	tc := newTestCore(t)
	r := tc.do(http.MethodPost, "/dev/tokens", "", MintRequest{UserID: DemoUserID, Scope: "openid offline_access profile"})
	access, refresh := r.json(t)["access_token"].(string), r.json(t)["refresh_token"].(string)
	if refresh == "" || refresh == access {
		t.Fatalf("offline_access must bring a refresh token: %s", r.body)
	}

	_, live := tokenSample(t, "Introspection: a live opaque access token")
	_, refreshSample := tokenSample(t, "Introspection: a refresh token (note")
	for _, c := range []struct {
		token string
		want  json.RawMessage
	}{{access, live}, {refresh, refreshSample}} {
		for _, hint := range []string{"", "access_token"} {
			form := url.Values{"token": {c.token}}
			if hint != "" {
				form.Set("token_type_hint", hint)
			}
			got := tc.form("/oidc/token/introspection", form, DefaultClientID, DefaultClientSecret)
			if got.status != 200 || sampleKeys(t, got.body) != sampleKeys(t, c.want) {
				t.Errorf("introspection %d %s; Logto's members %s", got.status, got.body, sampleKeys(t, c.want))
			}
		}
	}

	// Client credentials: no end user, so no sub.
	cc := tc.mint(MintRequest{ClientID: DefaultClientID, Scope: "all", Format: "client_credentials"})
	if m := tc.introspect(cc); m["active"] != true || m["sub"] != nil || m["client_id"] != DefaultClientID || m["token_type"] != "Bearer" {
		t.Errorf("client credentials: %v", m)
	}

	// JWTs and JWT-shaped strings: 400 unsupported_token_type, the recorded body.
	status, want := tokenSample(t, "Introspection: a forged JWT-shaped token")
	for _, tok := range []string{tc.m2mToken(), "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.x"} {
		got := tc.form("/oidc/token/introspection", url.Values{"token": {tok}}, DefaultClientID, DefaultClientSecret)
		if got.status != status || !jsonEqual(got.body, want) {
			t.Errorf("jwt: %d %s, Logto: %d %s", got.status, got.body, status, want)
		}
	}
}

// TestRefreshGrantAndRevocation: a refresh token buys an opaque access token, or a JWT for an API
// resource, and rotates; RFC 7009 revocation by the public client makes a token inactive.
func TestRefreshGrantAndRevocation(t *testing.T) {
	tc := newTestCore(t)
	r := tc.do(http.MethodPost, "/dev/tokens", "", MintRequest{UserID: DemoUserID, Scope: "openid offline_access"})
	refresh := r.json(t)["refresh_token"].(string)

	got := tc.form("/oidc/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {DemoAppID},
		"refresh_token": {refresh}, "resource": {"https://api.example.com"}}, "", "")
	if got.status != 200 {
		t.Fatalf("refresh grant: %d %s", got.status, got.body)
	}
	m := got.json(t)
	at, next := m["access_token"].(string), m["refresh_token"].(string)
	if !looksLikeJWT(at) || next == "" || next == refresh {
		t.Fatalf("a resource indicator gives a JWT and a rotated refresh token: %s", got.body)
	}
	// The old refresh token is consumed.
	if again := tc.form("/oidc/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {DemoAppID},
		"refresh_token": {refresh}}, "", ""); again.status != 400 {
		t.Fatalf("a consumed refresh token was accepted: %d", again.status)
	}
	got = tc.form("/oidc/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {DemoAppID}, "refresh_token": {next}}, "", "")
	opaque, _ := got.json(t)["access_token"].(string)
	if got.status != 200 || looksLikeJWT(opaque) || tc.introspect(opaque)["active"] != true {
		t.Fatalf("opaque refresh: %d %s", got.status, got.body)
	}

	status, _ := tokenSample(t, "Revocation of an access token by the public SPA client")
	rev := tc.form("/oidc/token/revocation", url.Values{"client_id": {DemoAppID}, "token": {opaque}, "token_type_hint": {"access_token"}}, "", "")
	if rev.status != status || len(rev.body) != 0 {
		t.Fatalf("revocation: %d %q", rev.status, rev.body)
	}
	if m := tc.introspect(opaque); !slices.Equal(keysOf(t, mustJSON(t, m)), []string{"active"}) || m["active"] != false {
		t.Fatalf("after revocation: %v", m)
	}
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}
