package api

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/accountedge/caddy-account-api/accountapi/apierror"
	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
	"github.com/accountedge/caddy-account-api/accountapi/ratelimit"
	"github.com/accountedge/caddy-account-api/accountapi/verification"
)

// isoMillis is JavaScript's Date.toISOString layout, which Logto uses for expiresAt.
const isoMillis = "2006-01-02T15:04:05.000Z"

// sentinelFailureWindow is how far back Logto's sentinel counts failures.
const sentinelFailureWindow = time.Hour

// verifyPassword is POST /api/verifications/password: prove identity with the current password
// and get a step-up record (reference §5.2 V1).
//
// Logto's sentinel guards it: after the sign-in experience's sentinelPolicy.maxAttempts wrong
// passwords of a user (from any address, on any instance), the user is locked out for
// lockoutDuration minutes, and every attempt, right or wrong, is answered 400
// session.verification_blocked_too_many_attempts. The attempt is reserved before the core is
// asked, so a burst of guesses cannot outrun the count.
func (h *Handler) verifyPassword(c *call) error {
	password, ctx := input[string](c), c.r.Context()
	userID := c.principal.Subject
	sentinel, err := h.sentinel(c)
	if err != nil {
		return err
	}
	p := h.cfg.Protections
	// The optional per-address limit sits on top of the per-user lockout, never instead of it.
	releaseIP, d := p.Limiter.Reserve(ctx, "password-failures-ip", p.clientNetwork(c.r), p.Limits.PasswordFailuresPerIP)
	if !d.Allowed {
		return limited(c, d, apierror.TooManyAttempts)
	}
	settle, v := p.Limiter.Attempt(ctx, "password", userID, sentinel)
	if !v.Allowed {
		releaseIP()
		return blockedTooManyAttempts(v, sentinel)
	}
	err = h.cfg.Core.VerifyPassword(ctx, userID, password)
	wrong := errors.Is(err, identitycore.ErrInvalidCredentials)
	if !wrong {
		releaseIP()
	}
	if v := settle(ctx, wrong); !v.Allowed {
		return blockedTooManyAttempts(v, sentinel)
	}
	if err != nil {
		return coreError(err)
	}
	// Logto refuses a suspended user only once the password is right.
	u, err := h.cfg.Core.User(ctx, userID, false)
	if err != nil {
		return coreError(err)
	}
	if u.IsSuspended {
		return apierror.UserSuspended
	}
	rec, err := h.cfg.Verifications.Create(ctx, verification.Record{
		UserID:     userID,
		Type:       verification.Password,
		Verified:   true,
		Identifier: &verification.Identifier{Type: "userId", Value: userID},
	})
	if err != nil {
		return apierror.StoreUnavailable.WithCause(err) // refuse cleanly rather than hand out a record that may not exist
	}
	return writeJSON(c.w, http.StatusCreated, map[string]string{
		"verificationRecordId": rec.ID,
		"expiresAt":            rec.ExpiresAt.UTC().Format(isoMillis),
	})
}

// sentinel is the sign-in experience's sentinel policy.
func (h *Handler) sentinel(c *call) (ratelimit.Sentinel, error) {
	sie, err := h.signIn.Get(c.r.Context())
	if err != nil {
		return ratelimit.Sentinel{}, coreError(err)
	}
	return sentinelOf(sie.SentinelPolicy), nil
}

// sentinelOf reads the sign-in experience's sentinel policy with Logto's defaults for what is
// unset (or nonsensical).
func sentinelOf(p identitycore.SentinelPolicy) ratelimit.Sentinel {
	s := ratelimit.Sentinel{
		MaxAttempts:     identitycore.DefaultSentinelMaxAttempts,
		LockoutDuration: identitycore.DefaultSentinelLockoutMinutes * time.Minute,
		FailureWindow:   sentinelFailureWindow,
	}
	if p.MaxAttempts != nil && *p.MaxAttempts >= 1 {
		s.MaxAttempts = int(math.Min(*p.MaxAttempts, math.MaxInt32))
	}
	if p.LockoutDuration != nil && *p.LockoutDuration > 0 {
		s.LockoutDuration = time.Duration(math.Min(*p.LockoutDuration, 366*24*60) * float64(time.Minute))
	}
	return s
}

// blockedTooManyAttempts is Logto's answer while the sentinel locks a user out: 400, with the
// time left in the message as Logto words it ("Please try again in 10 minutes.").
func blockedTooManyAttempts(v ratelimit.Verdict, s ratelimit.Sentinel) error {
	left := v.LockedFor
	if left <= 0 { // attempts in flight fill the allowance: the lock is one failure away
		left = s.LockoutDuration
	}
	minutes := int(math.Round(left.Minutes()))
	unit := "minutes"
	if minutes == 1 {
		unit = "minute"
	}
	e := apierror.New(http.StatusBadRequest, "session.verification_blocked_too_many_attempts")
	e.Message = "Too many attempts in a short time. Please try again in " + strconv.Itoa(minutes) + " " + unit + "."
	return e
}
