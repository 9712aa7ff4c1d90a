package tests

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accountedge/caddy-account-api/tests/devcore"
	"github.com/accountedge/caddy-account-api/tests/harness"
)

// Attacks from the security review of issues 9–11: what a caller holding a victim's token, or
// an attacker sharing the victim's address, can do against the real ./caddy.

// Parallel TOTP replacements each replace, as Logto's (one transaction each) do: none answers
// 422 user.totp_already_in_use, and one TOTP is left; racing deletions never leave two.
func TestMfaTotpReplacementRaces(t *testing.T) {
	e := mfaEnv(t)
	tok, vid, _, _ := e.mfaCallers()
	e.bindTotp(tok, vid)
	const n = 10
	secrets := make([]string, n)
	for i := range secrets {
		secrets[i] = e.newSecret(tok)
	}
	bodies := make([]map[string]any, n)
	for i := range bodies {
		bodies[i] = map[string]any{"secret": secrets[i], "code": totpCode(t, secrets[i])}
	}
	answers := burst(n, func(i int) answer {
		return send(e.client, "PUT", e.caddy.URL()+mfaPath+"/totp", tok, bodies[i], vidHeader, vid)
	})
	counts := tally(answers)
	t.Logf("%d parallel TOTP replacements: %s", n, describe(counts))
	if counts["204 "] != n {
		t.Fatalf("parallel replacements: %s, want %d×204", describe(counts), n)
	}
	if f := e.factors(devcore.DemoUserID); len(f) != 1 || f[0]["type"] != "Totp" {
		t.Fatalf("after the replacement burst: %v", f)
	}

	// Replacements racing deletions of the current factor: never two TOTPs.
	current := e.factors(devcore.DemoUserID)[0]["id"].(string)
	answers = burst(2*n, func(i int) answer {
		if i%2 == 0 {
			return send(e.client, "DELETE", e.caddy.URL()+mfaPath+"/"+current, tok, nil, vidHeader, vid)
		}
		return send(e.client, "PUT", e.caddy.URL()+mfaPath+"/totp", tok, bodies[i/2], vidHeader, vid)
	})
	f := e.factors(devcore.DemoUserID)
	t.Logf("%d replacements racing %d deletions: %s; factors left %d", n, n, describe(tally(answers)), len(f))
	if len(f) > 1 {
		t.Fatalf("two TOTPs after the race: %v", f)
	}
	for _, a := range answers {
		if a.status != http.StatusNoContent && a.code != "verification_record.not_found" {
			t.Fatalf("a race answered %s %s", a, a.body)
		}
	}
}

