package devcore

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image/png"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"time"

	"github.com/pquerna/otp"
)

// MFA factors and logto-configs, as Logto 1.42's Management API keeps them
// (core/src/routes/admin-user/mfa-verifications.ts and basics.ts):
//
//	GET    /api/users/{userId}/mfa-verifications                   the transpiled list: no secrets
//	POST   /api/users/{userId}/mfa-verifications                   {type:"Totp", secret?} | {type:"BackupCode", codes?}
//	DELETE /api/users/{userId}/mfa-verifications/{verificationId}  204; 404 entity.not_found
//	GET    /api/users/{userId}/logto-configs
//	PATCH  /api/users/{userId}/logto-configs                       {mfa?, passkeySignIn?}
//
// Like Logto's, the add checks no code and leaves logtoConfig mfa.enabled alone; the Account API
// in front of it does both.

// mfaRoutes are the Management API routes of this file.
func (c *Core) mfaRoutes() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"GET /api/users/{userId}/mfa-verifications":                     c.handleListMfaVerifications,
		"POST /api/users/{userId}/mfa-verifications":                    c.handleAddMfaVerification,
		"DELETE /api/users/{userId}/mfa-verifications/{verificationId}": c.handleDeleteMfaVerification,
		"GET /api/users/{userId}/logto-configs":                         c.handleGetLogtoConfigs,
		"PATCH /api/users/{userId}/logto-configs":                       c.handlePatchLogtoConfigs,
	}
}

// mfaFactor is one entry of a user's mfaVerifications column.
type mfaFactor struct {
	id        string
	createdAt string // ISO 8601, as Logto stores it
	typ       string
	key       string       // Totp: the secret
	codes     []backupCode // BackupCode
}

type backupCode struct {
	code   string
	usedAt *string
}

// logtoConfig is a user's logto_config column: the mfa and passkey_sign_in members Logto reads.
type logtoConfig struct {
	mfa struct {
		enabled, skipped, additionalBindingSuggestionSkipped, skipMfaOnSignIn *bool
	}
	passkeySkipped *bool
}

// body is buildUserLogtoConfigResponse: enabled only when known, the rest false when unset.
func (l logtoConfig) body() ordered {
	mfa := ordered{}
	if l.mfa.enabled != nil {
		mfa = append(mfa, member{"enabled", *l.mfa.enabled})
	}
	mfa = append(mfa, member{"skipped", isTrue(l.mfa.skipped)}, member{"skipMfaOnSignIn", isTrue(l.mfa.skipMfaOnSignIn)})
	return ordered{{"mfa", mfa}, {"passkeySignIn", ordered{{"skipped", isTrue(l.passkeySkipped)}}}}
}

func isTrue(b *bool) bool { return b != nil && *b }

// transpiled is transpileUserMfaVerifications: id, createdAt, type, and remainCodes for backup
// codes (WebAuthn entries, which this core cannot create, would add lastUsedAt, agent, name).
func (f mfaFactor) transpiled() ordered {
	out := ordered{{"id", f.id}, {"createdAt", f.createdAt}, {"type", f.typ}}
	if f.typ == "BackupCode" {
		remain := 0
		for _, c := range f.codes {
			if c.usedAt == nil {
				remain++
			}
		}
		out = append(out, member{"remainCodes", remain})
	}
	return out
}

// isoNow is JavaScript's new Date().toISOString().
func isoNow() string { return time.Now().UTC().Format("2006-01-02T15:04:05.000Z") }

// Logto's formats (verification-helpers/totp-validation.ts, backup-code-validation.ts).
var (
	totpSecretRegex = regexp.MustCompile(`^(?:[2-7A-Z]{8})*(?:[2-7A-Z]{2}={6}|[2-7A-Z]{4}={4}|[2-7A-Z]{5}={3}|[2-7A-Z]{7}=)?$`)
	backupCodeRegex = regexp.MustCompile(`^(?i)[\da-f]{10}$`)
)

func validTotpSecret(s string) bool {
	return len(s) >= 16 && len(s) <= 32 && totpSecretRegex.MatchString(s)
}

