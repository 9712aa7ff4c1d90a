package ratelimit

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/maypok86/otter/v2"
	"github.com/redis/go-redis/v9"
)

var errUnexpectedAnswer = errors.New("ratelimit: unexpected answer from the shared store")

// Sentinel is Logto's sentinel policy for one kind of attempt (the sign-in experience's
// sentinelPolicy): after MaxAttempts failures within FailureWindow, the subject is locked out
// for LockoutDuration, whatever it tries.
type Sentinel struct {
	MaxAttempts     int
	LockoutDuration time.Duration
	// FailureWindow is how far back failures count (Logto: one hour).
	FailureWindow time.Duration
}

// Verdict is the answer of a lockout step.
type Verdict struct {
	// Allowed is false when the subject is locked out (or, for Attempt, has as many attempts in
	// flight as it may still fail).
	Allowed bool
	// LockedFor is how long the lock still holds (0 when there is none).
	LockedFor time.Duration
}

// Attempt reserves an attempt of subject before its secret is checked, and returns settle,
// which ends it. The reservation counts as a failure until settle says otherwise, so of N
// parallel attempts at most MaxAttempts reach the check, on every instance sharing the store. A
// refused reservation (Allowed false) needs no settle.
//
// settle(failed true) keeps the attempt as a failure, which locks the subject out when the
// failures reach MaxAttempts (that failure is already refused, as Logto answers it); otherwise
// the reservation is given back. A success while the subject is locked out is refused too, so a
// locked subject learns nothing from its attempts. Only the first settle counts.
func (l *Limiter) Attempt(ctx context.Context, rule, subject string, p Sentinel) (settle func(ctx context.Context, failed bool) Verdict, v Verdict) {
	key := l.keyer.Key("lo:"+rule, subject)
	v = l.lockout(ctx, key, opReserve, p)
	var once sync.Once
	return func(ctx context.Context, failed bool) (out Verdict) {
		if !v.Allowed {
			return Verdict{}
		}
		once.Do(func() {
			op := opRelease
			if failed {
				op = opFail
			}
			out = l.lockout(context.WithoutCancel(ctx), key, op, p)
		})
		return out
	}, v
}

const (
	opReserve = "reserve"
	opFail    = "fail"
	opRelease = "release"
)

// lockoutState is a subject's lockout: failures (and reservations) within the window that ends
// at windowEnd, and the lock that ends at lockedUntil.
type lockoutState struct {
	failures    int64
	windowEnd   time.Time
	lockedUntil time.Time
}

func (s lockoutState) expiresAt() time.Time {
	if s.lockedUntil.After(s.windowEnd) {
		return s.lockedUntil
	}
	return s.windowEnd
}

// step applies op at now; it is the in-process twin of lockoutScript.
func (s lockoutState) step(op string, p Sentinel, now time.Time) (lockoutState, bool) {
	if !now.Before(s.windowEnd) {
		s.failures, s.windowEnd = 0, now.Add(p.FailureWindow)
	}
	locked := now.Before(s.lockedUntil)
	allowed := true
	switch op {
	case opReserve:
		if locked || s.failures >= int64(p.MaxAttempts) {
			allowed = false
		} else {
			s.failures++
		}
	case opFail:
		switch {
		case locked:
			allowed = false
		case s.failures >= int64(p.MaxAttempts):
			// Logto does not count the failure that locks: once the lock ends, one more
			// failure within the window locks again.
			s.lockedUntil, s.failures, allowed = now.Add(p.LockoutDuration), s.failures-1, false
		}
	default:
		if s.failures > 0 {
			s.failures--
		}
		allowed = !locked
	}
	return s, allowed
}

// lockoutScript is step in Redis, on one hash per subject (f: failures, fe: end of the failure
// window, l: end of the lock, in Redis's milliseconds), atomic on every instance.
var lockoutScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local s = redis.call('HMGET', KEYS[1], 'f', 'fe', 'l')
local f, fe, l = tonumber(s[1]) or 0, tonumber(s[2]) or 0, tonumber(s[3]) or 0
local op, max, win, lock = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if fe <= now then f = 0; fe = now + win end
local locked = l > now
local allowed = 1
if op == 'reserve' then
	if locked or f >= max then allowed = 0 else f = f + 1 end
elseif op == 'fail' then
	if locked then allowed = 0
	elseif f >= max then l = now + lock; f = f - 1; allowed = 0 end
else
	if f > 0 then f = f - 1 end
	if locked then allowed = 0 end
end
redis.call('HSET', KEYS[1], 'f', f, 'fe', fe, 'l', l)
redis.call('PEXPIREAT', KEYS[1], math.max(fe, l))
return {allowed, f, fe - now, math.max(l - now, 0)}
`)

// lockout runs op on the shared store and copies the answer into the in-process state, or runs
// it on the in-process state alone while the shared store fails.
func (l *Limiter) lockout(ctx context.Context, key, op string, p Sentinel) Verdict {
	_, local := l.local()
	now := time.Now()
	// A lock this instance knows of holds even when the shared store has lost it (a Redis
	// restart without persistence): locks only ever end by expiring.
	if s, ok := local.GetIfPresent(key); ok && op == opReserve && now.Before(s.lockedUntil) {
		return Verdict{Allowed: false, LockedFor: s.lockedUntil.Sub(now)}
	}
	if l.script != nil {
		res, err := l.script.Eval(ctx, lockoutScript, key, op, p.MaxAttempts,
			p.FailureWindow.Milliseconds(), p.LockoutDuration.Milliseconds()).Int64Slice()
		if err == nil && len(res) == 4 {
			s := lockoutState{failures: res[1],
				windowEnd:   now.Add(time.Duration(res[2]) * time.Millisecond),
				lockedUntil: now.Add(time.Duration(res[3]) * time.Millisecond)}
			if old, ok := local.GetIfPresent(key); ok && old.lockedUntil.After(s.lockedUntil) {
				s.lockedUntil = old.lockedUntil
			}
			local.Set(key, s)
			return Verdict{Allowed: res[0] == 1, LockedFor: time.Duration(res[3]) * time.Millisecond}
		}
		if err == nil {
			err = errUnexpectedAnswer
		}
		l.onFailed(err)
	}
	var allowed bool
	s, _ := local.Compute(key, func(old lockoutState, _ bool) (lockoutState, otter.ComputeOp) {
		var s lockoutState
		s, allowed = old.step(op, p, now)
		return s, otter.WriteOp
	})
	return Verdict{Allowed: allowed, LockedFor: max(s.lockedUntil.Sub(now), 0)}
}
