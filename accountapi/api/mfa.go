package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/accountedge/caddy-account-api/accountapi/apierror"
	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
)

// The work of the MFA routes (reference §3.2 N5–N8, N16–N20, N23); their checks, in Logto
// NOW's order (§3.3, and Logto's routes/account/mfa-verifications.ts, logto-config.ts and
// index.ts where it is silent), are their rows in routes.go. The Management API keeps the factors and the user's logto-configs; the module does
// what it does not: the account-center and scope checks, step-up, the sign-in experience's
// factor list, the TOTP code check, and setting mfa.enabled when a factor is bound (§7.4).
//
// MFA changes do not touch credentials the token answers depend on (Logto revokes no token
// when a factor changes), so they drop the user's cached record only (UserChanged with
// credentials false). The writes ask the core about the token again, as Logto, which has no
// token cache, always does.

// passkeyField is the account-center field of passkey (WebAuthn) settings: Logto's
// `fields.passkey ?? fields.mfa`.
const passkeyField = "passkey??mfa"

// factorField is the field that governs a factor of type t.
func factorField(t string) string {
	if t == identitycore.MfaWebAuthn {
		return passkeyField
	}
	return "mfa"
}

// bindingField is the field a POST /api/my-account/mfa-verifications body needs Edit on.
func bindingField(c *call) (string, error) { return factorField(input[mfaBinding](c).Type), nil }

// webAuthnNotServed answers a WebAuthn binding, which only Logto's own Account API can make.
var webAuthnNotServed = apierror.NotImplemented

// ---- mfa-settings (N5, N6) ----

// mfaSettings is the body of both mfa-settings routes.
type mfaSettings struct {
	SkipMfaOnSignIn bool `json:"skipMfaOnSignIn"`
}

// getMfaSettings is GET /api/my-account/mfa-settings: logtoConfig.mfa.skipMfaOnSignIn (false
// when unset).
func (h *Handler) getMfaSettings(c *call) error {
	cfg, err := h.cfg.Core.LogtoConfig(c.r.Context(), c.principal.Subject)
	if err != nil {
		return coreError(err)
	}
	return writeJSON(c.w, http.StatusOK, mfaSettings{SkipMfaOnSignIn: cfg.Mfa.SkipMfaOnSignIn})
}

// decodeMfaSettings validates {skipMfaOnSignIn: boolean}.
func decodeMfaSettings(obj map[string]json.RawMessage) (mfaSettings, error) {
	f := fields{obj: obj}
	skip := f.boolean("skipMfaOnSignIn", true)
	if err := f.err(); err != nil {
		return mfaSettings{}, err
	}
	return mfaSettings{SkipMfaOnSignIn: *skip}, nil
}

// patchMfaSettings is PATCH /api/my-account/mfa-settings: a merge into logtoConfig.mfa.
func (h *Handler) patchMfaSettings(c *call) error {
	body := input[mfaSettings](c)
	skip := body.SkipMfaOnSignIn
	if _, err := h.updateLogtoConfig(c, identitycore.LogtoConfigPatch{Mfa: &identitycore.MfaDataPatch{SkipMfaOnSignIn: &skip}}); err != nil {
		return err
	}
	return writeJSON(c.w, http.StatusOK, body)
}

// updateLogtoConfig merges patch into the caller's logto-configs at the core and drops what is
// cached about them.
func (h *Handler) updateLogtoConfig(c *call, patch identitycore.LogtoConfigPatch) (*identitycore.LogtoConfig, error) {
	ctx := c.r.Context()
	cfg, err := h.cfg.Core.UpdateLogtoConfig(ctx, c.principal.Subject, patch)
	if err != nil {
		return nil, coreError(err)
	}
	h.cfg.UserChanged(ctx, c.principal.Subject, false)
	return cfg, nil
}

// ---- logto-configs (N7, N8) ----

// getLogtoConfigs is GET /api/my-account/logto-configs.
func (h *Handler) getLogtoConfigs(c *call) error {
	cfg, err := h.cfg.Core.LogtoConfig(c.r.Context(), c.principal.Subject)
	if err != nil {
		return coreError(err)
	}
	return writeJSON(c.w, http.StatusOK, cfg)
}

