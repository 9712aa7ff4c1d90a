package caddymodule

import (
	"errors"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/accountedge/caddy-account-api/accountapi/apierror"
	"github.com/accountedge/caddy-account-api/accountapi/identitycore/logto"
)

// The module's Prometheus collectors. They are created once per process and registered into the
// registry of every config that Caddy loads: Caddy builds a new registry on each load, and
// collectors created in Provision would start from zero after every `caddy reload`
// (caddy-engineering.md finding 4). Labels carry route patterns, Logto error codes and fixed
// names only: never a user id, a token or anything derived from one.
var metrics = struct {
	requests        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	cache           *prometheus.CounterVec
	coalesced       *prometheus.CounterVec
	denials         *prometheus.CounterVec
	rateLimited     *prometheus.CounterVec
	introspection   *prometheus.HistogramVec
	coreRequests    *prometheus.HistogramVec
	redisErrors     *prometheus.CounterVec
	invalidations   *prometheus.CounterVec
	webhooks        *prometheus.CounterVec
	cacheCounters   map[cacheLabel]prometheus.Counter // pre-resolved: no label lookup per request
	coalescedByKind map[string]prometheus.Counter
}{}

type cacheLabel struct {
	layer, kind string
	hit         bool
}

const (
	metricsNamespace = "caddy"
	metricsSubsystem = "account_api"
)

// latencyBuckets span a cache hit (tens of µs) to a slow core (seconds).
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

func init() {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: metricsNamespace, Subsystem: metricsSubsystem, Name: name, Help: help}
	}
	hopts := func(name, help string) prometheus.HistogramOpts {
		return prometheus.HistogramOpts{Namespace: metricsNamespace, Subsystem: metricsSubsystem, Name: name, Help: help, Buckets: latencyBuckets}
	}
	metrics.requests = prometheus.NewCounterVec(prometheus.CounterOpts(opts("requests_total",
		`Account API requests by route pattern and outcome ("ok" or the Logto error code).`)), []string{"route", "outcome"})
	metrics.requestDuration = prometheus.NewHistogramVec(hopts("request_duration_seconds",
		"Time to answer an Account API request, by route pattern."), []string{"route"})
	metrics.cache = prometheus.NewCounterVec(prometheus.CounterOpts(opts("cache_requests_total",
		`Cache lookups by layer ("local", "shared"), kind ("token", "negative", "profile", "settings") and result ("hit", "miss").`)),
		[]string{"layer", "kind", "result"})
	metrics.coalesced = prometheus.NewCounterVec(prometheus.CounterOpts(opts("coalesced_waits_total",
		"Requests that waited for a load already in flight (an introspection or a profile read) instead of making their own."),
	), []string{"kind"})
	metrics.denials = prometheus.NewCounterVec(prometheus.CounterOpts(opts("denials_total",
		`Requests refused by a rule: "step_up" (no valid verification record), "field_rule" (account-center field), "scope", "third_party".`)),
		[]string{"reason"})
	metrics.rateLimited = prometheus.NewCounterVec(prometheus.CounterOpts(opts("rate_limited_total",
		"Requests refused with 429 by a rate limit, by route pattern.")), []string{"route"})
	metrics.introspection = prometheus.NewHistogramVec(hopts("introspection_duration_seconds",
		`Token introspection calls to the core, by outcome ("ok", "error").`), []string{"outcome"})
	metrics.coreRequests = prometheus.NewHistogramVec(hopts("core_request_duration_seconds",
		`Calls to the core other than introspection, by operation (method and path template with ids as ":id", a fixed set) and outcome ("ok", "refused", "error").`),
		[]string{"op", "outcome"})
	metrics.redisErrors = prometheus.NewCounterVec(prometheus.CounterOpts(opts("redis_errors_total",
		`Failed Redis calls, by component ("token_cache", "profile_cache", "invalidation").`)), []string{"component"})
	metrics.invalidations = prometheus.NewCounterVec(prometheus.CounterOpts(opts("profile_invalidations_total",
		`Cached profiles dropped, by source ("write", "management_api", "webhook", "session_end", "peer", "resync").`)), []string{"source"})
	metrics.webhooks = prometheus.NewCounterVec(prometheus.CounterOpts(opts("webhooks_total",
		`Webhook deliveries, by outcome ("accepted", "ignored", "stale", "replayed", "bad_signature", "bad_request", "unrecorded").`)), []string{"outcome"})

	metrics.cacheCounters = map[cacheLabel]prometheus.Counter{}
	for _, layer := range []string{"local", "shared"} {
		for _, kind := range []string{"token", "negative", "profile", "settings"} {
			for _, hit := range []bool{true, false} {
				metrics.cacheCounters[cacheLabel{layer, kind, hit}] = metrics.cache.WithLabelValues(layer, kind, result(hit))
			}
		}
	}
	metrics.coalescedByKind = map[string]prometheus.Counter{}
	for _, kind := range []string{"token", "profile"} {
		metrics.coalescedByKind[kind] = metrics.coalesced.WithLabelValues(kind)
	}
}

