package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
)

// fakeFactor is a bound factor as the core keeps it: the listed entry and its secrets.
type fakeFactor struct {
	identitycore.MfaVerification
	secret string
	codes  []string
}

func (f *fakeCore) MfaVerifications(_ context.Context, id string) ([]identitycore.MfaVerification, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("MfaVerifications"); err != nil {
		return nil, err
	}
	if _, err := f.user(id); err != nil {
		return nil, err
	}
	out := []identitycore.MfaVerification{}
	for _, v := range f.mfa[id] {
		out = append(out, v.MfaVerification)
	}
	return out, nil
}

// AddMfaVerification keeps the Management API's rules that the Account API relies on: one TOTP
// per user (422).
func (f *fakeCore) AddMfaVerification(_ context.Context, id string, factor identitycore.NewMfaVerification) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("AddMfaVerification"); err != nil {
		return err
	}
	if _, err := f.user(id); err != nil {
		return err
	}
	if factor.Type == identitycore.MfaTotp && slices.ContainsFunc(f.mfa[id], func(v fakeFactor) bool { return v.Type == identitycore.MfaTotp }) {
		return &identitycore.Error{Status: http.StatusUnprocessableEntity, Code: "user.totp_already_in_use"}
	}
	v := fakeFactor{MfaVerification: identitycore.MfaVerification{
		ID: fmt.Sprintf("f%d", len(f.calls)), CreatedAt: "2026-12-01T00:00:00.000Z", Type: factor.Type,
	}, secret: factor.Secret, codes: factor.Codes}
	if factor.Type == identitycore.MfaBackupCode {
		n := len(factor.Codes)
		v.RemainCodes = &n
	}
	f.mfa[id] = append(f.mfa[id], v)
	return nil
}

func (f *fakeCore) DeleteMfaVerification(_ context.Context, id, verificationID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("DeleteMfaVerification"); err != nil {
		return err
	}
	i := slices.IndexFunc(f.mfa[id], func(v fakeFactor) bool { return v.ID == verificationID })
	if i < 0 {
		return notFound("entity.not_found")
	}
	f.mfa[id] = slices.Delete(f.mfa[id], i, i+1)
	return nil
}

func (f *fakeCore) LogtoConfig(_ context.Context, id string) (*identitycore.LogtoConfig, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("LogtoConfig"); err != nil {
		return nil, err
	}
	if _, err := f.user(id); err != nil {
		return nil, err
	}
	cfg := identitycore.LogtoConfig{}
	if c := f.logtoConfigs[id]; c != nil {
		cfg = *c
	}
	return &cfg, nil
}

func (f *fakeCore) UpdateLogtoConfig(_ context.Context, id string, patch identitycore.LogtoConfigPatch) (*identitycore.LogtoConfig, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("UpdateLogtoConfig"); err != nil {
		return nil, err
	}
	if _, err := f.user(id); err != nil {
		return nil, err
	}
	cfg := f.logtoConfigs[id]
	if cfg == nil {
		cfg = &identitycore.LogtoConfig{}
		f.logtoConfigs[id] = cfg
	}
	if m := patch.Mfa; m != nil {
		if m.Enabled != nil {
			enabled := *m.Enabled
			cfg.Mfa.Enabled = &enabled
		}
		set := func(dst *bool, v *bool) {
			if v != nil {
				*dst = *v
			}
		}
		set(&cfg.Mfa.Skipped, m.Skipped)
		set(&cfg.Mfa.SkipMfaOnSignIn, m.SkipMfaOnSignIn)
	}
	if p := patch.PasskeySignIn; p != nil && p.Skipped != nil {
		cfg.PasskeySignIn.Skipped = *p.Skipped
	}
	out := *cfg
	return &out, nil
}
