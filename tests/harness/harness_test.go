package harness

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// fakeTB records failures instead of failing the real test, so the tests
// below can assert that a helper does report a mismatch. It embeds the real
// T for everything else (TempDir, Cleanup, Logf...).
type fakeTB struct {
	testing.TB
	mu     sync.Mutex
	msgs   []string
	failed bool
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) record(msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failed = true
	f.msgs = append(f.msgs, msg)
}

func (f *fakeTB) Errorf(format string, args ...any) { f.record(fmt.Sprintf(format, args...)) }
func (f *fakeTB) Error(args ...any)                 { f.record(fmt.Sprint(args...)) }
func (f *fakeTB) Fail()                             { f.record("Fail") }
func (f *fakeTB) FailNow()                          { f.record("FailNow"); runtime.Goexit() }
func (f *fakeTB) Fatal(args ...any)                 { f.record(fmt.Sprint(args...)); runtime.Goexit() }
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.record(fmt.Sprintf(format, args...))
	runtime.Goexit()
}
func (f *fakeTB) Failed() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.failed }

// runFake runs fn with a fakeTB in its own goroutine, because the fake's
// Fatal ends the calling goroutine like the real one does.
func runFake(t *testing.T, fn func(tb testing.TB)) *fakeTB {
	f := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() { defer close(done); fn(f) }()
	<-done
	return f
}

func TestPaths(t *testing.T) {
	root := RepoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("RepoRoot %q has no go.mod", root)
	}
	if p := Testdata(t, UserAPIFile); p != filepath.Join(root, "tests", "testdata", "logto", UserAPIFile) {
		t.Errorf("Testdata = %q", p)
	}
	f := runFake(t, func(tb testing.TB) { Testdata(tb, "no-such-file.json") })
	if !f.Failed() {
		t.Error("Testdata of a missing file did not fail")
	}
	if p := FreePort(t); p <= 0 || p == 6379 {
		t.Errorf("FreePort = %d", p)
	}
}

func TestRedis(t *testing.T) {
	r := StartRedis(t)
	if r.Port() == 6379 {
		t.Fatal("test redis must not use the default port")
	}
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()

	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING: %v", err)
	}
	// DEBUG is what fault tests use to make the server slow.
	if err := c.Do(ctx, "DEBUG", "SLEEP", "0").Err(); err != nil {
		t.Fatalf("DEBUG SLEEP 0: %v", err)
	}
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}

	r.Stop()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING succeeded after Stop")
	}
	r.Stop() // idempotent

	r.Restart()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING after Restart: %v", err)
	}
	if err := c.Get(ctx, "k").Err(); err != redis.Nil {
		t.Fatalf("GET after Restart = %v, want redis.Nil (no persistence)", err)
	}
}

func TestLoadOpenAPIDocs(t *testing.T) {
	for _, o := range []*OpenAPI{LoadUserAPI(t), LoadManagementAPI(t)} {
		if o.Doc.Paths.Len() == 0 {
			t.Errorf("%s has no paths", o.Name)
		}
		if len(o.Doc.Servers) != 0 {
			t.Errorf("%s servers not cleared", o.Name)
		}
	}
	if LoadUserAPI(t) != LoadUserAPI(t) {
		t.Error("documents are not cached")
	}
}

