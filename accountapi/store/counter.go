package store

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/maypok86/otter/v2"
	"github.com/redis/go-redis/v9"
)

// Counter is a store of counters that live for a fixed window from their first increment: what
// rate limits need. Memory and Redis implement it beside Store.
type Counter interface {
	// Incr adds delta (which may be 0, to read) to the counter at key, creating it with a
	// lifetime of window when it does not exist, and returns the new count and how long the
	// counter still lives. The increment and the expiry are one atomic step, so concurrent
	// callers (on any instance sharing the store) never lose a count nor leave an immortal key.
	Incr(ctx context.Context, key string, delta int64, window time.Duration) (count int64, ttl time.Duration, err error)
	// Reserve adds one to the counter at key only while it holds fewer than limit, creating it
	// with a lifetime of window. The comparison and the increment are one atomic step: a
	// refusal changes no count, so it has nothing to undo. Keys given to Reserve are for
	// Reserve and Release only.
	Reserve(ctx context.Context, key string, limit int64, window time.Duration) (Reservation, error)
	// Release gives back one count that Reserve took in the window it named, and only to that
	// window: a window that ended, or that the store lost (a Redis restart or flush), took its
	// counts with it, and the one after it owes nothing. It never goes below zero, and returns
	// the count and how long the counter lives, as they are after the step.
	Release(ctx context.Context, key, window string) (count int64, ttl time.Duration, err error)
}

// Reservation is the answer of Counter.Reserve.
type Reservation struct {
	// Taken is false when the counter held limit already.
	Taken bool
	// Count is the count after the step; TTL how long the counter still lives.
	Count int64
	TTL   time.Duration
	// Window names the counter's window, for Release.
	Window string
}

// newWindow names a window: random, so that no two windows of a key (nor an in-process and a
// shared one) are ever taken for each other.
func newWindow() string { return strconv.FormatUint(rand.Uint64(), 36) }

// Incr implements Counter.
func (m *Memory) Incr(_ context.Context, key string, delta int64, window time.Duration) (int64, time.Duration, error) {
	if window <= 0 {
		return 0, 0, errors.New("store: a counter needs a positive window")
	}
	now := time.Now()
	e, _ := m.cache.Compute(key, func(old memoryEntry, found bool) (memoryEntry, otter.ComputeOp) {
		if found && now.Before(old.expiresAt) {
			return counterEntry(countOf(old)+delta, old.expiresAt, windowOf(old)), otter.WriteOp
		}
		return counterEntry(delta, now.Add(window), ""), otter.WriteOp
	})
	return countOf(e), e.expiresAt.Sub(now), nil
}

// Reserve implements Counter.
func (m *Memory) Reserve(_ context.Context, key string, limit int64, window time.Duration) (Reservation, error) {
	if window <= 0 || limit < 1 {
		return Reservation{}, errBadReservation
	}
	now := time.Now()
	taken := false
	e, _ := m.cache.Compute(key, func(old memoryEntry, found bool) (memoryEntry, otter.ComputeOp) {
		if !found || !now.Before(old.expiresAt) {
			old = counterEntry(0, now.Add(window), newWindow())
		} else if countOf(old) >= limit {
			return old, otter.CancelOp
		}
		taken = true
		return counterEntry(countOf(old)+1, old.expiresAt, windowOf(old)), otter.WriteOp
	})
	return Reservation{Taken: taken, Count: countOf(e), TTL: e.expiresAt.Sub(now), Window: windowOf(e)}, nil
}

// Release implements Counter.
func (m *Memory) Release(_ context.Context, key, window string) (int64, time.Duration, error) {
	now := time.Now()
	e, ok := m.cache.Compute(key, func(old memoryEntry, found bool) (memoryEntry, otter.ComputeOp) {
		if !found || !now.Before(old.expiresAt) || windowOf(old) != window || countOf(old) <= 0 {
			return old, otter.CancelOp
		}
		return counterEntry(countOf(old)-1, old.expiresAt, window), otter.WriteOp
	})
	if !ok || !now.Before(e.expiresAt) {
		return 0, 0, nil
	}
	return countOf(e), e.expiresAt.Sub(now), nil
}

// SetCount sets the counter at key to n for ttl: an in-process copy of a shared counter, so that
// counting goes on from where the shared store was while it is unreachable. The copy is a window
// of its own: what the shared store reserved is released there, not here. A copy holding more
// than n while it lives is kept: concurrent answers arrive in any order, and the copy must not
// fall behind the shared count (it only errs high, for the rest of its window).
func (m *Memory) SetCount(key string, n int64, ttl time.Duration) {
	if ttl <= 0 {
		m.cache.Invalidate(key)
		return
	}
	now := time.Now()
	m.cache.Compute(key, func(held memoryEntry, found bool) (memoryEntry, otter.ComputeOp) {
		if found && now.Before(held.expiresAt) && countOf(held) > n {
			return held, otter.CancelOp
		}
		return counterEntry(n, now.Add(ttl), newWindow()), otter.WriteOp
	})
}

