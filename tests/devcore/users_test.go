package devcore

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

func TestGetUser(t *testing.T) {
	tc := newTestCore(t)
	tok := tc.m2mToken()
	r := tc.do(http.MethodGet, "/api/users/"+DemoUserID, tok, nil)
	if r.status != 200 || r.header.Get("Content-Type") != jsonContentType {
		t.Fatalf("%d %v %s", r.status, r.header, r.body)
	}
	want := "id,username,primaryEmail,primaryPhone,name,avatar,customData,identities,lastSignInAt,createdAt,updatedAt,profile,applicationId,cimdClientId,isSuspended,hasPassword"
	if got := strings.Join(keysOf(t, r.body), ","); got != want {
		t.Errorf("keys %s", got)
	}
	m := r.json(t)
	if m["id"] != DemoUserID || m["username"] != DemoUsername || m["primaryEmail"] != DemoEmail ||
		m["primaryPhone"] != nil || m["name"] != "Demo User" || m["applicationId"] != DemoAppID ||
		m["hasPassword"] != true || m["isSuspended"] != false {
		t.Errorf("%s", r.body)
	}
	if !regexp.MustCompile(`^[a-z0-9]{12}$`).MatchString(DemoUserID) || !regexp.MustCompile(`^[a-z0-9]{12}$`).MatchString(OtherUserID) {
		t.Error("seed user ids must be 12 lowercase alphanumerics")
	}

	r = tc.do(http.MethodGet, "/api/users/"+DemoUserID+"?includeSsoIdentities=true", tok, nil)
	if !strings.HasSuffix(string(r.body), `"hasPassword":true,"ssoIdentities":[]}`) {
		t.Errorf("ssoIdentities: %s", r.body)
	}
	// Exchange 36.
	r = tc.do(http.MethodGet, "/api/users/nope", tok, nil)
	if r.status != 404 || string(r.body) != `{"code":"entity.not_found","message":"The resource does not exist."}` {
		t.Errorf("404: %d %s", r.status, r.body)
	}
}

