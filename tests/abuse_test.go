package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accountedge/caddy-account-api/tests/devcore"
	"github.com/accountedge/caddy-account-api/tests/harness"
)

// Attacks on the limits (issue 9), mounted against the real ./caddy in front of the dev core:
// bursts, rotating client addresses (127.0.0.N), Redis faults, reloads.

// addressClients are the clients of fromAddress, one per address.
var addressClients sync.Map

// fromAddress is a client whose connections leave from 127.0.0.n: to Caddy, another client.
func fromAddress(n int) *http.Client {
	if c, ok := addressClients.Load(n); ok {
		return c.(*http.Client)
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(n))}, Timeout: 5 * time.Second}
	c, _ := addressClients.LoadOrStore(n, &http.Client{Timeout: 30 * time.Second,
		// No keep-alive: an idle connection left behind would hold up the stop of Caddy.
		Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}})
	return c.(*http.Client)
}

// answer is one response of a burst.
type answer struct {
	status     int
	code       string
	body       string
	retryAfter string
}

func (a answer) String() string { return fmt.Sprintf("%d %s", a.status, a.code) }

// send makes one request without touching t, so bursts can run it in goroutines; headers are
// name, value pairs.
func send(client *http.Client, method, url, token string, body any, headers ...string) answer {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return answer{code: err.Error()}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(b, &e)
	return answer{status: resp.StatusCode, code: e.Code, body: string(b), retryAfter: resp.Header.Get("Retry-After")}
}

// burst runs n requests at once and returns their answers in request order.
func burst(n int, one func(i int) answer) []answer {
	out := make([]answer, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i] = one(i)
		}()
	}
	close(start)
	wg.Wait()
	return out
}

// tally counts answers by status and code, for assertions and the report.
func tally(answers []answer) map[string]int {
	m := map[string]int{}
	for _, a := range answers {
		m[a.String()]++
	}
	return m
}

func describe(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d×%s", m[k], k)
	}
	return strings.Join(parts, ", ")
}

// topology is one instance alone, or two instances sharing a Redis.
type topology struct {
	name      string
	instances func(t *testing.T, extra string) (*env, []string)
}

var topologies = []topology{
	{"one instance", func(t *testing.T, extra string) (*env, []string) {
		e := newEnv(t, options{extra: extra})
		return e, []string{e.caddy.URL()}
	}},
	{"two instances sharing Redis", func(t *testing.T, extra string) (*env, []string) {
		// A generous Redis timeout: on a busy machine a Redis call past the default 100ms would
		// send that instance to its in-process copy of the counts (its outage behaviour, tested
		// apart), and the exact bounds asserted here are those of a Redis that answers.
		opts := options{redis: harness.StartRedis(t).Addr(), redisTimeout: "2s", extra: extra}
		e := newEnv(t, opts)
		return e, []string{e.caddy.URL(), e.startCaddy(opts).URL()}
	}},
}

// setSentinel sets the sign-in experience's sentinelPolicy at the core (before the module has
// read and cached the sign-in experience).
func (e *env) setSentinel(maxAttempts, lockoutMinutes int) {
	e.t.Helper()
	r := e.call(e.core.URL, "PATCH", "/api/sign-in-exp", e.directM2MToken(),
		map[string]any{"sentinelPolicy": map[string]int{"maxAttempts": maxAttempts, "lockoutDuration": lockoutMinutes}})
	if r.status != http.StatusOK {
		e.t.Fatalf("setting the sentinel policy: %d %s", r.status, r.body)
	}
}

// passwordChecks is how many password verifications reached the core.
func (e *env) passwordChecks() int64 {
	return e.stats().Management["POST /api/users/{userId}/password/verify"]
}

const blocked = "session.verification_blocked_too_many_attempts"

