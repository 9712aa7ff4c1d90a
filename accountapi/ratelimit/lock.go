package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"hash/maphash"
	"time"

	"github.com/redis/go-redis/v9"
)

// lockStripes is how many in-process locks subjects share: two subjects rarely wait for each
// other, and nothing has to be cleaned up.
const lockStripes = 256

var lockSeed = maphash.MakeSeed()

// lockPoll is how often a caller waiting for a subject's lock held on another instance tries
// again.
const lockPoll = 10 * time.Millisecond

// Lock serialises the read-then-write rules of one subject (a user's keep-one-identifier rule,
// say): it waits until no other holder of the subject's lock, in this process or (with a shared
// store) on any instance, is left, and returns unlock. The shared lock expires after ttl, so a
// crashed holder cannot block the subject for longer; ttl must exceed the work it guards. It
// fails only when ctx ends first. While the shared store fails, the lock holds in process.
func (l *Limiter) Lock(ctx context.Context, rule, subject string, ttl time.Duration) (unlock func(), err error) {
	stripe := l.stripes[maphash.String(lockSeed, rule+"\x00"+subject)%lockStripes]
	select {
	case stripe <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	release := func() { <-stripe }
	if l.script == nil {
		return release, nil
	}
	key := l.keyer.Key("lk:"+rule, subject)
	token := randomToken()
	for {
		got, err := l.script.Eval(ctx, lockScript, key, token, ttl.Milliseconds()).Int64()
		if err != nil {
			if ctx.Err() != nil {
				release()
				return nil, ctx.Err()
			}
			l.onFailed(err)
			return release, nil // the in-process lock still holds
		}
		if got == 1 {
			break
		}
		select {
		case <-time.After(lockPoll):
		case <-ctx.Done():
			release()
			return nil, ctx.Err()
		}
	}
	return func() {
		if err := l.script.Eval(context.Background(), unlockScript, key, token).Err(); err != nil {
			l.onFailed(err) // the lock expires by itself
		}
		release()
	}, nil
}

// lockScript takes the lock at KEYS[1] for ARGV[2] ms when it is free (1), or says it is held (0).
var lockScript = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
`)

// unlockScript frees the lock only if this holder (ARGV[1]) still has it.
var unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