// decodeLogtoConfigPatch validates {mfa?: {enabled?, skipped?,
// additionalBindingSuggestionSkipped?, skipMfaOnSignIn?}, passkeySignIn?: {skipped?}}, all
// booleans; unknown members are dropped.
func decodeLogtoConfigPatch(obj map[string]json.RawMessage) (identitycore.LogtoConfigPatch, error) {
	f := fields{obj: obj}
	var p identitycore.LogtoConfigPatch
	if mfa, present := f.object("mfa"); present && mfa != nil {
		g := fields{obj: mfa}
		p.Mfa = &identitycore.MfaDataPatch{
			Enabled:                            g.boolean("enabled", false, "mfa"),
			Skipped:                            g.boolean("skipped", false, "mfa"),
			AdditionalBindingSuggestionSkipped: g.boolean("additionalBindingSuggestionSkipped", false, "mfa"),
			SkipMfaOnSignIn:                    g.boolean("skipMfaOnSignIn", false, "mfa"),
		}
		f.issues = append(f.issues, g.issues...)
	}
	if passkey, present := f.object("passkeySignIn"); present && passkey != nil {
		g := fields{obj: passkey}
		p.PasskeySignIn = &identitycore.PasskeySignInDataPatch{Skipped: g.boolean("skipped", false, "passkeySignIn")}
		f.issues = append(f.issues, g.issues...)
	}
	return p, f.err()
}

// patchLogtoConfigs is PATCH /api/my-account/logto-configs: a merge of the members given.
func (h *Handler) patchLogtoConfigs(c *call) error {
	cfg, err := h.updateLogtoConfig(c, input[identitycore.LogtoConfigPatch](c))
	if err != nil {
		return err
	}
	return writeJSON(c.w, http.StatusOK, cfg)
}

// ---- mfa-verifications (N16–N20, N23) ----

// listMfaVerifications is GET /api/my-account/mfa-verifications: the factors without their
// secrets.
func (h *Handler) listMfaVerifications(c *call) error {
	list, err := h.cfg.Core.MfaVerifications(c.r.Context(), c.principal.Subject)
	if err != nil {
		return coreError(err)
	}
	return writeJSON(c.w, http.StatusOK, list)
}

// mfaBinding is a validated POST /api/my-account/mfa-verifications body: Logto's union
// discriminated by type.
type mfaBinding struct {
	Type string
	// Totp: the secret and the optional code that proves the authenticator has it.
	Secret, Code string
	// BackupCode: the codes.
	Codes []string
}

// mfaBindingTypes are the union's tags, in Logto's order.
var mfaBindingTypes = []string{identitycore.MfaWebAuthn, identitycore.MfaTotp, identitycore.MfaBackupCode}

// decodeMfaBinding validates the body like Logto's z.discriminatedUnion('type', ...): a missing
// or unknown tag is one invalid_union_discriminator issue; then the chosen branch's members.
func decodeMfaBinding(obj map[string]json.RawMessage) (mfaBinding, error) {
	f := fields{obj: obj}
	var tag string
	if raw, ok := obj["type"]; ok {
		_ = json.Unmarshal(raw, &tag) // a non-string leaves tag empty: not an option either
	}
	if !slices.Contains(mfaBindingTypes, tag) {
		return mfaBinding{}, apierror.InvalidBody(apierror.BadDiscriminator(mfaBindingTypes, "type"))
	}
	b := mfaBinding{Type: tag}
	switch tag {
	case identitycore.MfaWebAuthn:
		f.requiredString("newIdentifierVerificationRecordId")
		f.str("name", false)
	case identitycore.MfaTotp:
		b.Secret = f.requiredString("secret")
		if code, _ := f.str("code", false); code != nil {
			b.Code = *code
		}
	case identitycore.MfaBackupCode:
		b.Codes = f.strings("codes")
	}
	return b, f.err()
}

