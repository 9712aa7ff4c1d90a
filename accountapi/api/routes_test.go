package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/accountedge/caddy-account-api/accountapi/accountcenter"
	"github.com/accountedge/caddy-account-api/accountapi/apierror"
	"github.com/accountedge/caddy-account-api/accountapi/auth"
)

// The checks of the route table on their own, including those only the routes being added use
// (read controls, "a??b" fields, fieldBy, 403 scopes).

func testCall(fields map[string]accountcenter.Control, scopes ...string) *call {
	return &call{
		w:         httptest.NewRecorder(),
		r:         httptest.NewRequest("GET", "/api/my-account", nil),
		principal: auth.Principal{Subject: benchUser, ClientID: "app1", Scopes: scopes},
		settings:  accountcenter.Settings{Enabled: true, Fields: fields},
	}
}

func wantRefusal(t *testing.T, what string, err error, want *apierror.Error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Errorf("%s: refused with %v, want no refusal", what, err)
		}
		return
	}
	got, ok := errors.AsType[*apierror.Error](err)
	if !ok || got.Status != want.Status || got.Code != want.Code {
		t.Errorf("%s: %v, want %d %s", what, err, want.Status, want.Code)
	}
}

func TestScopeCheckAnswersTheRowsStatus(t *testing.T) {
	h := newBench(t).h
	c := testCall(nil, "profile")
	wantRefusal(t, "has the scope", h.runCheck(scope("profile", 400), c), nil)
	wantRefusal(t, "400", h.runCheck(scope("identities", 400), c), apierror.ScopeMissing)
	wantRefusal(t, "401", h.runCheck(scope("identities", 401), c), apierror.ScopeMissingExplicit)
	wantRefusal(t, "403", h.runCheck(scope("identities", 403), c), apierror.Forbidden)
}

func TestFieldCheckControls(t *testing.T) {
	h := newBench(t).h
	c := testCall(map[string]accountcenter.Control{"mfa": accountcenter.ReadOnly, "session": accountcenter.Edit, "email": accountcenter.Off})
	for _, tc := range []struct {
		check check
		want  *apierror.Error
	}{
		{field(read, "mfa"), nil},
		{field(read, "session"), nil},
		{field(read, "email"), apierror.FieldNotEnabled},
		{field(read, "trustedDevice"), apierror.FieldNotEnabled}, // missing: Off
		{field(edit, "session"), nil},
		{field(edit, "mfa"), apierror.FieldNotEditable},
		{field(edit, "email"), apierror.FieldNotEditable},
	} {
		wantRefusal(t, tc.check.name+" "+string(tc.check.control), h.runCheck(tc.check, c), tc.want)
	}
}

// Logto's `fields.passkey ?? fields.mfa`: passkey when the settings have it at all, even Off.
func TestFieldFallback(t *testing.T) {
	h := newBench(t).h
	noPasskey := testCall(map[string]accountcenter.Control{"mfa": accountcenter.Edit})
	wantRefusal(t, "no passkey control: mfa decides", h.runCheck(field(edit, "passkey??mfa"), noPasskey), nil)
	passkeyOff := testCall(map[string]accountcenter.Control{"mfa": accountcenter.Edit, "passkey": accountcenter.Off})
	wantRefusal(t, "passkey Off wins over mfa Edit", h.runCheck(field(edit, "passkey??mfa"), passkeyOff), apierror.FieldNotEditable)
	passkeyRead := testCall(map[string]accountcenter.Control{"passkey": accountcenter.ReadOnly})
	wantRefusal(t, "passkey ReadOnly reads", h.runCheck(field(read, "passkey??mfa"), passkeyRead), nil)
}

// fieldBy names the field from the request, and may refuse before any field is checked (as
// DELETE /mfa-verifications/:id answers 400 not_found before its field check).
func TestFieldBy(t *testing.T) {
	h := newBench(t).h
	c := testCall(map[string]accountcenter.Control{"mfa": accountcenter.Edit})
	c.body = map[string]json.RawMessage{"type": json.RawMessage(`"WebAuthn"`)}
	byType := fieldBy(edit, func(c *call) (string, error) {
		switch string(c.body["type"]) {
		case `"WebAuthn"`:
			return "passkey??mfa", nil
		case `"Totp"`:
			return "mfa", nil
		}
		return "", apierror.RecordNotFound
	})
	wantRefusal(t, "WebAuthn, no passkey control", h.runCheck(byType, c), nil)
	c.settings.Fields["passkey"] = accountcenter.ReadOnly
	wantRefusal(t, "WebAuthn, passkey read-only", h.runCheck(byType, c), apierror.FieldNotEditable)
	c.body["type"] = json.RawMessage(`"Totp"`)
	wantRefusal(t, "Totp", h.runCheck(byType, c), nil)
	c.body["type"] = json.RawMessage(`"Other"`)
	wantRefusal(t, "the resolver's own refusal", h.runCheck(byType, c), apierror.RecordNotFound)
}

