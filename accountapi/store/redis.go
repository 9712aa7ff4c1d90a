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
	client redis.UniversalClient
	// reads is go-redis's auto-pipeliner (its deferred face), for the reads a request waits on:
	// the reads of concurrent requests travel together, one write and one read on one
	// connection per batch instead of a round trip each, which is most of what a Redis hit
	// costs a busy instance. nil when the client cannot make one (reads then go one by one).
	reads   *redis.AutoPipeliner
	prefix  string
	timeout time.Duration
}

// NewRedis returns a Store on client. Every key is prefixed with prefix; every call is bounded
// by timeout so that a slow Redis costs less than a cache miss (the client must be built with
// ContextTimeoutEnabled for the bound to hold).
func NewRedis(client redis.UniversalClient, prefix string, timeout time.Duration) *Redis {
	r := &Redis{client: client, prefix: prefix, timeout: timeout}
	cfg := redis.DefaultAutoPipelineOptions()
	cfg.MaxQueuedCommands = maxQueuedReads
	// One per client, cached by go-redis (the first options win) and closed with the client.
	if ap, err := client.AsyncAutoPipelineWithOptions(cfg); err == nil {
		r.reads = ap
	}
	return r
}

// maxQueuedReads bounds the reads waiting in the auto-pipeliner: while Redis stalls, callers
// give up at the timeout but their commands stay queued until the batch ahead ends. Past the
// bound a read fails at once (a cache miss) instead of growing the queue.
var maxQueuedReads = 10_000

// read runs cmd, a read a request waits on, within the store's timeout.
func (r *Redis) read(ctx context.Context, cmd redis.Cmder) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if r.reads == nil {
		return r.client.Process(ctx, cmd)
	}
	// A batch runs under the client's own read and write timeouts; WaitContext keeps this
	// caller's bound when its command waits behind a batch in flight. A command given up on
	// still completes in its batch: cmd is not read after an error.
	return r.reads.Submit(ctx, cmd).WaitContext(ctx)
}

// Get implements Store.
func (r *Redis) Get(ctx context.Context, key string) ([]byte, error) {
	cmd := redis.NewStringCmd(ctx, "get", r.prefix+key)
	err := r.read(ctx, cmd)
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return cmd.Bytes()
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
