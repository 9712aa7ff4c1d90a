package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/accountedge/caddy-account-api/accountapi/apierror"
	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
	"github.com/accountedge/caddy-account-api/accountapi/policy"
	"github.com/accountedge/caddy-account-api/accountapi/ratelimit"
	"github.com/accountedge/caddy-account-api/accountapi/verification"
)

// Logto's identifier body rules (reference §5.2, §6).
var (
	emailPattern = regexp.MustCompile(`^\S+@\S+\.\S+$`)
	phonePattern = regexp.MustCompile(`^\d+$`)
)

// identifier reads {type: 'email'|'phone', value} at key, with Logto's per-type value rules.
func (f *fields) identifier(key string) *identitycore.Identifier {
	if !f.has(key) {
		f.issues = append(f.issues, apierror.Required("object", key))
		return nil
	}
	inner, present := f.object(key)
	if !present || inner == nil {
		return nil
	}
	g := fields{obj: inner}
	typ, _ := g.str("type", false, key)
	if typ == nil || (*typ != "email" && *typ != "phone") {
		if typ != nil || !g.has("type") {
			g.issues = []apierror.Issue{apierror.BadDiscriminator([]string{"email", "phone"}, key, "type")}
		}
		f.issues = append(f.issues, g.issues...)
		return nil
	}
	value, present := g.str("value", false, key)
	switch {
	case !present:
		g.issues = append(g.issues, apierror.Required("string", key, "value"))
	case value == nil:
	case *typ == "email":
		g.check(emailPattern.MatchString(*value), "regex", "Invalid", key, "value")
		if len(*value) > 256 {
			g.issues = append(g.issues, apierror.TooBig(256, key, "value"))
		}
	default:
		g.check(phonePattern.MatchString(*value), "regex", "Invalid", key, "value")
	}
	f.issues = append(f.issues, g.issues...)
	if value == nil || len(g.issues) > 0 {
		return nil
	}
	return &identitycore.Identifier{Type: *typ, Value: *value}
}

// requiredStr reads a required string member (zod "Required" when absent).
func (f *fields) requiredStr(key string) string {
	if !f.has(key) {
		f.issues = append(f.issues, apierror.Required("string", key))
		return ""
	}
	s, _ := f.str(key, false)
	if s == nil {
		return ""
	}
	return *s
}

// codeRecordType is the record type for an identifier type.
func codeRecordType(identifierType string) verification.Type {
	if identifierType == "phone" {
		return verification.PhoneVerificationCode
	}
	return verification.EmailVerificationCode
}

// codeSend is a validated POST /api/verifications/verification-code body.
type codeSend struct {
	to          identitycore.Identifier
	template    *string // templateType, nil when absent or null
	hasTemplate bool
}

// decodeCodeSend validates {identifier, templateType?: 'BindMfa' | 'UserPermissionValidation'}.
func decodeCodeSend(obj map[string]json.RawMessage) (codeSend, error) {
	f := fields{obj: obj}
	to := f.identifier("identifier")
	template, hasTemplate := f.str("templateType", false)
	if template != nil && *template != "BindMfa" && *template != verification.UserPermissionValidation {
		f.issues = append(f.issues, apierror.Issue{Code: "invalid_enum_value", Received: *template,
			Options: []string{"BindMfa", verification.UserPermissionValidation}, Path: []any{"templateType"},
			Message: "Invalid enum value. Expected 'BindMfa' | 'UserPermissionValidation', received '" + *template + "'"})
	}
	if err := f.err(); err != nil {
		return codeSend{}, err
	}
	return codeSend{to: *to, template: template, hasTemplate: hasTemplate}, nil
}

// sendCode is POST /api/verifications/verification-code: send a code to an address and get a
// record for it (reference §5.2 V2). A code to the user's current address proves the user
// (step-up); a code to another address proves only that address.
func (h *Handler) sendCode(c *call) error {
	in := input[codeSend](c)
	to, template, hasTemplate := &in.to, in.template, in.hasTemplate
	ctx := c.r.Context()
	u, err := h.cfg.Core.User(ctx, c.principal.Subject, false)
	if err != nil {
		return coreError(err)
	}
	current := u.Primary(to.Type)
	isNew := current == nil || *current != to.Value
	templateType := verification.UserPermissionValidation
	switch {
	case isNew:
		templateType = verification.BindNewIdentifier
	case hasTemplate && template != nil:
		templateType = *template
	}
	if isNew && to.Type == "email" {
		sie, err := h.signIn.Get(ctx)
		if err != nil {
			return coreError(err)
		}
		if err := policy.CheckEmail(to.Value, sie.EmailBlocklistPolicy); err != nil {
			return err
		}
	}
	// Each limit is keyed on what it bounds: the client address, the user (whatever the
	// addresses and client addresses) and the recipient (its address normalised).
	p := h.cfg.Protections
	for _, l := range []struct {
		rule, subject string
		lim           ratelimit.Limit
	}{
		{"code-send-ip", p.clientNetwork(c.r), p.Limits.CodeSendPerIP},
		{"code-send-user", c.principal.Subject, p.Limits.CodeSendPerUser},
		{"code-send-to", recipientKey(*to, p.Limits.DistinctSubaddresses), p.Limits.CodeSendPerIdentifier},
	} {
		if d := p.Limiter.Take(ctx, l.rule, l.subject, l.lim); !d.Allowed {
			return limited(c, d, apierror.MessageRateLimited)
		}
	}
	// The record is stored before the code goes out: a store failure then costs no message
	// the caller could not use. A send that fails leaves an unverifiable record, which expires.
	rec, err := h.cfg.Verifications.Create(ctx, verification.Record{
		UserID:       c.principal.Subject,
		Type:         codeRecordType(to.Type),
		Identifier:   &verification.Identifier{Type: to.Type, Value: to.Value},
		TemplateType: templateType,
	})
	if err != nil {
		return storeError(err)
	}
	if err := h.cfg.Core.SendVerificationCode(ctx, *to); err != nil {
		return coreError(err)
	}
	return writeJSON(c.w, http.StatusCreated, map[string]string{
		"verificationRecordId": rec.ID,
		"expiresAt":            rec.ExpiresAt.UTC().Format(isoMillis),
	})
}

