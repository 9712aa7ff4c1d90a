// Package tests holds the end-to-end tests: the real ./caddy (built by ./xcaddy.sh build) with
// the account_api module, in front of the dev identity core, with and without a real Redis.
package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/accountedge/caddy-account-api/tests/devcore"
	"github.com/accountedge/caddy-account-api/tests/harness"
)

// env is one dev core and the Caddy instances in front of it.
type env struct {
	t      *testing.T
	core   *devcore.Server
	caddy  *harness.Caddy
	client *http.Client
	api    *harness.OpenAPI
}

// options shape an environment's Caddyfile.
type options struct {
	// extra lines inside the account_api block.
	extra string
	// redis address shared by the instance(s).
	redis string
	// redisTimeout, when set, is the module's bound on each Redis call (default 100ms).
	redisTimeout string
	// coreURL, when set, is where the module reaches the core (e.g. a fault proxy); the
	// site's reverse_proxy still goes to the dev core.
	coreURL string
	// clientSecret, when set, replaces the gateway's real client secret.
	clientSecret string
	// global lines for the global options block; site lines for the site block.
	global, site string
}

func newEnv(t *testing.T, opts options) *env {
	t.Helper()
	srv, err := devcore.New(devcore.Config{}).Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	e := &env{t: t, core: srv, client: &http.Client{Timeout: 30 * time.Second}, api: harness.LoadUserAPI(t)}
	e.caddy = e.startCaddy(opts)
	return e
}

// startCaddy starts one more Caddy instance in front of the same core.
func (e *env) startCaddy(opts options) *harness.Caddy {
	secret := devcore.DefaultClientSecret
	if opts.clientSecret != "" {
		secret = opts.clientSecret
	}
	return harness.StartCaddyEnv(e.t, []string{"ACCOUNT_API_CLIENT_SECRET=" + secret},
		func(p harness.Ports) string { return e.caddyfile(p, opts) })
}

func (e *env) caddyfile(p harness.Ports, opts options) string {
	redis := ""
	if opts.redis != "" {
		redis = "redis {\n\t\t\taddress " + opts.redis + "\n\t\t}"
		if opts.redisTimeout != "" {
			redis = strings.Replace(redis, "\n\t\t}", "\n\t\t\ttimeout "+opts.redisTimeout+"\n\t\t}", 1)
		}
	}
	coreURL := e.core.URL
	if opts.coreURL != "" {
		coreURL = opts.coreURL
	}
	return fmt.Sprintf(`{
%s%s
}
http://127.0.0.1:%d {
	%s
	account_api {
		core_url %s
		client_id %s
		client_secret {env.ACCOUNT_API_CLIENT_SECRET}
		%s
		%s
	}
	reverse_proxy %s
}
`, harness.GlobalOptions(p), opts.global, p.HTTP, opts.site, coreURL, devcore.DefaultClientID, redis, opts.extra,
		strings.TrimPrefix(e.core.URL, "http://"))
}

// mint mints a token at the dev core (for the demo user unless req names one) and returns the
// whole answer (session and grant ids too).
func (e *env) mint(req devcore.MintRequest) devcore.MintResponse {
	e.t.Helper()
	if req.UserID == "" {
		req.UserID = devcore.DemoUserID
	}
	var out devcore.MintResponse
	e.coreJSON("POST", "/dev/tokens", req, &out)
	return out
}

// token mints a user access token at the dev core.
func (e *env) token(req devcore.MintRequest) string {
	e.t.Helper()
	return e.mint(req).AccessToken
}

// userToken mints an opaque token for the demo user with the given scopes.
func (e *env) userToken(scope string) string {
	return e.token(devcore.MintRequest{Scope: scope})
}

const allScopes = "openid offline_access profile email phone identities custom_data address"

// coreJSON calls the dev core directly (dev API) and decodes the answer.
func (e *env) coreJSON(method, path string, in, out any) {
	e.t.Helper()
	b, _ := json.Marshal(in)
	req, _ := http.NewRequest(method, e.core.URL+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		body, _ := io.ReadAll(resp.Body)
		e.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, body)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			e.t.Fatal(err)
		}
	}
}

// reply is a response read whole.
type reply struct {
	status int
	header http.Header
	body   []byte
	req    *http.Request
	// closed: the server asked to close the connection (Go's client takes Connection: close
	// out of the header into resp.Close); proto: the HTTP major version. Set by rawUpload.
	closed bool
	proto  int
}

// json decodes the body into a generic value.
func (r reply) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return m
}

// call sends a request to base+path. token "" sends no Authorization header; body may be nil, a
// string (sent raw) or a value (sent as JSON).
func (e *env) call(base, method, path, token string, body any, headers ...string) reply {
	e.t.Helper()
	return e.callWith(e.client, base, method, path, token, body, headers...)
}

// callWith is call through another client (one bound to another client address, say).
//
// A request that gets no answer fails the test with Errorf and returns status 0, never FailNow:
// bursts call it from goroutines, where FailNow would end only the goroutine and leave the test
// waiting for an answer that never comes.
func (e *env) callWith(client *http.Client, base, method, path, token string, body any, headers ...string) reply {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		e.t.Errorf("%s %s: %v", method, path, err)
		return reply{}
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		e.t.Errorf("%s %s: %v", method, path, err)
		return reply{req: req}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: b, req: req}
}

// do sends a request through the first Caddy instance and validates the answer against Logto's
// user API OpenAPI document.
func (e *env) do(method, path, token string, body any, headers ...string) reply {
	e.t.Helper()
	r := e.call(e.caddy.URL(), method, path, token, body, headers...)
	e.api.ValidateResponse(e.t, r.req, r.status, r.header, r.body)
	return r
}

// expectError asserts a Logto error answer.
func expectError(t *testing.T, r reply, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d %s; body %s", r.status, status, code, r.body)
	}
	if got := r.json(t)["code"]; got != code {
		t.Fatalf("code %v, want %s; body %s", got, code, r.body)
	}
}

// sameJSON reports whether two JSON documents are equal as values.
func sameJSON(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

// matchSample asserts that an answer has the recorded exchange's status and, for errors, the same
// body; for successes, the same members.
func matchSample(t *testing.T, r reply, ex harness.Exchange) {
	t.Helper()
	if r.status != ex.Response.Status {
		t.Fatalf("%s: status %d, Logto answered %d; body %s", ex.Title, r.status, ex.Response.Status, r.body)
	}
	if !ex.Response.HasBody() {
		return
	}
	if r.status >= 400 {
		if !sameJSON(r.body, ex.Response.Body) {
			t.Fatalf("%s: body %s\nLogto answered %s", ex.Title, r.body, ex.Response.Body)
		}
		return
	}
	var got, want map[string]any
	_ = json.Unmarshal(r.body, &got)
	_ = json.Unmarshal(ex.Response.Body, &want)
	if !slices.Equal(slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want))) {
		t.Fatalf("%s: members %v\nLogto's      %v", ex.Title, slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
}

// stats reads the dev core's counters.
func (e *env) stats() devcore.Stats { return e.core.Core.Stats() }

// m2mToken gets a Management API token through the first Caddy instance (so its issuer matches
// the host the Management API calls below go through).
func (e *env) m2mToken() string { return e.m2mTokenVia(e.caddy.URL()) }
