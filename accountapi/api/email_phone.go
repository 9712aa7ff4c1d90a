package api

import (
	"fmt"
	"net/http"

	"github.com/nyaruka/phonenumbers"

	"github.com/accountedge/caddy-account-api/accountapi/apierror"
	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
	"github.com/accountedge/caddy-account-api/accountapi/policy"
	"github.com/accountedge/caddy-account-api/accountapi/verification"
)

// primaryIdentifier describes one of the two primary identifiers.
type primaryIdentifier struct {
	field      string // account-center field and scope: "email" or "phone"
	bodyKey    string // "email" or "phone"
	userKey    string // the Management API's member: primaryEmail or primaryPhone
	pattern    func(string) bool
	recordType verification.Type
}

var (
	primaryEmail = primaryIdentifier{field: "email", bodyKey: "email", userKey: "primaryEmail",
		pattern: emailPattern.MatchString, recordType: verification.EmailVerificationCode}
	primaryPhone = primaryIdentifier{field: "phone", bodyKey: "phone", userKey: "primaryPhone",
		pattern: phonePattern.MatchString, recordType: verification.PhoneVerificationCode}
)

func (h *Handler) updatePrimaryEmail(c *call) error { return h.setPrimary(c, primaryEmail) }
func (h *Handler) updatePrimaryPhone(c *call) error { return h.setPrimary(c, primaryPhone) }
func (h *Handler) deletePrimaryEmail(c *call) error { return h.deletePrimary(c, primaryEmail) }
func (h *Handler) deletePrimaryPhone(c *call) error { return h.deletePrimary(c, primaryPhone) }

// setPrimary is POST /api/my-account/primary-email and /primary-phone, in Logto NOW's order
// (reference §3.3 N9, N11): step-up, field, scope, first-party client, the email blocklist, the
// new-identifier record (verified, the caller's, for exactly this value), then the write, where
// the core refuses an address another user has (422).
func (h *Handler) setPrimary(c *call, p primaryIdentifier) (err error) {
	defer h.audit(c, "account."+p.userKey+".update", []string{p.userKey}, &err)
	obj, err := h.readObject(c)
	if err != nil {
		return err
	}
	f := fields{obj: obj}
	value := f.requiredStr(p.bodyKey)
	if f.has(p.bodyKey) && len(f.issues) == 0 {
		f.check(p.pattern(value), "regex", "Invalid", p.bodyKey)
	}
	recordID := f.requiredStr("newIdentifierVerificationRecordId")
	if err := f.err(); err != nil {
		return err
	}
	if err := h.primaryChecks(c, p); err != nil {
		return err
	}
	ctx := c.r.Context()
	if p.field == "email" {
		sie, err := h.signIn.Get(ctx)
		if err != nil {
			return coreError(err)
		}
		if err := policy.CheckEmail(value, sie.EmailBlocklistPolicy); err != nil {
			return err
		}
	}
	rec, err := h.cfg.Verifications.Redeem(ctx, recordID, c.principal.Subject, p.recordType)
	if err != nil {
		return storeError(err)
	}
	if rec.Identifier == nil || rec.Identifier.Value != value {
		return apierror.RecordNotFound
	}
	stored := value
	if p.field == "phone" {
		if stored, err = normalizePhone(value); err != nil {
			return err
		}
	}
	if _, err := h.cfg.Core.UpdateUser(ctx, c.principal.Subject, map[string]any{p.userKey: stored}); err != nil {
		return coreError(err)
	}
	h.cfg.UserChanged(ctx, c.principal.Subject, true)
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}

// normalizePhone reads digits as an international number and returns its E.164 form without
// the "+", which is how Logto stores phones (a trunk 0 after the country code goes away).
func normalizePhone(digits string) (string, error) {
	num, err := phonenumbers.Parse("+"+digits, "")
	if err != nil {
		return "", apierror.InvalidPhone
	}
	return fmt.Sprint(num.GetCountryCode()) + phonenumbers.GetNationalSignificantNumber(num), nil
}

// primaryChecks are the checks both changes of a primary address start with, in Logto NOW's
// order: step-up, field, scope (400), first-party client.
func (h *Handler) primaryChecks(c *call, p primaryIdentifier) error {
	if err := h.requireIdentityVerified(c); err != nil {
		return err
	}
	if err := requireEditable(c, p.field); err != nil {
		return err
	}
	if err := requireScope(c, p.field); err != nil {
		return err
	}
	return h.requireFirstParty(c)
}

// deletePrimary is DELETE /api/my-account/primary-email and /primary-phone (reference §3.3
// N10, N12): step-up, field, scope, first-party client, and the user keeps an identifier.
func (h *Handler) deletePrimary(c *call, p primaryIdentifier) (err error) {
	defer h.audit(c, "account."+p.userKey+".delete", []string{p.userKey}, &err)
	if err := h.primaryChecks(c, p); err != nil {
		return err
	}
	ctx := c.r.Context()
	u, err := h.cfg.Core.User(ctx, c.principal.Subject, true)
	if err != nil {
		return coreError(err)
	}
	current := u.Primary(p.field)
	if err := keepsAnIdentifier(u, current != nil && *current != ""); err != nil {
		return err
	}
	if _, err := h.cfg.Core.UpdateUser(ctx, u.ID, map[string]any{p.userKey: nil}); err != nil {
		return coreError(err)
	}
	h.cfg.UserChanged(ctx, u.ID, true)
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}

// keepsAnIdentifier is Logto NOW's identifier retention rule: removing one identifier (when
// removes is true) must leave at least one.
func keepsAnIdentifier(u *identitycore.User, removes bool) error {
	n := u.IdentifierCount()
	if removes {
		n--
	}
	if n < 1 {
		return apierror.LastIdentifierRequired
	}
	return nil
}
