package devcore

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
)

// JWTs are signed and verified with the standard library: the dev core only ever handles its own
// RS256 tokens, and keeping jwx out of it means the module's jwx-based verifier is checked against
// an independent implementation.

// signingKey is one RSA key of the core's JWKS.
type signingKey struct {
	kid string
	key *rsa.PrivateKey
}

func newSigningKey() (*signingKey, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	return &signingKey{kid: randomString(idAlphabet, 16), key: k}, nil
}

// publicJWK is the public half as published at /oidc/jwks.
type publicJWK struct {
	Kty string `json:"kty"`
	Use string `json:"use"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	E   string `json:"e"`
	N   string `json:"n"`
}

func (k *signingKey) public() publicJWK {
	return publicJWK{
		Kty: "RSA",
		Use: "sig",
		Kid: k.kid,
		Alg: "RS256",
		E:   b64(big.NewInt(int64(k.key.E)).Bytes()),
		N:   b64(k.key.N.Bytes()),
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwtHeader is the JOSE header of an access token (RFC 9068: typ at+jwt).
type jwtHeader struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
	Kid string `json:"kid"`
}

// accessClaims are an access token's claims, in oidc-provider's order.
type accessClaims struct {
	JTI      string `json:"jti"`
	Sub      string `json:"sub"`
	IAT      int64  `json:"iat"`
	EXP      int64  `json:"exp"`
	Scope    string `json:"scope,omitempty"`
	ClientID string `json:"client_id"`
	Iss      string `json:"iss"`
	Aud      string `json:"aud"`
}

// sign returns a compact RS256 JWS of access token claims (typ at+jwt).
func (k *signingKey) sign(claims accessClaims) (string, error) { return k.signTyped("at+jwt", claims) }

// idClaims are an ID token's claims (the part end-session reads).
type idClaims struct {
	Sub string `json:"sub"`
	Aud string `json:"aud"`
	IAT int64  `json:"iat"`
	EXP int64  `json:"exp"`
	Iss string `json:"iss"`
}

// signTyped returns a compact RS256 JWS of claims with the given typ.
func (k *signingKey) signTyped(typ string, claims any) (string, error) {
	h, err := json.Marshal(jwtHeader{Alg: "RS256", Typ: typ, Kid: k.kid})
	if err != nil {
		return "", err
	}
	p, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := b64(h) + "." + b64(p)
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, k.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return input + "." + b64(sig), nil
}

// verifiedClaims is what the Management API's auth reads from a token. aud may be a string or a
// list in a JWT, so it is decoded loosely.
type verifiedClaims struct {
	Sub   string          `json:"sub"`
	Iss   string          `json:"iss"`
	Aud   json.RawMessage `json:"aud"`
	Exp   *int64          `json:"exp"`
	Scope string          `json:"scope"`
}

func (c verifiedClaims) hasAudience(aud string) bool {
	var one string
	if json.Unmarshal(c.Aud, &one) == nil {
		return one == aud
	}
	var many []string
	if json.Unmarshal(c.Aud, &many) == nil {
		for _, a := range many {
			if a == aud {
				return true
			}
		}
	}
	return false
}

// looksLikeJWT tells a compact JWS from an opaque token (which never contains a dot).
func looksLikeJWT(token string) bool { return strings.Count(token, ".") == 2 }

// verifyJWT checks an RS256 signature against the given keys (by kid) and returns the claims.
// Times, issuer and audience are the caller's business.
func verifyJWT(token string, keys []*signingKey) (verifiedClaims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return verifiedClaims{}, errors.New("not a compact JWS")
	}
	var hdr jwtHeader
	if err := decodeSegment(parts[0], &hdr); err != nil {
		return verifiedClaims{}, err
	}
	if hdr.Alg != "RS256" {
		return verifiedClaims{}, errors.New("unexpected alg")
	}
	var key *signingKey
	for _, k := range keys {
		if k.kid == hdr.Kid {
			key = k
		}
	}
	if key == nil {
		return verifiedClaims{}, errors.New("unknown kid")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return verifiedClaims{}, err
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&key.key.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		return verifiedClaims{}, err
	}
	var claims verifiedClaims
	if err := decodeSegment(parts[1], &claims); err != nil {
		return verifiedClaims{}, err
	}
	return claims, nil
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// Alphabets for generated identifiers.
const (
	// idAlphabet is Logto's id alphabet: user ids are 12 characters of it.
	idAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
)

// randomString returns n characters of alphabet chosen uniformly with crypto/rand.
func randomString(alphabet string, n int) string {
	out := make([]byte, n)
	max := big.NewInt(int64(len(alphabet)))
	for i := range out {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic(err) // crypto/rand does not fail on supported platforms
		}
		out[i] = alphabet[v.Int64()]
	}
	return string(out)
}

// opaqueToken returns a random opaque access token: 32 bytes as 43 base64url characters, the
// length of oidc-provider's opaque tokens.
func opaqueToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b64(b)
}
