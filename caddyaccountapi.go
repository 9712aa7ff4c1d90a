// Package caddyaccountapi is the module's root package: importing it registers the Caddy HTTP
// handler http.handlers.account_api (Caddyfile directive account_api), which is what
//
//	xcaddy build --with github.com/accountedge/caddy-account-api
//
// and xcaddy's plugin-development mode (xcaddy run / xcaddy build inside this repository) do.
// The handler itself lives in ./caddymodule (the Caddy glue) and ./accountapi (the API).
package caddyaccountapi

import (
	// Registers http.handlers.account_api and the account_api Caddyfile directive.
	_ "github.com/accountedge/caddy-account-api/caddymodule"
)
