package profile

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/accountedge/caddy-account-api/accountapi/accountcenter"
	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
)

type scopes string

func (s scopes) HasScope(x string) bool { return slices.Contains(strings.Fields(string(s)), x) }

func user() *identitycore.User {
	name, username := "Ada", "ada"
	var u identitycore.User
	_ = json.Unmarshal([]byte(`{"id":"u1","username":"ada","primaryEmail":null,"primaryPhone":null,
		"name":"Ada","avatar":null,"customData":{"a":1},"identities":{},"lastSignInAt":1,"createdAt":2,
		"updatedAt":3,"profile":{"givenName":"Ada","address":{"country":"UK"}},"applicationId":"demo-app",
		"cimdClientId":null,"isSuspended":false,"hasPassword":true}`), &u)
	u.Name, u.Username = &name, &username
	return &u
}

func all(c accountcenter.Control) accountcenter.Settings {
	s := accountcenter.Settings{Enabled: true, Fields: map[string]accountcenter.Control{}}
	for _, f := range accountcenter.Fields {
		s.Fields[f] = c
	}
	return s
}

func keys(t *testing.T, v View) []string {
	t.Helper()
	b, _ := json.Marshal(v)
	dec := json.NewDecoder(strings.NewReader(string(b)))
	var out []string
	_, _ = dec.Token()
	for dec.More() {
		k, _ := dec.Token()
		out = append(out, k.(string))
		var skip json.RawMessage
		_ = dec.Decode(&skip)
	}
	return out
}

func TestScopeFilterKeepsLogtoOrder(t *testing.T) {
	got := keys(t, Build(user(), scopes("openid profile"), all(accountcenter.Edit)))
	want := []string{"id", "username", "name", "avatar", "lastSignInAt", "createdAt", "updatedAt",
		"profile", "applicationId", "cimdClientId", "isSuspended", "hasPassword", "hasSecurityVerificationMethod"}
	if !slices.Equal(got, want) {
		t.Fatalf("keys = %v\nwant   %v", got, want) // exchange 11 of logto-samples.json
	}
	got = keys(t, Build(user(), scopes("openid"), all(accountcenter.Edit)))
	if !slices.Equal(got, []string{"id", "hasSecurityVerificationMethod"}) {
		t.Fatalf("openid only: %v", got)
	}
}

func TestFieldFilter(t *testing.T) {
	// Logto's account-center-reject test: only name ReadOnly, scopes profile email.
	s := accountcenter.Settings{Enabled: true, Fields: map[string]accountcenter.Control{"name": accountcenter.ReadOnly}}
	got := keys(t, Build(user(), scopes("openid profile email"), s))
	for _, absent := range []string{"avatar", "username", "primaryEmail", "primaryPhone", "identities", "profile", "hasPassword"} {
		if slices.Contains(got, absent) {
			t.Errorf("%s should be filtered out: %v", absent, got)
		}
	}
	if !slices.Contains(got, "name") || !slices.Contains(got, "createdAt") {
		t.Errorf("name and the unconditional members must stay: %v", got)
	}
}

func TestAddressNeedsItsScope(t *testing.T) {
	v := Build(user(), scopes("openid profile"), all(accountcenter.Edit))
	if b, _ := json.Marshal(v.Profile); strings.Contains(string(b), "address") {
		t.Fatalf("address shown without the address scope: %s", b)
	}
	v = Build(user(), scopes("openid profile address"), all(accountcenter.Edit))
	if b, _ := json.Marshal(v.Profile); !strings.Contains(string(b), `"country":"UK"`) {
		t.Fatalf("address missing with the address scope: %s", b)
	}
}

func TestNullMembersStayPresent(t *testing.T) {
	b, _ := json.Marshal(Build(user(), scopes("openid profile email phone"), all(accountcenter.ReadOnly)))
	for _, m := range []string{`"primaryEmail":null`, `"primaryPhone":null`, `"avatar":null`, `"cimdClientId":null`} {
		if !strings.Contains(string(b), m) {
			t.Errorf("%s missing from %s", m, b)
		}
	}
}
