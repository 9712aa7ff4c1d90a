package store

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Indexed is a Store whose entries can be filed under a subject (a user), so that everything
// about the subject can be voided at once, at a cost proportional to the subject's entries, and
// so that an entry loaded before such a voiding is never left behind by a writer that was slower
// than it. Redis implements it; keys and subjects are keyed hashes, never secrets.
type Indexed interface {
	Store
	// PutIndexed stores value at key for ttl and files it under subject, unless the subject was
	// voided at or after since (when the value was loaded): then the write is undone, and
	// stored is false.
	PutIndexed(ctx context.Context, key, subject string, value []byte, ttl time.Duration, since time.Time) (stored bool, err error)
	// VoidSubject deletes every entry filed under subject and records the moment, so that writes
	// of values loaded before it undo themselves.
	VoidSubject(ctx context.Context, subject string) error
	// GetLinked reads key (a value written with AppendLink) and the entry it links to, if any,
	// in one round trip where the store allows it. ErrNotFound when key is absent.
	GetLinked(ctx context.Context, key string) (value, linked []byte, err error)
}

// Index and epoch keys of a subject. The epoch lives long enough to outlast any load in flight.
const (
	indexPrefix = "idx:"
	epochPrefix = "ep:"
	epochTTL    = 5 * time.Minute
	// clockSkew is how far apart the clocks of instances may be: an epoch recorded up to this long
	// before a load started still voids it (a false alarm only costs one more miss).
	clockSkew = time.Second
)

// PutIndexed implements Indexed. The value and its index entry are written first and the epoch
// read after, each step its own round trip (on Cluster the keys live on different nodes, where a
// pipeline gives no order): a VoidSubject either deletes what this wrote, or recorded its epoch
// before the read below, which then undoes the write.
func (r *Redis) PutIndexed(ctx context.Context, key, subject string, value []byte, ttl time.Duration, since time.Time) (bool, error) {
	if ttl <= 0 {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	k, idx := r.prefix+key, r.prefix+indexPrefix+subject
	ttl = max(ttl, time.Millisecond)
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, k, value, ttl)
		p.SAdd(ctx, idx, key)
		p.PExpire(ctx, idx, epochTTL+ttl)
		return nil
	})
	if err != nil {
		_ = r.client.Del(ctx, k).Err() // best effort: an unindexed entry must not linger
		return false, err
	}
	ep, err := r.client.Get(ctx, r.prefix+epochPrefix+subject).Int64()
	switch {
	case errors.Is(err, redis.Nil):
		return true, nil
	case err != nil:
		_ = r.client.Del(ctx, k).Err()
		return false, err
	case ep >= since.Add(-clockSkew).UnixMilli():
		return false, r.client.Del(ctx, k).Err()
	}
	return true, nil
}

// VoidSubject implements Indexed.
func (r *Redis) VoidSubject(ctx context.Context, subject string) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	idx := r.prefix + indexPrefix + subject
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	if err := r.client.Set(ctx, r.prefix+epochPrefix+subject, now, epochTTL).Err(); err != nil {
		return err
	}
	keys, err := r.client.SMembers(ctx, idx).Result()
	if err != nil || len(keys) == 0 {
		return err
	}
	_, err = r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Del(ctx, r.prefix+k) // one DEL per key: Cluster slots
		}
		p.SRem(ctx, idx, toAny(keys)...)
		return nil
	})
	return err
}

func toAny(keys []string) []any {
	out := make([]any, len(keys))
	for i, k := range keys {
		out[i] = k
	}
	return out
}

var _ Indexed = (*Redis)(nil)

// memoryIndex is Memory's subject index: in one process the steps of PutIndexed and
// VoidSubject are made atomic by one lock.
type memoryIndex struct {
	mu     sync.Mutex
	keys   map[string]map[string]struct{}
	epochs map[string]time.Time
}

// PutIndexed implements Indexed.
func (m *Memory) PutIndexed(ctx context.Context, key, subject string, value []byte, ttl time.Duration, since time.Time) (bool, error) {
	m.index.mu.Lock()
	defer m.index.mu.Unlock()
	if ep, ok := m.index.epochs[subject]; ok && !ep.Before(since) {
		return false, nil
	}
	if m.index.keys == nil {
		m.index.keys = map[string]map[string]struct{}{}
	}
	if m.index.keys[subject] == nil {
		m.index.keys[subject] = map[string]struct{}{}
	}
	m.index.keys[subject][key] = struct{}{}
	return true, m.Set(ctx, key, value, ttl)
}

