package page

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/accountedge/caddy-account-api/accountapi/accountcenter"
)

type failingSource struct{}

func (failingSource) Settings(context.Context) (accountcenter.Settings, error) {
	return accountcenter.Settings{}, errors.New("core down")
}

var settings = accountcenter.Static{Enabled: true, Fields: map[string]accountcenter.Control{
	"name": accountcenter.Edit, "avatar": accountcenter.ReadOnly,
}}

func newPage(t *testing.T, cfg Config) *Handler {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = "/account"
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "spa-app"
	}
	if cfg.AccountCenter == nil {
		cfg.AccountCenter = settings
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func get(h http.Handler, method, target string, header http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

var metaConfig = regexp.MustCompile(`<meta name="account-page-config" content="([^"]*)">`)

func pageConfigOf(t *testing.T, body string) map[string]any {
	t.Helper()
	m := metaConfig.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no config meta in %s", body)
	}
	var cfg map[string]any
	if err := json.Unmarshal([]byte(html.UnescapeString(m[1])), &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestIndexCarriesConfigAndStrictHeaders(t *testing.T) {
	h := newPage(t, Config{})
	for _, target := range []string{"/account", "/account/", "/account/callback?code=x&state=y", "/account/social-callback?code=z"} {
		rec := get(h, http.MethodGet, target, nil)
		if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
			t.Fatalf("%s: %d %q", target, rec.Code, rec.Header().Get("Content-Type"))
		}
		csp := rec.Header().Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self';", "style-src 'self';", "connect-src 'self';",
			"frame-ancestors 'none'", "base-uri 'none'", "require-trusted-types-for 'script'", "form-action 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", target, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("CSP allows inline or eval: %q", csp)
		}
		for k, want := range map[string]string{
			"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
			"Cache-Control": "no-store", "Cross-Origin-Opener-Policy": "same-origin",
		} {
			if got := rec.Header().Get(k); got != want {
				t.Errorf("%s: %s = %q, want %q", target, k, got, want)
			}
		}
		body := rec.Body.String()
		// No inline script: every <script> has a src, and no element has an event attribute.
		for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAllString(body, -1) {
			if !strings.Contains(tag, `src="/account/assets/`+h.version+`/`) {
				t.Errorf("inline script %s", tag)
			}
		}
		if regexp.MustCompile(`(?i)\son[a-z]+=`).MatchString(body) || strings.Contains(body, "style=") {
			t.Error("inline handler or style attribute in the HTML")
		}
		cfg := pageConfigOf(t, body)
		if cfg["clientId"] != "spa-app" || cfg["base"] != "/account" || cfg["authorizationEndpoint"] != "/oidc/auth" ||
			cfg["tokenEndpoint"] != "/oidc/token" || cfg["endSessionEndpoint"] != "/oidc/session/end" {
			t.Errorf("config %v", cfg)
		}
		if _, set := cfg["issuer"]; set {
			t.Errorf("issuer %v set for a same-origin core", cfg["issuer"])
		}
		if !strings.Contains(cfg["scopes"].(string), "openid") {
			t.Errorf("scopes %v", cfg["scopes"])
		}
		ac := cfg["accountCenter"].(map[string]any)
		if ac["enabled"] != true || ac["fields"].(map[string]any)["avatar"] != "ReadOnly" {
			t.Errorf("account center %v", ac)
		}
	}
}

func TestConfigIsEscaped(t *testing.T) {
	h := newPage(t, Config{ClientID: `x"><script>alert(1)</script>`})
	body := get(h, http.MethodGet, "/account", nil).Body.String()
	if strings.Contains(body, "<script>alert") {
		t.Fatal("client id injected markup")
	}
	if cfg := pageConfigOf(t, body); cfg["clientId"] != `x"><script>alert(1)</script>` {
		t.Fatalf("client id round trip: %v", cfg["clientId"])
	}
}

func TestIssuerElsewhere(t *testing.T) {
	h := newPage(t, Config{Issuer: "https://auth.example.com/oidc/"})
	rec := get(h, http.MethodGet, "/account", nil)
	cfg := pageConfigOf(t, rec.Body.String())
	if cfg["tokenEndpoint"] != "https://auth.example.com/oidc/token" || cfg["issuer"] != "https://auth.example.com/oidc" {
		t.Fatalf("token endpoint %v", cfg["tokenEndpoint"])
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self' https://auth.example.com;") {
		t.Fatalf("CSP %q does not allow the issuer's origin", csp)
	}
	if _, err := New(Config{Path: "/account", ClientID: "x", AccountCenter: settings, Issuer: "javascript:alert(1)"}); err == nil {
		t.Fatal("a non-http issuer was accepted")
	}
}

func TestSettingsUnavailable(t *testing.T) {
	h := newPage(t, Config{AccountCenter: failingSource{}})
	rec := get(h, http.MethodGet, "/account", nil)
	cfg := pageConfigOf(t, rec.Body.String())
	if rec.Code != http.StatusOK || cfg["accountCenter"] != nil || cfg["accountCenterError"] != "unavailable" {
		t.Fatalf("%d %v", rec.Code, cfg)
	}
	if strings.Contains(rec.Body.String(), "core down") {
		t.Fatal("the error's text reached the page")
	}
}

func TestAssets(t *testing.T) {
	h := newPage(t, Config{})
	base := "/account/assets/" + h.version
	rec := get(h, http.MethodGet, base+"/app.js", http.Header{"Accept-Encoding": {"br, gzip"}})
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "text/javascript; charset=utf-8" ||
		rec.Header().Get("Content-Encoding") != "gzip" || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("app.js: %d %v", rec.Code, rec.Header())
	}
	if cc := rec.Header().Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
		t.Fatalf("Cache-Control %q", cc)
	}
	zr, err := gzip.NewReader(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(zr)
	want, _ := assets.ReadFile("assets/app.js")
	if !bytes.Equal(plain, want) {
		t.Fatal("gzipped app.js differs from the file")
	}
	// Without gzip: the file itself. With the ETag: 304.
	rec = get(h, http.MethodGet, base+"/app.js", http.Header{"Accept-Encoding": {"gzip;q=0"}})
	if rec.Header().Get("Content-Encoding") != "" || !bytes.Equal(rec.Body.Bytes(), want) {
		t.Fatal("gzip;q=0 still got gzip")
	}
	etag := rec.Header().Get("ETag")
	if rec := get(h, http.MethodGet, base+"/app.js", http.Header{"If-None-Match": {etag}}); rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
		t.Fatalf("revalidation: %d", rec.Code)
	}
	if rec := get(h, http.MethodGet, base+"/style.css", nil); rec.Header().Get("Content-Type") != "text/css; charset=utf-8" {
		t.Fatalf("style.css: %q", rec.Header().Get("Content-Type"))
	}
	// Another version's URL is not this content: 404, never a stale or mixed page.
	if rec := get(h, http.MethodGet, "/account/assets/old-version/app.js", nil); rec.Code != http.StatusNotFound {
		t.Fatalf("another version: %d", rec.Code)
	}
	if rec := get(h, http.MethodGet, "/account/assets/app.js", nil); rec.Code != http.StatusNotFound {
		t.Fatalf("unversioned: %d", rec.Code)
	}
}