// recipientKey is the subject of the per-recipient send limit: the address as the mailbox or
// line that receives it. Emails compare case-insensitively, without the quotes of a quoted
// local part that needs none ("name"@example.com is name@example.com, RFC 5321 §4.1.2), without
// the root dot of a domain (example.com. is example.com) and, unless distinctSubaddresses,
// without their "+tag" (name+tag@example.com reaches name@example.com at most providers);
// phones compare in E.164, an international "00" prefix dropped (0016148940000 dials
// 16148940000). Logto's address patterns accept all these spellings.
func recipientKey(to identitycore.Identifier, distinctSubaddresses bool) string {
	if to.Type != "email" {
		digits := to.Value
		if rest, ok := strings.CutPrefix(digits, "00"); ok {
			digits = rest // E.164 country codes never start with 0
		}
		if e164, err := normalizePhone(digits); err == nil {
			return "phone:" + e164
		}
		return "phone:" + to.Value
	}
	addr := strings.ToLower(to.Value)
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return "email:" + addr
	}
	local, domain := addr[:at], strings.TrimRight(addr[at:], ".")
	if len(local) >= 2 && local[0] == '"' && local[len(local)-1] == '"' && !strings.ContainsAny(local[1:len(local)-1], "\"\\ ") {
		local = local[1 : len(local)-1]
	}
	if plus := strings.IndexByte(local, '+'); plus > 0 && !distinctSubaddresses {
		local = local[:plus]
	}
	return "email:" + local + domain
}

// codeCheck is a validated POST /api/verifications/verification-code/verify body.
type codeCheck struct {
	to       identitycore.Identifier
	recordID string // verificationId
	code     string
}

// decodeCodeCheck validates {identifier, verificationId, code}.
func decodeCodeCheck(obj map[string]json.RawMessage) (codeCheck, error) {
	f := fields{obj: obj}
	to := f.identifier("identifier")
	id := f.requiredStr("verificationId")
	code := f.requiredStr("code")
	if err := f.err(); err != nil {
		return codeCheck{}, err
	}
	return codeCheck{to: *to, recordID: id, code: code}, nil
}

// verifyCode is POST /api/verifications/verification-code/verify: check the code of a record
// and mark it verified (reference §5.2 V3).
func (h *Handler) verifyCode(c *call) error {
	in := input[codeCheck](c)
	to, id, code := &in.to, in.recordID, in.code
	ctx := c.r.Context()
	rec, err := h.cfg.Verifications.Get(ctx, id)
	if err != nil {
		return storeError(err)
	}
	if rec.Type != codeRecordType(to.Type) {
		return apierror.RecordNotFound
	}
	// Another user's record has no code for this caller (Logto: the passcode is keyed by the
	// record, which any user could try); a verified record's code was consumed.
	if rec.UserID != c.principal.Subject || rec.Verified || rec.Identifier == nil {
		return apierror.CodeNotFound
	}
	if rec.Identifier.Value != to.Value {
		return apierror.New(http.StatusBadRequest, "verification_code."+to.Type+"_mismatch")
	}
	p := h.cfg.Protections
	tries := ratelimit.Limit{Max: p.Limits.CodeTriesPerRecord, Window: time.Until(rec.ExpiresAt)}
	if tries.Window > 0 && !p.Limiter.Take(ctx, "code-tries", rec.ID, tries).Allowed {
		return apierror.CodeExceedMaxTry
	}
	if d := p.Limiter.Take(ctx, "code-check-user", c.principal.Subject, p.Limits.CodeCheckPerUser); !d.Allowed {
		return limited(c, d, apierror.TooManyAttempts)
	}
	// Logto's sentinel guards the recipient too: wrong codes for one address, over all records,
	// users and instances, lock that address's verification for lockoutDuration.
	sentinel, err := h.sentinel(c)
	if err != nil {
		return err
	}
	settle, v := p.Limiter.Attempt(ctx, "code", recipientKey(*to, true), sentinel)
	if !v.Allowed {
		return blockedTooManyAttempts(v, sentinel)
	}
	err = h.cfg.Core.CheckVerificationCode(ctx, *to, code)
	_, refused := errors.AsType[*identitycore.Error](err)
	if v := settle(ctx, refused); !v.Allowed {
		return blockedTooManyAttempts(v, sentinel)
	}
	if err != nil {
		return coreError(err)
	}
	rec.Verified = true
	if err := h.cfg.Verifications.Update(ctx, rec); err != nil {
		return storeError(err)
	}
	return writeJSON(c.w, http.StatusOK, map[string]string{"verificationRecordId": rec.ID})
}
