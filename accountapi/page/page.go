// Package page serves the account page: a self-contained web page, embedded in the binary, on
// which users sign in with the identity core (OpenID Connect authorization code with PKCE) and
// manage their own account through the Account API the module serves on the same origin.
//
// It is plain ES modules, HTML and CSS under assets/, with no build step. The handler renders the
// HTML with the page's configuration (client id, OIDC endpoints, scopes and the account-center
// settings in force) in a meta element, so the page needs no inline script, and answers every
// response with a strict Content-Security-Policy.
package page

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/accountedge/caddy-account-api/accountapi/accountcenter"
)

//go:embed assets
var assets embed.FS

// DefaultScopes are what the page asks for: every scope the Account API routes it drives check
// (logto-account-api.md section 1.4), and offline_access so that the core may issue a refresh
// token for renewing the access token without a redirect.
var DefaultScopes = []string{"openid", "offline_access", "profile", "email", "phone", "identities", "custom_data", "urn:logto:scope:sessions"}

// Config configures the page.
type Config struct {
	// Path is where the page is served, e.g. "/account": the page itself, Path+"/callback" (the
	// redirect URI to register at the core), Path+"/social-callback" (the one to register at
	// social providers) and Path+"/assets/".
	Path string
	// ClientID is the core's Single Page application the page signs in with.
	ClientID string
	// Issuer is the core's OIDC issuer, e.g. "https://auth.example.com/oidc". Empty: the page's
	// own origin + "/oidc", for a site that proxies the core's routes (the usual setup).
	Issuer string
	// Scopes requested at sign-in. Default: DefaultScopes.
	Scopes []string
	// AccountCenter gives the settings the Account API enforces, so that the page hides what is
	// Off and shows what is ReadOnly without a way to edit it. Required.
	AccountCenter accountcenter.Source
}

// Handler serves the page.
type Handler struct {
	cfg      Config
	csp      string
	issuer   string // "" when it is the page's own origin + "/oidc"
	endpoint struct{ auth, token, endSession, revocation string }
	files    map[string]asset // by name under assets/
	index    *template.Template
	// version names the assets' content: they are served under Path/assets/<version>/, so a
	// browser may keep them for good, and a new binary's page is never mixed with old modules.
	version string
}

// asset is one embedded file, ready to serve.
type asset struct {
	body, gzipped []byte // gzipped is nil when compressing does not pay
	contentType   string
	etag          string
}

// New checks cfg and loads the embedded assets.
func New(cfg Config) (*Handler, error) {
	cfg.Path = strings.TrimRight(cfg.Path, "/")
	switch {
	case !strings.HasPrefix(cfg.Path, "/") || path.Clean(cfg.Path) != cfg.Path:
		return nil, fmt.Errorf("page path %q must be a clean absolute path", cfg.Path)
	case cfg.ClientID == "":
		return nil, errors.New("page needs client_id: the core's Single Page application")
	case cfg.AccountCenter == nil:
		return nil, errors.New("page needs the account-center settings")
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = DefaultScopes
	}
	h := &Handler{cfg: cfg, files: map[string]asset{}}

	issuer := strings.TrimRight(cfg.Issuer, "/")
	connect := "'self'"
	if issuer == "" {
		issuer = "/oidc"
	} else {
		u, err := url.Parse(issuer)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("page issuer %q must be an absolute http(s) URL", cfg.Issuer)
		}
		connect += " " + u.Scheme + "://" + u.Host
		h.issuer = issuer
	}
	h.endpoint.auth, h.endpoint.token = issuer+"/auth", issuer+"/token"
	h.endpoint.endSession, h.endpoint.revocation = issuer+"/session/end", issuer+"/token/revocation"
	// No inline script or style, no plugins, no framing, no <base>, forms only by script, and
	// no string reaches a DOM sink that could run it (Trusted Types with no policy). Avatars
	// are images at any https URL.
	h.csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https:; " +
		"connect-src " + connect + "; form-action 'none'; frame-ancestors 'none'; base-uri 'none'; " +
		"require-trusted-types-for 'script'; trusted-types 'none'"

	err := fs.WalkDir(assets, "assets", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := assets.ReadFile(name)
		if err != nil {
			return err
		}
		name = strings.TrimPrefix(name, "assets/")
		if name == "index.html" {
			h.index, err = template.New(name).Parse(string(body))
			return err
		}
		h.files[name] = newAsset(name, body)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("page assets: %w", err)
	}
	all := sha256.New()
	for _, name := range slices.Sorted(maps.Keys(h.files)) {
		fmt.Fprintf(all, "%s %s\n", name, h.files[name].etag)
	}
	h.version = base64.RawURLEncoding.EncodeToString(all.Sum(nil)[:9])
	return h, nil
}

