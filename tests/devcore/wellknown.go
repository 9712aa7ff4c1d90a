package devcore

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
)

// handlePublicSignInExp is GET /api/.well-known/sign-in-exp: Logto's unauthenticated view of the
// sign-in experience, which sign-in and account pages read. It is the sign-in experience with
// the enabled social connectors' metadata and id (socialConnectors) and no SSO connectors.
func (c *Core) handlePublicSignInExp(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	body := slices.Clone(c.signInExp)
	social := []ordered{}
	for _, id := range slices.Sorted(maps.Keys(c.connectors)) {
		conn := c.connectors[id]
		if conn.Type != "Social" {
			continue
		}
		social = append(social, ordered{
			{"id", conn.ID}, {"target", conn.Target}, {"name", json.RawMessage(conn.Name)}, {"logo", conn.Logo},
			{"logoDark", conn.LogoDark}, {"platform", conn.Platform}, {"isStandard", conn.IsStandard},
		})
	}
	c.mu.Unlock()
	body = append(body, member{"socialConnectors", social}, member{"ssoConnectors", []any{}})
	writeJSON(w, http.StatusOK, body)
}