func TestPasswordGuessBurstReachesTheCoreAtMostMaxAttempts(t *testing.T) {
	for _, topo := range topologies {
		t.Run(topo.name, func(t *testing.T) {
			e, bases := topo.instances(t, "")
			e.setSentinel(5, 10)
			tok := e.userToken(allScopes)
			e.core.Core.SetManagementDelay(50 * time.Millisecond) // a slow core widens the race
			defer e.core.Core.SetManagementDelay(0)
			clients := make([]*http.Client, 20)
			for i := range clients {
				clients[i] = fromAddress(10 + i)
			}
			const guesses = 100
			before := e.passwordChecks()
			answers := burst(guesses, func(i int) answer {
				return send(clients[i%len(clients)], "POST", bases[i%len(bases)]+"/api/verifications/password", tok,
					map[string]string{"password": fmt.Sprintf("guess-%d", i)})
			})
			checked := e.passwordChecks() - before
			counts := tally(answers)
			t.Logf("%d parallel wrong guesses from %d addresses over %d instance(s): %d reached the core; answers %s",
				guesses, len(clients), len(bases), checked, describe(counts))
			if checked > 5 || checked < 1 {
				t.Fatalf("%d guesses reached the core, want 1..5 (sentinelPolicy.maxAttempts)", checked)
			}
			if counts["422 session.invalid_credentials"]+counts["400 "+blocked] != guesses || counts["422 session.invalid_credentials"] > 4 {
				t.Fatalf("answers %s: want at most 4 invalid_credentials, the rest blocked", describe(counts))
			}
			// Locked: the right password, from an address that never guessed, on every instance,
			// gets the wrong password's answer, and is not even checked.
			before = e.passwordChecks()
			stranger := fromAddress(200)
			for _, base := range bases {
				right := send(stranger, "POST", base+"/api/verifications/password", tok, map[string]string{"password": devcore.DemoPassword})
				wrong := send(stranger, "POST", base+"/api/verifications/password", tok, map[string]string{"password": "another-guess"})
				if right.status != http.StatusBadRequest || right.code != blocked || right.body != wrong.body {
					t.Fatalf("right password while locked: %s %s; wrong: %s %s", right, right.body, wrong, wrong.body)
				}
				if !strings.Contains(right.body, "Please try again in 10 minutes.") {
					t.Fatalf("Logto's message with the time left: %s", right.body)
				}
			}
			if n := e.passwordChecks() - before; n != 0 {
				t.Fatalf("%d attempts of a locked user reached the core", n)
			}
			// The lockout is the user's, not everyone's.
			other := e.token(devcore.MintRequest{UserID: devcore.OtherUserID, Scope: allScopes})
			e.core.Core.SetManagementDelay(0)
			if a := send(stranger, "POST", bases[len(bases)-1]+"/api/verifications/password", other,
				map[string]string{"password": devcore.OtherPassword}); a.status != http.StatusCreated {
				t.Fatalf("another user: %s %s", a, a.body)
			}
		})
	}
}

func TestPasswordLockoutMatchesLogtoAcrossInstances(t *testing.T) {
	ex := harness.LoadSamples(t, "logto-samples-tokens.json")
	const title = "Logto's own POST /api/verifications/password, "
	redis := harness.StartRedis(t)
	opts := options{redis: redis.Addr()}
	e := newEnv(t, opts)
	e.setSentinel(3, 1) // as recorded
	second := e.startCaddy(opts)
	tok := e.userToken(allScopes)
	wrong := func(i int) map[string]any { return map[string]any{"password": fmt.Sprintf("wrong-%d", i)} }
	// Wrong #1 and #2 (on different instances and addresses) are 422; #3 locks and is refused.
	matchSample(t, e.do("POST", "/api/verifications/password", tok, wrong(0)),
		harness.Sample(t, ex, title+"wrong password #1 with sentinelPolicy maxAttempts 3, lockoutDuration 1"))
	matchSample(t, e.callWith(fromAddress(7), second.URL(), "POST", "/api/verifications/password", tok, wrong(1)),
		harness.Sample(t, ex, title+"wrong password #2 with sentinelPolicy maxAttempts 3, lockoutDuration 1"))
	matchSample(t, e.do("POST", "/api/verifications/password", tok, wrong(2)),
		harness.Sample(t, ex, title+"wrong password #3 with sentinelPolicy maxAttempts 3, lockoutDuration 1"))
	matchSample(t, e.callWith(fromAddress(8), second.URL(), "POST", "/api/verifications/password", tok, wrong(3)),
		harness.Sample(t, ex, title+"wrong password #4 with sentinelPolicy maxAttempts 3, lockoutDuration 1"))
	right := map[string]any{"password": devcore.DemoPassword}
	matchSample(t, e.callWith(fromAddress(9), second.URL(), "POST", "/api/verifications/password", tok, right),
		harness.Sample(t, ex, title+"the RIGHT password while locked"))
	matchSample(t, e.do("POST", "/api/verifications/password", tok, right),
		harness.Sample(t, ex, title+"the RIGHT password while locked"))
}