// The failed-token gate counts per client address: an attacker behind the victim's address
// (a shared NAT) spends the budget with random tokens. A token the edge has seen valid still
// passes, also once its cached answer expired, and so does a JWT (no core call); a token never
// seen valid waits out the window (the documented residual: that is the amplification bound).
// Tokens that were valid and expired are refused without the core, and do not count.
func TestTokenGateSharedAddress(t *testing.T) {
	e := newEnv(t, options{extra: "token_cache_ttl 1s\nrate_limits {\n token_failures_per_ip 5 1m\n }"})
	nat := fromAddress(140)
	victim := e.userToken(allScopes)
	if a := send(nat, "GET", e.caddy.URL()+"/api/my-account", victim, nil); a.status != 200 {
		t.Fatalf("victim before the attack: %s %s", a, a.body)
	}
	for i := range 5 {
		if a := send(nat, "GET", e.caddy.URL()+"/api/my-account", fmt.Sprintf("random-%d-%d", i, time.Now().UnixNano()), nil); a.status != 401 {
			t.Fatalf("random token %d: %s", i, a)
		}
	}
	// The victim's token, still cached: passes.
	if a := send(nat, "GET", e.caddy.URL()+"/api/my-account", victim, nil); a.status != 200 {
		t.Fatalf("victim's cached token: %s %s", a, a.body)
	}
	time.Sleep(1100 * time.Millisecond) // past token_cache_ttl: a cache expiry, not a timing assertion
	before := e.stats()
	a := send(nat, "GET", e.caddy.URL()+"/api/my-account", victim, nil)
	t.Logf("victim's valid token, cached answer expired, behind the attacker's address: %s (Retry-After %s)", a, a.retryAfter)
	if a.status != 200 {
		t.Errorf("a token seen valid was refused by the failed-token gate once its answer expired: %s", a)
	}
	if n := e.stats().Introspections - before.Introspections; n != 1 {
		t.Errorf("%d introspections for the expired answer, want 1: the core must be asked again", n)
	}
	// Never seen valid: refused unasked while the address is over its budget (the residual).
	fresh := e.userToken(allScopes)
	b := send(nat, "GET", e.caddy.URL()+"/api/my-account", fresh, nil)
	t.Logf("victim's freshly issued token behind the attacker's address: %s (Retry-After %s)", b, b.retryAfter)
	if b.status != 429 || b.code != "request.rate_limited" || b.retryAfter == "" {
		t.Errorf("a never-seen token from an address over its budget: %s (Retry-After %q), want 429 with Retry-After", b, b.retryAfter)
	}
	// Once it was seen valid from anywhere else (another address), it passes there too.
	if c := send(fromAddress(143), "GET", e.caddy.URL()+"/api/my-account", fresh, nil); c.status != 200 {
		t.Fatalf("fresh token from another address: %s", c)
	}
	if c := send(nat, "GET", e.caddy.URL()+"/api/my-account", fresh, nil); c.status != 200 {
		t.Errorf("a token seen valid elsewhere, behind the attacker's address: %s", c)
	}

	// No attacker: clients whose tokens just expired (each retries once before it refreshes)
	// do not spend the address's budget.
	office := fromAddress(142)
	lifetime := int64(4)
	var olds []string
	for range 5 {
		old := e.token(devcore.MintRequest{Scope: allScopes, ExpiresIn: &lifetime})
		if a := send(office, "GET", e.caddy.URL()+"/api/my-account", old, nil); a.status != 200 {
			t.Fatalf("token before it expired: %s", a)
		}
		olds = append(olds, old)
	}
	time.Sleep(time.Duration(lifetime+1) * time.Second) // past the tokens' exp, not a timing assertion
	before = e.stats()
	for _, old := range olds {
		if a := send(office, "GET", e.caddy.URL()+"/api/my-account", old, nil); a.status != 401 {
			t.Fatalf("expired token: %s", a)
		}
	}
	if n := e.stats().Introspections - before.Introspections; n != 0 {
		t.Errorf("%d introspections for tokens seen valid that expired, want 0", n)
	}
	c := send(office, "GET", e.caddy.URL()+"/api/my-account", e.userToken(allScopes), nil)
	t.Logf("a fresh token after 5 expired ones from one address: %s", c)
	if c.status != 200 {
		t.Errorf("expired tokens of other users locked the address: %s", c)
	}
}

// A JWT is verified at the edge (no core call), so the failed-token gate protects nothing by
// refusing one: it is not gated (review of issue 9, item 6).
func TestTokenGateAndJWTs(t *testing.T) {
	const aud = "https://api.example.test"
	e := newEnv(t, options{extra: "jwt {\n audience " + aud + "\n }\nrate_limits {\n token_failures_per_ip 5 1m\n }"})
	nat := fromAddress(141)
	for i := range 5 {
		if a := send(nat, "GET", e.caddy.URL()+"/api/my-account", fmt.Sprintf("random-%d-%d", i, time.Now().UnixNano()), nil); a.status != 401 {
			t.Fatalf("random token %d: %s", i, a)
		}
	}
	if a := send(nat, "GET", e.caddy.URL()+"/api/my-account", "random-opaque", nil); a.status != 429 {
		t.Fatalf("the address is not over its budget (the test would prove nothing): %s", a)
	}
	jwt := e.token(devcore.MintRequest{Scope: allScopes, Format: "jwt", Audience: aud})
	before := e.stats()
	a := send(nat, "GET", e.caddy.URL()+"/api/my-account", jwt, nil)
	t.Logf("valid JWT behind the attacker's address: %s; introspections %d", a, e.stats().Introspections-before.Introspections)
	if a.status != 200 {
		t.Errorf("a valid JWT, verified without the core, was refused by the gate: %s %s", a, a.body)
	}
	if !strings.Contains(a.body, devcore.DemoUserID) && a.status == 200 {
		t.Errorf("body %s", a.body)
	}
	if n := e.stats().Introspections - before.Introspections; n != 0 {
		t.Errorf("%d introspections for a JWT, want 0", n)
	}
}

