package store

import (
	"context"
	"encoding/binary"
	"errors"
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
	// Reserve adds one to the counter at key only while it holds fewer than limit (creating it
	// with a lifetime of window), and returns the count after the step, how long the counter
	// still lives and whether one was taken. Refused or not, it is one atomic step: a refusal
	// writes nothing, so it has nothing to undo.
	Reserve(ctx context.Context, key string, limit int64, window time.Duration) (count int64, ttl time.Duration, taken bool, err error)
	// Release gives back one count that Reserve took in the window that has left to live (as
	// Reserve answered, less the time since), and only to that window: a window that ended
	// took its counts with it, and the one after it owes nothing (a window ends at least a
	// whole window after the one before, so half a window tells them apart). It never goes
	// below zero, and returns the count and lifetime as they are after the step.
	Release(ctx context.Context, key string, left, window time.Duration) (count int64, ttl time.Duration, err error)
}

// Incr implements Counter.
func (m *Memory) Incr(_ context.Context, key string, delta int64, window time.Duration) (int64, time.Duration, error) {
	if window <= 0 {
		return 0, 0, errors.New("store: a counter needs a positive window")
	}
	now := time.Now()
	e, _ := m.cache.Compute(key, func(old memoryEntry, found bool) (memoryEntry, otter.ComputeOp) {
		n, expiresAt := int64(0), now.Add(window)
		if found && now.Before(old.expiresAt) {
			n, expiresAt = countOf(old), old.expiresAt
		}
		return countEntry(n+delta, expiresAt), otter.WriteOp
	})
	return countOf(e), e.expiresAt.Sub(now), nil
}

// Reserve implements Counter.
func (m *Memory) Reserve(_ context.Context, key string, limit int64, window time.Duration) (int64, time.Duration, bool, error) {
	if window <= 0 {
		return 0, 0, false, errors.New("store: a counter needs a positive window")
	}
	now := time.Now()
	taken := false
	e, _ := m.cache.Compute(key, func(old memoryEntry, found bool) (memoryEntry, otter.ComputeOp) {
		n, expiresAt := int64(0), now.Add(window)
		if found && now.Before(old.expiresAt) {
			n, expiresAt = countOf(old), old.expiresAt
		}
		if n >= limit {
			return old, otter.CancelOp
		}
		taken = true
		return countEntry(n+1, expiresAt), otter.WriteOp
	})
	if !taken && !now.Before(e.expiresAt) {
		return 0, 0, false, nil
	}
	return countOf(e), e.expiresAt.Sub(now), taken, nil
}

// Release implements Counter.
func (m *Memory) Release(_ context.Context, key string, left, window time.Duration) (int64, time.Duration, error) {
	now := time.Now()
	e, ok := m.cache.Compute(key, func(old memoryEntry, found bool) (memoryEntry, otter.ComputeOp) {
		if !found || !now.Before(old.expiresAt) || countOf(old) <= 0 || !sameWindow(old.expiresAt.Sub(now), left, window) {
			return old, otter.CancelOp
		}
		return countEntry(countOf(old)-1, old.expiresAt), otter.WriteOp
	})
	if !ok || !now.Before(e.expiresAt) {
		return 0, 0, nil
	}
	return countOf(e), e.expiresAt.Sub(now), nil
}

// sameWindow reports whether a counter with ttl to live is the window that had left to live
// when a caller last heard of it.
func sameWindow(ttl, left, window time.Duration) bool {
	d := ttl - left
	return d <= window/2 && d >= -window/2
}

func countOf(e memoryEntry) int64 {
	if len(e.value) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(e.value))
}

func countEntry(n int64, expiresAt time.Time) memoryEntry {
	v := make([]byte, 8)
	binary.BigEndian.PutUint64(v, uint64(n))
	return memoryEntry{value: v, expiresAt: expiresAt}
}

// SetCount sets the counter at key to n for ttl: an in-process copy of a shared counter, so that
// counting goes on from where the shared store was while it is unreachable.
func (m *Memory) SetCount(key string, n int64, ttl time.Duration) {
	if ttl <= 0 {
		m.cache.Invalidate(key)
		return
	}
	m.cache.Set(key, countEntry(n, time.Now().Add(ttl)))
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

// reserveScript is Reserve in Redis: the comparison and the increment in one step, on every
// instance. A counter found without expiry (written by hand) gets its window either way.
var reserveScript = redis.NewScript(`
local limit, win = tonumber(ARGV[1]), tonumber(ARGV[2])
local n = tonumber(redis.call('GET', KEYS[1])) or 0
local taken = 0
if n < limit then
	n = redis.call('INCR', KEYS[1])
	taken = 1
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -1 then
	redis.call('PEXPIRE', KEYS[1], win)
	ttl = win
end
return {taken, n, math.max(ttl, 0)}
`)

// Reserve implements Counter with one script: a refusal is one round trip and writes nothing.
func (r *Redis) Reserve(ctx context.Context, key string, limit int64, window time.Duration) (int64, time.Duration, bool, error) {
	if window <= 0 {
		return 0, 0, false, errors.New("store: a counter needs a positive window")
	}
	res, err := r.Eval(ctx, reserveScript, key, limit, max(window.Milliseconds(), 1)).Int64Slice()
	if err != nil {
		return 0, 0, false, err
	}
	if len(res) != 3 {
		return 0, 0, false, errors.New("store: unexpected counter answer")
	}
	return res[1], time.Duration(res[2]) * time.Millisecond, res[0] == 1, nil
}

// releaseScript is Release in Redis (ARGV: what the window had left, half a window).
var releaseScript = redis.NewScript(`
local ttl = redis.call('PTTL', KEYS[1])
local n = tonumber(redis.call('GET', KEYS[1])) or 0
if ttl > 0 and n > 0 and math.abs(ttl - tonumber(ARGV[1])) <= tonumber(ARGV[2]) then
	n = redis.call('DECR', KEYS[1])
end
return {n, math.max(ttl, 0)}
`)

// Release implements Counter with one script.
func (r *Redis) Release(ctx context.Context, key string, left, window time.Duration) (int64, time.Duration, error) {
	res, err := r.Eval(ctx, releaseScript, key, left.Milliseconds(), window.Milliseconds()/2).Int64Slice()
	if err != nil {
		return 0, 0, err
	}
	if len(res) != 2 {
		return 0, 0, errors.New("store: unexpected counter answer")
	}
	return res[0], time.Duration(res[1]) * time.Millisecond, nil
}

var (
	_ Counter = (*Memory)(nil)
	_ Counter = (*Redis)(nil)
)
