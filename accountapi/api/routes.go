package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/accountedge/caddy-account-api/accountapi/accountcenter"
	"github.com/accountedge/caddy-account-api/accountapi/apierror"
)

// The route table: every Account API route is one row. A row says how Logto's koaGuard reads
// the request (guard), then the checks Logto's handler makes before its own work, in Logto's
// order (reference §3.3), then that work (serve). For every row, serveRoute runs the global
// steps of §0.1 first (authentication, the account-center switch), then the guard, the checks
// one by one, and serve; the first refusal is the answer.
//
// One row, PATCH /api/my-account (N2):
//
//	{
//		pattern: "PATCH /api/my-account",
//		guard:   jsonBody(decodeAccountPatch),
//		checks: []check{
//			fieldsOfBody(edit, "name", "avatar", "username", "customData"), // each key present
//			scope("profile", 400),
//			scope("custom_data", 400).when(bodyHas("customData")),
//			firstParty(),
//			stepUp().when(bodyHas("username")),
//		},
//		serve: h.patchAccount,
//	}
//
// The checks:
//   - scope(name, status): the token lacks the scope → auth.unauthorized with 400 (Logto's
//     string-form assert) or 401, or 403 auth.forbidden; the reference gives the status per route.
//   - field(control, name): the account-center field is not at the control → 400
//     field_not_enabled (read: ReadOnly or Edit) or field_not_editable (edit). A name "a??b" is
//     Logto's `fields.a ?? fields.b`: a when the settings have it, else b.
//   - fieldsOfBody(control, keys...): field for each key the body has, in the order given.
//   - fieldBy(control, of): field named by of, for fields that depend on the body or on what the
//     route loads (of may refuse, e.g. an entry that does not exist before its field is known).
//   - firstParty(): a third-party client → 403 auth.third_party_application_forbidden.
//   - stepUp(): no verified step-up record in logto-verification-id → 401 permission_denied.
//   - loadUser(withSSO): read the caller into c.user (core failures answer here).
//   - stepUpIfSecured(): stepUp only when c.user has a password, email or phone (Logto's
//     "conditional" step-up); needs loadUser earlier in the row.
//   - any check .when(cond): only when cond holds (bodyHas(key): the body has key, even null).
//
// Adding a route: write its body decoder, func(map[string]json.RawMessage) (T, error) (zod's
// rules, every issue collected: see body.go), and its work, func(*call) error, which reads the
// decoded body with input[T](c) and the caller with c.user when the row loads it. Then add a
// row below with the reference's checks in the reference's order, and set audit when the route
// changes the account or a verification. Every route but a GET asks the core about the token
// again (serveRoute): a row cannot forget it.
// A route whose request is not a JSON object (a multipart upload, a query) gets its own guard.
// newHandler checks the rows (validRoute), so a malformed row fails at start-up.
func (h *Handler) routeTable() []route {
	rows := []route{
		{pattern: "GET /api/my-account", serve: h.getAccount},
		{
			pattern: "PATCH /api/my-account", // N2
			guard:   jsonBody(decodeAccountPatch),
			checks: []check{
				fieldsOfBody(edit, "name", "avatar", "username", "customData"),
				scope("profile", 400),
				scope("custom_data", 400).when(bodyHas("customData")),
				firstParty(),
				stepUp().when(bodyHas("username")),
				// The token is asked about again as for every write (serveRoute).
			},
			serve: h.patchAccount,
		},
		{
			pattern: "PATCH /api/my-account/profile", // N3
			guard:   jsonBody(decodeProfilePatch),
			checks: []check{
				field(edit, "profile"),
				scope("profile", 400),
				scope("address", 400).when(bodyHas("address")),
				firstParty(),
			},
			serve: h.patchProfile,
		},
		{
			pattern: "POST /api/my-account/password", // N4
			audit:   "account.password.update", auditFields: []string{"password"},
			guard:  jsonBody(decodePassword),
			checks: []check{firstParty(), loadUser(false), stepUpIfSecured(), field(edit, "password")},
			serve:  h.updatePassword,
		},
		{
			pattern: "POST /api/my-account/primary-email", // N9
			audit:   "account.primaryEmail.update", auditFields: []string{"primaryEmail"},
			guard:  jsonBody(primaryEmail.decode),
			checks: primaryChecks(primaryEmail),
			serve:  h.updatePrimaryEmail,
		},
		{
			pattern: "DELETE /api/my-account/primary-email", // N10
			audit:   "account.primaryEmail.delete", auditFields: []string{"primaryEmail"},
			checks: primaryChecks(primaryEmail),
			serve:  h.deletePrimaryEmail,
		},
		{
			pattern: "POST /api/my-account/primary-phone", // N11
			audit:   "account.primaryPhone.update", auditFields: []string{"primaryPhone"},
			guard:  jsonBody(primaryPhone.decode),
			checks: primaryChecks(primaryPhone),
			serve:  h.updatePrimaryPhone,
		},
		{
			pattern: "DELETE /api/my-account/primary-phone", // N12
			audit:   "account.primaryPhone.delete", auditFields: []string{"primaryPhone"},
			checks: primaryChecks(primaryPhone),
			serve:  h.deletePrimaryPhone,
		},
		{
			pattern: "POST /api/my-account/identities", // N13
			audit:   "account.identities.link", auditFields: []string{"identities"},
			guard:  jsonBody(decodeNewIdentifierRecord),
			checks: []check{field(edit, "social"), scope("identities", 401), firstParty(), loadUser(true), stepUpIfSecured()},
			serve:  h.linkIdentity,
		},
		{
			pattern: "PUT /api/my-account/identities", // N14
			audit:   "account.identities.replace", auditFields: []string{"identities"},
			guard:  jsonBody(decodeNewIdentifierRecord),
			checks: []check{field(edit, "social"), scope("identities", 401), firstParty(), loadUser(true), stepUpIfSecured()},
			serve:  h.replaceIdentity,
		},
		{
			pattern: "DELETE /api/my-account/identities/{target}", // N15
			audit:   "account.identities.unlink", auditFields: []string{"identities"},
			checks: []check{field(edit, "social"), scope("identities", 400), firstParty(), loadUser(true), stepUpIfSecured()},
			serve:  h.unlinkIdentity,
		},
		{
			pattern: "POST /api/verifications/password", // V1
			audit:   "verification.password",
			guard:   jsonBody(decodePassword),
			checks:  []check{firstParty()},
			serve:   h.verifyPassword,
		},
		{
			pattern: "POST /api/verifications/verification-code", // V2
			audit:   "verification.code.send",
			guard:   jsonBody(decodeCodeSend),
			checks:  []check{firstParty()},
			serve:   h.sendCode,
		},
		{
			pattern: "POST /api/verifications/verification-code/verify", // V3
			audit:   "verification.code.verify",
			guard:   jsonBody(decodeCodeCheck),
			checks:  []check{firstParty()},
			serve:   h.verifyCode,
		},
		{
			pattern: "POST /api/verifications/social", // V4: no first-party check, as Logto
			audit:   "verification.social.start",
			guard:   jsonBody(decodeSocialStart),
			serve:   h.startSocial,
		},
		{
			pattern: "POST /api/verifications/social/verify", // V5: no first-party check, as Logto
			audit:   "verification.social.verify",
			guard:   jsonBody(decodeSocialAnswer),
			serve:   h.verifySocial,
		},
		{pattern: "GET /api/my-account/mfa-settings", // N5
			checks: []check{scope("identities", 401), field(read, "mfa")},
			serve:  h.getMfaSettings,
		},
		{
			pattern: "PATCH /api/my-account/mfa-settings", // N6
			audit:   "account.mfa.settings.update", auditFields: []string{"mfa"},
			guard:  jsonBody(decodeMfaSettings),
			checks: []check{stepUp(), scope("identities", 401), firstParty(), field(edit, "mfa")},
			serve:  h.patchMfaSettings,
		},
		{
			pattern: "GET /api/my-account/logto-configs", // N7
			checks:  []check{scope("identities", 401), field(read, passkeyField)},
			serve:   h.getLogtoConfigs,
		},
		{
			pattern: "PATCH /api/my-account/logto-configs", // N8
			audit:   "account.logtoConfigs.update", auditFields: []string{"mfa", "passkeySignIn"},
			guard:  jsonBody(decodeLogtoConfigPatch),
			checks: []check{stepUp(), scope("identities", 401), firstParty(), field(edit, passkeyField)},
			serve:  h.patchLogtoConfigs,
		},
		{
			pattern: "GET /api/my-account/mfa-verifications", // N16: the field before the scope
			checks:  []check{field(read, "mfa"), scope("identities", 401)},
			serve:   h.listMfaVerifications,
		},
		{
			pattern: "POST /api/my-account/mfa-verifications", // N17
			audit:   "account.mfa.bind", auditFields: []string{"mfa"},
			guard:  jsonBody(decodeMfaBinding),
			checks: []check{stepUp(), fieldBy(edit, bindingField), scope("identities", 401), firstParty()},
			serve:  h.bindMfa,
		},
		{
			pattern: "PUT /api/my-account/mfa-verifications/totp", // N18
			audit:   "account.mfa.totp.replace", auditFields: []string{"mfa"},
			guard:  jsonBody(decodeTotpReplacement),
			checks: []check{stepUp(), field(edit, "mfa"), scope("identities", 401), firstParty()},
			serve:  h.replaceTotp,
		},
		// N19, N20: no scope, field, step-up or first-party check, as Logto.
		{pattern: "POST /api/my-account/mfa-verifications/totp-secret/generate", serve: h.generateTotpSecretRoute},
		{pattern: "POST /api/my-account/mfa-verifications/backup-codes/generate", serve: h.generateBackupCodesRoute},
		{
			// N23: the field depends on the factor's type, known once the factor is found.
			pattern: "DELETE /api/my-account/mfa-verifications/{verificationId}",
			audit:   "account.mfa.delete", auditFields: []string{"mfa"},
			checks: []check{stepUp(), scope("identities", 401), firstParty()},
			serve:  h.deleteMfaVerification,
		},
		{
			pattern: "GET /api/my-account/sessions", // N27
			checks:  sessionChecks(read),
			serve:   h.listSessions,
		},
		{
			// Revoking a session or grant ends tokens: the caller's own must still be live.
			pattern: "DELETE /api/my-account/sessions/{sessionId}", // N28
			audit:   "account.sessions.revoke", auditFields: []string{"session"},
			guard:  enumQuery("revokeGrantsTarget", revokeGrantsTargets),
			checks: sessionChecks(edit),
			serve:  h.deleteSession,
		},
		{
			pattern: "GET /api/my-account/grants", // N29
			guard:   enumQuery("appType", appTypes),
			checks:  sessionChecks(read),
			serve:   h.listGrants,
		},
		{
			pattern: "DELETE /api/my-account/grants/{grantId}", // N30
			audit:   "account.grants.revoke", auditFields: []string{"session"},
			checks: sessionChecks(edit),
			serve:  h.deleteGrant,
		},
		{
			pattern: "POST " + avatarPath, // N33
			audit:   "account.avatar.upload", auditFields: []string{"avatar"},
			guard:  avatarFile,
			checks: []check{scope("profile", 401), firstParty(), field(edit, "avatar")},
			serve:  h.uploadAvatar,
		},
	}
	// What the Management API cannot express: one 501 after authentication and the switch.
	for _, pattern := range unsupportedRoutes {
		rows = append(rows, route{pattern: pattern, serve: notImplemented})
	}
	return rows
}