func TestPatchUser(t *testing.T) {
	tc := newTestCore(t)
	tok := tc.m2mToken()
	path := "/api/users/" + DemoUserID
	before := tc.do(http.MethodGet, path, tok, nil).json(t)

	// customData is replaced whole and comes back in jsonb key order.
	r := tc.do(http.MethodPatch, path, tok, `{"customData":{"theme":"dark","n":1},"name":"Ada","avatar":"https://example.com/a.png"}`)
	if r.status != 200 || !strings.Contains(string(r.body), `"customData":{"n":1,"theme":"dark"}`) {
		t.Fatalf("%d %s", r.status, r.body)
	}
	r = tc.do(http.MethodPatch, path, tok, map[string]any{"customData": map[string]string{"theme": "light"}})
	m := r.json(t)
	if compact(t, mustJSON(t, m["customData"])) != `{"theme":"light"}` || m["name"] != "Ada" {
		t.Errorf("replace: %s", r.body)
	}
	if m["updatedAt"].(float64) <= before["updatedAt"].(float64) || m["createdAt"] != before["createdAt"] {
		t.Errorf("timestamps: before %v after %v", before["updatedAt"], m["updatedAt"])
	}

	// null and "" are accepted; "" identifiers are stored as null.
	r = tc.do(http.MethodPatch, path, tok, map[string]any{"name": nil, "avatar": "", "primaryEmail": ""})
	m = r.json(t)
	if r.status != 200 || m["name"] != nil || m["avatar"] != "" || m["primaryEmail"] != nil {
		t.Errorf("null/empty: %d %s", r.status, r.body)
	}

	// Collisions: username (exchange 40), email case-insensitively, phone in both forms.
	r = tc.do(http.MethodPatch, path, tok, map[string]string{"username": OtherUsername})
	if r.status != 422 || string(r.body) != `{"code":"user.username_already_in_use","message":"This username is already in use."}` {
		t.Errorf("username: %d %s", r.status, r.body)
	}
	expectError(t, tc.do(http.MethodPatch, path, tok, map[string]string{"primaryEmail": strings.ToUpper(OtherEmail)}),
		422, "user.email_already_in_use", "This email is associated with an existing account.")
	if r := tc.do(http.MethodPatch, "/api/users/"+OtherUserID, tok, map[string]string{"primaryPhone": "61494277245"}); r.status != 200 {
		t.Fatalf("set phone: %d %s", r.status, r.body)
	}
	for _, phone := range []string{"61494277245", "610494277245"} {
		expectError(t, tc.do(http.MethodPatch, path, tok, map[string]string{"primaryPhone": phone}),
			422, "user.phone_already_in_use", "This phone number is associated with an existing account.")
	}
	// The leading-zero form is stored normalised.
	r = tc.do(http.MethodPatch, path, tok, map[string]string{"primaryPhone": "610401883386"})
	if r.json(t)["primaryPhone"] != "61401883386" {
		t.Errorf("phone normalisation: %s", r.body)
	}
	// Changing to its own current username is no collision.
	if r := tc.do(http.MethodPatch, path, tok, map[string]string{"username": DemoUsername}); r.status != 200 {
		t.Errorf("own username: %d %s", r.status, r.body)
	}

	// Username collisions follow usernamePolicy.caseSensitive.
	if r := tc.do(http.MethodPatch, path, tok, map[string]string{"username": "ORACLE"}); r.status != 200 {
		t.Errorf("case-sensitive policy: %d %s", r.status, r.body)
	}
	tc.do(http.MethodPatch, path, tok, map[string]string{"username": DemoUsername})
	tc.do(http.MethodPatch, "/api/sign-in-exp", tok, map[string]any{"usernamePolicy": map[string]any{"caseSensitive": false}})
	expectError(t, tc.do(http.MethodPatch, path, tok, map[string]string{"username": "ORACLE"}), 422, "user.username_already_in_use", "")

	// Too long.
	long := strings.Repeat("a", 129)
	for _, body := range []map[string]string{{"name": long}, {"username": long}, {"primaryEmail": long + "@x.io"}, {"primaryPhone": strings.Repeat("1", 129)}} {
		r := tc.do(http.MethodPatch, path, tok, body)
		if r.status != 422 {
			t.Errorf("%v: %d %s", body, r.status, r.body)
		}
	}
	expectError(t, tc.do(http.MethodPatch, path, tok, map[string]string{"name": long}),
		422, "entity.value_too_long", "The length of value is too long and exceeds the limit.")
	if r := tc.do(http.MethodPatch, path, tok, map[string]string{"name": strings.Repeat("é", 128)}); r.status != 200 {
		t.Errorf("128 characters must fit: %d", r.status)
	}

	// Empty update (exchange 27's answer), also with only unknown keys and with an empty body.
	for _, body := range []any{map[string]any{}, map[string]any{"bogus": 1}, ""} {
		r := tc.do(http.MethodPatch, path, tok, body)
		if r.status != 422 || string(r.body) != `{"code":"entity.invalid_input","message":"Invalid input. Value list must not be empty."}` {
			t.Errorf("empty %v: %d %s", body, r.status, r.body)
		}
	}

	// Wrong types and formats: 400 guard with details.
	r = tc.do(http.MethodPatch, path, tok, map[string]any{"customData": []int{1}})
	expectError(t, r, 400, "guard.invalid_input", "The request body is invalid.")
	if d := r.json(t)["details"]; d != `Error in key path "customData": (invalid_type) Expected object, received array` {
		t.Errorf("details %v", d)
	}
	r = tc.do(http.MethodPatch, path, tok, map[string]any{"primaryEmail": "not-an-email"})
	if string(r.body) != `{"code":"guard.invalid_input","data":{"issues":[{"validation":"regex","code":"invalid_string","message":"Invalid","path":["primaryEmail"]}],"name":"ZodError"},"details":"Error in key path \"primaryEmail\": (invalid_string) Invalid","message":"The request body is invalid."}` {
		t.Errorf("email regex: %s", r.body)
	}
	for _, body := range []any{
		map[string]any{"username": "1bad name"}, map[string]any{"primaryPhone": "+61 434-403-459"},
		map[string]any{"name": 5}, map[string]any{"avatar": "not a url"}, map[string]any{"profile": map[string]int{"nickname": 1}},
		[]int{1},
	} {
		expectError(t, tc.do(http.MethodPatch, path, tok, body), 400, "guard.invalid_input", "")
	}
	// Malformed JSON.
	if r := tc.do(http.MethodPatch, path, tok, "{"); r.status != 400 {
		t.Errorf("malformed: %d %s", r.status, r.body)
	}
	// Unknown user.
	expectError(t, tc.do(http.MethodPatch, "/api/users/nope", tok, map[string]string{"name": "x"}), 404, "entity.not_found", "")
}

