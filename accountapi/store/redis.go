package store

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a Store shared by every instance connected to the same Redis (standalone, Sentinel or
// Cluster, through redis.UniversalClient).
type Redis struct {
	client  redis.UniversalClient
	prefix  string
	timeout time.Duration
}

// NewRedis returns a Store on client. Every key is prefixed with prefix; every call is bounded
// by timeout so that a slow Redis costs less than a cache miss (the client must be built with
// ContextTimeoutEnabled for the bound to hold).
func NewRedis(client redis.UniversalClient, prefix string, timeout time.Duration) *Redis {
	return &Redis{client: client, prefix: prefix, timeout: timeout}
}

// Get implements Store.
func (r *Redis) Get(ctx context.Context, key string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	b, err := r.client.Get(ctx, r.prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	return b, err
}

// Set implements Store.
func (r *Redis) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if ttl <= 0 {
		return r.client.Del(ctx, r.prefix+key).Err()
	}
	// Redis keeps millisecond precision: round up so a tiny positive ttl still stores.
	if ttl < time.Millisecond {
		ttl = time.Millisecond
	}
	return r.client.Set(ctx, r.prefix+key, value, ttl).Err()
}

// Delete implements Store.
func (r *Redis) Delete(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	prefixed := make([]string, len(keys))
	for i, k := range keys {
		prefixed[i] = r.prefix + k
	}
	// One DEL per key keeps Cluster happy (keys may live in different slots).
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range prefixed {
			p.Del(ctx, k)
		}
		return nil
	})
	return err
}

var _ Store = (*Redis)(nil)

// Eval runs a Lua script on one key (prefixed like every key of the store) within the store's
// timeout: for the read-modify-write steps that must be atomic across instances (lockouts,
// locks). One key per script keeps Cluster happy.
func (r *Redis) Eval(ctx context.Context, script *redis.Script, key string, args ...any) *redis.Cmd {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	return script.Run(ctx, r.client, []string{r.prefix + key}, args...)
}

// Client is the Redis client the store uses (for what shares its connections, such as pub/sub).
func (r *Redis) Client() redis.UniversalClient { return r.client }