func TestPasswordLockoutSurvivesRedisOutageAndReload(t *testing.T) {
	redis := harness.StartRedis(t)
	opts := options{redis: redis.Addr()}
	e := newEnv(t, opts)
	e.setSentinel(5, 10)
	tok := e.userToken(allScopes)
	verify := func(password string) reply {
		return e.call(e.caddy.URL(), "POST", "/api/verifications/password", tok, map[string]any{"password": password})
	}
	for i := 0; i < 3; i++ {
		expectError(t, verify("wrong"), http.StatusUnprocessableEntity, "session.invalid_credentials")
	}
	// Redis goes away: the count goes on from 3 (in process), it does not restart at 0.
	redis.Stop()
	expectError(t, verify("wrong"), http.StatusUnprocessableEntity, "session.invalid_credentials")
	expectError(t, verify("wrong"), http.StatusBadRequest, blocked)
	r := verify(devcore.DemoPassword)
	expectError(t, r, http.StatusBadRequest, blocked) // not a 503 that tells the right password apart
	if w := verify("wrong"); string(w.body) != string(r.body) {
		t.Fatalf("locked, right and wrong differ: %s / %s", r.body, w.body)
	}
	// A reload (Redis still down) keeps the in-process lockout.
	e.caddy.Reload(e.caddyfile(e.caddy.Ports(), options{redis: redis.Addr(), extra: "policy_cache_ttl 2m"}))
	expectError(t, verify(devcore.DemoPassword), http.StatusBadRequest, blocked)
	// Redis is back, empty (no persistence): the lock this instance knows of still holds.
	redis.Restart()
	e.caddy.Reload(e.caddyfile(e.caddy.Ports(), opts))
	expectError(t, verify(devcore.DemoPassword), http.StatusBadRequest, blocked)
}

func TestPasswordLockoutPerAddressOnTop(t *testing.T) {
	e := newEnv(t, options{extra: "rate_limits {\n password_failures_per_ip 2 1m\n }"})
	e.setSentinel(50, 10)
	demo := e.userToken(allScopes)
	other := e.token(devcore.MintRequest{UserID: devcore.OtherUserID, Scope: allScopes})
	client := fromAddress(33)
	for _, tok := range []string{demo, other} {
		if a := send(client, "POST", e.caddy.URL()+"/api/verifications/password", tok, map[string]string{"password": "x"}); a.code != "session.invalid_credentials" {
			t.Fatalf("%s %s", a, a.body)
		}
	}
	// Two failures from this address, whoever the users: the third guess from it is refused.
	a := send(client, "POST", e.caddy.URL()+"/api/verifications/password", demo, map[string]string{"password": devcore.DemoPassword})
	if a.status != http.StatusTooManyRequests || a.retryAfter == "" {
		t.Fatalf("third attempt from one address: %s %s", a, a.body)
	}
	// From another address the user is not locked (2 of 50 failures).
	if a := send(fromAddress(34), "POST", e.caddy.URL()+"/api/verifications/password", demo, map[string]string{"password": devcore.DemoPassword}); a.status != http.StatusCreated {
		t.Fatalf("another address: %s %s", a, a.body)
	}
}

