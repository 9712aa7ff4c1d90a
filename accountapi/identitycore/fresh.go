package identitycore

import "context"

type freshReadsKey struct{}

// WithFreshReads marks ctx as that of a request whose reads decide a write (step-up needed or
// not, a code's template, suspension, the identifiers kept): a caching Core must then read from
// the core itself, never from its cache.
func WithFreshReads(ctx context.Context) context.Context {
	return context.WithValue(ctx, freshReadsKey{}, true)
}

// FreshReads reports whether ctx was marked by WithFreshReads.
func FreshReads(ctx context.Context) bool {
	fresh, _ := ctx.Value(freshReadsKey{}).(bool)
	return fresh
}
