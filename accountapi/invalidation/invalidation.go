// Package invalidation tells every instance sharing a Redis that something cached about a user
// is out of date, over Redis pub/sub: an instance that changes a user (or hears of a change from
// a webhook or a Management API call) publishes one event, and every other instance drops what it
// cached about that user.
//
// Pub/sub delivers at most once: a message sent while a subscriber is disconnected is lost. The
// subscriber therefore reports every reconnection (Handlers.Resync), after which an instance
// must assume it missed events and drop its in-process entries.
package invalidation

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Kind says what changed.
type Kind string

const (
	// Profile: the user's record changed (name, avatar, custom data, ...): cached profiles go.
	Profile Kind = "profile"
	// Credentials: how the user signs in or proves identity changed (username, password, primary
	// email or phone, identities, suspension, deletion): cached token answers go as well.
	Credentials Kind = "credentials"
	// Token: one token is no longer active (revoked through the site, or found inactive by a
	// write): its cached answer goes. Key is the token's cache key (a keyed hash, no secret).
	Token Kind = "token"
	// Settings: a settings document changed at the core (Key names it: "account_center" or
	// "sign_in_experience"); it is loaded again.
	Settings Kind = "settings"
)

// Event is one invalidation message.
type Event struct {
	UserID string `json:"u,omitempty"`
	Kind   Kind   `json:"k"`
	// Key is the token's cache key of a Token event, the document of a Settings event.
	Key string `json:"t,omitempty"`
	// Origin identifies the publishing Bus, so that it ignores its own messages (it has already
	// acted on the change).
	Origin string `json:"o,omitempty"`
}

// Handlers receive what the subscriber hears. Each may be nil.
type Handlers struct {
	// Event is called for every event published by another Bus, in order, on the subscriber's
	// goroutine.
	Event func(ctx context.Context, e Event)
	// Resync is called after the subscription was re-established: events may have been lost.
	Resync func()
	// Error is told about connection failures (the subscriber keeps retrying by itself).
	Error func(error)
}

// Bus publishes and receives invalidation events on one Redis channel.
type Bus struct {
	client  redis.UniversalClient
	channel string
	origin  string
	timeout time.Duration

	mu     sync.Mutex
	cancel context.CancelFunc
	ps     *redis.PubSub
	done   chan struct{}
}

// New returns a Bus on channel. timeout bounds each Publish.
func New(client redis.UniversalClient, channel string, timeout time.Duration) *Bus {
	var id [12]byte
	_, _ = rand.Read(id[:])
	if timeout <= 0 {
		timeout = time.Second
	}
	return &Bus{client: client, channel: channel, origin: base64.RawURLEncoding.EncodeToString(id[:]), timeout: timeout}
}

// Publish sends e to every other instance. A failure means they will only notice the change when
// their entries reach their maximum age: callers log it and go on.
func (b *Bus) Publish(ctx context.Context, e Event) error {
	e.Origin = b.origin
	msg, err := json.Marshal(e)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.timeout)
	defer cancel()
	return b.client.Publish(ctx, b.channel, msg).Err()
}

// Start subscribes and delivers events to h until Close, on its own goroutine and its own
// context (not a request's nor a config's: the subscriber outlives both). It returns once the
// first subscription attempt has been made, so that events published after Start returns are
// normally heard.
func (b *Bus) Start(h Handlers) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel, b.done = cancel, make(chan struct{})
	ps := b.client.Subscribe(ctx) // no channel yet: the subscribe below reports its outcome
	b.ps = ps
	subscribed := make(chan struct{})
	go b.run(ctx, ps, h, subscribed)
	select {
	case <-subscribed:
	case <-time.After(b.timeout):
	}
}

// Close stops the subscriber and waits for it.
func (b *Bus) Close() {
	b.mu.Lock()
	cancel, done, ps := b.cancel, b.done, b.ps
	b.cancel, b.ps = nil, nil
	b.mu.Unlock()
	if cancel != nil {
		cancel()
		// A cancelled context does not interrupt a blocking read; closing the connection does.
		_ = ps.Close()
		<-done
	}
}

// pingEvery is how often an idle subscription is checked: a connection that died silently
// would otherwise wait forever for the next message.
const pingEvery = 15 * time.Second

func (b *Bus) run(ctx context.Context, ps *redis.PubSub, h Handlers, subscribed chan struct{}) {
	defer close(b.done)
	report := func(err error) {
		if h.Error != nil && ctx.Err() == nil {
			h.Error(err)
		}
	}
	// Subscribe until it works; go-redis resubscribes by itself after a lost connection.
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
		err := ps.Subscribe(ctx, b.channel)
		if err == nil {
			break
		}
		report(err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
	first := true
	// lost is set when the connection may have been replaced since the last confirmation: only
	// then can a confirmation mean a new connection. Without it, the confirmation of a retried
	// first subscribe (the first attempt reached Redis, but its answer came too late) would
	// flush the caches for nothing.
	lost := false
	backoff := 100 * time.Millisecond
	for {
		msg, err := ps.ReceiveTimeout(ctx, pingEvery)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
				if ps.Ping(ctx) != nil {
					lost = true // go-redis reconnects after a failed ping
				}
				continue
			}
			lost = true
			report(err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				continue
			}
			switch {
			case first:
				first = false
				close(subscribed)
			case lost && h.Resync != nil:
				h.Resync() // a new connection: what was published meanwhile is lost
			}
			lost = false
		case *redis.Message:
			var e Event
			if json.Unmarshal([]byte(m.Payload), &e) != nil || (e.UserID == "" && e.Key == "") || e.Origin == b.origin {
				continue
			}
			if h.Event != nil {
				h.Event(ctx, e)
			}
		}
	}
}
