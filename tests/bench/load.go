package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// request builds the i-th request of a run (i counts across all workers).
type request func(i int64) (*http.Request, error)

// result is what one row measured.
type result struct {
	requests int64
	errors   int64 // transport errors and unexpected statuses
	elapsed  time.Duration
	p50, p99 time.Duration
}

func (r result) rps() float64 { return float64(r.requests) / r.elapsed.Seconds() }

// drive runs conns closed-loop workers (each with its own keep-alive connection) for d or until
// limit requests (0: no limit), and measures throughput and latency. A response whose status is
// not want counts as an error.
func drive(ctx context.Context, conns int, d time.Duration, limit int64, want int, next request) result {
	transport := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()

	var counter, errs atomic.Int64
	lat := make([][]time.Duration, conns)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range conns {
		wg.Go(func() {
			mine := make([]time.Duration, 0, 1<<16)
			for ctx.Err() == nil {
				i := counter.Add(1) - 1
				if limit > 0 && i >= limit {
					break
				}
				req, err := next(i)
				if err != nil {
					errs.Add(1)
					break
				}
				t0 := time.Now()
				resp, err := client.Do(req.WithContext(ctx))
				if err != nil {
					if ctx.Err() == nil {
						errs.Add(1)
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mine = append(mine, time.Since(t0))
				if resp.StatusCode != want {
					errs.Add(1)
				}
			}
			lat[w] = mine
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	all := slices.Concat(lat...)
	slices.Sort(all)
	res := result{requests: int64(len(all)), errors: errs.Load(), elapsed: elapsed}
	if len(all) > 0 {
		res.p50 = all[len(all)*50/100]
		res.p99 = all[min(len(all)-1, len(all)*99/100)]
	}
	return res
}

// get returns a request builder for GET url with a fixed bearer token.
func get(url, token string) request {
	return func(int64) (*http.Request, error) {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err == nil && token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return req, err
	}
}

// getWithTokens uses tokens[i]: one new token per request.
func getWithTokens(url string, tokens []string) request {
	return func(i int64) (*http.Request, error) {
		if i >= int64(len(tokens)) {
			return nil, fmt.Errorf("out of tokens")
		}
		return get(url, tokens[i])(i)
	}
}

// patchName renames the user on every request (a different name each time).
func patchName(url, token string) request {
	return func(i int64) (*http.Request, error) {
		req, err := http.NewRequest(http.MethodPatch, url, strings.NewReader(fmt.Sprintf(`{"name":"Bench %d"}`, i)))
		if err == nil {
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
		}
		return req, err
	}
}