// sampleRequest builds the request as a test against Caddy would send it.
func sampleRequest(t *testing.T, e Exchange) *http.Request {
	req, err := http.NewRequest(e.Request.Method, "http://127.0.0.1:18080"+e.Request.Path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func sampleHeader(e Exchange) http.Header {
	h := http.Header{}
	for k, v := range e.Response.Headers {
		h.Set(k, v)
	}
	return h
}

func sampleBody(e Exchange) []byte {
	if !e.Response.HasBody() {
		return nil
	}
	return e.Response.Body
}

// Every response Logto itself gave on a user-API operation must pass, or
// the validator would reject correct behaviour.
func TestRecordedLogtoResponsesValidate(t *testing.T) {
	api := LoadUserAPI(t)
	checked := 0
	for _, file := range []string{"logto-samples.json", "logto-samples-stepup.json"} {
		for _, e := range LoadSamples(t, file) {
			req := sampleRequest(t, e)
			if _, _, err := api.router.FindRoute(req); err != nil {
				continue // Management API or OIDC exchange
			}
			checked++
			api.ValidateResponse(t, req, e.Response.Status, sampleHeader(e), sampleBody(e))
		}
	}
	if checked < 50 {
		t.Errorf("only %d user-API samples checked", checked)
	}
}

func TestValidateResponseReportsMismatches(t *testing.T) {
	api := LoadUserAPI(t)
	samples := LoadSamples(t, "logto-samples.json")
	good := Sample(t, samples, "GET profile, scopes openid offline_access profile")
	req := sampleRequest(t, good)
	jsonHeader := http.Header{"Content-Type": {"application/json; charset=utf-8"}}

	if err := api.CheckResponse(req, 200, sampleHeader(good), sampleBody(good)); err != nil {
		t.Fatalf("recorded response rejected: %v", err)
	}

	bad := []struct {
		name   string
		req    *http.Request
		status int
		header http.Header
		body   string
	}{
		{"id is a number", req, 200, jsonHeader, `{"id":123}`},
		{"body not JSON", req, 200, jsonHeader, `hello`},
		{"wrong content type", req, 200, http.Header{"Content-Type": {"text/plain"}}, string(sampleBody(good))},
		{"undocumented success status", req, 201, jsonHeader, string(sampleBody(good))},
		{"error without Logto shape", req, 401, jsonHeader, `{"error":"nope"}`},
		{"error without body", req, 401, jsonHeader, ``},
		{"error as text", req, 401, http.Header{"Content-Type": {"text/plain"}}, `Unauthorized`},
		{"204 with a body", mustRequest(t, "POST", "/api/my-account/password"), 204, jsonHeader, `{"x":1}`},
		{"unknown path", mustRequest(t, "GET", "/api/nope"), 200, jsonHeader, `{}`},
		{"unknown method", mustRequest(t, "PUT", "/api/my-account"), 200, jsonHeader, `{}`},
		{"verification without expiresAt", mustRequest(t, "POST", "/api/verifications/password"), 201, jsonHeader, `{"verificationRecordId":"x"}`},
	}
	for _, b := range bad {
		err := api.CheckResponse(b.req, b.status, b.header, []byte(b.body))
		t.Logf("%s: %v", b.name, err)
		if err == nil {
			t.Errorf("%s: accepted", b.name)
		}
	}

	// ValidateResponse must turn a mismatch into a test failure with a
	// readable message, and stay quiet on a match.
	f := runFake(t, func(tb testing.TB) { api.ValidateResponse(tb, req, 200, jsonHeader, []byte(`{"id":123}`)) })
	if !f.Failed() || !strings.Contains(strings.Join(f.msgs, "\n"), "GET /api/my-account -> 200") {
		t.Errorf("ValidateResponse did not report the mismatch: %q", f.msgs)
	}
	f = runFake(t, func(tb testing.TB) { api.ValidateResponse(tb, req, 200, sampleHeader(good), sampleBody(good)) })
	if f.Failed() {
		t.Errorf("ValidateResponse failed a good response: %q", f.msgs)
	}

	// Logto answers 400 on GET /api/my-account, which the document does not
	// list: accepted by default, refused under StrictStatus.
	disabled := Sample(t, samples, "GET profile while account center disabled")
	if err := api.CheckResponse(req, 400, sampleHeader(disabled), sampleBody(disabled)); err != nil {
		t.Errorf("undocumented Logto error rejected: %v", err)
	}
	strict := *api
	strict.StrictStatus = true
	if err := strict.CheckResponse(req, 400, sampleHeader(disabled), sampleBody(disabled)); err == nil {
		t.Error("StrictStatus accepted an undocumented status")
	}
}

func mustRequest(t *testing.T, method, path string) *http.Request {
	req, err := http.NewRequest(method, "http://127.0.0.1:18080"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestSamples(t *testing.T) {
	for _, file := range []string{"logto-samples.json", "logto-samples-stepup.json"} {
		ex := LoadSamples(t, file)
		for _, e := range ex {
			if e.Title == "" || e.Request.Method == "" || !strings.HasPrefix(e.Request.Path, "/") || e.Response.Status < 100 {
				t.Errorf("%s: incomplete exchange %+v", file, e)
			}
		}
	}
	ex := LoadSamples(t, "logto-samples.json")
	e := Sample(t, ex, "Verify password (right)")
	if e.Request.Method != "POST" || e.Request.Path != "/api/verifications/password" || e.Response.Status != 201 {
		t.Errorf("unexpected sample %+v", e)
	}
	if !e.Request.HasBody() || !e.Response.HasBody() {
		t.Error("sample bodies missing")
	}
	if Sample(t, ex, "No Authorization header").Request.HasBody() {
		t.Error("null body reported as present")
	}
	f := runFake(t, func(tb testing.TB) { Sample(tb, ex, "no such title") })
	if !f.Failed() {
		t.Error("Sample with an unknown title did not fail")
	}
}

func TestGlobalOptions(t *testing.T) {
	g := GlobalOptions(Ports{HTTP: 1, Admin: 2})
	for _, want := range []string{"admin 127.0.0.1:2", "default_bind 127.0.0.1", "auto_https off"} {
		if !strings.Contains(g, want) {
			t.Errorf("GlobalOptions lacks %q:\n%s", want, g)
		}
	}
}

// TestCaddy runs a plain respond config, so it needs only a Caddy binary,
// not this module. Outside CI it is skipped when ./caddy is not built yet.
func TestCaddy(t *testing.T) {
	if os.Getenv("CI") == "" && os.Getenv("CADDY_BIN") == "" {
		if _, err := os.Stat(filepath.Join(RepoRoot(t), "caddy")); err != nil {
			t.Skip("no ./caddy: run ./xcaddy.sh build")
		}
	}
	config := func(body string) func(p Ports) string {
		return func(p Ports) string {
			return fmt.Sprintf("{\n%s}\n\nhttp://127.0.0.1:%d {\n\trespond %q\n}\n", GlobalOptions(p), p.HTTP, body)
		}
	}
	c := StartCaddyEnv(t, []string{"HARNESS_TEST=1"}, config("one"))
	if got := get(t, c.URL()+"/"); got != "one" {
		t.Fatalf("GET / = %q, want one", got)
	}
	c.Reload(config("two")(c.Ports()))
	if got := get(t, c.URL()+"/"); got != "two" {
		t.Fatalf("GET / after reload = %q, want two", got)
	}
	if err := c.TryReload("{\n" + GlobalOptions(c.Ports()) + "}\nnot a valid { config"); err == nil {
		t.Error("TryReload accepted a broken config")
	}
	if c.Logs() == "" {
		t.Error("no logs captured")
	}
	if data, err := os.ReadFile(c.LogFile()); err != nil || len(data) == 0 {
		t.Errorf("log file empty: %v", err)
	}
	// A config Caddy refuses must fail the test and show Caddy's words.
	f := runFake(t, func(tb testing.TB) {
		StartCaddy(tb, func(p Ports) string {
			return "{\n" + GlobalOptions(p) + "}\nhttp://127.0.0.1:1 {\n\tno_such_directive\n}\n"
		})
	})
	if msgs := strings.Join(f.msgs, "\n"); !f.Failed() || !strings.Contains(msgs, "no_such_directive") {
		t.Errorf("broken config not reported with logs: %q", msgs)
	}

	c.Stop()
	if _, err := http.Get(c.URL() + "/"); err == nil {
		t.Error("Caddy still answers after Stop")
	}
	if _, err := exec.LookPath(CaddyBinary(t)); err != nil {
		t.Errorf("CaddyBinary not executable: %v", err)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