func TestCodeSendCapsHoldUnderRotation(t *testing.T) {
	for _, topo := range topologies {
		t.Run(topo.name, func(t *testing.T) {
			e, bases := topo.instances(t, "rate_limits {\n code_send_per_ip 1000 10m\n }")
			tok := e.userToken(allScopes)
			sends := func() int64 { return e.stats().Management["POST /api/verification-codes"] }

			// Per user, whatever the addresses: 60 texts to distinct numbers from 3 client
			// addresses (and every instance) → 20 (the default cap).
			before := sends()
			answers := burst(60, func(i int) answer {
				return send(fromAddress(40+i%3), "POST", bases[i%len(bases)]+"/api/verifications/verification-code", tok,
					codeBody("phone", fmt.Sprintf("6148940%04d", i)))
			})
			counts := tally(answers)
			t.Logf("60 sends to distinct numbers from 3 addresses: %s; %d messages sent", describe(counts), sends()-before)
			if counts["201 "] != 20 || counts["429 request.message_rate_limited"] != 40 || sends()-before != 20 {
				t.Fatalf("per-user cap: %s, %d sent", describe(counts), sends()-before)
			}
			for _, a := range answers {
				if a.status == http.StatusTooManyRequests && a.retryAfter == "" {
					t.Fatal("a refusal without Retry-After")
				}
			}

			// Per recipient, normalised: case and +tags are one mailbox → 10 (Logto's cap).
			other := e.token(devcore.MintRequest{UserID: devcore.OtherUserID, Scope: allScopes})
			before = sends()
			answers = burst(18, func(i int) answer {
				addr := fmt.Sprintf("Victim+%d@Example.COM", i)
				if i%3 == 0 {
					addr = "victim@example.com"
				}
				return send(fromAddress(50+i%3), "POST", bases[i%len(bases)]+"/api/verifications/verification-code", other,
					codeBody("email", addr))
			})
			counts = tally(answers)
			t.Logf("18 sends to one mailbox spelt with case and +tags: %s", describe(counts))
			if counts["201 "] != 10 || sends()-before != 10 {
				t.Fatalf("per-recipient cap: %s, %d sent", describe(counts), sends()-before)
			}
		})
	}
}

func TestCodeSendPerAddressCapAndStoreFirst(t *testing.T) {
	redis := harness.StartRedis(t)
	e := newEnv(t, options{redis: redis.Addr(), extra: "rate_limits {\n code_send_per_ip 3 10m\n }"})
	demo := e.userToken(allScopes)
	other := e.token(devcore.MintRequest{UserID: devcore.OtherUserID, Scope: allScopes})
	client := fromAddress(60)
	for i, tok := range []string{demo, other, demo} {
		if a := send(client, "POST", e.caddy.URL()+"/api/verifications/verification-code", tok, codeBody("email", fmt.Sprintf("ip%d@example.com", i))); a.status != http.StatusCreated {
			t.Fatalf("send %d: %s %s", i, a, a.body)
		}
	}
	if a := send(client, "POST", e.caddy.URL()+"/api/verifications/verification-code", other, codeBody("email", "ip9@example.com")); a.status != http.StatusTooManyRequests {
		t.Fatalf("fourth send from one address: %s %s", a, a.body)
	}
	// With the record store down, no code goes out for an answer of 503.
	redis.Stop()
	before := e.stats().Management["POST /api/verification-codes"]
	r := e.call(e.caddy.URL(), "POST", "/api/verifications/verification-code", demo, codeBody("email", "outage@example.com"))
	expectError(t, r, http.StatusServiceUnavailable, "verification_record.store_unavailable")
	if n := e.stats().Management["POST /api/verification-codes"] - before; n != 0 {
		t.Fatalf("%d codes sent for a 503", n)
	}
	if _, sent := e.core.Core.LastCode("outage@example.com"); sent {
		t.Fatal("a code was delivered for a 503")
	}
}