// primaryChecks are the checks both changes of a primary address make, in Logto NOW's order
// (N9–N12): step-up, field, scope (400), first-party client.
func primaryChecks(p primaryIdentifier) []check {
	return []check{stepUp(), field(edit, p.field), scope(p.field, 400), firstParty()}
}

// route is one row of the route table.
type route struct {
	// pattern is the ServeMux pattern, also the route's label in metrics.
	pattern string
	// audit, when set, is the operation logged as an audit event for every request that passed
	// authentication and the account-center switch, with auditFields as the changed fields.
	audit       string
	auditFields []string
	// guard reads and validates the request (nil: the route reads nothing).
	guard guard
	// checks run in order after the guard.
	checks []check
	// serve is the route's own work.
	serve func(c *call) error
}

// guard reads and validates a request as Logto's koaGuard does, before any handler check, and
// keeps the result in the call (c.input; c.body for a JSON body).
type guard func(h *Handler, c *call) error

// jsonBody is the guard of a JSON-object body decoded by decode.
func jsonBody[T any](decode func(map[string]json.RawMessage) (T, error)) guard {
	return func(h *Handler, c *call) error {
		obj, err := h.readObject(c)
		if err != nil {
			return err
		}
		v, err := decode(obj)
		if err != nil {
			return err
		}
		c.body, c.input = obj, v
		return nil
	}
}

