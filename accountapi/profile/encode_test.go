package profile

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/accountedge/caddy-account-api/accountapi/accountcenter"
	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
)

// reflected is View without its MarshalJSON: encoding/json's own encoding of the same struct.
type reflected View

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	str := func(s string) *string { return &s }
	last := int64(1700000000123)
	odd := "quote\" back\\ <tag> & ctl\x01\t\n é \u2028\u2029 bad\xff end"
	users := []*identitycore.User{
		{ID: "u1"},
		{ID: "u2", Username: str("ada"), PrimaryEmail: str("ada@example.com"), PrimaryPhone: str("+4412345"),
			Name: str(odd), Avatar: str("https://x.test/a.png?a=1&b=2"), LastSignInAt: &last, CreatedAt: 1, UpdatedAt: 2,
			CustomData:    json.RawMessage(`{"plan":"pro","n":[1,2]}`),
			Identities:    map[string]json.RawMessage{"z": json.RawMessage(`{"userId":"1"}`), "a": json.RawMessage(`{"userId":"2"}`)},
			Profile:       json.RawMessage(`{"givenName":"Ada","address":{"country":"UK"}}`),
			ApplicationID: str("app"), IsSuspended: true, HasPassword: true},
	}
	all := scopeSet{"profile": true, "email": true, "phone": true, "custom_data": true, "identities": true, "address": true}
	fields := map[string]accountcenter.Control{}
	for _, f := range []string{"name", "avatar", "username", "email", "phone", "profile", "customData", "social", "password"} {
		fields[f] = accountcenter.ReadOnly
	}
	for _, u := range users {
		for _, scopes := range []scopeSet{{}, all, {"profile": true}} {
			for _, s := range []accountcenter.Settings{{Enabled: true}, {Enabled: true, Fields: fields}} {
				v := Build(u, scopes, s)
				want, err := json.Marshal(reflected(v))
				if err != nil {
					t.Fatal(err)
				}
				if got := v.AppendJSON(nil); !bytes.Equal(got, want) {
					t.Fatalf("AppendJSON:\n%s\nencoding/json:\n%s", got, want)
				}
				if got, _ := json.Marshal(v); !bytes.Equal(got, want) {
					t.Fatalf("json.Marshal(View):\n%s\nencoding/json:\n%s", got, want)
				}
			}
		}
	}
}

type scopeSet map[string]bool

func (s scopeSet) HasScope(scope string) bool { return s[scope] }
