package caddymodule

import (
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/accountedge/caddy-account-api/accountapi/auth"
)

// The request variables set for an authenticated caller, read by later handlers and log
// fields as {http.vars.account_api.client_id} and {http.vars.account_api.scopes} (the dotted
// names need the long form: the {vars.*} shorthand stops at the dot).
const (
	varClientID = "account_api.client_id"
	varScopes   = "account_api.scopes"
)

// setAuthPlaceholders records the caller the way Caddy's own authentication handler does:
// {http.auth.user.id} is the user id, which Caddy's access log writes as user_id. It also sets
// the token's client id and its scopes (space-separated, as in OAuth).
func setAuthPlaceholders(r *http.Request, p auth.Principal) {
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set("http.auth.user.id", p.Subject)
	}
	caddyhttp.SetVar(r.Context(), varClientID, p.ClientID)
	caddyhttp.SetVar(r.Context(), varScopes, strings.Join(p.Scopes, " "))
}
