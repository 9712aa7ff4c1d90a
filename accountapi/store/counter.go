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
}

// Incr implements Counter.
func (m *Memory) Incr(_ context.Context, key string, delta int64, window time.Duration) (int64, time.Duration, error) {
	if window <= 0 {
		return 0, 0, errors.New("store: a counter needs a positive window")
	}
	now := time.Now()
	e, _ := m.cache.Compute(key, func(old memoryEntry, found bool) (memoryEntry, otter.ComputeOp) {
		var n int64
		expiresAt := now.Add(window)
		if found && now.Before(old.expiresAt) && len(old.value) == 8 {
			n = int64(binary.BigEndian.Uint64(old.value))
			expiresAt = old.expiresAt
		}
		v := make([]byte, 8)
		binary.BigEndian.PutUint64(v, uint64(n+delta))
		return memoryEntry{value: v, expiresAt: expiresAt}, otter.WriteOp
	})
	return int64(binary.BigEndian.Uint64(e.value)), e.expiresAt.Sub(now), nil
}

// SetCount sets the counter at key to n for ttl: an in-process copy of a shared counter, so that
// counting goes on from where the shared store was while it is unreachable.
func (m *Memory) SetCount(key string, n int64, ttl time.Duration) {
	if ttl <= 0 {
		m.cache.Invalidate(key)
		return
	}
	v := make([]byte, 8)
	binary.BigEndian.PutUint64(v, uint64(n))
	m.cache.Set(key, memoryEntry{value: v, expiresAt: time.Now().Add(ttl)})
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

var (
	_ Counter = (*Memory)(nil)
	_ Counter = (*Redis)(nil)
)