func TestUnknownPathsAndMethods(t *testing.T) {
	h := newPage(t, Config{})
	v := "/account/assets/" + h.version
	for _, target := range []string{v + "/index.html", v + "/../page.go", v + "/", "/account/other", v + "/vendor", "/account/callback/x"} {
		if rec := get(h, http.MethodGet, target, nil); rec.Code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", target, rec.Code)
		}
	}
	rec := get(h, http.MethodPost, "/account", nil)
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST: %d %q", rec.Code, rec.Header().Get("Allow"))
	}
	if rec := get(h, http.MethodHead, "/account", nil); rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Fatalf("HEAD: %d, %d bytes", rec.Code, rec.Body.Len())
	}
	for p, want := range map[string]bool{"/account": true, "/account/x": true, "/accounts": false, "/": false} {
		if h.Owns(p) != want {
			t.Errorf("Owns(%q) = %v", p, !want)
		}
	}
}

func TestConfigChecks(t *testing.T) {
	for name, cfg := range map[string]Config{
		"relative path": {Path: "account", ClientID: "x", AccountCenter: settings},
		"dirty path":    {Path: "/a/../account", ClientID: "x", AccountCenter: settings},
		"no client":     {Path: "/account", AccountCenter: settings},
		"no settings":   {Path: "/account", ClientID: "x"},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// The page's scripts never turn strings into markup: Trusted Types would refuse it at run time,
// so catch it here first.
func TestAssetsUseNoMarkupSinks(t *testing.T) {
	sinks := regexp.MustCompile(`\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write|\beval\(|new Function\(|localStorage`)
	for name := range newPage(t, Config{}).files {
		if !strings.HasSuffix(name, ".js") || strings.HasPrefix(name, "vendor/") {
			continue
		}
		body, _ := assets.ReadFile("assets/" + name)
		if m := sinks.Find(body); m != nil {
			t.Errorf("%s uses %s", name, m)
		}
	}
}
