package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
	"golang.org/x/sync/singleflight"

	"github.com/accountedge/caddy-account-api/accountapi/apierror"
)

// This file is the only one that knows jwx (v2, end-of-life): a move to v3 stays here.

// JWTConfig configures local validation of JWT access tokens (RFC 9068).
type JWTConfig struct {
	// JWKSURL is where the core publishes its signing keys.
	JWKSURL string
	// Issuer must equal the token's iss exactly.
	Issuer string
	// Audiences: the token's aud must contain at least one of them.
	Audiences []string
	// Algorithms allowed in the token header.
	Algorithms []string
	// Leeway is the clock skew tolerated on nbf and iat; never on exp: a token is refused from its
	// exp on, as the answer check refuses every cached answer (a token is never served past it).
	Leeway time.Duration
	// RefreshInterval is the least time between two JWKS refreshes forced by an unknown kid.
	RefreshInterval time.Duration
	// HTTPClient fetches the JWKS; it should have a timeout.
	HTTPClient *http.Client
}

// DefaultAlgorithms are the asymmetric JWS algorithms accepted when none are configured; "none"
// and HMAC algorithms are never accepted.
var DefaultAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// JWTVerifier validates JWT access tokens against a JWKS that it keeps fresh.
type JWTVerifier struct {
	cfg   JWTConfig
	cache *jwk.Cache

	refresh     singleflight.Group
	mu          sync.Mutex
	lastRefresh time.Time
}

// NewJWTVerifier returns a verifier whose background JWKS refresh lives until ctx ends. It does
// not fetch the keys yet, so the module can start while the core is down.
func NewJWTVerifier(ctx context.Context, cfg JWTConfig) (*JWTVerifier, error) {
	if cfg.JWKSURL == "" || cfg.Issuer == "" || len(cfg.Audiences) == 0 {
		return nil, errors.New("JWT validation needs a JWKS URL, an issuer and at least one audience")
	}
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = DefaultAlgorithms
	}
	for _, alg := range cfg.Algorithms {
		if !slices.Contains(DefaultAlgorithms, alg) {
			return nil, fmt.Errorf("JWT algorithm %q is not allowed (want one of %v)", alg, DefaultAlgorithms)
		}
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = 30 * time.Second
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 5 * time.Second}
	}
	c := jwk.NewCache(ctx)
	if err := c.Register(cfg.JWKSURL, jwk.WithHTTPClient(cfg.HTTPClient)); err != nil {
		return nil, err
	}
	return &JWTVerifier{cfg: cfg, cache: c}, nil
}

// verify checks signature, header, issuer, audience and times. A token that fails any of them is
// an inactive answer; a JWKS that cannot be fetched is an error (fail closed).
func (v *JWTVerifier) verify(ctx context.Context, token string) (answer, error) {
	msg, err := jws.Parse([]byte(token))
	if err != nil || len(msg.Signatures()) != 1 {
		return answer{}, nil
	}
	hdr := msg.Signatures()[0].ProtectedHeaders()
	alg, kid := hdr.Algorithm().String(), hdr.KeyID()
	typ := strings.ToLower(hdr.Type())
	if !slices.Contains(v.cfg.Algorithms, alg) || kid == "" || (typ != "at+jwt" && typ != "application/at+jwt") {
		return answer{}, nil
	}
	key, err := v.key(ctx, kid)
	if err != nil {
		return answer{}, apierror.CoreUnavailable.WithCause(err)
	}
	if key == nil || (key.Algorithm().String() != "" && key.Algorithm().String() != alg) {
		return answer{}, nil
	}
	t, err := jwt.Parse([]byte(token),
		jwt.WithKey(jwa.SignatureAlgorithm(alg), key),
		jwt.WithValidate(true),
		jwt.WithIssuer(v.cfg.Issuer),
		jwt.WithAcceptableSkew(v.cfg.Leeway),
		jwt.WithRequiredClaim("exp"),
	)
	if err != nil || !slices.ContainsFunc(t.Audience(), func(a string) bool { return slices.Contains(v.cfg.Audiences, a) }) {
		return answer{}, nil
	}
	// jwx applies the skew to exp too: the leeway is for nbf and iat only.
	if !time.Now().Before(t.Expiration()) {
		return answer{}, nil
	}
	scope, _ := t.PrivateClaims()["scope"].(string)
	clientID, _ := t.PrivateClaims()["client_id"].(string)
	sub := t.Subject()
	// A client-credentials token has the client as its subject: no end user, no account.
	return newAnswer(sub != "" && sub != clientID, sub, "", grantOf(clientID, scope), t.Expiration().Unix()), nil
}

// key finds the signing key kid, refreshing the JWKS once (coalesced, rate-limited) when the kid
// is unknown: the core may have rotated its keys. nil, nil means no such key.
func (v *JWTVerifier) key(ctx context.Context, kid string) (jwk.Key, error) {
	set, err := v.cache.Get(ctx, v.cfg.JWKSURL)
	if err != nil {
		return nil, err
	}
	if k, ok := set.LookupKeyID(kid); ok {
		return k, nil
	}
	// The rate limit is decided inside the coalesced call: a request arriving while a refresh is
	// in flight joins it, and one arriving just after reads the refreshed set.
	res, err, _ := v.refresh.Do("jwks", func() (any, error) {
		v.mu.Lock()
		due := time.Since(v.lastRefresh) >= v.cfg.RefreshInterval
		if due {
			v.lastRefresh = time.Now()
		}
		v.mu.Unlock()
		if !due {
			return v.cache.Get(context.WithoutCancel(ctx), v.cfg.JWKSURL)
		}
		return v.cache.Refresh(context.WithoutCancel(ctx), v.cfg.JWKSURL)
	})
	if err != nil {
		return nil, err
	}
	if k, ok := res.(jwk.Set).LookupKeyID(kid); ok {
		return k, nil
	}
	return nil, nil
}