// input is the request as the route's guard decoded it.
func input[T any](c *call) T { return c.input.(T) }

// The controls a field check asks for.
const (
	read = accountcenter.ReadOnly // ReadOnly or Edit
	edit = accountcenter.Edit
)

type checkKind int

const (
	checkScope checkKind = iota + 1
	checkField
	checkBodyFields
	checkFieldBy
	checkFirstParty
	checkStepUp
	checkLoadUser
	checkStepUpIfSecured
)

// check is one step of a route's check order; build it with the constructors below.
type check struct {
	kind    checkKind
	name    string                // scope: the scope; field: the field ("a??b" falls back)
	refusal *apierror.Error       // scope: the answer when it is missing
	control accountcenter.Control // field checks: read or edit
	keys    []string              // fieldsOfBody: the body keys, each its own field
	fieldOf func(*call) (string, error)
	withSSO bool             // loadUser
	cond    func(*call) bool // nil: always
}

// scopeRefusals are Logto's three answers to a missing scope.
var scopeRefusals = map[int]*apierror.Error{
	http.StatusBadRequest:   apierror.ScopeMissing,
	http.StatusUnauthorized: apierror.ScopeMissingExplicit,
	http.StatusForbidden:    apierror.Forbidden,
}

// scope demands a token scope; status is Logto's answer when it is missing (400, 401 or 403).
func scope(name string, status int) check {
	return check{kind: checkScope, name: name, refusal: scopeRefusals[status]}
}

