package api

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/accountedge/caddy-account-api/accountapi/accountcenter"
	"github.com/accountedge/caddy-account-api/accountapi/auth"
	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
	"github.com/accountedge/caddy-account-api/accountapi/verification"
)

// Check order, route by route (reference §3.3). Each case has a request that passes every
// check, and the refusals a request can meet, in Logto's order. For refusal i the test breaks
// the request in every way from i on: the answer must be refusal i, so each refusal is proven
// to come before all that follow it. With nothing broken the route must succeed.

// refusal is one way to fail a check, and Logto's answer to it.
type refusal struct {
	name   string
	breaks func(b *bench, req *request)
	status int
	code   string
}

type orderCase struct {
	name     string
	setup    func(b *bench, req *request) // makes every check pass
	req      request
	refusals []refusal
	ok       int
}

// Ways to break a request.

func noToken() refusal {
	return refusal{"no token", func(_ *bench, req *request) { req.token = "-" },
		http.StatusUnauthorized, "auth.authorization_header_missing"}
}

// revokedToken passes the cached check only: it proves the route revalidates the token.
func revokedToken() refusal {
	return refusal{"revoked token", func(b *bench, _ *request) { b.auth.revoked[benchToken] = true },
		http.StatusUnauthorized, "auth.unauthorized"}
}

func accountCenterOff() refusal {
	return refusal{"account center off", func(b *bench, _ *request) { b.settings.Enabled = false },
		http.StatusBadRequest, "account_center.not_enabled"}
}

func badBody(body string) refusal {
	return refusal{"bad body " + body, func(_ *bench, req *request) { req.body = body },
		http.StatusBadRequest, "guard.invalid_input"}
}

func fieldReadOnly(field string) refusal {
	return refusal{"field " + field + " read-only", func(b *bench, _ *request) { b.settings.Fields[field] = accountcenter.ReadOnly },
		http.StatusBadRequest, "account_center.field_not_editable"}
}

func missingScope(scope string, status int) refusal {
	code := "auth.unauthorized"
	if status == http.StatusForbidden {
		code = "auth.forbidden"
	}
	return refusal{"no scope " + scope, func(b *bench, _ *request) {
		p := b.caller()
		p.Scopes = slices.DeleteFunc(slices.Clone(p.Scopes), func(s string) bool { return s == scope })
		b.setCaller(*p)
	}, status, code}
}

func thirdParty() refusal {
	return refusal{"third-party client", func(b *bench, _ *request) { p := b.caller(); p.ClientID = "tp"; b.setCaller(*p) },
		http.StatusForbidden, "auth.third_party_application_forbidden"}
}

func noStepUp() refusal {
	return refusal{"no step-up", func(_ *bench, req *request) { delete(req.header, verificationHeader) },
		http.StatusUnauthorized, "verification_record.permission_denied"}
}

func limitedRule(rule, code string) refusal {
	return refusal{"limited " + rule, func(b *bench, _ *request) { b.limiter.deny[rule] = true },
		http.StatusTooManyRequests, code}
}

// lockedOut is Logto's sentinel refusing the subject of rule (400, not a 429).
func lockedOut(rule string) refusal {
	return refusal{"locked out " + rule, func(b *bench, _ *request) { b.limiter.deny[rule] = true },
		http.StatusBadRequest, "session.verification_blocked_too_many_attempts"}
}

// Setups.

func grant(b *bench, scopes ...string) {
	p := b.caller()
	p.Scopes = append(slices.Clone(p.Scopes), scopes...)
	b.setCaller(*p)
}

func editable(b *bench, fields ...string) {
	for _, f := range fields {
		b.settings.Fields[f] = accountcenter.Edit
	}
}

func withStepUp(b *bench, req *request) {
	if req.header == nil {
		req.header = map[string]string{}
	}
	req.header[verificationHeader] = b.stepUpRecord()
}

// securedUser gives the bench user a password, a username and an email: they can prove who
// they are, so conditional step-up applies, and they keep identifiers when one goes.
func securedUser(b *bench) {
	u := b.core.users[benchUser]
	u.HasPassword, u.Username, u.PrimaryEmail, u.PrimaryPhone = true, strp("ada"), strp("ada@example.com"), strp("15550100")
	b.core.passwords[benchUser] = "old-Passw0rd!x"
}

// newRecord stores a record of the bench user and returns its id.
func newRecord(b *bench, r verification.Record) string {
	b.t.Helper()
	r.UserID = benchUser
	rec, err := b.records.Create(context.Background(), r)
	if err != nil {
		b.t.Fatal(err)
	}
	return rec.ID
}

func bodyJSON(v any) string {
	raw, _ := json.Marshal(v)
	return string(raw)
}

