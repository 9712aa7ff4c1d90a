package api

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/accountedge/caddy-account-api/accountapi/apierror"
)

// The request-body decoders take whatever a client sends. Whatever it is, they must answer with
// a 400 guard error or a value that survives re-encoding, and never panic.

func fuzzSeeds(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `[]`, `null`, `{"name":"Ada","avatar":"https://x.example/a.png","username":"ada","customData":{"a":[1,{"b":null}]}}`,
		`{"name":null,"avatar":null,"username":null}`, `{"avatar":"not a url"}`, `{"username":"1bad"}`,
		`{"customData":[1]}`, `{"name":42}`, `{"givenName":"A","address":{"country":"UK","locality":7}}`,
		`{"address":null}`, `{"a":1}{"b":2}`, `{"name":"\ud800"}`, `{"name":"x"`, "{\"name\":\"\x00\"}",
	} {
		f.Add([]byte(s))
	}
}

func checkGuardError(t *testing.T, err error) {
	t.Helper()
	e, ok := errors.AsType[*apierror.Error](err)
	if !ok || e.Status != 400 || e.Code != "guard.invalid_input" {
		t.Fatalf("want a 400 guard.invalid_input, got %v", err)
	}
	if _, err := json.Marshal(e); err != nil {
		t.Fatalf("error body does not encode: %v", err)
	}
}

func FuzzDecodeAccountPatch(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		obj, err := decodeObject(body)
		if err != nil {
			checkGuardError(t, err)
			return
		}
		p, err := decodeAccountPatch(obj)
		if err != nil {
			checkGuardError(t, err)
			return
		}
		update := map[string]any{}
		for _, m := range p.members {
			update[m.name] = m.value
		}
		if _, err := json.Marshal(update); err != nil {
			t.Fatalf("accepted patch does not encode: %v", err)
		}
		if p.username != nil && !usernamePattern.MatchString(*p.username) {
			t.Fatalf("username %q accepted", *p.username)
		}
	})
}

func FuzzDecodeProfilePatch(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		obj, err := decodeObject(body)
		if err != nil {
			checkGuardError(t, err)
			return
		}
		update, err := decodeProfilePatch(obj)
		if err != nil {
			checkGuardError(t, err)
			return
		}
		for k, v := range update {
			if _, isString := v.(string); !isString && k != "address" {
				t.Fatalf("claim %s accepted as %T", k, v)
			}
		}
	})
}