// field demands an account-center control on a field.
func field(control accountcenter.Control, name string) check {
	return check{kind: checkField, control: control, name: name}
}

// fieldsOfBody demands control on the field of each key the body has, in the order given.
func fieldsOfBody(control accountcenter.Control, keys ...string) check {
	return check{kind: checkBodyFields, control: control, keys: keys}
}

// fieldBy demands control on the field that of names; of may refuse the request itself.
func fieldBy(control accountcenter.Control, of func(*call) (string, error)) check {
	return check{kind: checkFieldBy, control: control, fieldOf: of}
}

// firstParty refuses tokens of third-party clients.
func firstParty() check { return check{kind: checkFirstParty} }

// stepUp demands a verified step-up record of the caller.
func stepUp() check { return check{kind: checkStepUp} }

// loadUser reads the caller into c.user; withSSO also loads the enterprise SSO identities.
func loadUser(withSSO bool) check { return check{kind: checkLoadUser, withSSO: withSSO} }

// stepUpIfSecured demands step-up only from a user who has a way to prove who they are.
func stepUpIfSecured() check { return check{kind: checkStepUpIfSecured} }

// when makes a check apply only when cond holds.
func (ch check) when(cond func(*call) bool) check {
	ch.cond = cond
	return ch
}

// bodyHas holds when the JSON body has member key (even null).
func bodyHas(key string) func(*call) bool {
	return func(c *call) bool { _, ok := c.body[key]; return ok }
}