func newAsset(name string, body []byte) asset {
	a := asset{body: body, contentType: mime.TypeByExtension(path.Ext(name))}
	switch path.Ext(name) {
	case ".js", ".mjs":
		a.contentType = "text/javascript; charset=utf-8"
	case ".css":
		a.contentType = "text/css; charset=utf-8"
	}
	sum := sha256.Sum256(body)
	a.etag = `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(body)
	zw.Close()
	if buf.Len() < len(body)*9/10 {
		a.gzipped = buf.Bytes()
	}
	return a
}

// Owns reports whether a request path belongs to the page.
func (h *Handler) Owns(p string) bool {
	return p == h.cfg.Path || strings.HasPrefix(p, h.cfg.Path+"/")
}

// ServeHTTP serves the page's HTML at Path, Path/, Path/callback (the sign-in's redirect URI) and
// Path/social-callback (the social providers' redirect URI), and its assets under
// Path/assets/<version>/. Everything else under Path is a 404.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Cross-Origin-Resource-Policy", "same-origin")

	rest := strings.TrimPrefix(r.URL.Path, h.cfg.Path)
	name, isAsset := strings.CutPrefix(rest, "/assets/"+h.version+"/")
	a, known := h.files[name]
	isPage := rest == "" || rest == "/" || rest == "/callback" || rest == "/social-callback"
	if !isAsset {
		// The document's policy: the assets are scripts and styles, which a CSP does not govern.
		hdr.Set("Content-Security-Policy", h.csp)
		hdr.Set("X-Frame-Options", "DENY")
		// The callback's URL carries the authorization code: never send it anywhere as a referrer.
		hdr.Set("Referrer-Policy", "no-referrer")
		hdr.Set("Cross-Origin-Opener-Policy", "same-origin")
		hdr.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
	}
	switch {
	case !isPage && !(isAsset && known):
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		hdr.Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	case isAsset:
		h.serveAsset(w, r, a)
	default:
		h.serveIndex(w, r)
	}
}

func (h *Handler) serveAsset(w http.ResponseWriter, r *http.Request, a asset) {
	hdr := w.Header()
	hdr.Set("Content-Type", a.contentType)
	hdr.Set("ETag", a.etag)
	// The URL names the content (the version), so it never changes.
	hdr.Set("Cache-Control", "public, max-age=31536000, immutable")
	hdr.Add("Vary", "Accept-Encoding")
	if inm := r.Header.Get("If-None-Match"); inm != "" && strings.Contains(inm, a.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := a.body
	if a.gzipped != nil && acceptsGzip(r) {
		hdr.Set("Content-Encoding", "gzip")
		body = a.gzipped
	}
	hdr.Set("Content-Length", fmt.Sprint(len(body)))
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		coding, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

// pageConfig is what the page's script reads from the meta element.
type pageConfig struct {
	Base               string                  `json:"base"`
	Issuer             string                  `json:"issuer,omitempty"` // absent: the page's origin + "/oidc"
	ClientID           string                  `json:"clientId"`
	Scopes             string                  `json:"scopes"`
	AuthorizationURL   string                  `json:"authorizationEndpoint"`
	TokenURL           string                  `json:"tokenEndpoint"`
	EndSessionURL      string                  `json:"endSessionEndpoint"`
	RevocationURL      string                  `json:"revocationEndpoint"`
	AccountCenter      *accountcenter.Settings `json:"accountCenter"` // null when the core could not say
	AccountCenterError string                  `json:"accountCenterError,omitempty"`
}

// serveIndex renders the HTML with the configuration and the settings in force now (the
// settings are cached by their source, so this costs no call to the core on most loads).
func (h *Handler) serveIndex(w http.ResponseWriter, r *http.Request) {
	cfg := pageConfig{
		Base: h.cfg.Path, Issuer: h.issuer, ClientID: h.cfg.ClientID, Scopes: strings.Join(h.cfg.Scopes, " "),
		AuthorizationURL: h.endpoint.auth, TokenURL: h.endpoint.token,
		EndSessionURL: h.endpoint.endSession, RevocationURL: h.endpoint.revocation,
	}
	if s, err := h.cfg.AccountCenter.Settings(r.Context()); err == nil {
		cfg.AccountCenter = &s
	} else {
		cfg.AccountCenterError = "unavailable"
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		http.Error(w, "500 internal server error", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	assetBase := h.cfg.Path + "/assets/" + h.version
	if err := h.index.Execute(&buf, struct{ Assets, Config string }{assetBase, string(raw)}); err != nil {
		http.Error(w, "500 internal server error", http.StatusInternalServerError)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("Content-Length", fmt.Sprint(buf.Len()))
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
}