func TestParallelIdentifierRemovalsKeepOne(t *testing.T) {
	for _, topo := range topologies {
		t.Run(topo.name, func(t *testing.T) {
			e, bases := topo.instances(t, "")
			tok := e.userToken(allScopes)
			// The demo user keeps an email and a phone, and no username.
			pw := e.passwordRecord(tok, devcore.DemoPassword)
			if r := e.do("PATCH", "/api/my-account", tok, map[string]any{"username": nil}, vidHeader, pw); r.status != 200 {
				t.Fatalf("dropping the username: %d %s", r.status, r.body)
			}
			e.mgmt("PATCH", "/api/users/"+devcore.DemoUserID, map[string]any{"primaryPhone": "61489409039"})
			e.core.Core.SetManagementDelay(100 * time.Millisecond) // between the read and the write
			defer e.core.Core.SetManagementDelay(0)
			answers := burst(2, func(i int) answer {
				path := []string{"/api/my-account/primary-email", "/api/my-account/primary-phone"}[i]
				req, _ := http.NewRequest("DELETE", bases[i%len(bases)]+path, nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set(vidHeader, pw)
				resp, err := fromAddress(70 + i).Do(req)
				if err != nil {
					return answer{code: err.Error()}
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				var body struct{ Code string }
				_ = json.Unmarshal(b, &body)
				return answer{status: resp.StatusCode, code: body.Code, body: string(b)}
			})
			counts := tally(answers)
			t.Logf("parallel DELETE primary-email + primary-phone: %s", describe(counts))
			if counts["204 "] != 1 || counts["400 user.last_sign_in_method_required"] != 1 {
				t.Fatalf("answers %s: want one removal and one refusal", describe(counts))
			}
			e.core.Core.SetManagementDelay(0)
			u := e.mgmt("GET", "/api/users/"+devcore.DemoUserID, nil).json(t)
			if (u["primaryEmail"] == nil) == (u["primaryPhone"] == nil) {
				t.Fatalf("the user keeps email %v and phone %v, want exactly one", u["primaryEmail"], u["primaryPhone"])
			}
		})
	}
}

func TestRandomTokensCannotAmplifyIntrospection(t *testing.T) {
	for _, topo := range topologies {
		t.Run(topo.name, func(t *testing.T) {
			e, bases := topo.instances(t, "rate_limits {\n token_failures_per_ip 20 1m\n }")
			attacker := fromAddress(80)
			good := e.userToken(allScopes)
			// The good token is known to every instance before the attack.
			for _, base := range bases {
				if a := send(attacker, "GET", base+"/api/my-account", good, nil); a.status != 200 {
					t.Fatalf("%s %s", a, a.body)
				}
			}
			before := e.stats().Introspections
			answers := burst(400, func(i int) answer {
				return send(attacker, "GET", bases[i%len(bases)]+"/api/my-account", fmt.Sprintf("random-token-%d-%d", i, time.Now().UnixNano()), nil)
			})
			introspections := e.stats().Introspections - before
			counts := tally(answers)
			t.Logf("400 random tokens from one address: %d introspections; answers %s", introspections, describe(counts))
			if introspections > 20 {
				t.Fatalf("%d introspections for 400 random tokens, want at most 20", introspections)
			}
			if counts["401 auth.unauthorized"]+counts["429 request.rate_limited"] != 400 || counts["429 request.rate_limited"] < 380 {
				t.Fatalf("answers %s", describe(counts))
			}
			for _, a := range answers {
				if a.status == http.StatusTooManyRequests && a.retryAfter == "" {
					t.Fatal("a refusal without Retry-After")
				}
			}
			// Valid tokens known to be valid are not slowed, even on routes that ask the core
			// again; a token the core would have to be asked about waits for the window.
			for _, base := range bases {
				if a := send(attacker, "GET", base+"/api/my-account", good, nil); a.status != 200 {
					t.Fatalf("a cached good token from the limited address: %s %s", a, a.body)
				}
				if a := send(attacker, "POST", base+"/api/verifications/password", good, map[string]string{"password": devcore.DemoPassword}); a.status != http.StatusCreated {
					t.Fatalf("a sensitive route with a cached good token from the limited address: %s %s", a, a.body)
				}
			}
			fresh := e.userToken(allScopes)
			if a := send(attacker, "GET", bases[0]+"/api/my-account", fresh, nil); a.status != http.StatusTooManyRequests {
				t.Fatalf("an unknown token from the limited address: %s %s", a, a.body)
			}
			if a := send(fromAddress(81), "GET", bases[len(bases)-1]+"/api/my-account", fresh, nil); a.status != 200 {
				t.Fatalf("the same token from another address: %s %s", a, a.body)
			}
			// Rotating addresses buys each address its own 20, no more.
			before = e.stats().Introspections
			answers = burst(300, func(i int) answer {
				return send(fromAddress(90+i%5), "GET", bases[i%len(bases)]+"/api/my-account", fmt.Sprintf("rotating-%d-%d", i, time.Now().UnixNano()), nil)
			})
			introspections = e.stats().Introspections - before
			t.Logf("300 random tokens from 5 addresses: %d introspections; answers %s", introspections, describe(tally(answers)))
			if introspections > 5*20 {
				t.Fatalf("%d introspections from 5 addresses, want at most 100", introspections)
			}
		})
	}
}

func TestEmptyClientIDIsNotFirstParty(t *testing.T) {
	e := newEnv(t, options{})
	tok := e.token(devcore.MintRequest{Scope: allScopes, NoClient: true})
	before := e.passwordChecks()
	expectError(t, e.do("POST", "/api/verifications/password", tok, map[string]any{"password": devcore.DemoPassword}),
		http.StatusForbidden, "auth.third_party_application_forbidden")
	expectError(t, e.do("POST", "/api/verifications/verification-code", tok, codeBody("email", devcore.DemoEmail)),
		http.StatusForbidden, "auth.third_party_application_forbidden")
	if n := e.passwordChecks() - before; n != 0 {
		t.Fatalf("a token without a client reached the password check %d times", n)
	}
	// Reading the profile needs no first-party client, as in Logto.
	if r := e.do("GET", "/api/my-account", tok, nil); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
}

func TestSlowBodiesAreCutOff(t *testing.T) {
	e := newEnv(t, options{extra: "body_timeout 2s"})
	tok := e.userToken(allScopes)
	addr := strings.TrimPrefix(e.caddy.URL(), "http://")
	const conns = 100
	type result struct {
		status string
		freed  time.Duration
		err    error
	}
	results := make([]result, conns)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				results[i].err = err
				return
			}
			defer c.Close()
			token := tok
			if i%2 == 1 {
				token = "not-a-token" // no token to spend an introspection on either
			}
			fmt.Fprintf(c, "PATCH /api/my-account HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"+
				"Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{", addr, token)
			done := make(chan struct{})
			defer close(done)
			go func() { // one byte a second, until the server hangs up
				for {
					select {
					case <-done:
						return
					case <-time.After(time.Second):
						if _, err := c.Write([]byte(" ")); err != nil {
							return
						}
					}
				}
			}()
			// The test's own bound: a connection not freed in 20s is a failure, not a hang.
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			resp, err := io.ReadAll(c) // until the server closes the connection
			results[i].freed = time.Since(start)
			if line, _, ok := strings.Cut(string(resp), "\r\n"); ok {
				results[i].status = line
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				results[i].err = fmt.Errorf("still open after 20s: %q", resp)
			} else if !strings.Contains(string(resp), `"code":"request.timeout"`) {
				results[i].err = fmt.Errorf("want Logto-shaped request.timeout: %q", resp)
			}
		}()
	}
	wg.Wait()
	var slowest time.Duration
	statuses := map[string]int{}
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("connection %d: %v", i, r.err)
		}
		statuses[r.status]++
		slowest = max(slowest, r.freed)
	}
	t.Logf("%d connections sending a byte a second (body_timeout 2s): all freed after %v; %s", conns, slowest.Round(100*time.Millisecond), describe(statuses))
	if statuses["HTTP/1.1 408 Request Timeout"] != conns {
		t.Fatalf("statuses %v", statuses)
	}
	// The server still serves, and a body that arrives in time is read as before, even when
	// the core takes longer than body_timeout to authenticate the request.
	e.core.Core.SetIntrospectionDelay(2500 * time.Millisecond)
	defer e.core.Core.SetIntrospectionDelay(0)
	r := e.do("PATCH", "/api/my-account", e.userToken(allScopes),
		map[string]any{"customData": map[string]string{"pad": strings.Repeat("x", 64<<10)}})
	if r.status != 200 {
		t.Fatalf("a prompt body behind a slow core: %d %s", r.status, r.body)
	}
}

