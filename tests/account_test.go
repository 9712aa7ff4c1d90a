package tests

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/accountedge/caddy-account-api/tests/devcore"
	"github.com/accountedge/caddy-account-api/tests/harness"
)

var samples = func() func(t *testing.T) []harness.Exchange {
	return func(t *testing.T) []harness.Exchange { return harness.LoadSamples(t, "logto-samples.json") }
}()

func TestReadProfileScopes(t *testing.T) {
	e := newEnv(t, options{})
	ex := samples(t)
	r := e.do("GET", "/api/my-account", e.userToken("openid offline_access profile"), nil)
	matchSample(t, r, harness.Sample(t, ex, "GET profile, scopes openid offline_access profile"))

	r = e.do("GET", "/api/my-account", e.userToken("openid offline_access profile email phone identities custom_data"), nil)
	matchSample(t, r, harness.Sample(t, ex, "GET profile, scopes + email phone identities custom_data"))
	p := r.json(t)
	if p["id"] != devcore.DemoUserID || p["primaryEmail"] != devcore.DemoEmail || p["username"] != devcore.DemoUsername {
		t.Fatalf("profile %s", r.body)
	}

	r = e.do("GET", "/api/my-account", e.userToken("openid"), nil)
	if string(r.body) != `{"id":"`+devcore.DemoUserID+`","hasSecurityVerificationMethod":true}` {
		t.Fatalf("openid only: %s", r.body)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("account data must not be cached: %v", r.header)
	}
}

func TestUpdateAccount(t *testing.T) {
	e := newEnv(t, options{})
	ex := samples(t)
	all := e.userToken(allScopes)

	r := e.do("PATCH", "/api/my-account", all, map[string]any{"name": "Ada Lovelace", "avatar": "https://example.com/a.png"})
	matchSample(t, r, harness.Sample(t, ex, "PATCH name and avatar"))
	if p := r.json(t); p["name"] != "Ada Lovelace" || p["avatar"] != "https://example.com/a.png" {
		t.Fatalf("%s", r.body)
	}
	matchSample(t, e.do("PATCH", "/api/my-account", all, map[string]any{"avatar": "not a url"}),
		harness.Sample(t, ex, "PATCH avatar that is not a URL"))

	r = e.do("PATCH", "/api/my-account", all, map[string]any{"customData": map[string]any{"theme": "dark", "n": 1}})
	matchSample(t, r, harness.Sample(t, ex, "PATCH customData"))
	r = e.do("PATCH", "/api/my-account", all, map[string]any{"customData": map[string]any{"only": true}})
	if cd := r.json(t)["customData"].(map[string]any); len(cd) != 1 || cd["only"] != true {
		t.Fatalf("customData must be replaced, not merged: %v", cd)
	}
	matchSample(t, e.do("PATCH", "/api/my-account", e.userToken("openid profile"), map[string]any{"customData": map[string]any{"a": 1}}),
		harness.Sample(t, ex, "PATCH customData without custom_data scope"))

	// Step-up for username.
	matchSample(t, e.do("PATCH", "/api/my-account", all, map[string]any{"username": "ada_new"}),
		harness.Sample(t, ex, "PATCH username without a verification record"))
	matchSample(t, e.do("POST", "/api/verifications/password", all, map[string]any{"password": "wrong-password"}),
		harness.Sample(t, ex, "Verify password (wrong)"))
	r = e.do("POST", "/api/verifications/password", all, map[string]any{"password": devcore.DemoPassword})
	matchSample(t, r, harness.Sample(t, ex, "Verify password (right)"))
	vid := r.json(t)["verificationRecordId"].(string)

	r = e.do("PATCH", "/api/my-account", all, map[string]any{"username": "ada_lovelace"}, "logto-verification-id", vid)
	matchSample(t, r, harness.Sample(t, ex, "PATCH username with the verification record"))
	if r.json(t)["username"] != "ada_lovelace" {
		t.Fatalf("%s", r.body)
	}
	matchSample(t, e.do("PATCH", "/api/my-account", all, map[string]any{"username": "1bad name"}, "logto-verification-id", vid),
		harness.Sample(t, ex, "PATCH username that breaks the username regex"))
	matchSample(t, e.do("PATCH", "/api/my-account", all, map[string]any{"username": devcore.OtherUsername}, "logto-verification-id", vid),
		harness.Sample(t, ex, "PATCH username already used by another user"))
	matchSample(t, e.do("PATCH", "/api/my-account", all, map[string]any{"username": "ada_x"}, "logto-verification-id", "bogus"),
		harness.Sample(t, ex, "PATCH username with a bogus verification record id"))

	// A record proves only its own user.
	otherToken := e.token(devcore.MintRequest{UserID: devcore.OtherUserID, Scope: allScopes})
	expectError(t, e.do("PATCH", "/api/my-account", otherToken, map[string]any{"username": "stolen"}, "logto-verification-id", vid),
		http.StatusUnauthorized, "verification_record.permission_denied")

	// What Logto does with an update that names nothing.
	expectError(t, e.do("PATCH", "/api/my-account", all, map[string]any{"unknownKey": 1}),
		http.StatusUnprocessableEntity, "entity.invalid_input")
	// Bodies that are not objects, and wrong types.
	expectError(t, e.do("PATCH", "/api/my-account", all, "{not json"), http.StatusBadRequest, "guard.invalid_input")
	expectError(t, e.do("PATCH", "/api/my-account", all, "[1,2]"), http.StatusBadRequest, "guard.invalid_input")
	r = e.do("PATCH", "/api/my-account", all, map[string]any{"name": 42, "customData": []int{1}})
	expectError(t, r, http.StatusBadRequest, "guard.invalid_input")
	if issues := r.json(t)["data"].(map[string]any)["issues"].([]any); len(issues) != 2 {
		t.Fatalf("want one issue per bad member: %s", r.body)
	}
	// Over-long values are refused by the core and keep Logto's code.
	expectError(t, e.do("PATCH", "/api/my-account", all, map[string]any{"name": strings.Repeat("x", 129)}),
		http.StatusUnprocessableEntity, "entity.value_too_long")
	// Check order: field rules before scopes (reference §3.3 N2).
	expectError(t, e.do("PATCH", "/api/my-account", e.userToken("openid"), map[string]any{"name": "x"}),
		http.StatusBadRequest, "auth.unauthorized")
}

