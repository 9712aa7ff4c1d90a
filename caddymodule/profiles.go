package caddymodule

import (
	"context"
	"net/http"
	"path"
	"strings"
	"sync/atomic"

	"github.com/accountedge/caddy-account-api/accountapi/accountcenter"
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

// countLoads counts the loads of the account-center settings from the core, so that
// observedSettings can tell a cache hit from a miss.
func countLoads(n *atomic.Uint64, load func(context.Context) (accountcenter.Settings, error)) func(context.Context) (accountcenter.Settings, error) {
	return func(ctx context.Context) (accountcenter.Settings, error) {
		n.Add(1)
		return load(ctx)
	}
}

// observedSettings counts settings lookups as hits or misses. A lookup during which a load
// happened counts as a miss: exact when loads do not overlap, which they rarely do (one per TTL).
type observedSettings struct {
	accountcenter.Source
	loads *atomic.Uint64
}

func (o observedSettings) Settings(ctx context.Context) (accountcenter.Settings, error) {
	before := o.loads.Load()
	s, err := o.Source.Settings(ctx)
	cacheMetrics{}.CacheResult("local", "settings", o.loads.Load() == before)
	return s, err
}
