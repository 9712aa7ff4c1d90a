package auth

import (
	"context"
	"strconv"
)

// EvictSubject voids every cached answer about the user's tokens after their credentials
// changed: at once in this process, and for every instance through the shared store, where the
// moment is recorded so that no answer cached before it is used again. Peers drop their own
// in-process answers when told (EvictSubjectLocal); until then the core is asked again by any
// instance whose in-process entry is gone.
func (a *Authenticator) EvictSubject(ctx context.Context, subject string) error {
	a.EvictSubjectLocal(subject)
	if a.cfg.Shared == nil {
		return nil
	}
	at := strconv.FormatInt(a.now().UnixMilli(), 10)
	return a.cfg.Shared.Set(ctx, a.cfg.Keyer.Key("rev", subject), []byte(at), a.cfg.MaxTTL)
}

// EvictSubjectLocal drops this process's cached answers about the user's tokens. It walks the
// cache: credential changes are rare, and a per-user index would cost memory on every entry.
func (a *Authenticator) EvictSubjectLocal(subject string) {
	for key, ans := range a.local.All() {
		if ans.Principal.Subject == subject {
			a.local.Invalidate(key)
		}
	}
}

// FlushLocal drops every in-process answer, e.g. when revocations from peers may have been
// missed.
func (a *Authenticator) FlushLocal() { a.local.InvalidateAll() }

// revokedAfterCaching reports whether the user's credentials changed after ans was cached in the
// shared store. Only answers read from the shared store are checked: in-process answers are
// evicted directly.
func (a *Authenticator) revokedAfterCaching(ctx context.Context, ans answer) bool {
	if !ans.Active {
		return false
	}
	b, err := a.cfg.Shared.Get(ctx, a.cfg.Keyer.Key("rev", ans.Principal.Subject))
	if err != nil {
		return false // nothing recorded (or the store just failed: the answer itself came from it)
	}
	at, err := strconv.ParseInt(string(b), 10, 64)
	return err == nil && at >= ans.CachedAt
}