// bindMfa is POST /api/my-account/mfa-verifications, after the row's checks: the factor enabled
// in the sign-in experience, the factor's own rules, the binding and mfa.enabled.
func (h *Handler) bindMfa(c *call) error {
	b := input[mfaBinding](c)
	ctx := c.r.Context()
	bound, unlock, err := h.lockFactors(c)
	if err != nil {
		return err
	}
	defer unlock()
	if err := h.requireFactorEnabled(ctx, b.Type); err != nil {
		return err
	}
	if b.Type == identitycore.MfaWebAuthn {
		// Logto would now redeem the WebAuthn registration record (V7), which the module cannot
		// make: the Management API has no endpoint that writes a WebAuthn credential.
		return webAuthnNotServed
	}
	factor := identitycore.NewMfaVerification{Type: b.Type}
	switch b.Type {
	case identitycore.MfaTotp:
		if slices.ContainsFunc(bound, isType(identitycore.MfaTotp)) {
			return apierror.TotpAlreadyInUse
		}
		if !validTotpSecret(b.Secret) {
			return apierror.TotpSecretInvalid
		}
		// Logto checks the code only when one is given (an empty one is none).
		if b.Code != "" && !validTotpCode(b.Secret, b.Code, time.Now()) {
			return apierror.InvalidTotpCode
		}
		factor.Secret = b.Secret
	case identitycore.MfaBackupCode:
		if slices.ContainsFunc(bound, func(v identitycore.MfaVerification) bool {
			return v.Type == identitycore.MfaBackupCode && v.RemainCodes != nil && *v.RemainCodes > 0
		}) {
			return apierror.BackupCodeAlreadyInUse
		}
		if !slices.ContainsFunc(bound, func(v identitycore.MfaVerification) bool { return v.Type != identitycore.MfaBackupCode }) {
			return apierror.BackupCodeCannotBeAlone
		}
		if !validBackupCodes(b.Codes) {
			return apierror.WrongBackupCodeFormat
		}
		factor.Codes = b.Codes
	}
	if err := h.cfg.Core.AddMfaVerification(ctx, c.principal.Subject, factor); err != nil {
		return coreError(err)
	}
	if err := h.markMfaEnabled(ctx, c.principal.Subject); err != nil {
		// Logto binds the factor and sets mfa.enabled in one write: take the factor back, so
		// that a retry starts from where this request did.
		h.unbindNew(ctx, c.principal.Subject, bound, b.Type)
		return coreError(err)
	}
	h.cfg.UserChanged(ctx, c.principal.Subject, false)
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}

// totpReplacement is a validated PUT /api/my-account/mfa-verifications/totp body.
type totpReplacement struct{ Secret, Code string }

// decodeTotpReplacement validates {secret: string, code: string}.
func decodeTotpReplacement(obj map[string]json.RawMessage) (totpReplacement, error) {
	f := fields{obj: obj}
	r := totpReplacement{Secret: f.requiredString("secret"), Code: f.requiredString("code")}
	return r, f.err()
}

// replaceTotp is PUT /api/my-account/mfa-verifications/totp, after the row's checks: TOTP
// enabled in the sign-in experience, the secret, the code, then the old TOTP (if any) gives way
// to the new one and mfa.enabled is set.
//
// The Management API holds at most one TOTP per user (a second add is 422
// user.totp_already_in_use) and never shows a secret, so the replacement is "delete the old,
// add the new" and the old one cannot be restored once deleted. Every check that can refuse
// runs before the delete, so a refusal leaves the old factor in place, as Logto's own test
// expects; only the core failing between the two calls can leave the user without TOTP, and
// the error then says so in the log.
func (h *Handler) replaceTotp(c *call) error {
	body := input[totpReplacement](c)
	ctx := c.r.Context()
	if err := h.requireFactorEnabled(ctx, identitycore.MfaTotp); err != nil {
		return err
	}
	bound, unlock, err := h.lockFactors(c)
	if err != nil {
		return err
	}
	defer unlock()
	if !validTotpSecret(body.Secret) {
		return apierror.TotpSecretInvalid
	}
	if !validTotpCode(body.Secret, body.Code, time.Now()) {
		return apierror.InvalidTotpCode
	}
	for _, old := range bound {
		if old.Type != identitycore.MfaTotp {
			continue
		}
		err := h.cfg.Core.DeleteMfaVerification(ctx, c.principal.Subject, old.ID)
		if ce, ok := errors.AsType[*identitycore.Error](err); err != nil && !(ok && ce.Status == http.StatusNotFound) {
			return coreError(err) // the old TOTP is still there
		}
	}
	if err := h.cfg.Core.AddMfaVerification(ctx, c.principal.Subject,
		identitycore.NewMfaVerification{Type: identitycore.MfaTotp, Secret: body.Secret}); err != nil {
		if slices.ContainsFunc(bound, isType(identitycore.MfaTotp)) {
			h.cfg.Logger.Error("TOTP replacement: the old TOTP was removed but the new one could not be added",
				zap.String("user_id", c.principal.Subject), zap.Error(err))
		}
		return coreError(err)
	}
	// A failure here leaves the new TOTP bound: a retry of the same request replaces it again.
	if err := h.markMfaEnabled(ctx, c.principal.Subject); err != nil {
		return coreError(err)
	}
	h.cfg.UserChanged(ctx, c.principal.Subject, false)
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}

// generateTotpSecretRoute is POST /api/my-account/mfa-verifications/totp-secret/generate: a
// new secret, stored nowhere; no scope, field or step-up, as Logto.
func (h *Handler) generateTotpSecretRoute(c *call) error {
	return writeJSON(c.w, http.StatusOK, map[string]string{"secret": generateTotpSecret()})
}