// VoidSubject implements Indexed.
func (m *Memory) VoidSubject(ctx context.Context, subject string) error {
	m.index.mu.Lock()
	defer m.index.mu.Unlock()
	if m.index.epochs == nil {
		m.index.epochs = map[string]time.Time{}
	}
	m.index.epochs[subject] = time.Now()
	for k := range m.index.keys[subject] {
		_ = m.Delete(ctx, k)
	}
	delete(m.index.keys, subject)
	return nil
}

var _ Indexed = (*Memory)(nil)

// Linked entries: a value may end with the key of another entry that its reader will read next
// (a token's answer links to its user's record), so that both come back in one round trip.
// The trailer is the linked key and its length in one byte; a value with no link ends in 0.

// AppendLink returns value followed by the trailer linking it to key ("" for none).
func AppendLink(value []byte, key string) []byte {
	if len(key) > 255 {
		key = "" // keys are short hashes; a longer one is simply not linked
	}
	return append(append(value, key...), byte(len(key)))
}

// SplitLink separates a value written by AppendLink from its linked key.
func SplitLink(b []byte) (value []byte, key string, ok bool) {
	if len(b) == 0 {
		return nil, "", false
	}
	n := int(b[len(b)-1])
	if n >= len(b) {
		return nil, "", false
	}
	return b[:len(b)-1-n], string(b[len(b)-1-n : len(b)-1]), true
}

// getLinkedScript reads a value and the entry its trailer links to: one round trip.
var getLinkedScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return false end
local n = string.byte(v, #v)
if n == nil or n == 0 or n >= #v then return {v} end
local u = redis.call('GET', ARGV[1] .. string.sub(v, #v - n, #v - 1))
if not u then return {v} end
return {v, u}
`)

// GetLinked implements Indexed: one script on a standalone or Sentinel Redis; on Cluster, where
// the linked entry may live on another node, two reads.
func (r *Redis) GetLinked(ctx context.Context, key string) (value, linked []byte, err error) {
	if _, cluster := r.client.(*redis.ClusterClient); cluster {
		return getLinkedApart(ctx, r, key)
	}
	res, err := r.readScript(ctx, getLinkedScript, r.prefix+key, r.prefix)
	if errors.Is(err, redis.Nil) {
		return nil, nil, ErrNotFound
	}
	if err != nil {
		return nil, nil, err
	}
	if len(res) == 0 {
		return nil, nil, ErrNotFound
	}
	v, _ := res[0].(string)
	if len(res) > 1 {
		u, _ := res[1].(string)
		linked = []byte(u)
	}
	return []byte(v), linked, nil
}

// readScript runs a read-only script on one key as a pipelined read (EVALSHA); the first time
// on a Redis that does not know the script yet (a new or restarted one), the script is sent
// whole.
func (r *Redis) readScript(ctx context.Context, script *redis.Script, key string, args ...any) ([]any, error) {
	cmd := redis.NewCmd(ctx, append([]any{"evalsha", script.Hash(), 1, key}, args...)...)
	err := r.read(ctx, cmd)
	if redis.HasErrorPrefix(err, "NOSCRIPT") {
		ctx, cancel := context.WithTimeout(ctx, r.timeout)
		defer cancel()
		cmd = script.Eval(ctx, r.client, []string{key}, args...)
		err = cmd.Err()
	}
	if err != nil {
		return nil, err
	}
	return cmd.Slice()
}

// GetLinked implements Indexed.
func (m *Memory) GetLinked(ctx context.Context, key string) (value, linked []byte, err error) {
	return getLinkedApart(ctx, m, key)
}

func getLinkedApart(ctx context.Context, s Store, key string) (value, linked []byte, err error) {
	v, err := s.Get(ctx, key)
	if err != nil {
		return nil, nil, err
	}
	if _, link, ok := SplitLink(v); ok && link != "" {
		linked, _ = s.Get(ctx, link)
	}
	return v, linked, nil
}