func TestWhenSkipsACheck(t *testing.T) {
	h := newBench(t).h
	c := testCall(nil)
	c.body = map[string]json.RawMessage{"name": json.RawMessage(`"Ada"`)}
	wantRefusal(t, "key absent", h.runCheck(scope("custom_data", 400).when(bodyHas("customData")), c), nil)
	c.body["customData"] = json.RawMessage(`null`)
	wantRefusal(t, "key present as null", h.runCheck(scope("custom_data", 400).when(bodyHas("customData")), c), apierror.ScopeMissing)
}

func TestLoadUserRefusesWithTheCoresAnswer(t *testing.T) {
	b := newBench(t)
	c := testCall(nil)
	b.core.fail["User"] = errors.New("connection reset")
	wantRefusal(t, "core down", b.h.runCheck(loadUser(false), c), apierror.CoreBadResponse)
	if c.user != nil {
		t.Error("a failed load left a user in the call")
	}
	delete(b.core.fail, "User")
	wantRefusal(t, "core up", b.h.runCheck(loadUser(true), c), nil)
	if c.user == nil || c.user.ID != benchUser {
		t.Errorf("loadUser kept %+v, want the caller", c.user)
	}
}

// A malformed row fails at start-up, not on the first request.
func TestValidRoute(t *testing.T) {
	serve := func(*call) error { return nil }
	body := jsonBody(decodePassword)
	for _, tc := range []struct {
		name string
		rt   route
		want string // part of the error; "" for a valid row
	}{
		{"valid", route{pattern: "GET /x", checks: []check{scope("a", 401), field(read, "mfa"), firstParty(), stepUp()}, serve: serve}, ""},
		{"scope status 404", route{pattern: "GET /x", checks: []check{scope("a", 404)}, serve: serve}, "status"},
		{"field without control", route{pattern: "GET /x", checks: []check{field("", "mfa")}, serve: serve}, "control"},
		{"field without name", route{pattern: "GET /x", checks: []check{field(edit, "")}, serve: serve}, "its field"},
		{"fieldBy without resolver", route{pattern: "GET /x", checks: []check{fieldBy(edit, nil)}, serve: serve}, "its field"},
		{"conditional step-up before the user", route{pattern: "GET /x", checks: []check{stepUpIfSecured(), loadUser(false)}, serve: serve}, "loadUser"},
		{"body condition without a guard", route{pattern: "GET /x", checks: []check{stepUp().when(bodyHas("a"))}, serve: serve}, "body"},
		{"body fields with a guard", route{pattern: "GET /x", guard: body, checks: []check{fieldsOfBody(edit, "a")}, serve: serve}, ""},
		{"zero check", route{pattern: "GET /x", checks: []check{{}}, serve: serve}, "constructor"},
		{"no work", route{pattern: "GET /x"}, "its work"},
	} {
		err := validRoute(tc.rt)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v, want valid", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want an error about %q", tc.name, err, tc.want)
		}
	}
}

// The table's own rows are valid (New would panic otherwise) and each pattern is served once.
func TestRouteTableIsServed(t *testing.T) {
	b := newBench(t)
	seen := map[string]bool{}
	for _, rt := range b.h.routeTable() {
		if seen[rt.pattern] {
			t.Errorf("pattern %s twice", rt.pattern)
		}
		seen[rt.pattern] = true
		method, path, _ := strings.Cut(rt.pattern, " ")
		path = strings.ReplaceAll(path, "{target}", "github")
		if a := b.do(request{method: method, path: path, token: "-"}); a.status != http.StatusUnauthorized {
			t.Errorf("%s without a token: %d %s, want the authenticator's 401", rt.pattern, a.status, a.code)
		}
	}
}
