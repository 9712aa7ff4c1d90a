// Package accountcenter models Logto's account-center settings (the global switch and the
// per-field Off / ReadOnly / Edit controls) and where the module gets them from: the identity
// core, cached, or static configuration.
package accountcenter

import (
	"context"
	"fmt"
	"time"

	"github.com/accountedge/caddy-account-api/accountapi/cache"
)

// Control is the access an account-center field grants.
type Control string

// The three controls. A field that is missing, or holds any other value, behaves as Off.
const (
	Off      Control = "Off"
	ReadOnly Control = "ReadOnly"
	Edit     Control = "Edit"
)

// Fields known to Logto's account center (SEED and NOW).
var Fields = []string{
	"name", "avatar", "profile", "email", "phone", "password", "username", "social",
	"customData", "mfa", "passkey", "session", "trustedDevice",
}

// ParseControl accepts a control in Logto's spelling or in Caddyfile style (off, read_only,
// readonly, edit).
func ParseControl(s string) (Control, error) {
	switch s {
	case "Off", "off":
		return Off, nil
	case "ReadOnly", "read_only", "readonly", "read":
		return ReadOnly, nil
	case "Edit", "edit":
		return Edit, nil
	}
	return "", fmt.Errorf("unknown account-center control %q (want off, read_only or edit)", s)
}

// Settings are the account-center settings that gate the Account API.
type Settings struct {
	Enabled bool               `json:"enabled"`
	Fields  map[string]Control `json:"fields"`
}

// CanRead reports whether field is ReadOnly or Edit.
func (s Settings) CanRead(field string) bool {
	c := s.Fields[field]
	return c == ReadOnly || c == Edit
}

// CanEdit reports whether field is Edit.
func (s Settings) CanEdit(field string) bool { return s.Fields[field] == Edit }

// Source gives the settings in force.
type Source interface {
	Settings(ctx context.Context) (Settings, error)
}

// Static is a Source whose settings come from the configuration.
type Static Settings

// Settings implements Source.
func (s Static) Settings(context.Context) (Settings, error) { return Settings(s), nil }

// Cached is a Source that loads the settings from the identity core and keeps them for a TTL
// (accountapi/cache); while the core fails, the last settings serve for a bounded while more.
type Cached struct {
	value *cache.Value[Settings]
}

// NewCached returns a Cached source over load.
func NewCached(load func(context.Context) (Settings, error), ttl, staleIfError time.Duration, m cache.Metrics) *Cached {
	return &Cached{value: cache.NewValue("settings", load, ttl, staleIfError, m)}
}

// Settings implements Source.
func (c *Cached) Settings(ctx context.Context) (Settings, error) { return c.value.Get(ctx) }

// Invalidate drops the cached settings, e.g. after an admin changed them through the core.
func (c *Cached) Invalidate() { c.value.Invalidate() }

// Close stops the cache's background work.
func (c *Cached) Close() { c.value.Close() }
