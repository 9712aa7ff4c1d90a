// Package ratelimit counts attempts in fixed windows kept in a store.Counter (Redis when
// configured, so every instance shares the counts; in process otherwise) and says when a
// subject has had enough. It also keeps Logto's sentinel lockout of password verification
// (lockout.go) and short per-subject locks for rules that read then write (lock.go).
//
// Every answer of the shared store is copied into the Limiter's own in-process state, which
// takes over while the shared store fails: a Redis outage weakens the limits to per instance
// and starts them from where Redis was, it never lifts them nor resets them. All of that state
// belongs to the Limiter, so keeping one Limiter across configuration reloads keeps it.
//
// Subjects (user ids, addresses, client IPs, record ids) are never stored as they are: their
// keys are keyed hashes, like every other key of the module.
package ratelimit

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/maypok86/otter/v2"
	"github.com/redis/go-redis/v9"

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

// Limiter applies limits on a shared counter, falling back to its in-process copy of the counts
// while the shared one fails.
type Limiter struct {
	shared   store.Counter
	script   evaler // the shared store's scripts, for lockouts and locks; nil in process
	keyer    *store.Keyer
	onFailed func(error)

	localOnce sync.Once
	localMem  *store.Memory
	lockouts  *otter.Cache[string, lockoutState]
	stripes   [lockStripes]chan struct{}
}

// evaler is what the Limiter needs of a shared store to run its atomic steps (store.Redis).
type evaler interface {
	Eval(ctx context.Context, script *redis.Script, key string, args ...any) *redis.Cmd
}

// New returns a Limiter counting in shared (nil: in process only); onFailed, when set, hears of
// shared-store failures (not of calls cut short by their caller's context being cancelled).
func New(shared store.Counter, keyer *store.Keyer, onFailed func(error)) *Limiter {
	report := onFailed
	if report == nil {
		report = func(error) {}
	}
	// A client that went away cut its own call short: no failure of the shared store.
	onFailed = func(err error) {
		if !errors.Is(err, context.Canceled) {
			report(err)
		}
	}
	l := &Limiter{shared: shared, keyer: keyer, onFailed: onFailed}
	l.script, _ = shared.(evaler)
	for i := range l.stripes {
		l.stripes[i] = make(chan struct{}, 1)
	}
	return l
}

// local is the in-process state, made on first need (an in-process cache keeps a clean-up
// goroutine alive as long as it lives).
func (l *Limiter) local() (*store.Memory, *otter.Cache[string, lockoutState]) {
	l.localOnce.Do(func() {
		l.localMem = store.NewMemory(100_000)
		l.lockouts = otter.Must(&otter.Options[string, lockoutState]{
			MaximumSize: 100_000,
			ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, lockoutState]) time.Duration {
				return time.Until(e.Value.expiresAt())
			}),
		})
	})
	return l.localMem, l.lockouts
}

// Take records one event of subject under rule and says whether it is within lim. The count and
// the comparison are one atomic step: of N parallel events, exactly lim.Max are allowed.
func (l *Limiter) Take(ctx context.Context, rule, subject string, lim Limit) Decision {
	if lim.Off() {
		return Decision{Allowed: true}
	}
	n, ttl := l.incr(ctx, l.keyer.Key("rl:"+rule, subject), 1, lim.Window)
	return Decision{Allowed: n <= int64(lim.Max), Count: n, RetryAfter: ttl}
}

// Reserve takes one event of subject under rule before the work it stands for is done, and
// returns release, which gives it back (for work that turned out not to count, such as a
// failure-limited attempt that succeeded). A refused reservation takes nothing and its release
// does nothing. Of N parallel reservations, at most lim.Max are allowed however the work ends,
// and a release gives back only to the store and the window that took it: never to the next
// window, nor to a shared count that never held it (one taken in process while the shared
// store failed), nor below zero.
func (l *Limiter) Reserve(ctx context.Context, rule, subject string, lim Limit) (release func(), d Decision) {
	if lim.Off() {
		return func() {}, Decision{Allowed: true}
	}
	key := l.keyer.Key("rv:"+rule, subject)
	res, taker := l.reserve(ctx, key, lim)
	if !res.Taken {
		return func() {}, Decision{Allowed: false, Count: res.Count, RetryAfter: res.TTL}
	}
	var once sync.Once
	return func() {
		once.Do(func() { l.release(context.WithoutCancel(ctx), taker, key, res.Window) })
	}, Decision{Allowed: true, Count: res.Count, RetryAfter: res.TTL}
}

// reserve takes one event at key in the shared store if it holds fewer than lim.Max, keeping
// the in-process copy in step, or in the in-process copy alone while the shared store fails;
// taker is the store that answered.
func (l *Limiter) reserve(ctx context.Context, key string, lim Limit) (res store.Reservation, taker store.Counter) {
	mem, _ := l.local()
	if l.shared != nil {
		res, err := l.shared.Reserve(ctx, key, int64(lim.Max), lim.Window)
		if err == nil {
			mem.SetCount(key, res.Count, res.TTL)
			return res, l.shared
		}
		l.onFailed(err)
	}
	res, _ = mem.Reserve(ctx, key, int64(lim.Max), lim.Window)
	return res, mem
}

// release gives back one reservation to taker, the store that took it, in its window; the
// in-process copy follows the shared store's answer. A shared store that fails now keeps the
// reservation: the limit errs on the strict side.
func (l *Limiter) release(ctx context.Context, taker store.Counter, key, window string) {
	n, ttl, err := taker.Release(ctx, key, window)
	if err != nil {
		l.onFailed(err)
		return
	}
	if mem, _ := l.local(); taker != store.Counter(mem) {
		mem.SetCount(key, n, ttl)
	}
}

// incr adds delta to the counter at key in the shared store, keeping the in-process copy in
// step, or in the in-process copy alone while the shared store fails.
func (l *Limiter) incr(ctx context.Context, key string, delta int64, window time.Duration) (int64, time.Duration) {
	mem, _ := l.local()
	if l.shared != nil {
		n, ttl, err := l.shared.Incr(ctx, key, delta, window)
		if err == nil {
			mem.SetCount(key, n, ttl)
			return n, ttl
		}
		l.onFailed(err)
	}
	n, ttl, _ := mem.Incr(ctx, key, delta, window)
	return n, ttl
}

// Close stops the in-process state's background clean-up. The state keeps counting (without
// background clean-up) for a request still running when its configuration went away: it must
// not find a nil counter.
func (l *Limiter) Close() {
	mem, lockouts := l.local()
	mem.Close()
	lockouts.StopAllGoroutines()
}
