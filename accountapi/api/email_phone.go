package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

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

// primaryBody is a validated POST /api/my-account/primary-email or /primary-phone body.
type primaryBody struct {
	value    string // the new address
	recordID string // newIdentifierVerificationRecordId
}

// decode validates a POST /api/my-account/primary-email or /primary-phone body.
func (p primaryIdentifier) decode(obj map[string]json.RawMessage) (primaryBody, error) {
	f := fields{obj: obj}
	value := f.requiredStr(p.bodyKey)
	if f.has(p.bodyKey) && len(f.issues) == 0 {
		f.check(p.pattern(value), "regex", "Invalid", p.bodyKey)
	}
	recordID := f.requiredStr("newIdentifierVerificationRecordId")
	return primaryBody{value: value, recordID: recordID}, f.err()
}

// setPrimary is POST /api/my-account/primary-email and /primary-phone, after the checks of
// their rows (Logto NOW's order, reference §3.3 N9, N11: step-up, field, scope, first-party
// client): the email blocklist, the new-identifier record (verified, the caller's, for exactly
// this value), then the write, where the core refuses an address another user has (422).
func (h *Handler) setPrimary(c *call, p primaryIdentifier) error {
	body := input[primaryBody](c)
	value, recordID := body.value, body.recordID
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

// deletePrimary is DELETE /api/my-account/primary-email and /primary-phone, after the checks
// of their rows (reference §3.3 N10, N12: step-up, field, scope, first-party client): the user
// keeps an identifier.
func (h *Handler) deletePrimary(c *call, p primaryIdentifier) error {
	u, unlock, err := h.lockedCaller(c)
	if err != nil {
		return err
	}
	defer unlock()
	ctx := c.r.Context()
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

// identifierLockTTL bounds how long one change of a user's identifiers holds the user's lock
// (longer than the core calls it guards), and how long another change waits for it.
const identifierLockTTL = 15 * time.Second

// lockedCaller serialises the changes that remove one of the caller's identifiers, on every
// instance, and reads the caller from the core (not a cache) under the lock: each such change
// reads then writes, so two in parallel (removing the email and the phone) could otherwise both
// see the other identifier and leave none. unlock ends the lock. A change that cannot get the
// lock in time is refused with 429.
func (h *Handler) lockedCaller(c *call) (u *identitycore.User, unlock func(), err error) {
	if unlock, err = h.lockUser(c, "identifiers"); err != nil {
		return nil, nil, err
	}
	if u, err = h.cfg.Core.User(c.r.Context(), c.principal.Subject, true); err != nil {
		unlock()
		return nil, nil, coreError(err)
	}
	return u, unlock, nil
}

// lockUser takes the caller's lock of rule, on every instance, for one read-then-write change
// (see lockedCaller, lockFactors). A change that cannot get it in time is refused with 429.
func (h *Handler) lockUser(c *call, rule string) (unlock func(), err error) {
	ctx, cancel := context.WithTimeout(c.r.Context(), identifierLockTTL)
	defer cancel()
	unlock, err = h.cfg.Protections.Limiter.Lock(ctx, rule, c.principal.Subject, identifierLockTTL)
	if err != nil {
		setRetryAfter(c.w, time.Second)
		return nil, apierror.RateLimited
	}
	return unlock, nil
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