func validBackupCodes(codes []string) bool {
	if len(codes) != 10 {
		return false
	}
	for _, c := range codes {
		if !backupCodeRegex.MatchString(c) {
			return false
		}
	}
	return true
}

func (c *Core) handleListMfaVerifications(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.pathUser(w, r)
	if u == nil {
		return
	}
	list := make([]ordered, len(u.mfaVerifications))
	for i, f := range u.mfaVerifications {
		list[i] = f.transpiled()
	}
	writeJSON(w, http.StatusOK, list)
}

// mfaAdd is a validated POST body.
type mfaAdd struct {
	typ    string
	secret *string
	codes  []string // nil: not given
}

// parseMfaAdd is the body guard: a union discriminated by type, Totp {secret?: string} or
// BackupCode {codes?: string[]}.
func parseMfaAdd(g *guard, body map[string]json.RawMessage) mfaAdd {
	var a mfaAdd
	_ = json.Unmarshal(body["type"], &a.typ)
	switch a.typ {
	case "Totp":
		if raw, ok := body["secret"]; ok {
			if s, ok := g.str(path{"secret"}, raw); ok {
				a.secret = &s
			}
		}
	case "BackupCode":
		if raw, ok := body["codes"]; ok {
			a.codes = g.strings(path{"codes"}, raw)
		}
	default:
		g.issues = append(g.issues, ordered{
			{"code", "invalid_union_discriminator"}, {"options", []string{"Totp", "BackupCode"}},
			{"path", path{"type"}}, {"message", "Invalid discriminator value. Expected 'Totp' | 'BackupCode'"},
		})
	}
	return a
}

// strings reads an array of strings, recording an issue for anything else.
func (g *guard) strings(p path, raw json.RawMessage) []string {
	if zodType(raw) != "array" {
		g.typeIssue(p, "array", raw)
		return nil
	}
	var items []json.RawMessage
	_ = json.Unmarshal(raw, &items)
	out := []string{}
	for i, item := range items {
		if s, ok := g.str(p.with(i), item); ok {
			out = append(out, s)
		}
	}
	return out
}

// handleAddMfaVerification binds a factor in Logto's order: guard (400), user (404), then for
// TOTP: one per user (422), the secret (422); for backup codes: none with unused codes left
// (422), not alone (422), the format (422). Absent secrets and codes are generated.
func (c *Core) handleAddMfaVerification(w http.ResponseWriter, r *http.Request) {
	withPathUser(c, w, r, parseMfaAdd, func(u *user, a mfaAdd) {
		f := mfaFactor{id: randomString(idAlphabet, 21), createdAt: isoNow(), typ: a.typ}
		var resp ordered
		if a.typ == "Totp" {
			if slices.ContainsFunc(u.mfaVerifications, func(v mfaFactor) bool { return v.typ == "Totp" }) {
				writeError(w, http.StatusUnprocessableEntity, "user.totp_already_in_use")
				return
			}
			if a.secret != nil && *a.secret != "" && !validTotpSecret(*a.secret) {
				writeError(w, http.StatusUnprocessableEntity, "user.totp_secret_invalid")
				return
			}
			f.key = randomString(base32Alphabet, 32) // otplib's generateSecret(20)
			if a.secret != nil && *a.secret != "" {
				f.key = *a.secret
			}
			qr, err := totpQRCode(u, baseURLHost(r), f.key)
			if err != nil {
				writeInternalError(w)
				return
			}
			resp = ordered{{"type", "Totp"}, {"secret", f.key}, {"secretQrCode", qr}}
		} else {
			if slices.ContainsFunc(u.mfaVerifications, func(v mfaFactor) bool {
				return v.typ == "BackupCode" && slices.ContainsFunc(v.codes, func(c backupCode) bool { return c.usedAt == nil })
			}) {
				writeError(w, http.StatusUnprocessableEntity, "user.backup_code_already_in_use")
				return
			}
			if !slices.ContainsFunc(u.mfaVerifications, func(v mfaFactor) bool { return v.typ != "BackupCode" }) {
				writeError(w, http.StatusUnprocessableEntity, "session.mfa.backup_code_can_not_be_alone")
				return
			}
			if a.codes != nil && !validBackupCodes(a.codes) {
				writeError(w, http.StatusUnprocessableEntity, "user.wrong_backup_code_format")
				return
			}
			codes := a.codes
			if codes == nil {
				for range 10 {
					codes = append(codes, randomString("0123456789abcdef", 10))
				}
			}
			for _, code := range codes {
				f.codes = append(f.codes, backupCode{code: code})
			}
			resp = ordered{{"codes", codes}, {"type", "BackupCode"}}
		}
		u.mfaVerifications = append(u.mfaVerifications, f)
		u.touch()
		writeJSON(w, http.StatusOK, resp)
	})
}

