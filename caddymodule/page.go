package caddymodule

import (
	"fmt"
	"path"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/accountedge/caddy-account-api/accountapi/accountcenter"
	"github.com/accountedge/caddy-account-api/accountapi/api"
	"github.com/accountedge/caddy-account-api/accountapi/page"
)

// PageConfig configures the account page: a web page, embedded in the module, on which users sign
// in with the core and manage their account through the Account API on the same site.
type PageConfig struct {
	// Path is where the page is served. The core's Single Page application must list
	// Path + "/callback" as a redirect URI and Path as a post sign-out redirect URI (both as
	// absolute URLs on this site). Default: "/account".
	Path string `json:"path,omitempty"`

	// ClientID is the app ID of the core's Single Page application the page signs in with.
	// Required.
	ClientID string `json:"client_id,omitempty"`

	// Issuer is the core's OIDC issuer, e.g. "https://auth.example.com/oidc", for a site that
	// does not proxy the core's /oidc routes. Default: this site's own /oidc.
	Issuer string `json:"issuer,omitempty"`

	// Scopes requested at sign-in. Default: openid offline_access profile email phone
	// identities custom_data urn:logto:scope:sessions.
	Scopes []string `json:"scopes,omitempty"`
}

// provisionPage builds the page handler, which shows the account-center settings from source.
// configure has resolved the placeholders, set the default path and validated.
func (h *Handler) provisionPage(source accountcenter.Source) error {
	if h.Page == nil {
		return nil
	}
	p, err := page.New(page.Config{
		Path:          h.Page.Path,
		ClientID:      h.Page.ClientID,
		Issuer:        h.Page.Issuer,
		Scopes:        h.Page.Scopes,
		AccountCenter: source,
	})
	if err != nil {
		return fmt.Errorf("account_api: %w", err)
	}
	h.page = p
	return nil
}

// validate checks the page's settings: a client, a path the module does not already answer, an
// http(s) issuer.
func (p *PageConfig) validate(h *Handler) []error {
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("account_api: page "+format, args...))
	}
	if p.ClientID == "" {
		fail("needs client_id: the app ID of the core's Single Page application%s", h.emptyHint("page client_id"))
	}
	clean := strings.TrimRight(p.Path, "/")
	if !strings.HasPrefix(p.Path, "/") || clean == "" || path.Clean(clean) != clean || api.Owns(clean) ||
		clean == "/oidc" || strings.HasPrefix(strings.ToLower(clean), "/oidc/") ||
		(h.Webhook != nil && (h.Webhook.Path == clean || strings.HasPrefix(h.Webhook.Path, clean+"/"))) {
		fail("path %q must be a clean absolute path outside /api/my-account, /api/verifications, /oidc and the webhook", p.Path)
	}
	if p.Issuer != "" && !isHTTPURL(p.Issuer) {
		fail("issuer %q must be an absolute http:// or https:// URL", p.Issuer)
	}
	for _, s := range p.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\"") {
			fail("scopes: %q is not a scope", s)
		}
	}
	return errs
}

// unmarshalPage parses
//
//	page [<path>] {
//		path      <path>
//		client_id <SPA app id>
//		issuer    <url>
//		scopes    <scope...>
//	}
func (h *Handler) unmarshalPage(d *caddyfile.Dispenser) error {
	h.Page = new(PageConfig)
	if d.NextArg() {
		h.Page.Path = d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "path":
			err = oneArg(d, &h.Page.Path)
		case "client_id":
			err = oneArg(d, &h.Page.ClientID)
		case "issuer":
			err = oneArg(d, &h.Page.Issuer)
		case "scopes", "scope":
			scopes := d.RemainingArgs()
			if len(scopes) == 0 {
				return d.ArgErr()
			}
			h.Page.Scopes = append(h.Page.Scopes, scopes...)
		default:
			return d.Errf("unrecognized page option %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}