func TestUpdateProfileClaims(t *testing.T) {
	e := newEnv(t, options{})
	ex := samples(t)
	tok := e.userToken("openid profile")
	matchSample(t, e.do("PATCH", "/api/my-account/profile", tok, map[string]any{"givenName": "Ada", "familyName": "Lovelace", "locale": "en-GB"}),
		harness.Sample(t, ex, "PATCH profile claims (merge)"))
	matchSample(t, e.do("PATCH", "/api/my-account/profile", tok, map[string]any{"address": map[string]any{"country": "UK"}}),
		harness.Sample(t, ex, "PATCH profile address without address scope"))
	r := e.do("PATCH", "/api/my-account/profile", tok, map[string]any{"nickname": "ada", "unknownKey": "x"})
	matchSample(t, r, harness.Sample(t, ex, "PATCH profile with unknown key (stripped)"))
	if p := r.json(t); p["givenName"] != "Ada" || p["nickname"] != "ada" || p["unknownKey"] != nil {
		t.Fatalf("merge: %s", r.body)
	}
	withAddress := e.userToken("openid profile address")
	r = e.do("PATCH", "/api/my-account/profile", withAddress, map[string]any{"address": map[string]any{"country": "UK", "locality": "London"}})
	if addr, _ := r.json(t)["address"].(map[string]any); addr["locality"] != "London" {
		t.Fatalf("address: %s", r.body)
	}
	// The address stays hidden from tokens without its scope.
	if strings.Contains(string(e.do("GET", "/api/my-account", tok, nil).body), "London") {
		t.Fatal("address shown without the address scope")
	}
	expectError(t, e.do("PATCH", "/api/my-account/profile", tok, map[string]any{"givenName": nil}),
		http.StatusBadRequest, "guard.invalid_input")
}

func TestAccountCenterRules(t *testing.T) {
	e := newEnv(t, options{})
	ex := samples(t)
	m2m := e.m2mToken()
	tok := e.userToken(allScopes)
	// Warm the settings cache so the test proves the PATCH through Caddy refreshes it.
	if r := e.do("GET", "/api/my-account", tok, nil); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	change := harness.Sample(t, ex, "Management: name ReadOnly, avatar Off")
	r := e.call(e.caddy.URL(), "PATCH", "/api/account-center", m2m, json.RawMessage(change.Request.Body))
	if r.status != 200 {
		t.Fatalf("account-center PATCH through Caddy: %d %s", r.status, r.body)
	}
	r = e.do("GET", "/api/my-account", tok, nil)
	matchSample(t, r, harness.Sample(t, ex, "GET profile with name ReadOnly, avatar Off"))
	matchSample(t, e.do("PATCH", "/api/my-account", tok, map[string]any{"name": "X"}),
		harness.Sample(t, ex, "PATCH name while ReadOnly"))
	expectError(t, e.do("PATCH", "/api/my-account", tok, map[string]any{"avatar": "https://x.example/a.png"}),
		http.StatusBadRequest, "account_center.field_not_editable")

	r = e.call(e.caddy.URL(), "PATCH", "/api/account-center", m2m, map[string]any{"enabled": false})
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	matchSample(t, e.do("GET", "/api/my-account", tok, nil), harness.Sample(t, ex, "GET profile while account center disabled"))
	matchSample(t, e.do("POST", "/api/verifications/password", tok, map[string]any{"password": devcore.DemoPassword}),
		harness.Sample(t, ex, "Verify password while account center disabled"))
	// Authentication still comes first.
	expectError(t, e.do("GET", "/api/my-account", "", nil), http.StatusUnauthorized, "auth.authorization_header_missing")
}