const base32Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

// baseURLHost is the host name Logto puts in the key URI (ctx.URL.hostname).
func baseURLHost(r *http.Request) string {
	u, err := url.Parse(baseURL(r))
	if err != nil {
		return r.Host
	}
	return u.Hostname()
}

// totpQRCode is Logto's secretQrCode: otplib's key URI for the user's display name (name,
// email, phone, username) at the service host, as a PNG data URL.
func totpQRCode(u *user, service, secret string) (string, error) {
	account := "Unnamed User"
	for _, s := range []*string{u.name, u.primaryEmail, u.primaryPhone, u.username} {
		if s != nil {
			account = *s
			break
		}
	}
	uri := fmt.Sprintf("otpauth://totp/%s:%s?secret=%s&period=30&digits=6&algorithm=SHA1&issuer=%s",
		url.PathEscape(service), url.PathEscape(account), secret, url.QueryEscape(service))
	key, err := otp.NewKeyFromURL(uri)
	if err != nil {
		return "", err
	}
	img, err := key.Image(200, 200)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return "", err
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}

// handleDeleteMfaVerification removes one factor: 204, or 404 entity.not_found.
func (c *Core) handleDeleteMfaVerification(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.pathUser(w, r)
	if u == nil {
		return
	}
	id := r.PathValue("verificationId")
	i := slices.IndexFunc(u.mfaVerifications, func(f mfaFactor) bool { return f.id == id })
	if i < 0 {
		writeError(w, http.StatusNotFound, "entity.not_found")
		return
	}
	u.mfaVerifications = slices.Delete(u.mfaVerifications, i, i+1)
	u.touch()
	w.WriteHeader(http.StatusNoContent)
}

func (c *Core) handleGetLogtoConfigs(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.pathUser(w, r)
	if u == nil {
		return
	}
	writeJSON(w, http.StatusOK, u.logtoConfig.body())
}

// logtoConfigPatch is a validated PATCH body; nil members were not given.
type logtoConfigPatch struct {
	enabled, skipped, skipMfaOnSignIn, passkeySkipped *bool
}

// parseLogtoConfigPatch is the body guard {mfa?: userMfaDataGuard, passkeySignIn?:
// userPasskeySignInDataGuard}. Like Logto's handler it keeps only enabled, skipped,
// skipMfaOnSignIn and passkeySignIn.skipped: additionalBindingSuggestionSkipped is accepted and
// ignored.
func parseLogtoConfigPatch(g *guard, body map[string]json.RawMessage) logtoConfigPatch {
	var p logtoConfigPatch
	if raw, ok := body["mfa"]; ok {
		if mfa := g.object(path{"mfa"}, raw); mfa != nil {
			p.enabled = g.optionalBool(path{"mfa", "enabled"}, mfa)
			p.skipped = g.optionalBool(path{"mfa", "skipped"}, mfa)
			g.optionalBool(path{"mfa", "additionalBindingSuggestionSkipped"}, mfa)
			p.skipMfaOnSignIn = g.optionalBool(path{"mfa", "skipMfaOnSignIn"}, mfa)
		}
	}
	if raw, ok := body["passkeySignIn"]; ok {
		if passkey := g.object(path{"passkeySignIn"}, raw); passkey != nil {
			p.passkeySkipped = g.optionalBool(path{"passkeySignIn", "skipped"}, passkey)
		}
	}
	return p
}

