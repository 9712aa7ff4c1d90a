// Package store keeps the module's short-lived shared state (cached token answers, verification
// records) either in process or in Redis, behind one small interface.
//
// Keys handed to a Store are never secrets: callers derive them with a Keyer, a keyed hash, so a
// dump of the store (or Redis KEYS) reveals no token or record id.
package store

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"hash"
	"sync"
	"time"
)

// ErrNotFound is returned by Get when the key is absent or expired.
var ErrNotFound = errors.New("store: not found")

// Store is a key-value store with per-entry expiry.
type Store interface {
	// Get returns the value stored at key, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Set stores value at key for ttl; a ttl ≤ 0 stores nothing.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Delete removes the keys; absent keys are not an error.
	Delete(ctx context.Context, keys ...string) error
}

// Keyer turns secrets (tokens, record ids) into store keys with HMAC-SHA256, so that instances
// sharing the key (and the Redis) find each other's entries while the store never holds a
// secret.
type Keyer struct {
	pool sync.Pool
}

// NewKeyer returns a Keyer for secret, which must be at least 16 bytes.
func NewKeyer(secret []byte) (*Keyer, error) {
	if len(secret) < 16 {
		return nil, errors.New("store: the cache key must be at least 16 bytes")
	}
	k := &Keyer{}
	key := append([]byte(nil), secret...)
	k.pool.New = func() any { return hmac.New(sha256.New, key) }
	return k, nil
}

// Raw returns HMAC(secret, namespace NUL value) as a 32-byte binary string: the smallest key
// of an in-process map (a cache of 100k tokens holds 100k of them). Not for Redis nor logs.
func (k *Keyer) Raw(namespace, value string) string {
	m := k.pool.Get().(hash.Hash)
	m.Reset()
	m.Write([]byte(namespace))
	m.Write([]byte{0})
	m.Write([]byte(value))
	var sum [sha256.Size]byte
	out := m.Sum(sum[:0])
	k.pool.Put(m)
	return string(out)
}

// Key returns namespace + ":" + base64url(HMAC(secret, value)).
func (k *Keyer) Key(namespace, value string) string {
	m := k.pool.Get().(hash.Hash)
	m.Reset()
	m.Write([]byte(value))
	var sum [sha256.Size]byte
	out := m.Sum(sum[:0])
	k.pool.Put(m)
	return namespace + ":" + base64.RawURLEncoding.EncodeToString(out)
}