func TestPatchProfile(t *testing.T) {
	tc := newTestCore(t)
	tok := tc.m2mToken()
	path := "/api/users/" + DemoUserID + "/profile"

	r := tc.do(http.MethodPatch, path, tok, map[string]any{"profile": map[string]any{
		"locale": "en-GB", "familyName": "Lovelace", "address": map[string]string{"country": "UK", "locality": "London"},
		"unknownKey": "x",
	}})
	if r.status != 200 || string(r.body) != `{"familyName":"Lovelace","locale":"en-GB","address":{"locality":"London","country":"UK"}}` {
		t.Fatalf("%d %s", r.status, r.body)
	}
	// Merge: new claims join, the provided address replaces the stored one whole.
	r = tc.do(http.MethodPatch, path, tok, map[string]any{"profile": map[string]any{
		"website": "https://example.com", "address": map[string]string{"region": "Greater London"},
	}})
	if string(r.body) != `{"familyName":"Lovelace","website":"https://example.com","locale":"en-GB","address":{"region":"Greater London"}}` {
		t.Errorf("merge: %s", r.body)
	}
	// The user shows the stored profile.
	u := tc.do(http.MethodGet, "/api/users/"+DemoUserID, tok, nil)
	if !strings.Contains(string(u.body), `"profile":{"familyName":"Lovelace","website":"https://example.com","locale":"en-GB","address":{"region":"Greater London"}}`) {
		t.Errorf("user: %s", u.body)
	}

	expectError(t, tc.do(http.MethodPatch, path, tok, map[string]any{}), 400, "guard.invalid_input", "")
	expectError(t, tc.do(http.MethodPatch, path, tok, map[string]any{"profile": map[string]any{"address": "x"}}), 400, "guard.invalid_input", "")
	expectError(t, tc.do(http.MethodPatch, "/api/users/nope/profile", tok, map[string]any{"profile": map[string]any{}}), 404, "entity.not_found", "")
}

func TestPasswords(t *testing.T) {
	tc := newTestCore(t)
	tok := tc.m2mToken()
	verify := func(id, password string) response {
		return tc.do(http.MethodPost, "/api/users/"+id+"/password/verify", tok, map[string]string{"password": password})
	}

	if r := verify(DemoUserID, DemoPassword); r.status != 204 || len(r.body) != 0 {
		t.Errorf("right: %d %s", r.status, r.body)
	}
	r := verify(DemoUserID, "wrong")
	if r.status != 422 || string(r.body) != `{"code":"session.invalid_credentials","message":"Incorrect account or password. Please check your input."}` {
		t.Errorf("wrong: %d %s", r.status, r.body)
	}
	expectError(t, verify("nope", "x"), 404, "entity.not_found", "The resource does not exist.")
	expectError(t, verify(DemoUserID, ""), 400, "guard.invalid_input", "")
	expectError(t, tc.do(http.MethodPost, "/api/users/"+DemoUserID+"/password/verify", tok, map[string]any{}), 400, "guard.invalid_input", "")

	// Management sets any password, no policy (step-up exchange 149).
	r = tc.do(http.MethodPatch, "/api/users/"+DemoUserID+"/password", tok, map[string]string{"password": "1"})
	if r.status != 200 || r.json(t)["hasPassword"] != true || r.json(t)["id"] != DemoUserID {
		t.Fatalf("set: %d %s", r.status, r.body)
	}
	if verify(DemoUserID, "1").status != 204 || verify(DemoUserID, DemoPassword).status != 422 {
		t.Error("new password not in force")
	}

	// A user without a password never verifies.
	r = tc.do(http.MethodPost, "/api/users", tok, map[string]string{"username": "nopass"})
	id := r.json(t)["id"].(string)
	if r.json(t)["hasPassword"] != false {
		t.Errorf("created: %s", r.body)
	}
	expectError(t, verify(id, "anything"), 422, "session.invalid_credentials", "")

	// The password is not stored in clear.
	tc.core.mu.Lock()
	defer tc.core.mu.Unlock()
	u := tc.core.users[OtherUserID]
	if strings.Contains(string(u.passwordHash), OtherPassword) || len(u.passwordSalt) == 0 {
		t.Error("password stored in clear")
	}
}

func TestCreateUser(t *testing.T) {
	tc := newTestCore(t)
	tok := tc.m2mToken()
	r := tc.do(http.MethodPost, "/api/users", tok, map[string]any{
		"username": "ada", "primaryEmail": "ada@example.com", "primaryPhone": "64210000000", "name": "Ada",
		"password": "pw", "customData": map[string]int{"b": 1, "a": 2}, "profile": map[string]string{"nickname": "ada"},
	})
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	m := r.json(t)
	if !regexp.MustCompile(`^[a-z0-9]{12}$`).MatchString(m["id"].(string)) || m["username"] != "ada" ||
		m["applicationId"] != nil || m["lastSignInAt"] != nil || m["hasPassword"] != true {
		t.Errorf("%s", r.body)
	}
	if g := tc.do(http.MethodGet, "/api/users/"+m["id"].(string), tok, nil); g.status != 200 {
		t.Errorf("get created: %d", g.status)
	}
	expectError(t, tc.do(http.MethodPost, "/api/users", tok, map[string]string{"username": DemoUsername}), 422, "user.username_already_in_use", "")
	expectError(t, tc.do(http.MethodPost, "/api/users", tok, map[string]string{"primaryEmail": "ADA@example.com"}), 422, "user.email_already_in_use", "")
	expectError(t, tc.do(http.MethodPost, "/api/users", tok, map[string]string{"primaryPhone": "640210000000"}), 422, "user.phone_already_in_use", "")
	expectError(t, tc.do(http.MethodPost, "/api/users", tok, map[string]any{"username": nil}), 400, "guard.invalid_input", "")
}

