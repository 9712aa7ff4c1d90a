package devcore

import (
	"net/http"
	"strings"
	"testing"
)

func TestManagementAuth(t *testing.T) {
	tc := newTestCore(t)
	path := "/api/users/" + DemoUserID

	// No header: exchange 44, byte for byte.
	r := tc.do(http.MethodGet, path, "", nil)
	if r.status != 401 || string(r.body) != `{"code":"auth.authorization_header_missing","message":"Authorization header is missing."}` {
		t.Errorf("missing: %d %s", r.status, r.body)
	}

	// Not Bearer.
	req := tc.request(http.MethodGet, path, "", nil)
	req.Header.Set("Authorization", "Basic abc")
	r = tc.send(req)
	if r.status != 401 || string(r.body) != `{"code":"auth.authorization_token_type_not_supported","data":{"supportedTypes":["Bearer"]},"message":"Authorization type is not supported."}` {
		t.Errorf("basic: %d %s", r.status, r.body)
	}

	unauthorized := "Unauthorized. Please check credentials and its scope."
	// Garbage, an opaque user token, a JWT for another audience, an expired JWT.
	expectError(t, tc.do(http.MethodGet, path, "not-a-real-token", nil), 401, "auth.unauthorized", unauthorized)
	opaque := tc.mint(MintRequest{UserID: DemoUserID, Scope: "all"})
	expectError(t, tc.do(http.MethodGet, path, opaque, nil), 401, "auth.unauthorized", unauthorized)
	other := tc.mint(MintRequest{UserID: DemoUserID, Scope: "all", Format: "jwt", Audience: "https://api.example.com"})
	expectError(t, tc.do(http.MethodGet, path, other, nil), 401, "auth.unauthorized", unauthorized)
	past := int64(-10)
	expired := tc.mint(MintRequest{UserID: DemoUserID, Scope: "all", Format: "jwt", Audience: DefaultManagementResource, ExpiresIn: &past})
	expectError(t, tc.do(http.MethodGet, path, expired, nil), 401, "auth.unauthorized", unauthorized)

	// A tampered signature.
	good := tc.m2mToken()
	tampered := good[:len(good)-4] + strings.Repeat("A", 4)
	if tampered == good {
		tampered = good[:len(good)-4] + "BBBB"
	}
	expectError(t, tc.do(http.MethodGet, path, tampered, nil), 401, "auth.unauthorized", unauthorized)

	// A token from another core (other keys) is refused.
	foreign := New(Config{})
	if tok, err := foreign.signAccessToken(httptestRequestFor(tc.url), DefaultClientID, DefaultClientID, "all", DefaultManagementResource, 3600e9); err != nil {
		t.Fatal(err)
	} else {
		expectError(t, tc.do(http.MethodGet, path, tok, nil), 401, "auth.unauthorized", unauthorized)
	}

	// Right audience, wrong scope: 403.
	noAll := tc.mint(MintRequest{UserID: DemoUserID, Scope: "read", Format: "jwt", Audience: DefaultManagementResource})
	expectError(t, tc.do(http.MethodGet, path, noAll, nil), 403, "auth.forbidden", "Forbidden. Please check your user roles and permissions.")

	// The M2M token works; so does a user JWT for the Management API with scope all.
	if r := tc.do(http.MethodGet, path, good, nil); r.status != 200 {
		t.Errorf("m2m: %d %s", r.status, r.body)
	}
	userJWT := tc.mint(MintRequest{UserID: DemoUserID, Scope: "all", Format: "jwt", Audience: DefaultManagementResource})
	if r := tc.do(http.MethodGet, path, userJWT, nil); r.status != 200 {
		t.Errorf("user jwt: %d %s", r.status, r.body)
	}
}

func httptestRequestFor(base string) *http.Request {
	r, _ := http.NewRequest(http.MethodGet, base+"/", nil)
	return r
}