// TOTP secrets, TOTP codes and backup codes never reach the logs (debug included), error
// bodies or Redis, also when the core fails in the middle of a change and the module logs it.
func TestNoMfaSecretLeaks(t *testing.T) {
	rs := harness.StartRedis(t)
	e, proxy := newFaultEnv(t, options{redis: rs.Addr(), global: "\tdebug\n", site: accessLogFilter, extra: "policy_cache_ttl 1ms"})
	e.setFields(map[string]string{"mfa": "Edit"})
	e.setFactors("Totp", "BackupCode")
	tok := e.userToken(mfaScopes)
	vid := e.passwordRecord(tok, devcore.DemoPassword)

	secrets := map[string]string{}
	var errorBodies []string
	record := func(r reply) reply {
		if r.status >= 400 {
			errorBodies = append(errorBodies, string(r.body))
		}
		return r
	}
	first := e.newSecret(tok)
	secrets["first secret"] = first
	wrong := wrongTotpCode(t, first)
	record(e.do("POST", mfaPath, tok, map[string]any{"type": "Totp", "secret": first, "code": wrong}, vidHeader, vid))
	code := totpCode(t, first)
	secrets["first code"] = code
	mustStatus(t, record(e.do("POST", mfaPath, tok, map[string]any{"type": "Totp", "secret": first, "code": code}, vidHeader, vid)), http.StatusNoContent)
	codes := e.do("POST", mfaPath+"/backup-codes/generate", tok, nil).json(t)["codes"].([]any)
	list := make([]string, len(codes))
	for i, c := range codes {
		list[i] = c.(string)
		secrets[fmt.Sprintf("backup code %d", i)] = list[i]
	}
	mustStatus(t, record(e.do("POST", mfaPath, tok, map[string]any{"type": "BackupCode", "codes": list}, vidHeader, vid)), http.StatusNoContent)
	record(e.do("POST", mfaPath, tok, map[string]any{"type": "BackupCode", "codes": list}, vidHeader, vid)) // 422: in use
	// A replacement whose add fails after the old TOTP was removed: the module logs an error.
	next := e.newSecret(tok)
	secrets["replacement secret"] = next
	nextCode := totpCode(t, next)
	secrets["replacement code"] = nextCode
	failOn(proxy, "POST", "/mfa-verifications")
	record(e.do("PUT", mfaPath+"/totp", tok, map[string]any{"secret": next, "code": nextCode}, vidHeader, vid))
	proxy.set("pass")
	// Malformed bodies holding a secret.
	record(e.do("PUT", mfaPath+"/totp", tok, `{"secret":"`+next+`","code":`, vidHeader, vid))
	record(e.do("POST", mfaPath, tok, map[string]any{"type": "Totp", "secret": next + "!", "code": 1}, vidHeader, vid))

	logs := e.caddy.Logs()
	if !strings.Contains(logs, "TOTP replacement") {
		t.Fatalf("the failed replacement was not logged: the scan would prove less than it says\n%s", logs)
	}
	keys, values := redisContents(t, rs.Addr())
	places := map[string]string{
		"logs":         logs,
		"error bodies": strings.Join(errorBodies, "\n"),
		"Redis keys":   strings.Join(keys, "\n"),
		"Redis values": strings.Join(values, "\n"),
	}
	for where, text := range places {
		for what, secret := range secrets {
			if strings.Contains(text, secret) {
				t.Errorf("%s found in %s", what, where)
			}
		}
	}
	t.Logf("scanned %d log bytes, %d error bodies, %d Redis keys for %d MFA secrets", len(logs), len(errorBodies), len(keys), len(secrets))
}