// generateBackupCodesRoute is POST /api/my-account/mfa-verifications/backup-codes/generate.
func (h *Handler) generateBackupCodesRoute(c *call) error {
	return writeJSON(c.w, http.StatusOK, map[string][]string{"codes": generateBackupCodes()})
}

// deleteMfaVerification is DELETE /api/my-account/mfa-verifications/{verificationId}, after
// the row's checks: the factor exists (400 verification_record.not_found, where the Management
// API says 404), then the field of its type (passkey??mfa for WebAuthn, mfa otherwise) is
// editable, as Logto checks it only once it knows the type. Like Logto it keeps mfa.enabled
// and lets backup codes stay alone. Deleting the backup codes is deleting their entry.
func (h *Handler) deleteMfaVerification(c *call) error {
	ctx := c.r.Context()
	bound, unlock, err := h.lockFactors(c)
	if err != nil {
		return err
	}
	defer unlock()
	// Only an id the core itself listed reaches the core's URL.
	id := c.r.PathValue("verificationId")
	i := slices.IndexFunc(bound, func(v identitycore.MfaVerification) bool { return v.ID == id })
	if i < 0 {
		return apierror.RecordNotFound
	}
	if err := requireField(c, edit, factorField(bound[i].Type)); err != nil {
		return err
	}
	err = h.cfg.Core.DeleteMfaVerification(ctx, c.principal.Subject, bound[i].ID)
	if ce, ok := errors.AsType[*identitycore.Error](err); ok && ce.Status == http.StatusNotFound {
		return apierror.RecordNotFound // deleted meanwhile
	}
	if err != nil {
		return coreError(err)
	}
	h.cfg.UserChanged(ctx, c.principal.Subject, false)
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}

// lockFactors serialises the changes of the caller's factors, on every instance: each reads the
// factors then writes (a replacement deletes then adds), so two in parallel would otherwise act
// on a list the other has changed — parallel replacements answering 422
// user.totp_already_in_use where Logto, whose writes are one transaction, replaces each time,
// and a backup-code binding passing its "not alone" check while the other factor is deleted.
// It returns the factors as the core lists them once the lock is held.
func (h *Handler) lockFactors(c *call) (bound []identitycore.MfaVerification, unlock func(), err error) {
	unlock, err = h.lockUser(c, "mfa-factors")
	if err != nil {
		return nil, nil, err
	}
	bound, err = h.cfg.Core.MfaVerifications(c.r.Context(), c.principal.Subject)
	if err != nil {
		unlock()
		return nil, nil, coreError(err)
	}
	return bound, unlock, nil
}

// requireFactorEnabled refuses a factor the sign-in experience does not offer (400
// session.mfa.mfa_factor_not_enabled).
func (h *Handler) requireFactorEnabled(ctx context.Context, factor string) error {
	sie, err := h.signIn.Get(ctx)
	if err != nil {
		return coreError(err)
	}
	if !sie.FactorEnabled(factor) {
		return apierror.MfaFactorNotEnabled
	}
	return nil
}

// markMfaEnabled sets the user's logtoConfig mfa.enabled, which Logto's Account API sets with
// every bound factor and the Management API's add does not (reference §7.4).
func (h *Handler) markMfaEnabled(ctx context.Context, userID string) error {
	enabled := true
	_, err := h.cfg.Core.UpdateLogtoConfig(ctx, userID,
		identitycore.LogtoConfigPatch{Mfa: &identitycore.MfaDataPatch{Enabled: &enabled}})
	return err
}

// unbindNew removes the factors of type t that are not in before: the one this request added.
// It is best effort (the request is failing already) and runs even if the caller went away.
func (h *Handler) unbindNew(ctx context.Context, userID string, before []identitycore.MfaVerification, t string) {
	ctx = context.WithoutCancel(ctx)
	now, err := h.cfg.Core.MfaVerifications(ctx, userID)
	for _, v := range now {
		if err != nil {
			break
		}
		if v.Type == t && !slices.ContainsFunc(before, func(b identitycore.MfaVerification) bool { return b.ID == v.ID }) {
			err = h.cfg.Core.DeleteMfaVerification(ctx, userID, v.ID)
		}
	}
	if err != nil {
		h.cfg.Logger.Error("MFA binding: mfa.enabled could not be set and the new factor could not be taken back",
			zap.String("user_id", userID), zap.String("type", t), zap.Error(err))
	}
}

// isType matches factors of type t.
func isType(t string) func(identitycore.MfaVerification) bool {
	return func(v identitycore.MfaVerification) bool { return v.Type == t }
}
