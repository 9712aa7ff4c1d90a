package auth

import (
	"errors"
	"strings"
	"testing"

	"github.com/accountedge/caddy-account-api/accountapi/apierror"
)

// FuzzBearerToken feeds arbitrary Authorization headers to the parser: it returns a token that
// can be sent to the core as is (no spaces, bounded), or one of the three Logto 401s.
func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"", "Bearer", "Bearer ", "Bearer abc", "bearer abc", "Basic Zm9vOmJhcg==",
		"Bearer a b", "Bearer\tabc", "BearerBearer x", "Bearer " + strings.Repeat("x", 5000), "Bearer \x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		token, err := bearerToken(header)
		if err != nil {
			e, ok := errors.AsType[*apierror.Error](err)
			if !ok || e.Status != 401 {
				t.Fatalf("%q: %v", header, err)
			}
			return
		}
		if token == "" || len(token) > maxTokenLength || strings.ContainsAny(token, " \t") ||
			!strings.HasPrefix(header, "Bearer ") || header != "Bearer "+token {
			t.Fatalf("%q gave token %q", header, token)
		}
	})
}

// FuzzJWTVerify feeds arbitrary strings shaped like JWTs to the verifier: none may be accepted
// (no key signed them), and none may panic or fail open.
func FuzzJWTVerify(f *testing.F) {
	s := newJWKSServer(f)
	a, _ := newJWTAuth(f, s)
	good := s.sign(f, s.keys[0], "at+jwt", nil)
	parts := strings.Split(good, ".")
	for _, seed := range []string{good[:len(good)-2] + "xx", parts[0] + ".e30.", "eyJhbGciOiJub25lIn0.e30.", "a.b.c", "..",
		parts[0] + "." + parts[1] + ".", "eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiYXQrand0In0." + parts[1] + "." + parts[2]} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		if !looksLikeJWT(token) {
			return
		}
		ans, err := a.cfg.JWT.verify(t.Context(), token)
		if err == nil && ans.active() {
			t.Fatalf("forged token %q accepted", token)
		}
	})
}