// validRoute reports what is wrong with a row, so that a malformed table fails at start-up.
func validRoute(rt route) error {
	loaded := false
	for i, ch := range rt.checks {
		switch ch.kind {
		case checkScope:
			if ch.refusal == nil || ch.name == "" {
				return fmt.Errorf("%s: check %d: a scope check needs a scope and a status of 400, 401 or 403", rt.pattern, i)
			}
		case checkField, checkBodyFields, checkFieldBy:
			if ch.control != read && ch.control != edit {
				return fmt.Errorf("%s: check %d: a field check needs the control read or edit", rt.pattern, i)
			}
			if (ch.kind == checkField && ch.name == "") || (ch.kind == checkFieldBy && ch.fieldOf == nil) {
				return fmt.Errorf("%s: check %d: a field check needs its field", rt.pattern, i)
			}
		case checkLoadUser:
			loaded = true
		case checkStepUpIfSecured:
			if !loaded {
				return fmt.Errorf("%s: check %d: stepUpIfSecured needs loadUser before it", rt.pattern, i)
			}
		case checkFirstParty, checkStepUp:
		default:
			return fmt.Errorf("%s: check %d: not built by a check constructor", rt.pattern, i)
		}
		if ch.kind == checkBodyFields || ch.cond != nil {
			if rt.guard == nil {
				return fmt.Errorf("%s: check %d depends on a body the route does not read", rt.pattern, i)
			}
		}
	}
	if rt.pattern == "" || rt.serve == nil {
		return fmt.Errorf("route %q: a row needs a pattern and its work", rt.pattern)
	}
	return nil
}

// runCheck makes one check of a route.
func (h *Handler) runCheck(ch check, c *call) error {
	if ch.cond != nil && !ch.cond(c) {
		return nil
	}
	switch ch.kind {
	case checkScope:
		if !c.principal.HasScope(ch.name) {
			return ch.refusal
		}
	case checkField:
		return requireField(c, ch.control, ch.name)
	case checkBodyFields:
		for _, k := range ch.keys {
			if _, present := c.body[k]; present {
				if err := requireField(c, ch.control, k); err != nil {
					return err
				}
			}
		}
	case checkFieldBy:
		name, err := ch.fieldOf(c)
		if err != nil {
			return err
		}
		return requireField(c, ch.control, name)
	case checkFirstParty:
		return h.requireFirstParty(c)
	case checkStepUp:
		return h.requireIdentityVerified(c)
	case checkLoadUser:
		u, err := h.cfg.Core.User(c.r.Context(), c.principal.Subject, ch.withSSO)
		if err != nil {
			return coreError(err)
		}
		c.user = u
	case checkStepUpIfSecured:
		if c.user.HasSecurityVerificationMethod() {
			return h.requireIdentityVerified(c)
		}
	}
	return nil
}

// requireField demands control on an account-center field: read is ReadOnly or Edit (400
// field_not_enabled otherwise), edit is Edit (400 field_not_editable otherwise).
func requireField(c *call, control accountcenter.Control, name string) error {
	name = resolveField(c.settings, name)
	if control == read {
		if !c.settings.CanRead(name) {
			return apierror.FieldNotEnabled
		}
		return nil
	}
	if !c.settings.CanEdit(name) {
		return apierror.FieldNotEditable
	}
	return nil
}

// resolveField reads Logto's `fields.a ?? fields.b`, spelled "a??b": a when the settings have
// a control for a (even Off), else b.
func resolveField(s accountcenter.Settings, name string) string {
	first, fallback, ok := strings.Cut(name, "??")
	if !ok {
		return name
	}
	if _, set := s.Fields[first]; set {
		return first
	}
	return fallback
}
