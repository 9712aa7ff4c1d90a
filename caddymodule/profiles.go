package caddymodule

import (
	"net/http"
	"path"
	"strings"
)

// managementUserWrite returns the user id of a Management API request that may change a user
// (a write to /api/users/{id} or below it), or "".
func managementUserWrite(r *http.Request) string {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return ""
	}
	if !strings.HasPrefix(r.URL.Path, "/api/") {
		return ""
	}
	// As the core's router reads it: a spelling with // or dot segments still names the user.
	rest, ok := strings.CutPrefix(path.Clean(r.URL.Path), "/api/users/")
	if !ok || rest == "" {
		return ""
	}
	id, sub, _ := strings.Cut(rest, "/")
	if sub == "password/verify" { // a check, not a change
		return ""
	}
	return id
}
