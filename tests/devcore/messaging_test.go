package devcore

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"
)

func loadStepupSamples(t *testing.T) map[string]exchange {
	t.Helper()
	byTitle := map[string]exchange{}
	for _, e := range loadSamplesFile(t, "logto-samples-stepup.json") {
		byTitle[e.Title] = e
	}
	return byTitle
}

// TestMessagingAndSocialMatchRecordedExchanges replays the Management API exchanges of the
// step-up recording: verification codes (127-137, 169-170), connectors (154-156) and social
// linking (157-161), comparing statuses and error bodies.
func TestMessagingAndSocialMatchRecordedExchanges(t *testing.T) {
	ex := loadStepupSamples(t)
	tc := newTestCore(t)
	tok := tc.m2mToken()
	check := func(title string, got response) {
		t.Helper()
		want, ok := ex[title]
		if !ok {
			t.Fatalf("no sample %q", title)
		}
		if got.status != want.Response.Status {
			t.Errorf("%s: status %d, want %d: %s", title, got.status, want.Response.Status, got.body)
			return
		}
		if got.status >= 400 && compact(t, got.body) != compact(t, want.Response.Body) {
			t.Errorf("%s:\n got %s\nwant %s", title, got.body, compact(t, want.Response.Body))
		}
	}
	code := func(to string) string {
		c, ok := tc.core.LastCode(to)
		if !ok {
			t.Fatalf("nothing sent to %s", to)
		}
		return c
	}
	for _, kind := range []struct{ key, to, suffix string }{{"email", "m@example.com", "email"}, {"phone", "61490919420", "phone"}} {
		check("Management: send verification code ("+kind.suffix+")", tc.do("POST", "/api/verification-codes", tok, map[string]string{kind.key: kind.to}))
		wrong := "000000"
		if code(kind.to) == wrong {
			wrong = "111111"
		}
		check("Management: verify code ("+kind.suffix+"), wrong code",
			tc.do("POST", "/api/verification-codes/verify", tok, map[string]string{kind.key: kind.to, "verificationCode": wrong}))
		right := code(kind.to)
		check("Management: verify code ("+kind.suffix+"), right code",
			tc.do("POST", "/api/verification-codes/verify", tok, map[string]string{kind.key: kind.to, "verificationCode": right}))
		check("Management: verify code ("+kind.suffix+"), right code again (already consumed)",
			tc.do("POST", "/api/verification-codes/verify", tok, map[string]string{kind.key: kind.to, "verificationCode": right}))
	}
	check("Management: send verification code with both email and phone",
		tc.do("POST", "/api/verification-codes", tok, map[string]string{"email": "m@example.com", "phone": "61490919420"}))
	check("Management: send verification code to a phone with + and spaces",
		tc.do("POST", "/api/verification-codes", tok, map[string]string{"phone": "+61 434-403-459"}))
	check("Management: verify code for an address that was never sent one",
		tc.do("POST", "/api/verification-codes/verify", tok, map[string]string{"email": "never@example.com", "verificationCode": "123456"}))

	// A new code replaces the live one; ten tries at most.
	tc.do("POST", "/api/verification-codes", tok, map[string]string{"email": "t@example.com"})
	first := code("t@example.com")
	tc.do("POST", "/api/verification-codes", tok, map[string]string{"email": "t@example.com"})
	if second := code("t@example.com"); second != first {
		if r := tc.do("POST", "/api/verification-codes/verify", tok, map[string]string{"email": "t@example.com", "verificationCode": first}); r.status != 400 {
			t.Errorf("a replaced code still works: %d", r.status)
		}
	}
	for i := 0; i < 10; i++ {
		tc.do("POST", "/api/verification-codes/verify", tok, map[string]string{"email": "t@example.com", "verificationCode": "x"})
	}
	if r := tc.do("POST", "/api/verification-codes/verify", tok, map[string]string{"email": "t@example.com", "verificationCode": code("t@example.com")}); !strings.Contains(string(r.body), "exceed_max_try") {
		t.Errorf("11th try: %d %s", r.status, r.body)
	}

	// The message rate limit: the 11th message to a recipient in 10 minutes (its leading-zero
	// phone form counts as the same recipient).
	for i := 0; i < 10; i++ {
		if r := tc.do("POST", "/api/verification-codes", tok, map[string]string{"phone": "61489409039"}); r.status != 204 {
			t.Fatalf("send %d: %d", i+1, r.status)
		}
	}
	check("Management: send verification code to the same phone, attempt #12 (refused)",
		tc.do("POST", "/api/verification-codes", tok, map[string]string{"phone": "610489409039"}))

	// Connectors.
	r := tc.do("POST", "/api/connectors/"+MockSocialConnectorID+"/authorization-uri", tok,
		map[string]string{"state": "fake_state", "redirectUri": "http://localhost:3000/redirect"})
	check("Management: connector authorization URI (mock social)", r)
	if compact(t, r.body) != compact(t, ex["Management: connector authorization URI (mock social)"].Response.Body) {
		t.Errorf("authorization URI %s", r.body)
	}
	check("Management: connector authorization URI by factory id (not the instance id)",
		tc.do("POST", "/api/connectors/mock-social-connector/authorization-uri", tok, map[string]string{"state": "s", "redirectUri": "r"}))
	if r := tc.do("GET", "/api/connectors", tok, nil); r.status != 200 || !strings.Contains(string(r.body), `"target":"mock-social"`) {
		t.Errorf("connectors: %d %s", r.status, r.body)
	}

	// Linking.
	link := func(user string, data any) response {
		return tc.do("POST", "/api/users/"+user+"/identities", tok, map[string]any{"connectorId": MockSocialConnectorID, "connectorData": data})
	}
	r = link(DemoUserID, map[string]string{"code": "fake_code", "userId": "mock-social-sub-98cb1b-m"})
	check("Management: link social identity with connectorData", r)
	if want := compact(t, ex["Management: link social identity with connectorData"].Response.Body); compact(t, r.body) != want {
		t.Errorf("linked identities %s, want %s", r.body, want)
	}
	check("Management: link the same social identity to another user", link(OtherUserID, map[string]string{"code": "fake_code", "userId": "mock-social-sub-98cb1b-m"}))
	check("Management: link again to the same user (target already linked)", link(DemoUserID, map[string]string{"code": "fake_code", "userId": "mock-social-sub-98cb1b-m2"}))
	check("Management: link with connectorData the connector rejects", link(DemoUserID, map[string]int{"nope": 1}))
	check("Management: link with an unknown connector",
		tc.do("POST", "/api/users/"+DemoUserID+"/identities", tok, map[string]any{"connectorId": "no-such-connector", "connectorData": map[string]string{"code": "fake_code"}}))
}

