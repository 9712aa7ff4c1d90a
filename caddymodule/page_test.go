package caddymodule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func TestUnmarshalPage(t *testing.T) {
	var h Handler
	d := caddyfile.NewTestDispenser(`account_api http://core {
		page /me {
			client_id spa
			issuer https://auth.example/oidc
			scopes openid profile
			scopes email
		}
	}`)
	if err := h.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	if p := h.Page; p == nil || p.Path != "/me" || p.ClientID != "spa" || p.Issuer != "https://auth.example/oidc" ||
		strings.Join(p.Scopes, " ") != "openid profile email" {
		t.Fatalf("page %+v", h.Page)
	}
	for name, input := range map[string]string{
		"unknown option": "account_api {\n page {\n colour blue\n }\n}",
		"two paths":      "account_api {\n page /a /b\n}",
		"empty scopes":   "account_api {\n page {\n scopes\n }\n}",
		"two client ids": "account_api {\n page {\n client_id a b\n }\n}",
	} {
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err == nil {
			t.Errorf("%s: accepted %q", name, input)
		}
	}
}

func TestValidatePagePath(t *testing.T) {
	for _, p := range []string{"/api/my-account", "/api/my-account/page", "/API/Verifications/x", "/oidc/account", "/hooks", "/"} {
		h := Handler{CoreURL: "http://core", ClientID: "a", ClientSecret: "b", Page: &PageConfig{Path: p, ClientID: "spa"},
			Webhook: &WebhookConfig{Path: "/hooks/logto", SigningKeys: []string{"k"}}}
		if err := h.Validate(); err == nil {
			t.Errorf("page path %q accepted", p)
		}
	}
	h := Handler{CoreURL: "http://core", ClientID: "a", ClientSecret: "b", Page: &PageConfig{Path: "/account", ClientID: "spa"}}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
}

// nextHandler records that the module passed a request on.
type nextHandler struct{ called bool }

func (n *nextHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	n.called = true
	w.WriteHeader(http.StatusTeapot)
	return nil
}

// The page is served by the module, with the account-center settings the module enforces; other
// paths still go to the next handler.
func TestServeHTTPServesThePage(t *testing.T) {
	enabled := true
	h := Handler{CoreURL: "http://127.0.0.1:1", ClientID: "m2m", ClientSecret: "x",
		AccountCenter: &AccountCenterConfig{Enabled: &enabled, Fields: map[string]string{"phone": "off", "avatar": "read_only"}},
		Page:          &PageConfig{ClientID: "{env.ACCOUNT_PAGE_TEST_CLIENT}"}}
	t.Setenv("ACCOUNT_PAGE_TEST_CLIENT", "spa-from-env")
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	if err := h.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	defer h.Cleanup()
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}

	rec := httptest.NewRecorder()
	next := &nextHandler{}
	if err := h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/account", nil), next); err != nil {
		t.Fatal(err)
	}
	body := rec.Body.String()
	if next.called || rec.Code != http.StatusOK || rec.Header().Get("Content-Security-Policy") == "" {
		t.Fatalf("page: %d, next called %v", rec.Code, next.called)
	}
	for _, want := range []string{"spa-from-env", "&#34;avatar&#34;:&#34;ReadOnly&#34;", "&#34;phone&#34;:&#34;Off&#34;"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	for _, p := range []string{"/accounts", "/other"} {
		next = &nextHandler{}
		if err := h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, p, nil), next); err != nil || !next.called {
			t.Errorf("%s did not reach the next handler", p)
		}
	}
}

var _ caddyhttp.Handler = (*nextHandler)(nil)