func socialConnector(b *bench) {
	b.core.connectors["c1"] = &identitycore.Connector{ID: "c1", ConnectorID: "github", Type: "Social", Target: "github"}
}

func orderCases(t *testing.T) []orderCase {
	return slices.Concat(baseOrderCases(), mfaOrderCases(t), sessionOrderCases())
}

func baseOrderCases() []orderCase {
	primary := func(method, path, field string, body func(b *bench) string) orderCase {
		c := orderCase{
			name: method + " " + path,
			req:  request{method: method, path: path},
			setup: func(b *bench, req *request) {
				securedUser(b)
				grant(b, field)
				editable(b, field)
				withStepUp(b, req)
				if body != nil {
					req.body = body(b)
				}
			},
			refusals: []refusal{revokedToken(), accountCenterOff()},
			ok:       http.StatusNoContent,
		}
		if body != nil {
			c.refusals = append(c.refusals, badBody(`{"`+field+`":7}`))
		}
		c.refusals = append(c.refusals, noStepUp(), fieldReadOnly(field), missingScope(field, 400), thirdParty())
		return c
	}
	newAddress := func(typ verification.Type, kind, key, value string) func(b *bench) string {
		return func(b *bench) string {
			id := newRecord(b, verification.Record{Type: typ, Verified: true,
				Identifier: &verification.Identifier{Type: kind, Value: value}, TemplateType: verification.BindNewIdentifier})
			return bodyJSON(map[string]string{key: value, "newIdentifierVerificationRecordId": id})
		}
	}
	identities := func(method string) orderCase {
		return orderCase{
			name: method + " /api/my-account/identities",
			req:  request{method: method, path: "/api/my-account/identities"},
			setup: func(b *bench, req *request) {
				securedUser(b)
				socialConnector(b)
				grant(b, "identities")
				editable(b, "social")
				withStepUp(b, req)
				id := newRecord(b, verification.Record{Type: verification.Social, Verified: true, ConnectorID: "c1",
					Target: "github", ConnectorData: json.RawMessage(`{"code":"x"}`)})
				req.body = bodyJSON(map[string]string{"newIdentifierVerificationRecordId": id})
			},
			refusals: []refusal{revokedToken(), accountCenterOff(), badBody(`{}`), fieldReadOnly("social"),
				missingScope("identities", 401), thirdParty(), noStepUp()},
			ok: http.StatusNoContent,
		}
	}
	return []orderCase{
		{
			name:     "GET /api/my-account",
			req:      request{method: "GET", path: "/api/my-account"},
			setup:    func(*bench, *request) {},
			refusals: []refusal{noToken(), accountCenterOff()},
			ok:       http.StatusOK,
		},
		{
			name: "PATCH /api/my-account",
			req:  request{method: "PATCH", path: "/api/my-account", body: `{"name":"Ada","username":"ada2","customData":{"k":1}}`},
			setup: func(b *bench, req *request) {
				securedUser(b)
				grant(b, "profile", "custom_data")
				editable(b, "name", "username", "customData")
				withStepUp(b, req)
			},
			refusals: []refusal{noToken(), revokedToken(), accountCenterOff(), badBody(`{"name":42}`),
				fieldReadOnly("name"), fieldReadOnly("username"), fieldReadOnly("customData"),
				missingScope("profile", 400), missingScope("custom_data", 400), thirdParty(), noStepUp()},
			ok: http.StatusOK,
		},
		{
			name: "PATCH /api/my-account/profile",
			req:  request{method: "PATCH", path: "/api/my-account/profile", body: `{"givenName":"Ada","address":{"country":"UK"}}`},
			setup: func(b *bench, _ *request) {
				grant(b, "profile", "address")
				editable(b, "profile")
			},
			refusals: []refusal{noToken(), accountCenterOff(), badBody(`{"givenName":1}`), fieldReadOnly("profile"),
				missingScope("profile", 400), missingScope("address", 400), thirdParty()},
			ok: http.StatusOK,
		},
		{
			name: "POST /api/my-account/password",
			req:  request{method: "POST", path: "/api/my-account/password", body: `{"password":"new-Passw0rd!x"}`},
			setup: func(b *bench, req *request) {
				securedUser(b)
				editable(b, "password")
				withStepUp(b, req)
			},
			refusals: []refusal{revokedToken(), accountCenterOff(), badBody(`{}`), thirdParty(), noStepUp(),
				fieldReadOnly("password")},
			ok: http.StatusNoContent,
		},
		primary("POST", "/api/my-account/primary-email", "email",
			newAddress(verification.EmailVerificationCode, "email", "email", "new@example.com")),
		primary("DELETE", "/api/my-account/primary-email", "email", nil),
		primary("POST", "/api/my-account/primary-phone", "phone",
			newAddress(verification.PhoneVerificationCode, "phone", "phone", "447700900123")),
		primary("DELETE", "/api/my-account/primary-phone", "phone", nil),
		identities("POST"),
		identities("PUT"),
		{
			name: "DELETE /api/my-account/identities/{target}",
			req:  request{method: "DELETE", path: "/api/my-account/identities/github"},
			setup: func(b *bench, req *request) {
				securedUser(b)
				b.core.users[benchUser].Identities = map[string]json.RawMessage{"github": json.RawMessage(`{"userId":"g1"}`)}
				grant(b, "identities")
				editable(b, "social")
				withStepUp(b, req)
			},
			refusals: []refusal{revokedToken(), accountCenterOff(), fieldReadOnly("social"),
				missingScope("identities", 400), thirdParty(), noStepUp()},
			ok: http.StatusNoContent,
		},
		{
			name: "POST /api/verifications/password",
			req:  request{method: "POST", path: "/api/verifications/password", body: `{"password":"old-Passw0rd!x"}`},
			setup: func(b *bench, _ *request) {
				securedUser(b)
			},
			refusals: []refusal{revokedToken(), accountCenterOff(), badBody(`{"password":""}`), thirdParty(),
				lockedOut("password")},
			ok: http.StatusCreated,
		},
		{
			name: "POST /api/verifications/verification-code",
			req:  request{method: "POST", path: "/api/verifications/verification-code", body: `{"identifier":{"type":"email","value":"new@example.com"}}`},
			setup: func(b *bench, _ *request) {
				securedUser(b)
			},
			refusals: []refusal{revokedToken(), accountCenterOff(), badBody(`{"identifier":{"type":"fax"}}`), thirdParty(),
				limitedRule("code-send-user", "request.message_rate_limited")},
			ok: http.StatusCreated,
		},
		{
			name: "POST /api/verifications/verification-code/verify",
			req:  request{method: "POST", path: "/api/verifications/verification-code/verify"},
			setup: func(b *bench, req *request) {
				id := newRecord(b, verification.Record{Type: verification.EmailVerificationCode,
					Identifier: &verification.Identifier{Type: "email", Value: "new@example.com"}, TemplateType: verification.BindNewIdentifier})
				b.core.codes["new@example.com"] = "123456"
				req.body = bodyJSON(map[string]any{"identifier": map[string]string{"type": "email", "value": "new@example.com"},
					"verificationId": id, "code": "123456"})
			},
			refusals: []refusal{revokedToken(), accountCenterOff(), badBody(`{"code":"123456"}`), thirdParty(),
				limitedRule("code-check-user", "session.verification_blocked_too_many_attempts"), lockedOut("code")},
			ok: http.StatusOK,
		},
		{
			// No first-party check (V4): the passing request comes from a third-party client.
			name: "POST /api/verifications/social",
			req:  request{method: "POST", path: "/api/verifications/social", body: `{"connectorId":"c1","state":"s","redirectUri":"https://app.example/cb"}`},
			setup: func(b *bench, _ *request) {
				socialConnector(b)
				thirdParty().breaks(b, nil)
			},
			refusals: []refusal{noToken(), accountCenterOff(), badBody(`{"connectorId":"c1"}`)},
			ok:       http.StatusCreated,
		},
		{
			// No first-party check (V5), as V4.
			name: "POST /api/verifications/social/verify",
			req:  request{method: "POST", path: "/api/verifications/social/verify"},
			setup: func(b *bench, req *request) {
				id := newRecord(b, verification.Record{Type: verification.Social, ConnectorID: "c1", Target: "github"})
				req.body = bodyJSON(map[string]any{"verificationRecordId": id, "connectorData": map[string]string{"code": "x"}})
				thirdParty().breaks(b, nil)
			},
			refusals: []refusal{noToken(), accountCenterOff(), badBody(`{"connectorData":[]}`)},
			ok:       http.StatusOK,
		},
	}
}

