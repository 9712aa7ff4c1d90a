// Package ratelimit counts attempts in fixed windows kept in a store.Counter (Redis when
// configured, so every instance shares the counts; in process otherwise) and says when a
// subject has had enough.
//
// Subjects (user ids, addresses, client IPs, record ids) are never stored as they are: their
// keys are keyed hashes, like every other key of the module.
package ratelimit

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/accountedge/caddy-account-api/accountapi/store"
)

// Limit allows Max events per Window. A zero Limit allows everything.
type Limit struct {
	Max    int
	Window time.Duration
}

// Off reports whether the limit is disabled.
func (l Limit) Off() bool { return l.Max <= 0 || l.Window <= 0 }

// Decision is the answer for one event.
type Decision struct {
	// Allowed is false when the subject is over its limit.
	Allowed bool
	// Count is how many events the window holds now.
	Count int64
	// RetryAfter is how long until the window ends (meaningful when refused).
	RetryAfter time.Duration
}

// Limiter applies limits on a shared counter, falling back to an in-process counter while the
// shared one fails: a Redis outage weakens the limits to per instance, it never lifts them.
type Limiter struct {
	shared    store.Counter
	keyer     *store.Keyer
	onFailed  func(error)
	localOnce sync.Once
	localMem  store.Counter
}

// New returns a Limiter counting in shared (nil: in process only); onFailed, when set, hears of
// shared-store failures.
func New(shared store.Counter, keyer *store.Keyer, onFailed func(error)) *Limiter {
	if onFailed == nil {
		onFailed = func(error) {}
	}
	return &Limiter{shared: shared, keyer: keyer, onFailed: onFailed}
}

// local is the in-process counter, made on first need: with a healthy Redis there is none (an
// in-process cache keeps a cleanup goroutine alive as long as it lives).
func (l *Limiter) local() store.Counter {
	l.localOnce.Do(func() { l.localMem = store.NewMemory(100_000) })
	return l.localMem
}

// Take records one event of subject under rule and says whether it is within lim.
func (l *Limiter) Take(ctx context.Context, rule, subject string, lim Limit) Decision {
	return l.add(ctx, rule, subject, lim, 1, func(n int64) bool { return n <= int64(lim.Max) })
}

// Check says whether subject may make one more event under rule without recording one: for
// lockouts that count failures only (see Fail).
func (l *Limiter) Check(ctx context.Context, rule, subject string, lim Limit) Decision {
	return l.add(ctx, rule, subject, lim, 0, func(n int64) bool { return n < int64(lim.Max) })
}

// Fail records one failure of subject under rule.
func (l *Limiter) Fail(ctx context.Context, rule, subject string, lim Limit) {
	l.add(ctx, rule, subject, lim, 1, nil)
}

func (l *Limiter) add(ctx context.Context, rule, subject string, lim Limit, delta int64, ok func(int64) bool) Decision {
	if lim.Off() {
		return Decision{Allowed: true}
	}
	key := l.keyer.Key("rl:"+rule, subject)
	var (
		n   int64
		ttl time.Duration
		err error = errNoShared
	)
	if l.shared != nil {
		n, ttl, err = l.shared.Incr(ctx, key, delta, lim.Window)
		if err != nil {
			l.onFailed(err)
		}
	}
	if err != nil {
		n, ttl, _ = l.local().Incr(ctx, key, delta, lim.Window)
	}
	d := Decision{Allowed: true, Count: n, RetryAfter: ttl}
	if ok != nil {
		d.Allowed = ok(n)
	}
	return d
}

// Close stops the in-process counter's background clean-up, if one was made.
func (l *Limiter) Close() {
	l.localOnce.Do(func() {}) // no counter is made after Close
	if m, ok := l.localMem.(*store.Memory); ok {
		m.Close()
	}
}

var errNoShared = errors.New("no shared counter")
