package auth

import (
	"context"
	"encoding/base64"
	"errors"
)

// EvictSubject voids every cached answer about the user's tokens after their credentials
// changed, at once in this process and in the shared store (through the subject's index; an
// answer loaded before the eviction is never stored after it). An error means the shared store
// may still hold answers: the caller must retry or report it. Peers drop their own in-process
// answers when told (EvictSubjectLocal).
func (a *Authenticator) EvictSubject(ctx context.Context, subject string) error {
	return a.answers.InvalidateSubject(ctx, subject)
}

// EvictSubjectLocal drops this process's cached answers about the user's tokens, through the
// index: the cost is that user's tokens, not the cache's size.
func (a *Authenticator) EvictSubjectLocal(subject string) { a.answers.InvalidateSubjectLocal(subject) }

// EvictToken drops the cached answer about one token, and its mark of a token seen valid, on
// both levels (it was revoked through the site) and returns its cache key, for telling the
// peers (EvictKeyLocal).
func (a *Authenticator) EvictToken(ctx context.Context, token string) (key string, err error) {
	raw := a.key(token)
	return Printable(raw), errors.Join(a.answers.Invalidate(ctx, raw), a.seen.Invalidate(ctx, raw))
}

// EvictKeyLocal drops this process's answer and seen-valid mark under a cache key (a peer
// learned the token is no longer active).
func (a *Authenticator) EvictKeyLocal(key string) {
	if raw, err := base64.RawURLEncoding.DecodeString(key); err == nil {
		a.answers.InvalidateLocal(string(raw))
		a.seen.InvalidateLocal(string(raw))
	}
}

// FlushLocal drops every in-process answer and seen-valid mark, e.g. when revocations from
// peers may have been missed.
func (a *Authenticator) FlushLocal() {
	a.answers.FlushLocal()
	a.seen.FlushLocal()
}