// A password-guess burst over two instances, rotating addresses, with Redis killed and one
// instance reloaded in the middle: each instance keeps counting in process from where Redis
// left it, so at most one sentinel budget per instance reaches the core, and the user ends up
// locked on both.
func TestPasswordBurstThroughRedisDeathAndReload(t *testing.T) {
	rs := harness.StartRedis(t)
	opts := options{redis: rs.Addr(), redisTimeout: "2s"}
	e := newEnv(t, opts)
	second := e.startCaddy(opts)
	bases := []string{e.caddy.URL(), second.URL()}
	e.setSentinel(5, 10)
	tok := e.userToken(allScopes)
	e.core.Core.SetManagementDelay(30 * time.Millisecond)
	defer e.core.Core.SetManagementDelay(0)
	config := e.caddyfile(e.caddy.Ports(), opts)
	const guesses = 120
	var reloadErr error
	var answered atomic.Int64
	// waitFor holds a fault back until n answers are in (5s at most): mid-burst, not before it.
	waitFor := func(n int64) {
		for deadline := time.Now().Add(5 * time.Second); answered.Load() < n && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
	}
	before := e.passwordChecks()
	answers := burst(guesses, func(i int) answer {
		switch i {
		case 30:
			waitFor(10)
			rs.Stop()
		case 60:
			waitFor(40)
			reloadErr = e.caddy.TryReload(config)
		}
		defer answered.Add(1)
		return send(fromAddress(150+i%20), "POST", bases[i%2]+"/api/verifications/password", tok,
			map[string]string{"password": fmt.Sprintf("guess-%d", i)})
	})
	if reloadErr != nil {
		t.Fatalf("reload mid-burst: %v", reloadErr)
	}
	checked := e.passwordChecks() - before
	counts := tally(answers)
	t.Logf("%d guesses over 2 instances, Redis killed and a reload mid-burst: %d reached the core; answers %s",
		guesses, checked, describe(counts))
	if checked > 2*5 {
		t.Fatalf("%d guesses reached the core, want at most 10 (5 per instance once Redis is gone)", checked)
	}
	if counts["422 session.invalid_credentials"]+counts["400 "+blocked] != guesses {
		t.Fatalf("answers %s: want only invalid_credentials and blocked (no 5xx that tells anything apart)", describe(counts))
	}
	for _, base := range bases {
		right := send(fromAddress(199), "POST", base+"/api/verifications/password", tok, map[string]string{"password": devcore.DemoPassword})
		if right.status != http.StatusBadRequest || right.code != blocked {
			t.Fatalf("the right password after the burst on %s: %s %s", base, right, right.body)
		}
	}
}

// Once one mailbox (or line) has had its 10 codes, spellings that reach the same mailbox (or
// line) are refused too, or not accepted as addresses at all.
func TestCodeSendRecipientSpellings(t *testing.T) {
	e := newEnv(t, options{extra: "rate_limits {\n code_send_per_user 1000 10m\n code_send_per_ip 1000 10m\n }"})
	tok := e.token(devcore.MintRequest{UserID: devcore.OtherUserID, Scope: allScopes})
	sendTo := func(typ, value string) answer {
		return send(e.client, "POST", e.caddy.URL()+"/api/verifications/verification-code", tok, codeBody(typ, value))
	}
	for i := range 10 {
		if a := sendTo("email", "victim@example.com"); a.status != http.StatusCreated {
			t.Fatalf("send %d: %s %s", i, a, a.body)
		}
		if a := sendTo("phone", "16148940000"); a.status != http.StatusCreated {
			t.Fatalf("phone send %d: %s %s", i, a, a.body)
		}
	}
	spellings := []struct{ typ, value string }{
		{"email", "VICTIM@example.com"}, {"email", "victim+x@example.com"}, {"email", "victim@EXAMPLE.COM"},
		{"email", "victim@example.com."}, {"email", " victim@example.com"}, {"email", "victim@example.com "},
		{"email", `"victim"@example.com`}, {"email", `"Victim+x"@Example.com.`},
		{"phone", "+16148940000"}, {"phone", "1 614 894 0000"}, {"phone", "1-614-894-0000"}, {"phone", "0016148940000"},
		{"phone", "(1)6148940000"}, {"phone", "16148940000 "},
	}
	var leaks []string
	for _, s := range spellings {
		a := sendTo(s.typ, s.value)
		t.Logf("%s %q after the cap: %s", s.typ, s.value, a)
		if a.status == http.StatusCreated {
			leaks = append(leaks, s.value)
		}
	}
	if len(leaks) > 0 {
		t.Errorf("spellings of a capped recipient that still get a code: %q", leaks)
	}
}

