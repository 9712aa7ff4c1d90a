package tests

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/accountedge/caddy-account-api/tests/devcore"
	"github.com/accountedge/caddy-account-api/tests/harness"
)

// TestRevokedTokenRefusedEverywhere: a token cached by two instances is revoked at the core.
// After the user's credentials change through one instance, or after a Logto webhook about the
// user reaches one instance, both instances refuse the token within a second.
func TestRevokedTokenRefusedEverywhere(t *testing.T) {
	for _, trigger := range []string{"webhook", "password change"} {
		t.Run(trigger, func(t *testing.T) {
			rs := harness.StartRedis(t)
			opts := options{redis: rs.Addr(), extra: "webhook /hooks/logto {\n\t\t\tsigning_key " + webhookKey + "\n\t\t}"}
			e := newEnv(t, opts)
			instances := []string{e.caddy.URL(), e.startCaddy(opts).URL()}
			victim := e.userToken(allScopes)
			for _, base := range instances {
				if r := e.call(base, "GET", "/api/my-account", victim, nil); r.status != 200 {
					t.Fatalf("%d %s", r.status, r.body)
				}
			}
			e.coreJSON("POST", "/dev/tokens/revoke", map[string]string{"token": victim}, nil)
			// Still cached: without a signal the edge keeps serving it until token_cache_ttl.
			if r := e.call(instances[1], "GET", "/api/my-account", victim, nil); r.status != 200 {
				t.Fatalf("the cached answer should still serve before any signal: %d", r.status)
			}

			start := time.Now()
			switch trigger {
			case "webhook":
				body := `{"event":"User.Data.Updated","createdAt":"` + createdAt(0) + `","params":{"userId":"` + devcore.DemoUserID + `"},"data":{"id":"` + devcore.DemoUserID + `"}}`
				if r := e.deliver(instances[0], webhookKey, body); r.status != http.StatusNoContent {
					t.Fatalf("webhook: %d %s", r.status, r.body)
				}
			case "password change":
				other := e.userToken(allScopes) // the user's session on another device
				vid := e.call(instances[1], "POST", "/api/verifications/password", other,
					map[string]any{"password": devcore.DemoPassword}).json(t)["verificationRecordId"].(string)
				r := e.call(instances[1], "POST", "/api/my-account/password", other,
					map[string]any{"password": "An0ther-Str0ng-Secret!"}, "logto-verification-id", vid)
				if r.status != http.StatusNoContent {
					t.Fatalf("password change: %d %s", r.status, r.body)
				}
			}
			for i, base := range instances {
				for {
					r := e.call(base, "GET", "/api/my-account", victim, nil)
					if r.status == http.StatusUnauthorized {
						t.Logf("instance %d refuses the revoked token %v after the %s", i+1, time.Since(start).Round(time.Millisecond), trigger)
						break
					}
					if time.Since(start) > time.Second {
						t.Fatalf("instance %d still accepts the revoked token 1s after the %s (%d)", i+1, trigger, r.status)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
}

// twoInstances starts two Caddy instances sharing one Redis, with a webhook endpoint.
func twoInstances(t *testing.T) (*env, []string, *harness.Redis) {
	t.Helper()
	rs := harness.StartRedis(t)
	opts := options{redis: rs.Addr(), extra: "webhook /hooks/logto {\n\t\t\tsigning_key " + webhookKey + "\n\t\t}"}
	e := newEnv(t, opts)
	return e, []string{e.caddy.URL(), e.startCaddy(opts).URL()}, rs
}

// refusedWithin polls base until the token is refused (401) or the bound passes.
func (e *env) refusedWithin(base, token string, bound time.Duration) time.Duration {
	e.t.Helper()
	start := time.Now()
	for {
		r := e.call(base, "GET", "/api/my-account", token, nil)
		if r.status == http.StatusUnauthorized {
			return time.Since(start)
		}
		if time.Since(start) > bound {
			e.t.Fatalf("%s still answers %d to a revoked token after %v", base, r.status, bound)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWritesAskTheCoreAgain: a token revoked at the core, while both instances cache it as
// active, is refused at once by every write route, and the instance that learned it tells the
// other: both refuse it on reads within a second.
func TestWritesAskTheCoreAgain(t *testing.T) {
	e, instances, _ := twoInstances(t)
	valid := e.userToken(allScopes)
	var writes [][2]string
	for _, rt := range e.registeredRoutes(valid) {
		if rt[0] != http.MethodGet {
			writes = append(writes, rt)
		}
	}
	if len(writes) < 14 {
		t.Fatalf("only %d write routes found: %v", len(writes), writes)
	}
	for _, rt := range writes {
		victim := e.userToken(allScopes)
		for _, base := range instances {
			if r := e.call(base, "GET", "/api/my-account", victim, nil); r.status != 200 {
				t.Fatalf("%d %s", r.status, r.body)
			}
		}
		e.coreJSON("POST", "/dev/tokens/revoke", map[string]string{"token": victim}, nil)
		r := e.call(instances[0], rt[0], rt[1], victim, map[string]any{})
		if r.status != http.StatusUnauthorized {
			t.Fatalf("%s %s with a token revoked at the core: %d %s", rt[0], rt[1], r.status, r.body)
		}
		for i, base := range instances {
			took := e.refusedWithin(base, victim, time.Second)
			if rt == writes[0] {
				t.Logf("instance %d refuses reads %v after the refused write", i+1, took.Round(time.Millisecond))
			}
		}
	}
}

// TestRevocationThroughTheSite: POST /oidc/token/revocation passing through one instance drops
// the cached answer at once there and within a second on the other.
func TestRevocationThroughTheSite(t *testing.T) {
	e, instances, _ := twoInstances(t)
	victim, other := e.userToken(allScopes), e.userToken(allScopes)
	for _, base := range instances {
		for _, tok := range []string{victim, other} {
			if r := e.call(base, "GET", "/api/my-account", tok, nil); r.status != 200 {
				t.Fatalf("%d %s", r.status, r.body)
			}
		}
	}
	form := url.Values{"client_id": {devcore.DemoAppID}, "token": {victim}, "token_type_hint": {"access_token"}}
	r := e.call(instances[0], "POST", "/oidc/token/revocation", "", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	if r.status != http.StatusOK {
		t.Fatalf("revocation through the site: %d %s", r.status, r.body)
	}
	if r := e.call(instances[0], "GET", "/api/my-account", victim, nil); r.status != http.StatusUnauthorized {
		t.Fatalf("the revoking instance still reads with the revoked token: %d", r.status)
	}
	t.Logf("the other instance refuses it after %v", e.refusedWithin(instances[1], victim, time.Second).Round(time.Millisecond))
	// Only that token: the user's other session stays cached.
	before := e.stats().Introspections
	for _, base := range instances {
		if r := e.call(base, "GET", "/api/my-account", other, nil); r.status != 200 {
			t.Fatalf("the user's other token: %d", r.status)
		}
	}
	if n := e.stats().Introspections - before; n != 0 {
		t.Fatalf("the other token was introspected again (%d)", n)
	}
}

// TestInFlightIntrospectionOvertakenByRevocation holds an introspection open (the core read the
// token as active, and answers later) across a credentials change: the answer must not be
// cached on either level once the change is known.
func TestInFlightIntrospectionOvertakenByRevocation(t *testing.T) {
	e, instances, _ := twoInstances(t)
	victim := e.userToken(allScopes)
	e.core.Core.SetIntrospectionLag(1500 * time.Millisecond)
	done := make(chan reply, 1)
	go func() { done <- e.call(instances[0], "GET", "/api/my-account", victim, nil) }()
	time.Sleep(500 * time.Millisecond) // the core has read the token as active
	e.coreJSON("POST", "/dev/tokens/revoke", map[string]string{"token": victim}, nil)
	body := `{"event":"User.SuspensionStatus.Updated","createdAt":"` + createdAt(0) + `","params":{"userId":"` + devcore.DemoUserID + `"},"data":{"id":"` + devcore.DemoUserID + `"}}`
	if r := e.deliver(instances[1], webhookKey, body); r.status != http.StatusNoContent {
		t.Fatalf("webhook: %d %s", r.status, r.body)
	}
	first := <-done
	e.core.Core.SetIntrospectionLag(0)
	t.Logf("the request in flight got %d", first.status)
	for i, base := range instances {
		if r := e.call(base, "GET", "/api/my-account", victim, nil); r.status != http.StatusUnauthorized {
			t.Fatalf("instance %d cached the answer loaded before the revocation: %d", i+1, r.status)
		}
	}
}

// TestWebhookUnrecordedIsRedelivered: while Redis cannot record a revocation the webhook answers
// 5xx (Logto delivers again); after Redis is back the redelivery puts it in force.
func TestWebhookUnrecordedIsRedelivered(t *testing.T) {
	e, instances, rs := twoInstances(t)
	victim := e.userToken(allScopes)
	if r := e.call(instances[0], "GET", "/api/my-account", victim, nil); r.status != 200 {
		t.Fatalf("%d", r.status)
	}
	e.coreJSON("POST", "/dev/tokens/revoke", map[string]string{"token": victim}, nil)
	body := `{"event":"User.Data.Updated","createdAt":"` + createdAt(0) + `","params":{"userId":"` + devcore.DemoUserID + `"},"data":{"id":"` + devcore.DemoUserID + `"}}`
	rs.Stop()
	if r := e.deliver(instances[1], webhookKey, body); r.status < 500 {
		t.Fatalf("a revocation Redis could not record was acknowledged: %d", r.status)
	}
	rs.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := e.deliver(instances[1], webhookKey, body)
		if r.status == http.StatusNoContent {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("redelivery after Redis came back: %d %s", r.status, r.body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.refusedWithin(instances[1], victim, time.Second)
	// The other instance's subscription to the bus went down with Redis: the event published
	// while it reconnects is lost, and its resubscription drops every in-process answer.
	t.Logf("the other instance refuses it %v after the redelivery", e.refusedWithin(instances[0], victim, 10*time.Second).Round(time.Millisecond))
}

// TestSignOutThroughTheSite: an RP-initiated logout passing through one instance, whose
// id_token_hint names the user, drops that user's cached answers on both instances; a hint the
// core refuses changes nothing.
func TestSignOutThroughTheSite(t *testing.T) {
	e, instances, _ := twoInstances(t)
	var minted devcore.MintResponse
	// Signed in to the account page's application, whose post-logout URI is registered.
	e.coreJSON("POST", "/dev/tokens", devcore.MintRequest{UserID: devcore.DemoUserID, Scope: allScopes, ClientID: devcore.AccountPageAppID}, &minted)
	for _, base := range instances {
		if r := e.call(base, "GET", "/api/my-account", minted.AccessToken, nil); r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
	}
	// A forged hint (any payload, no valid signature): the core refuses, nothing is evicted.
	before := e.stats().Introspections
	forged := "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJkZW1vdXNlcjAwMDEifQ.x"
	if r := e.call(instances[0], "GET", "/oidc/session/end?id_token_hint="+forged, "", nil); r.status != http.StatusBadRequest {
		t.Fatalf("forged hint: %d", r.status)
	}
	e.call(instances[0], "GET", "/api/my-account", minted.AccessToken, nil)
	if n := e.stats().Introspections - before; n != 0 {
		t.Fatal("a sign-out the core refused evicted the user's answers")
	}

	q := url.Values{"id_token_hint": {minted.IDToken}, "post_logout_redirect_uri": {devcore.DefaultAccountPageURLs[0]}}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(instances[0] + "/oidc/session/end?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", resp.StatusCode)
	}
	if r := e.call(instances[0], "GET", "/api/my-account", minted.AccessToken, nil); r.status != http.StatusUnauthorized {
		t.Fatalf("the signing-out instance still reads with the ended session's token: %d", r.status)
	}
	t.Logf("the other instance refuses it after %v", e.refusedWithin(instances[1], minted.AccessToken, time.Second).Round(time.Millisecond))
}

// TestSignOutWithABrowserSession: a browser signed in at the core gets the core's confirmation
// form first and its session (and tokens) end only at the confirmation, which names no user.
// A read between the two steps caches the token again; the confirmation still evicts it on
// every instance, even when it reaches the other one.
func TestSignOutWithABrowserSession(t *testing.T) {
	e, instances, _ := twoInstances(t)
	for i, confirmAt := range instances {
		b := newSiteBrowser(t, instances[0])
		tokens := b.signIn(devcore.DemoUsername, devcore.DemoPassword)
		access, idToken := tokens["access_token"].(string), tokens["id_token"].(string)
		q := url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {devcore.DefaultAccountPageURLs[0]}}
		status, _, page := b.Send(http.MethodGet, "/oidc/session/end?"+q.Encode(), nil)
		xsrf := regexp.MustCompile(`name="xsrf" value="([^"]+)"`).FindStringSubmatch(page)
		if status != http.StatusOK || xsrf == nil {
			t.Fatalf("end session: %d %s", status, page)
		}
		// Between the two steps the session lives: reads cache the token on both instances.
		for _, base := range instances {
			if r := e.call(base, "GET", "/api/my-account", access, nil); r.status != http.StatusOK {
				t.Fatalf("before the confirmation: %d %s", r.status, r.body)
			}
		}
		b.Base = confirmAt
		form := url.Values{"xsrf": {xsrf[1]}, "logout": {"yes"}, "client_id": {devcore.AccountPageAppID},
			"post_logout_redirect_uri": q["post_logout_redirect_uri"]}
		if status, _, _ := b.Send(http.MethodPost, "/oidc/session/end/confirm", form); status != http.StatusSeeOther {
			t.Fatalf("confirm: %d", status)
		}
		if r := e.call(confirmAt, "GET", "/api/my-account", access, nil); r.status != http.StatusUnauthorized {
			t.Fatalf("confirmed on instance %d: it still reads with the ended session's token: %d", i+1, r.status)
		}
		other := instances[1-i]
		t.Logf("confirmed on instance %d: the other refuses the token after %v", i+1,
			e.refusedWithin(other, access, time.Second).Round(time.Millisecond))
	}
}

// TestSignOutMemoryIsBounded: a sign-out is remembered only when the core shows a confirmation
// (a session exists), for 10 minutes at most 20 times per user and address however many
// sessions are opened, past that for 30s; and a POST's hint is read where the core reads it: a
// forged hint in its query evicts no one.
func TestSignOutMemoryIsBounded(t *testing.T) {
	e, instances, rs := twoInstances(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { rdb.Close() })
	remembered := func() int {
		keys, err := rdb.Keys(context.Background(), "*signout:*").Result()
		if err != nil {
			t.Fatal(err)
		}
		return len(keys)
	}
	// Without a browser session the core ends the session at once: nothing to remember.
	var minted devcore.MintResponse
	e.coreJSON("POST", "/dev/tokens", devcore.MintRequest{UserID: devcore.DemoUserID, Scope: allScopes, ClientID: devcore.AccountPageAppID}, &minted)
	noSession := newSiteBrowser(t, instances[0])
	noSession.Send(http.MethodGet, "/oidc/session/end?"+url.Values{"id_token_hint": {minted.IDToken}}.Encode(), nil)
	if n := remembered(); n != 0 {
		t.Fatalf("a sign-out without a session was remembered (%d)", n)
	}
	for i := range 25 {
		b := newSiteBrowser(t, instances[i%2])
		tokens := b.signIn(devcore.DemoUsername, devcore.DemoPassword)
		q := url.Values{"id_token_hint": {tokens["id_token"].(string)}}
		if status, _, _ := b.Send(http.MethodGet, "/oidc/session/end?"+q.Encode(), nil); status != http.StatusOK {
			t.Fatalf("sign-out %d: %d", i, status)
		}
	}
	// Past the bound (20 per user and address) a sign-out is remembered for 30s only.
	long, short := 0, 0
	keys, _ := rdb.Keys(context.Background(), "*signout:*").Result()
	for _, k := range keys {
		if ttl := rdb.PTTL(context.Background(), k).Val(); ttl > time.Minute {
			long++
		} else if ttl > 0 && ttl <= 30*time.Second {
			short++
		}
	}
	if long != 20 || short != 5 {
		t.Fatalf("25 sign-outs of one user from one address: %d remembered for 10 minutes and %d for 30s, want 20 and 5", long, short)
	}
	// The user, from another address, has their own 20.
	own := newSiteBrowser(t, instances[0])
	own.From(7)
	q := url.Values{"id_token_hint": {own.signIn(devcore.DemoUsername, devcore.DemoPassword)["id_token"].(string)}}
	own.Send(http.MethodGet, "/oidc/session/end?"+q.Encode(), nil)
	if n := remembered(); n != 26 {
		t.Fatalf("%d sign-outs remembered, want 26", n)
	}
	keys, _ = rdb.Keys(context.Background(), "*signout:*").Result()
	long = 0
	for _, k := range keys {
		if rdb.PTTL(context.Background(), k).Val() > time.Minute {
			long++
		}
	}
	if long != 21 {
		t.Fatalf("a sign-out from another address was not remembered for 10 minutes (%d long-lived)", long)
	}

	// The victim's answer is cached; the attacker POSTs their own valid hint in the form and a
	// forged one naming the victim in the query.
	victim := e.token(devcore.MintRequest{UserID: devcore.OtherUserID, Scope: allScopes})
	if r := e.call(instances[0], "GET", "/api/my-account", victim, nil); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	forged := "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"`+devcore.OtherUserID+`"}`)) + ".x"
	attacker := newSiteBrowser(t, instances[0])
	valid := attacker.signIn(devcore.DemoUsername, devcore.DemoPassword)["id_token"].(string)
	before := e.stats().Introspections
	attacker.Send(http.MethodPost, "/oidc/session/end?id_token_hint="+forged, url.Values{"id_token_hint": {valid}})
	e.call(instances[0], "GET", "/api/my-account", victim, nil)
	if n := e.stats().Introspections - before; n != 0 {
		t.Fatal("a forged hint in a POST's query evicted the user it names")
	}
}

// siteBrowser signs in at the core through the site as the account page's browser does.
type siteBrowser struct {
	*harness.Browser
	t *testing.T
}

func newSiteBrowser(t *testing.T, base string) *siteBrowser {
	return &siteBrowser{harness.NewBrowser(t, base), t}
}

// signIn runs the authorization code flow with PKCE for the account page's application and
// returns the token response.
func (b *siteBrowser) signIn(identifier, password string) map[string]any {
	b.t.Helper()
	const verifier = "a-code-verifier-of-at-least-forty-three-characters"
	sum := sha256.Sum256([]byte(verifier))
	callback := devcore.DefaultAccountPageURLs[0] + "/callback"
	q := url.Values{"client_id": {devcore.AccountPageAppID}, "redirect_uri": {callback}, "response_type": {"code"},
		"scope": {"openid profile email"}, "state": {"st4te"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	status, _, page := b.Send(http.MethodGet, "/oidc/auth?"+q.Encode(), nil)
	action := regexp.MustCompile(`action="(/oidc/auth/[^"]+)"`).FindStringSubmatch(page)
	if status != http.StatusOK || action == nil {
		b.t.Fatalf("authorize: %d %s", status, page)
	}
	status, header, page := b.Send(http.MethodPost, action[1], url.Values{"identifier": {identifier}, "password": {password}})
	loc, err := url.Parse(header.Get("Location"))
	if status != http.StatusSeeOther || err != nil || loc.Query().Get("code") == "" {
		b.t.Fatalf("sign-in: %d %q %s", status, header.Get("Location"), page)
	}
	status, _, body := b.Send(http.MethodPost, "/oidc/token", url.Values{"grant_type": {"authorization_code"},
		"client_id": {devcore.AccountPageAppID}, "code": {loc.Query().Get("code")}, "redirect_uri": {callback},
		"code_verifier": {verifier}})
	var tokens map[string]any
	if status != http.StatusOK || json.Unmarshal([]byte(body), &tokens) != nil || tokens["id_token"] == nil {
		b.t.Fatalf("token: %d %s", status, body)
	}
	return tokens
}
