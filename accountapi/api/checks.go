package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/accountedge/caddy-account-api/accountapi/apierror"
	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
)

// verificationHeader carries the step-up verification record id.
const verificationHeader = "logto-verification-id"

// builtInFirstParty are Logto's own clients, first-party without a lookup (reference §1.5).
var builtInFirstParty = map[string]bool{"demo-app": true, "account-center": true, "device-demo-app": true}

// appAnswer is a cached first-party verdict on one client id.
type appAnswer struct{ thirdParty bool }

// requireFirstParty refuses tokens of third-party clients (403), failing closed: an unknown
// client, and a token that names no client at all, are third-party.
func (h *Handler) requireFirstParty(c *call) error {
	id := c.principal.ClientID
	if id == "" { // a token that names no client is no first-party client's
		return apierror.ThirdPartyForbidden
	}
	if builtInFirstParty[id] {
		return nil
	}
	// A CIMD client id is a URL: such clients are third-party by definition.
	if strings.HasPrefix(id, "https://") || strings.HasPrefix(id, "http://") {
		return apierror.ThirdPartyForbidden
	}
	ans, ok := h.apps.GetIfPresent(id)
	if !ok {
		app, err := h.cfg.Core.Application(c.r.Context(), id)
		if ce, isCore := errors.AsType[*identitycore.Error](err); isCore && ce.Status == http.StatusNotFound {
			ans = appAnswer{thirdParty: true}
		} else if err != nil {
			return coreError(err)
		} else {
			ans = appAnswer{thirdParty: app.IsThirdParty}
		}
		h.apps.Set(id, ans)
	}
	if ans.thirdParty {
		return apierror.ThirdPartyForbidden
	}
	return nil
}

// requireIdentityVerified demands a step-up record for the caller in the
// logto-verification-id header (401 verification_record.permission_denied otherwise).
func (h *Handler) requireIdentityVerified(c *call) error {
	id, present := c.r.Header[http.CanonicalHeaderKey(verificationHeader)]
	if !present || len(id) == 0 || !h.cfg.Verifications.IdentityVerified(c.r.Context(), id[0], c.principal.Subject) {
		return apierror.PermissionDenied
	}
	return nil
}
