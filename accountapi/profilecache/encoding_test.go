package profilecache

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
)

func ptr[T any](v T) *T { return &v }

// TestProfileRecordEncodingRoundTrip: what the shared store gives back is the record that was stored,
// field for field, with nil and empty kept apart.
func TestProfileRecordEncodingRoundTrip(t *testing.T) {
	// The encoding lists the fields one by one: a new field must be added to it (and below).
	if n := reflect.TypeFor[identitycore.User]().NumField(); n != 17 {
		t.Fatalf("identitycore.User has %d fields, the encoding knows 17: extend encodeUser and decodeUser", n)
	}
	full := &identitycore.User{
		ID: "u1", Username: ptr("alice"), PrimaryEmail: ptr("a@example.com"), PrimaryPhone: ptr(""),
		Name: ptr("Ällice \"quoted\""), Avatar: ptr("https://example.com/a.png"),
		CustomData: json.RawMessage(`{"k":[1,2,{"x":null}]}`),
		Identities: map[string]json.RawMessage{
			"github": json.RawMessage(`{"userId":"1","details":{}}`),
			"google": json.RawMessage(`{"userId":"2"}`),
		},
		LastSignInAt: ptr(int64(-1)), CreatedAt: 1_700_000_000_000, UpdatedAt: 1<<62 + 3,
		Profile: json.RawMessage(`{"givenName":"A"}`), ApplicationID: ptr("app"), CimdClientID: ptr("cimd"),
		IsSuspended: true, HasPassword: true,
		SSOIdentities: []json.RawMessage{json.RawMessage(`{"issuer":"i"}`), json.RawMessage(`[]`)},
	}
	for name, u := range map[string]*identitycore.User{
		"full":  full,
		"zero":  {},
		"empty": {ID: "u2", Name: ptr(""), CustomData: json.RawMessage{}, Identities: map[string]json.RawMessage{}, Profile: json.RawMessage(`{}`), SSOIdentities: []json.RawMessage{}, LastSignInAt: ptr(int64(0))},
		"nulls": {ID: "u3", CustomData: json.RawMessage(`null`), Identities: map[string]json.RawMessage{"x": nil}, SSOIdentities: []json.RawMessage{nil}},
		"flags": {ID: "u4", HasPassword: true},
	} {
		b, err := encodeUser(u)
		if err != nil {
			t.Fatalf("%s: encode: %v", name, err)
		}
		got, err := decodeUser(b)
		if err != nil {
			t.Fatalf("%s: decode: %v", name, err)
		}
		if !reflect.DeepEqual(got, u) {
			t.Errorf("%s: round trip changed the record:\n got %#v\nwant %#v", name, got, u)
		}
	}
}

// TestProfileRecordEncodingRejectsDamage: a truncated, extended or foreign entry (JSON from an older
// version) is refused, never half read, so it only costs a miss.
func TestProfileRecordEncodingRejectsDamage(t *testing.T) {
	b, _ := encodeUser(&identitycore.User{ID: "u1", Name: ptr("n"), CustomData: json.RawMessage(`{}`),
		Identities: map[string]json.RawMessage{"g": json.RawMessage(`{}`)}, SSOIdentities: []json.RawMessage{json.RawMessage(`{}`)}})
	for i := range len(b) {
		if u, err := decodeUser(b[:i]); err == nil {
			t.Errorf("truncated to %d of %d bytes: decoded %#v", i, len(b), u)
		}
	}
	oldJSON, _ := json.Marshal(&identitycore.User{ID: "u1"})
	for name, bad := range map[string][]byte{
		"trailing byte": append(append([]byte{}, b...), 0),
		"json":          oldJSON,
		"other version": append([]byte{userFormat + 1}, b[1:]...),
		"huge length":   {userFormat, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	} {
		if u, err := decodeUser(bad); err == nil {
			t.Errorf("%s: decoded %#v", name, u)
		}
	}
}