func TestStaticAccountCenter(t *testing.T) {
	e := newEnv(t, options{extra: "account_center {\n enabled true\n fields {\n name read_only\n }\n }"})
	tok := e.userToken(allScopes)
	r := e.do("GET", "/api/my-account", tok, nil)
	p := r.json(t)
	if p["name"] == nil && !strings.Contains(string(r.body), `"name":`) || p["username"] != nil || p["primaryEmail"] != nil {
		t.Fatalf("static fields: %s", r.body)
	}
	expectError(t, e.do("PATCH", "/api/my-account", tok, map[string]any{"name": "x"}), http.StatusBadRequest, "account_center.field_not_editable")
	if n := e.stats().Management["GET /api/account-center"]; n != 0 {
		t.Fatalf("static settings must not be read from the core (%d reads)", n)
	}
}

func TestThirdPartyClients(t *testing.T) {
	e := newEnv(t, options{})
	third := e.token(devcore.MintRequest{Scope: allScopes, ClientID: devcore.ThirdPartyAppID})
	if r := e.do("GET", "/api/my-account", third, nil); r.status != 200 {
		t.Fatalf("reads stay open to third-party clients: %d %s", r.status, r.body)
	}
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"PATCH", "/api/my-account", map[string]any{"name": "x"}},
		{"PATCH", "/api/my-account/profile", map[string]any{"nickname": "x"}},
		{"POST", "/api/verifications/password", map[string]any{"password": devcore.DemoPassword}},
	} {
		expectError(t, e.do(c.method, c.path, third, c.body), http.StatusForbidden, "auth.third_party_application_forbidden")
	}
	first := e.token(devcore.MintRequest{Scope: allScopes, ClientID: devcore.FirstPartyWebAppID})
	if r := e.do("PATCH", "/api/my-account", first, map[string]any{"name": "ok"}); r.status != 200 {
		t.Fatalf("first-party app refused: %d %s", r.status, r.body)
	}
}

func TestUsernamePolicyAndLastIdentifier(t *testing.T) {
	e := newEnv(t, options{extra: "policy_cache_ttl 1ms"})
	m2m := e.m2mToken()
	r := e.call(e.caddy.URL(), "PATCH", "/api/sign-in-exp", m2m, map[string]any{"usernamePolicy": map[string]any{
		"caseSensitive": false, "minLength": 4, "maxLength": 20,
		"allowedChars": map[string]any{"lowercase": true, "uppercase": false, "numbers": true, "underscore": true}}})
	if r.status != 200 {
		t.Fatalf("sign-in-exp: %d %s", r.status, r.body)
	}
	tok := e.userToken(allScopes)
	vid := e.do("POST", "/api/verifications/password", tok, map[string]any{"password": devcore.DemoPassword}).json(t)["verificationRecordId"].(string)
	expectError(t, e.do("PATCH", "/api/my-account", tok, map[string]any{"username": "abc"}, "logto-verification-id", vid),
		http.StatusUnprocessableEntity, "user.username_too_short")
	expectError(t, e.do("PATCH", "/api/my-account", tok, map[string]any{"username": "Adamant"}, "logto-verification-id", vid),
		http.StatusUnprocessableEntity, "user.username_uppercase_not_allowed")
	// Case-insensitive policy: "ORACLE" collides with "oracle" (checked by the core).
	e.call(e.caddy.URL(), "PATCH", "/api/sign-in-exp", m2m, map[string]any{"usernamePolicy": map[string]any{"caseSensitive": false}})
	time.Sleep(20 * time.Millisecond) // policy_cache_ttl is 1ms
	expectError(t, e.do("PATCH", "/api/my-account", tok, map[string]any{"username": "ORACLE"}, "logto-verification-id", vid),
		http.StatusUnprocessableEntity, "user.username_already_in_use")

	// A user whose only identifier is the username cannot remove it.
	r = e.call(e.caddy.URL(), "POST", "/api/users", m2m, map[string]any{"username": "lonely", "password": "Lonely-Passw0rd!"})
	if r.status != 200 {
		t.Fatalf("create user: %d %s", r.status, r.body)
	}
	lonely := r.json(t)["id"].(string)
	ltok := e.token(devcore.MintRequest{UserID: lonely, Scope: allScopes})
	lvid := e.do("POST", "/api/verifications/password", ltok, map[string]any{"password": "Lonely-Passw0rd!"}).json(t)["verificationRecordId"].(string)
	expectError(t, e.do("PATCH", "/api/my-account", ltok, map[string]any{"username": nil}, "logto-verification-id", lvid),
		http.StatusBadRequest, "user.last_sign_in_method_required")
	// The demo user also has an email, so removing the username is fine.
	if r := e.do("PATCH", "/api/my-account", tok, map[string]any{"username": nil}, "logto-verification-id", vid); r.status != 200 || !strings.Contains(string(r.body), `"username":null`) {
		t.Fatalf("username removal: %d %s", r.status, r.body)
	}
}