func TestCheckOrder(t *testing.T) {
	for _, tc := range orderCases(t) {
		t.Run(tc.name, func(t *testing.T) { runOrderCase(t, tc) })
	}
}

// runOrderCase checks one case: with nothing broken the route answers tc.ok; with every
// refusal from i on broken, it answers refusal i.
func runOrderCase(t *testing.T, tc orderCase) {
	t.Helper()
	prepare := func() (*bench, request) {
		b := newBench(t)
		req := tc.req
		req.header = map[string]string{}
		tc.setup(b, &req)
		return b, req
	}
	b, req := prepare()
	if a := b.do(req); a.status != tc.ok {
		t.Fatalf("with every check passing: %d %s %s, want %d", a.status, a.code, a.body, tc.ok)
	}
	for i, want := range tc.refusals {
		b, req := prepare()
		for _, r := range tc.refusals[i:] {
			r.breaks(b, &req)
		}
		if a := b.do(req); a.status != want.status || a.code != want.code {
			t.Errorf("%s (and every later refusal): %d %s, want %d %s", want.name, a.status, a.code, want.status, want.code)
		}
	}
}

// Every route of the table has a check-order case, so a route added without one fails here.
func TestEveryRouteHasACheckOrderCase(t *testing.T) {
	covered := map[string]bool{}
	for _, tc := range orderCases(t) {
		covered[tc.name] = true
	}
	for _, rt := range newBench(t).h.routeTable() {
		if !covered[rt.pattern] {
			t.Errorf("route %s has no check-order case in orderCases", rt.pattern)
		}
	}
}