// Behind a trusted proxy, an IPv6 client owns a whole /64 (one subscriber's network) and can
// leave from any of its 2^64 addresses: the per-address limits count the /64, not the address.
func TestPerAddressLimitsCountIPv6Networks(t *testing.T) {
	e := newEnv(t, options{
		global: "\tservers {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t}\n",
		extra:  "rate_limits {\n token_failures_per_ip 5 1m\n }",
	})
	before := e.stats().Introspections
	answers := burst(40, func(i int) answer {
		return send(e.client, "GET", e.caddy.URL()+"/api/my-account", fmt.Sprintf("random-%d-%d", i, time.Now().UnixNano()), nil,
			"X-Forwarded-For", fmt.Sprintf("2001:db8:1:2:%x::%x", i, i+1))
	})
	introspections := e.stats().Introspections - before
	t.Logf("40 random tokens from 40 addresses of one IPv6 /64: %d introspections; %s", introspections, describe(tally(answers)))
	if introspections > 5 {
		t.Fatalf("%d introspections from one /64, want at most 5", introspections)
	}
	// Another /64 has its own budget; an IPv4 address is counted whole.
	for _, from := range []string{"2001:db8:1:3::1", "192.0.2.7"} {
		if a := send(e.client, "GET", e.caddy.URL()+"/api/my-account", e.userToken(allScopes), nil, "X-Forwarded-For", from); a.status != http.StatusOK {
			t.Fatalf("a valid token from %s: %s %s", from, a, a.body)
		}
	}
}

// TestCodeSentinelIsPerRecipient pins a residual the README documents (Limits table; review of
// issue 9, item 1): as Logto's own sentinel, the code sentinel counts wrong codes per recipient
// over all users, so another account that sends codes to the victim's address and guesses
// wrong locks the victim's code checks for that address for lockoutDuration (the per-user send
// caps bound how fast). Should the edge ever key it differently, this test says so.
func TestCodeSentinelIsPerRecipient(t *testing.T) {
	e := newEnv(t, options{})
	e.setSentinel(5, 60)
	attacker := e.token(devcore.MintRequest{UserID: devcore.OtherUserID, Scope: allScopes})
	rec := e.sendCode(attacker, "email", devcore.DemoEmail)
	for i := range 5 {
		a := send(e.client, "POST", e.caddy.URL()+"/api/verifications/verification-code/verify", attacker,
			verifyBody("email", devcore.DemoEmail, rec, fmt.Sprintf("%06d", 900000+i)))
		t.Logf("attacker's wrong code %d: %s", i, a)
	}
	victim := e.userToken(allScopes)
	own := e.sendCode(victim, "email", devcore.DemoEmail)
	a := send(e.client, "POST", e.caddy.URL()+"/api/verifications/verification-code/verify", victim,
		verifyBody("email", devcore.DemoEmail, own, e.lastCode(devcore.DemoEmail)))
	t.Logf("the victim's right code to their own address: %s", a)
	if a.status != http.StatusBadRequest || a.code != "session.verification_blocked_too_many_attempts" {
		t.Errorf("the recipient's code checks after another account's 5 wrong codes: %s %s, want the documented lockout", a, a.body)
	}
}