// A counter in process is its count (8 bytes) followed by its window's name, if it has one.
func counterEntry(n int64, expiresAt time.Time, window string) memoryEntry {
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(window)), uint64(n))
	return memoryEntry{value: append(v, window...), expiresAt: expiresAt}
}

func countOf(e memoryEntry) int64 {
	if len(e.value) < 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(e.value))
}

func windowOf(e memoryEntry) string {
	if len(e.value) < 8 {
		return ""
	}
	return string(e.value[8:])
}

// incrScript increments a counter and gives it its window when it has none yet (a new key, or
// one written without expiry), answering {count, remaining milliseconds}.
var incrScript = redis.NewScript(`
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
	redis.call('PEXPIRE', KEYS[1], ARGV[2])
	ttl = tonumber(ARGV[2])
end
return {n, ttl}
`)

// Incr implements Counter with one Lua script (INCRBY + PEXPIRE), atomic in Redis; the key is
// a single key, so it works on Cluster too.
func (r *Redis) Incr(ctx context.Context, key string, delta int64, window time.Duration) (int64, time.Duration, error) {
	if window <= 0 {
		return 0, 0, errors.New("store: a counter needs a positive window")
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	ms := max(window.Milliseconds(), 1)
	res, err := incrScript.Run(ctx, r.client, []string{r.prefix + key}, delta, ms).Int64Slice()
	if err != nil {
		return 0, 0, err
	}
	if len(res) != 2 {
		return 0, 0, errors.New("store: unexpected counter answer")
	}
	return res[0], time.Duration(res[1]) * time.Millisecond, nil
}

// reserveScript is Reserve in Redis, on a hash per key (n: the count, w: the window's name,
// given by the caller that opens it), answering {taken, count, remaining ms, window}. A hash
// without a window (a lost field) opens a new one; a key of another type is an error (keys are
// keyed hashes that only the module writes).
var reserveScript = redis.NewScript(`
local limit, win = tonumber(ARGV[1]), tonumber(ARGV[2])
local s = redis.call('HMGET', KEYS[1], 'n', 'w')
local n, w = tonumber(s[1]) or 0, s[2]
if not w then
	n, w = 0, ARGV[3]
	redis.call('DEL', KEYS[1])
	redis.call('HSET', KEYS[1], 'n', 0, 'w', w)
	redis.call('PEXPIRE', KEYS[1], win)
end
local taken = 0
if n < limit then
	n = redis.call('HINCRBY', KEYS[1], 'n', 1)
	taken = 1
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
	redis.call('PEXPIRE', KEYS[1], win)
	ttl = win
end
return {taken, n, ttl, w}
`)

// Reserve implements Counter with one script: a refusal is one round trip and changes no count.
func (r *Redis) Reserve(ctx context.Context, key string, limit int64, window time.Duration) (Reservation, error) {
	if window <= 0 || limit < 1 {
		return Reservation{}, errBadReservation
	}
	res, err := r.Eval(ctx, reserveScript, key, limit, max(window.Milliseconds(), 1), newWindow()).Slice()
	if err != nil {
		return Reservation{}, err
	}
	if len(res) != 4 {
		return Reservation{}, errUnexpectedCounter
	}
	taken, ok1 := res[0].(int64)
	n, ok2 := res[1].(int64)
	ttl, ok3 := res[2].(int64)
	w, ok4 := res[3].(string)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return Reservation{}, errUnexpectedCounter
	}
	return Reservation{Taken: taken == 1, Count: n, TTL: time.Duration(ttl) * time.Millisecond, Window: w}, nil
}

// releaseScript is Release in Redis (ARGV[1]: the window), answering {count, remaining ms}.
var releaseScript = redis.NewScript(`
local s = redis.call('HMGET', KEYS[1], 'n', 'w')
local n = tonumber(s[1]) or 0
if s[2] == ARGV[1] and n > 0 then
	n = redis.call('HINCRBY', KEYS[1], 'n', -1)
end
return {n, math.max(redis.call('PTTL', KEYS[1]), 0)}
`)

// Release implements Counter with one script.
func (r *Redis) Release(ctx context.Context, key, window string) (int64, time.Duration, error) {
	res, err := r.Eval(ctx, releaseScript, key, window).Int64Slice()
	if err != nil {
		return 0, 0, err
	}
	if len(res) != 2 {
		return 0, 0, errUnexpectedCounter
	}
	return res[0], time.Duration(res[1]) * time.Millisecond, nil
}

var (
	errUnexpectedCounter = errors.New("store: unexpected counter answer")
	errBadReservation    = errors.New("store: a reservation needs a positive window and limit")
)

var (
	_ Counter = (*Memory)(nil)
	_ Counter = (*Redis)(nil)
)