// TestMessagingResponsesMatchOpenAPI validates the new routes' answers against Logto's
// Management API document.
func TestMessagingResponsesMatchOpenAPI(t *testing.T) {
	router := managementRouter(t)
	tc := newTestCore(t)
	tok := tc.m2mToken()
	for _, c := range []struct {
		method, path string
		body         any
		status       int
	}{
		{"POST", "/api/verification-codes", map[string]string{"email": "o@example.com"}, 204},
		{"POST", "/api/verification-codes/verify", map[string]string{"email": "o@example.com", "verificationCode": "x"}, 400},
		{"GET", "/api/connectors/" + MockSocialConnectorID, nil, 200},
		{"GET", "/api/connectors/nope", nil, 404},
		{"POST", "/api/connectors/" + MockSocialConnectorID + "/authorization-uri", map[string]string{"state": "s", "redirectUri": "http://r.example"}, 200},
		{"POST", "/api/users/" + DemoUserID + "/identities", map[string]any{"connectorId": MockSocialConnectorID, "connectorData": map[string]string{"code": "c"}}, 200},
	} {
		req := tc.request(c.method, c.path, tok, c.body)
		resp := tc.send(req)
		if resp.status != c.status {
			t.Errorf("%s %s: %d, want %d: %s", c.method, c.path, resp.status, c.status, resp.body)
			continue
		}
		route, params, err := router.FindRoute(req)
		if err != nil {
			t.Errorf("%s %s: not in the document: %v", c.method, c.path, err)
			continue
		}
		input := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
			Status:                 resp.status, Header: resp.header, Body: io.NopCloser(bytes.NewReader(resp.body)),
			Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
		}
		if err := openapi3filter.ValidateResponse(context.Background(), input); err != nil {
			t.Errorf("%s %s -> %d does not match the document: %v\n%s", c.method, c.path, resp.status, err, resp.body)
		}
	}
}