func TestAccountCenter(t *testing.T) {
	tc := newTestCore(t)
	tok := tc.m2mToken()

	r := tc.do(http.MethodGet, "/api/account-center", tok, nil)
	want := `{"tenantId":"default","id":"default","enabled":true,"fields":{"name":"Edit","avatar":"Edit","profile":"Edit","email":"Edit","phone":"Edit","password":"Edit","username":"Edit","social":"Edit","customData":"Edit"},"webauthnRelatedOrigins":[],"deleteAccountUrl":null,"customCss":null,"profileFields":null}`
	if r.status != 200 || string(r.body) != want {
		t.Fatalf("GET: %d %s", r.status, r.body)
	}

	// fields replaces the whole object; enabled and other keys are left alone. Unknown field
	// keys (trustedDevice) are stripped.
	r = tc.do(http.MethodPatch, "/api/account-center", tok, map[string]any{
		"fields": map[string]string{"avatar": "Off", "name": "ReadOnly", "trustedDevice": "Edit"},
	})
	want = `{"tenantId":"default","id":"default","enabled":true,"fields":{"name":"ReadOnly","avatar":"Off"},"webauthnRelatedOrigins":[],"deleteAccountUrl":null,"customCss":null,"profileFields":null}`
	if r.status != 200 || string(r.body) != want {
		t.Fatalf("PATCH fields: %d %s", r.status, r.body)
	}

	// Other top-level keys; fields untouched.
	r = tc.do(http.MethodPatch, "/api/account-center", tok, map[string]any{
		"enabled":                false,
		"webauthnRelatedOrigins": []string{"https://a.example", "https://a.example", "https://b.example"},
		"deleteAccountUrl":       "https://example.com/delete",
		"customCss":              "body{}",
	})
	want = `{"tenantId":"default","id":"default","enabled":false,"fields":{"name":"ReadOnly","avatar":"Off"},"webauthnRelatedOrigins":["https://a.example","https://b.example"],"deleteAccountUrl":"https://example.com/delete","customCss":"body{}","profileFields":null}`
	if r.status != 200 || string(r.body) != want {
		t.Fatalf("PATCH others: %d %s", r.status, r.body)
	}
	// deleteAccountUrl "" is stored as null.
	r = tc.do(http.MethodPatch, "/api/account-center", tok, map[string]any{"deleteAccountUrl": ""})
	if r.json(t)["deleteAccountUrl"] != nil {
		t.Errorf("empty deleteAccountUrl: %s", r.body)
	}

	// Invalid enum value / wrong types: 400 guard, nothing stored.
	r = tc.do(http.MethodPatch, "/api/account-center", tok, map[string]any{"fields": map[string]string{"name": "Write"}})
	expectError(t, r, 400, "guard.invalid_input", "The request body is invalid.")
	if d := r.json(t)["details"]; d != `Error in key path "fields.name": (invalid_enum_value) Invalid enum value. Expected 'Off' | 'ReadOnly' | 'Edit', received 'Write'` {
		t.Errorf("details %v", d)
	}
	expectError(t, tc.do(http.MethodPatch, "/api/account-center", tok, map[string]any{"enabled": "yes"}), 400, "guard.invalid_input", "")
	expectError(t, tc.do(http.MethodPatch, "/api/account-center", tok, map[string]any{"deleteAccountUrl": "ftp://x"}), 400, "guard.invalid_input", "")
	expectError(t, tc.do(http.MethodPatch, "/api/account-center", tok,
		map[string]any{"profileFields": []map[string]string{{"name": "a"}, {"name": "a"}}}), 400, "request.invalid_input", "")
	if r := tc.do(http.MethodGet, "/api/account-center", tok, nil); r.json(t)["fields"].(map[string]any)["name"] != "ReadOnly" {
		t.Errorf("a refused PATCH changed the row: %s", r.body)
	}
}

func TestSignInExperience(t *testing.T) {
	tc := newTestCore(t)
	tok := tc.m2mToken()
	r := tc.do(http.MethodGet, "/api/sign-in-exp", tok, nil)
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	m := r.json(t)
	originalKeys := strings.Join(keysOf(t, r.body), ",")
	for _, k := range []string{"usernamePolicy", "passwordPolicy", "signUp", "emailBlocklistPolicy", "sentinelPolicy", "verificationCodePolicy", "mfa"} {
		if _, ok := m[k]; !ok {
			t.Errorf("missing %s", k)
		}
	}

	// Shallow merge: passwordPolicy replaced whole (step-up exchange 89), the rest unchanged.
	strict := map[string]any{"length": map[string]int{"min": 12, "max": 64}, "characterTypes": map[string]int{"min": 3},
		"rejects": map[string]any{"pwned": true, "repetitionAndSequence": true, "userInfo": true, "words": []string{"logto", "acme"}}}
	r = tc.do(http.MethodPatch, "/api/sign-in-exp", tok, map[string]any{"passwordPolicy": strict, "unknownKey": 1})
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	after := r.json(t)
	if pp := compact(t, mustJSON(t, after["passwordPolicy"])); pp != compact(t, mustJSON(t, strict)) {
		t.Errorf("passwordPolicy %s", pp)
	}
	if _, ok := after["unknownKey"]; ok {
		t.Error("unknown key stored")
	}
	if got := strings.Join(keysOf(t, r.body), ","); got != originalKeys {
		t.Errorf("keys changed: %s", got)
	}
	expectError(t, tc.do(http.MethodPatch, "/api/sign-in-exp", tok, map[string]any{"usernamePolicy": "strict"}), 400, "guard.invalid_input", "")
}

func TestApplications(t *testing.T) {
	tc := newTestCore(t)
	tok := tc.m2mToken()
	for id, want := range map[string]struct {
		typ        string
		thirdParty bool
	}{
		DemoAppID:          {"SPA", false},
		DefaultClientID:    {"MachineToMachine", false},
		ThirdPartyAppID:    {"Traditional", true},
		FirstPartyWebAppID: {"Traditional", false},
	} {
		r := tc.do(http.MethodGet, "/api/applications/"+id, tok, nil)
		if r.status != 200 {
			t.Fatalf("%s: %d %s", id, r.status, r.body)
		}
		m := r.json(t)
		if m["id"] != id || m["type"] != want.typ || m["isThirdParty"] != want.thirdParty {
			t.Errorf("%s: %s", id, r.body)
		}
	}
	expectError(t, tc.do(http.MethodGet, "/api/applications/nope", tok, nil), 404, "entity.not_found", "The resource does not exist.")
}

// TestAccountCenterFieldsAtStart: Config.AccountCenterFields (the quickstart's mfa and session)
// are set over the seed's fields; a field or control Logto does not have is refused.
func TestAccountCenterFieldsAtStart(t *testing.T) {
	tc := newTestCoreWith(t, Config{AccountCenterFields: map[string]string{"mfa": "Edit", "session": "ReadOnly", "name": "Off"}})
	fields := tc.do(http.MethodGet, "/api/account-center", tc.m2mToken(), nil).json(t)["fields"].(map[string]any)
	for k, want := range map[string]string{"mfa": "Edit", "session": "ReadOnly", "name": "Off", "email": "Edit"} {
		if fields[k] != want {
			t.Errorf("%s: %v, want %s", k, fields[k], want)
		}
	}
	for _, bad := range []map[string]string{{"mfa": "edit"}, {"trustedDevices": "Edit"}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New accepted %v", bad)
				}
			}()
			New(Config{AccountCenterFields: bad})
		}()
	}
}