// optionalBool reads the member named by the last element of p from obj: nil when absent, an
// issue when it is not a boolean.
func (g *guard) optionalBool(p path, obj map[string]json.RawMessage) *bool {
	raw, ok := obj[p[len(p)-1].(string)]
	if !ok {
		return nil
	}
	if zodType(raw) != "boolean" {
		g.typeIssue(p, "boolean", raw)
		return nil
	}
	b := string(bytes.TrimSpace(raw)) == "true"
	return &b
}

// handlePatchLogtoConfigs merges the given members (buildUpdatedUserLogtoConfig) and answers
// the result.
func (c *Core) handlePatchLogtoConfigs(w http.ResponseWriter, r *http.Request) {
	withPathUser(c, w, r, parseLogtoConfigPatch, func(u *user, p logtoConfigPatch) {
		l := &u.logtoConfig
		for _, m := range []struct{ from, to **bool }{
			{&p.enabled, &l.mfa.enabled}, {&p.skipped, &l.mfa.skipped},
			{&p.skipMfaOnSignIn, &l.mfa.skipMfaOnSignIn}, {&p.passkeySkipped, &l.passkeySkipped},
		} {
			if *m.from != nil {
				*m.to = *m.from
			}
		}
		u.touch()
		writeJSON(w, http.StatusOK, l.body())
	})
}

// The sign-in experience's mfa member (mfaGuard): the factors users may bind and the prompt
// policy.
var (
	mfaFactorValues = []string{"Totp", "WebAuthn", "BackupCode", "EmailVerificationCode", "PhoneVerificationCode"}
	mfaPolicyValues = []string{"UserControlled", "Mandatory", "PromptOnlyAtSignIn", "PromptAtSignInAndSignUp",
		"NoPrompt", "PromptAtSignInAndSignUpMandatory", "PromptOnlyAtSignInMandatory"}
	orgMfaPolicyValues = []string{"NoPrompt", "Mandatory"}
)

// mfaPolicy is PATCH /api/sign-in-exp's guard of mfa: {factors: MfaFactor[], policy: MfaPolicy,
// organizationRequiredMfaPolicy?}.
func (g *guard) mfaPolicy(raw json.RawMessage) {
	obj := g.object(path{"mfa"}, raw)
	if obj == nil {
		return
	}
	if zodType(obj["factors"]) != "array" {
		g.typeIssue(path{"mfa", "factors"}, "array", obj["factors"])
	} else {
		var items []json.RawMessage
		_ = json.Unmarshal(obj["factors"], &items)
		for i, item := range items {
			g.enum(path{"mfa", "factors", i}, item, mfaFactorValues)
		}
	}
	g.enum(path{"mfa", "policy"}, obj["policy"], mfaPolicyValues)
	if raw, ok := obj["organizationRequiredMfaPolicy"]; ok {
		g.enum(path{"mfa", "organizationRequiredMfaPolicy"}, raw, orgMfaPolicyValues)
	}
}

// enum reads a required string member that must be one of options.
func (g *guard) enum(p path, raw json.RawMessage, options []string) {
	s, ok := g.str(p, raw)
	if ok && !slices.Contains(options, s) {
		g.enumIssue(p, options, s)
	}
}

// mfaPolicyRefusal is Logto's validateMfa on a guarded mfa member: no factor twice, backup codes
// never alone (400). The rules tying verification-code factors to sign-in methods and the
// adaptive-MFA rules are not modelled.
func mfaPolicyRefusal(patch ordered) *apiError {
	raw, ok := patch.get("mfa").(json.RawMessage)
	if !ok {
		return nil
	}
	var mfa struct{ Factors []string }
	_ = json.Unmarshal(raw, &mfa)
	seen := map[string]bool{}
	for _, f := range mfa.Factors {
		if seen[f] {
			return newError(http.StatusBadRequest, "sign_in_experiences.duplicated_mfa_factors")
		}
		seen[f] = true
	}
	if seen["BackupCode"] && len(mfa.Factors) == 1 {
		return newError(http.StatusBadRequest, "sign_in_experiences.backup_code_cannot_be_enabled_alone")
	}
	return nil
}