func TestCodeGuessBurstLocksTheRecipient(t *testing.T) {
	e, bases := topologies[1].instances(t, "")
	e.setSentinel(3, 10)
	tok := e.userToken(allScopes)
	const to = "guessed@example.com"
	id := e.sendCode(tok, "email", to)
	checks := func() int64 { return e.stats().Management["POST /api/verification-codes/verify"] }
	before := checks()
	answers := burst(20, func(i int) answer {
		return send(fromAddress(120+i%4), "POST", bases[i%2]+"/api/verifications/verification-code/verify", tok,
			verifyBody("email", to, id, fmt.Sprintf("%06d", (i+1)*7919%1000000)))
	})
	n := checks() - before
	t.Logf("20 parallel wrong codes for one address over 2 instances: %d reached the core; %s", n, describe(tally(answers)))
	if n > 3 {
		t.Fatalf("%d code checks reached the core, want at most 3 (sentinelPolicy.maxAttempts)", n)
	}
	// Locked: with a new record, the right code is refused like a wrong one, on either instance.
	id = e.sendCode(tok, "email", to)
	right := e.lastCode(to)
	for _, base := range bases {
		a := send(fromAddress(130), "POST", base+"/api/verifications/verification-code/verify", tok, verifyBody("email", to, id, right))
		if a.status != http.StatusBadRequest || a.code != blocked {
			t.Fatalf("the right code while locked: %s %s", a, a.body)
		}
	}
}