func result(hit bool) string {
	if hit {
		return "hit"
	}
	return "miss"
}

// registerMetrics adds the collectors to this config's registry; a registry that already has
// them (a second handler in the same config) is fine.
func registerMetrics(ctx caddy.Context) error {
	reg := ctx.GetMetricsRegistry()
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{metrics.requests, metrics.requestDuration, metrics.cache,
		metrics.coalesced, metrics.denials, metrics.rateLimited, metrics.introspection, metrics.coreRequests,
		metrics.redisErrors, metrics.invalidations, metrics.webhooks} {
		if err := reg.Register(c); err != nil {
			if _, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); !ok {
				return err
			}
		}
	}
	return nil
}

// cacheMetrics implements auth.Metrics and profilecache.Metrics.
type cacheMetrics struct{}

func (cacheMetrics) CacheResult(layer, kind string, hit bool) {
	if c, ok := metrics.cacheCounters[cacheLabel{layer, kind, hit}]; ok {
		c.Inc()
	}
}

func (cacheMetrics) CoalescedWait(kind string) {
	if c, ok := metrics.coalescedByKind[kind]; ok {
		c.Inc()
	}
}

// observeRequest implements api.Config.Observe.
func observeRequest(route, code string, status int, elapsed time.Duration) {
	outcome := "ok"
	if code != "" {
		outcome = "other"
		if apierror.Known(code) { // a fixed catalogue: the label stays bounded
			outcome = code
		}
	}
	metrics.requests.WithLabelValues(route, outcome).Inc()
	metrics.requestDuration.WithLabelValues(route).Observe(elapsed.Seconds())
	switch {
	case status == http.StatusTooManyRequests:
		metrics.rateLimited.WithLabelValues(route).Inc()
	case code == apierror.PermissionDenied.Code:
		metrics.denials.WithLabelValues("step_up").Inc()
	case code == apierror.FieldNotEditable.Code, code == apierror.FieldNotEnabled.Code:
		metrics.denials.WithLabelValues("field_rule").Inc()
	// A missing scope is auth.unauthorized with 400 (a bad token has the same code with 401).
	case code == apierror.ScopeMissing.Code && status == apierror.ScopeMissing.Status, code == apierror.Forbidden.Code:
		metrics.denials.WithLabelValues("scope").Inc()
	case code == apierror.ThirdPartyForbidden.Code:
		metrics.denials.WithLabelValues("third_party").Inc()
	}
}

// timedTransport times every call the module makes to the core.
type timedTransport struct{ next http.RoundTripper }

func (t timedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(r)
	elapsed := time.Since(start).Seconds()
	outcome := "ok"
	switch {
	case err != nil || resp.StatusCode >= 500:
		outcome = "error"
	case resp.StatusCode >= 400:
		outcome = "refused"
	}
	op := logto.Operation(r)
	if op == "POST /oidc/token/introspection" {
		if outcome == "refused" {
			outcome = "error" // the core refused the gateway's credentials
		}
		metrics.introspection.WithLabelValues(outcome).Observe(elapsed)
		return resp, err
	}
	if op == "" {
		op = "other"
	}
	metrics.coreRequests.WithLabelValues(op, outcome).Observe(elapsed)
	return resp, err
}
