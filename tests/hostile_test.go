package tests

import (
	"net/http"
	"strings"
	"testing"

	"github.com/accountedge/caddy-account-api/tests/devcore"
)

// TestHostileInput sends what an attacker would: odd path spellings, oversized bodies, headers
// and tokens, tokens in the query. None may reach the core's user data, and each gets a clean
// Logto-shaped answer.
func TestHostileInput(t *testing.T) {
	e := newEnv(t, options{extra: "max_body_size 1KiB"})
	tok := e.userToken(allScopes)
	base := e.caddy.URL()
	userReads := func() int64 { return e.stats().Management["GET /api/users/{userId}"] }

	t.Run("path spellings", func(t *testing.T) {
		before := userReads()
		for _, p := range []string{
			"/api//my-account", "/API/MY-ACCOUNT", "/api/My-Account/profile", "/api/my-account/",
			"/api/my-account/../my-account", "/api/my-account/./", "/api/my-account%2Fprofile",
			"/api/verifications//password", "/api/my-account/%2e%2e/my-account",
		} {
			r := e.call(base, "GET", p, tok, nil)
			if r.status == http.StatusOK || r.status/100 == 3 {
				t.Errorf("%s: %d %s", p, r.status, r.body)
				continue
			}
			if code := r.json(t)["code"]; code != "request.not_found" {
				t.Errorf("%s: %d %s, want a JSON 404 from the module", p, r.status, r.body)
			}
		}
		if n := userReads() - before; n != 0 {
			t.Fatalf("odd spellings read the user %d times", n)
		}
	})

	t.Run("body size", func(t *testing.T) {
		big := `{"name":"` + strings.Repeat("x", 2048) + `"}`
		expectError(t, e.do("PATCH", "/api/my-account", tok, big), http.StatusRequestEntityTooLarge, "request.payload_too_large")
		// Without Content-Length (chunked) the limit holds while reading.
		req, _ := http.NewRequest("PATCH", base+"/api/my-account", strings.NewReader(big))
		req.ContentLength = -1
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("chunked oversized body: %d", resp.StatusCode)
		}
	})

	t.Run("tokens", func(t *testing.T) {
		before := e.stats().Introspections
		expectError(t, e.do("GET", "/api/my-account?access_token="+tok, "", nil), http.StatusBadRequest, "request.token_in_query")
		expectError(t, e.do("GET", "/api/my-account", strings.Repeat("A", 5000), nil), http.StatusUnauthorized, "auth.unauthorized")
		r := e.call(base, "GET", "/api/my-account", tok, nil, "X-Padding", strings.Repeat("p", 2<<20))
		if r.status != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("2 MiB of headers: %d", r.status)
		}
		if n := e.stats().Introspections - before; n != 0 {
			t.Fatalf("hostile tokens reached the core %d times", n)
		}
	})

	t.Run("spoofed identity headers", func(t *testing.T) {
		// The module trusts nothing but the token: headers naming another user change nothing.
		r := e.do("GET", "/api/my-account", tok, nil, "X-User-Id", devcore.OtherUserID,
			"X-Forwarded-User", devcore.OtherUserID, "logto-user-id", devcore.OtherUserID)
		if r.status != 200 || r.json(t)["id"] != devcore.DemoUserID {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
}

// TestHostileIDsNeverReachTheCore sends ids that are not ids where the module would place them
// in a core URL: none reaches the core, "." and ".." least of all, and each gets Logto's answer
// for an unknown one.
func TestHostileIDsNeverReachTheCore(t *testing.T) {
	e := newEnv(t, options{})
	tok := e.userToken(allScopes)
	connectorReads := func() int64 { return e.stats().Management["GET /api/connectors/{id}"] }
	before := connectorReads()
	hostile := []string{"..", ".", "../users", "a/b", "../../api/users/" + devcore.DemoUserID, "%2e%2e", "a b",
		"ü", strings.Repeat("x", 129), "id?x=1", "id#frag", "id\x00", ""}
	for _, id := range hostile {
		r := e.do("POST", "/api/verifications/social", tok,
			map[string]any{"connectorId": id, "state": "s", "redirectUri": "https://app.example/cb"})
		expectError(t, r, http.StatusUnprocessableEntity, "session.invalid_connector_id")
	}
	if n := connectorReads() - before; n != 0 {
		t.Fatalf("hostile connector ids reached the core %d times", n)
	}
	// A well-formed id the core does not know is asked about, and refused the same way.
	expectError(t, e.do("POST", "/api/verifications/social", tok,
		map[string]any{"connectorId": "no-such-connector", "state": "s", "redirectUri": "https://app.example/cb"}),
		http.StatusUnprocessableEntity, "session.invalid_connector_id")
	if n := connectorReads() - before; n != 1 {
		t.Fatalf("a well-formed unknown id: %d core reads, want 1", n)
	}
	// Identity targets: never linked, never sent to the core.
	deletes := func() int64 { return e.stats().Management["DELETE /api/users/{userId}/identities/{target}"] }
	pw := e.passwordRecord(tok, devcore.DemoPassword)
	for _, target := range []string{"..", "a%2Fb", "%2e%2e", "a.b", strings.Repeat("t", 200)} {
		r := e.call(e.caddy.URL(), "DELETE", "/api/my-account/identities/"+target, tok, nil, vidHeader, pw)
		if r.status != http.StatusNotFound {
			t.Fatalf("target %q: %d %s", target, r.status, r.body)
		}
	}
	if n := deletes(); n != 0 {
		t.Fatalf("hostile targets reached the core %d times", n)
	}
	if logs := e.caddy.Logs(); strings.Contains(logs, "account api request failed") {
		t.Fatalf("hostile ids made the module log errors:\n%s", grepLines(logs, "request failed"))
	}
}