func TestIdentities(t *testing.T) {
	tc := newTestCore(t)
	tok := tc.m2mToken()
	path := "/api/users/" + DemoUserID + "/identities/mock-social"

	r := tc.do(http.MethodPut, path, tok, map[string]any{"userId": "social-1", "details": map[string]string{"name": "x", "id": "social-1"}})
	if r.status != 201 || string(r.body) != `{"mock-social":{"userId":"social-1","details":{"id":"social-1","name":"x"}}}` {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	r = tc.do(http.MethodPut, path, tok, map[string]any{"userId": "social-2"})
	if r.status != 200 || string(r.body) != `{"mock-social":{"userId":"social-2"}}` {
		t.Fatalf("replace: %d %s", r.status, r.body)
	}
	expectError(t, tc.do(http.MethodPut, "/api/users/"+OtherUserID+"/identities/mock-social", tok, map[string]any{"userId": "social-2"}),
		422, "user.identity_already_in_use", "")
	expectError(t, tc.do(http.MethodPut, path, tok, map[string]any{}), 400, "guard.invalid_input", "")

	r = tc.do(http.MethodDelete, path, tok, nil)
	if r.status != 200 || !strings.Contains(string(r.body), `"identities":{}`) {
		t.Errorf("delete: %d %s", r.status, r.body)
	}
	r = tc.do(http.MethodDelete, path, tok, nil)
	if r.status != 404 || string(r.body) != `{"code":"user.identity_not_exist","message":"The social account has not been registered yet."}` {
		t.Errorf("delete again: %d %s", r.status, r.body)
	}
	expectError(t, tc.do(http.MethodDelete, "/api/users/nope/identities/mock-social", tok, nil), 404, "entity.not_found", "")
}

// TestSuspension: PATCH /api/users/{userId}/is-suspended as Logto's: a required boolean, the
// user's refresh tokens revoked on suspension (access tokens live on), no sign-in while
// suspended.
func TestSuspension(t *testing.T) {
	tc := newTestCore(t)
	tok := tc.m2mToken()
	m := tc.do(http.MethodPost, "/dev/tokens", "", MintRequest{UserID: DemoUserID, Scope: "openid offline_access profile"}).json(t)
	minted := MintResponse{AccessToken: m["access_token"].(string), RefreshToken: m["refresh_token"].(string)}
	suspend := func(id string, body any) response {
		return tc.do(http.MethodPatch, "/api/users/"+id+"/is-suspended", tok, body)
	}
	expectError(t, suspend(DemoUserID, map[string]any{}), 400, "guard.invalid_input", "")
	expectError(t, suspend(DemoUserID, map[string]any{"isSuspended": "yes"}), 400, "guard.invalid_input", "")
	expectError(t, suspend("nope", map[string]any{"isSuspended": true}), 404, "entity.not_found", "The resource does not exist.")
	if r := suspend(DemoUserID, map[string]any{"isSuspended": true}); r.status != 200 || r.json(t)["isSuspended"] != true || r.json(t)["id"] != DemoUserID {
		t.Fatalf("suspend: %d %s", r.status, r.body)
	}
	if !tc.active(minted.AccessToken) || tc.active(minted.RefreshToken) {
		t.Fatal("suspension revokes the refresh tokens only, as Logto's revokeInstanceByUserId('refreshToken')")
	}
	b := newBrowser(tc)
	_, _, page := b.Send(http.MethodGet, authorizePath(nil), nil)
	action := formAction.FindStringSubmatch(page)[1]
	if status, _, _ := b.Send(http.MethodPost, action, url.Values{"identifier": {DemoUsername}, "password": {DemoPassword}}); status != http.StatusUnauthorized {
		t.Fatalf("a suspended user signed in: %d", status)
	}
	if r := suspend(DemoUserID, map[string]any{"isSuspended": false}); r.status != 200 || r.json(t)["isSuspended"] != false {
		t.Fatalf("reinstate: %d %s", r.status, r.body)
	}
}