// Conditional checks apply only when their condition holds.

func TestPatchAccountChecksOnlyTheKeysPresent(t *testing.T) {
	b := newBench(t)
	grant(b, "profile")
	editable(b, "name") // avatar, username and customData stay Off
	a := b.do(request{method: "PATCH", path: "/api/my-account", body: `{"name":"Ada"}`})
	if a.status != http.StatusOK {
		t.Fatalf("name only, without step-up or custom_data scope: %d %s, want 200", a.status, a.code)
	}
	if b.auth.revalidated != 1 {
		t.Errorf("the token was revalidated %d times for a write, want once", b.auth.revalidated)
	}
	if got := b.core.users[benchUser].Name; got == nil || *got != "Ada" {
		t.Errorf("name not written: %v", got)
	}
	a = b.do(request{method: "PATCH", path: "/api/my-account", body: `{"name":"Ada","avatar":null}`})
	if a.status != http.StatusBadRequest || a.code != "account_center.field_not_editable" {
		t.Errorf("avatar null with avatar Off: %d %s, want 400 field_not_editable", a.status, a.code)
	}
}

func TestPatchProfileNeedsAddressScopeOnlyForAnAddress(t *testing.T) {
	b := newBench(t)
	grant(b, "profile")
	editable(b, "profile")
	if a := b.do(request{method: "PATCH", path: "/api/my-account/profile", body: `{"givenName":"Ada"}`}); a.status != http.StatusOK {
		t.Fatalf("no address: %d %s, want 200", a.status, a.code)
	}
	if a := b.do(request{method: "PATCH", path: "/api/my-account/profile", body: `{"address":null}`}); a.status != http.StatusBadRequest || a.code != "guard.invalid_input" {
		t.Errorf("address null: %d %s, want the guard's 400", a.status, a.code)
	}
}

// A user with no password, email or phone may set a first password and manage social
// identities without step-up (Logto NOW's conditional step-up).
func TestConditionalStepUpSkipsUnsecuredUsers(t *testing.T) {
	b := newBench(t)
	editable(b, "password", "social")
	grant(b, "identities")
	b.core.users[benchUser].Identities = map[string]json.RawMessage{"github": json.RawMessage(`{"userId":"g1"}`),
		"google": json.RawMessage(`{"userId":"g2"}`)}
	if a := b.do(request{method: "POST", path: "/api/my-account/password", body: `{"password":"first-Passw0rd!x"}`}); a.status != http.StatusNoContent {
		t.Fatalf("first password of a social-only user: %d %s, want 204", a.status, a.code)
	}
	// Now the user has a password: step-up applies.
	if a := b.do(request{method: "DELETE", path: "/api/my-account/identities/github"}); a.code != "verification_record.permission_denied" {
		t.Errorf("unlink after a password was set, without step-up: %d %s, want 401 permission_denied", a.status, a.code)
	}
	b.core.users[benchUser].HasPassword = false
	if a := b.do(request{method: "DELETE", path: "/api/my-account/identities/github"}); a.status != http.StatusNoContent {
		t.Errorf("unlink by a social-only user: %d %s, want 204", a.status, a.code)
	}
}

// A step-up record proves only its own user.
func TestStepUpRecordOfAnotherUserIsRefused(t *testing.T) {
	b := newBench(t)
	securedUser(b)
	editable(b, "email")
	grant(b, "email")
	b.core.users["u2"] = &identitycore.User{ID: "u2"}
	b.auth.tokens["t2"] = auth.Principal{Subject: "u2", ClientID: "app1", Scopes: []string{"email"}}
	record := b.stepUpRecord() // u1's
	a := b.do(request{method: "DELETE", path: "/api/my-account/primary-email", token: "t2",
		header: map[string]string{verificationHeader: record}})
	if a.status != http.StatusUnauthorized || a.code != "verification_record.permission_denied" {
		t.Errorf("u2 with u1's record: %d %s, want 401 permission_denied", a.status, a.code)
	}
}
