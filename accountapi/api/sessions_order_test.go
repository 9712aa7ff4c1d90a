package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/accountedge/caddy-account-api/accountapi/accountcenter"
	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
)

const sessionsScopeName = "urn:logto:scope:sessions"

func badQuery(query string) refusal {
	return refusal{"bad query " + query, func(_ *bench, req *request) { req.path += "?" + query },
		http.StatusBadRequest, "guard.invalid_input"}
}

// avatarBody is a multipart body with one part.
func avatarBody(field, filename string, content []byte) (body, contentType string) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	w, _ := mw.CreateFormFile(field, filename)
	_, _ = w.Write(content)
	_ = mw.Close()
	return b.String(), mw.FormDataContentType()
}

// tinyGIF is a valid GIF: signature and trailer are what the sniffer checks.
var tinyGIF = []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;")

func setAvatar(req *request, field, filename string, content []byte) {
	body, ct := avatarBody(field, filename, content)
	req.body = body
	if req.header == nil {
		req.header = map[string]string{}
	}
	req.header["Content-Type"] = ct
}

// sessionOrderCases are the check orders of the sessions, grants and avatar routes (reference
// §3.3 N27–N30, N33) and of the routes answered with 501.
func sessionOrderCases() []orderCase {
	sessions := func(b *bench) {
		b.core.sessions = append(b.core.sessions, fakeSession{user: benchUser, uid: "s1", sids: map[string]string{"app1": "sid1"}})
		b.core.grants = append(b.core.grants, fakeGrant{user: benchUser, id: "g1", clientID: "app1"})
	}
	read := func(b *bench, req *request) {
		sessions(b)
		grant(b, sessionsScopeName)
		b.settings.Fields["session"] = accountcenter.ReadOnly
		withStepUp(b, req)
	}
	write := func(b *bench, req *request) {
		sessions(b)
		grant(b, sessionsScopeName)
		editable(b, "session")
		withStepUp(b, req)
	}
	cases := []orderCase{
		{
			name: "GET /api/my-account/sessions", req: request{method: "GET", path: "/api/my-account/sessions"},
			setup:    read,
			refusals: []refusal{noToken(), accountCenterOff(), noStepUp(), fieldOff("session"), missingScope(sessionsScopeName, 401)},
			ok:       http.StatusOK,
		},
		{
			name: "DELETE /api/my-account/sessions/{sessionId}", req: request{method: "DELETE", path: "/api/my-account/sessions/s1"},
			setup: write,
			refusals: []refusal{revokedToken(), accountCenterOff(), badQuery("revokeGrantsTarget=some"), noStepUp(),
				fieldReadOnly("session"), missingScope(sessionsScopeName, 401), thirdParty()},
			ok: http.StatusNoContent,
		},
		{
			name: "GET /api/my-account/grants", req: request{method: "GET", path: "/api/my-account/grants"},
			setup: read,
			refusals: []refusal{noToken(), accountCenterOff(), badQuery("appType=some"), noStepUp(), fieldOff("session"),
				missingScope(sessionsScopeName, 401)},
			ok: http.StatusOK,
		},
		{
			name: "DELETE /api/my-account/grants/{grantId}", req: request{method: "DELETE", path: "/api/my-account/grants/g1"},
			setup: write,
			refusals: []refusal{revokedToken(), accountCenterOff(), noStepUp(), fieldReadOnly("session"),
				missingScope(sessionsScopeName, 401), thirdParty()},
			ok: http.StatusNoContent,
		},
		{
			name: "POST /api/my-account/user-assets/avatar", req: request{method: "POST", path: "/api/my-account/user-assets/avatar"},
			setup: func(b *bench, req *request) {
				grant(b, "profile")
				editable(b, "avatar")
				setAvatar(req, "file", "a.gif", tinyGIF)
			},
			refusals: []refusal{noToken(), accountCenterOff(),
				{"no file part", func(_ *bench, req *request) { setAvatar(req, "photo", "a.gif", tinyGIF) }, 400, "guard.invalid_input"},
				missingScope("profile", 401), thirdParty(), fieldReadOnly("avatar"),
				{"too big", func(b *bench, _ *request) {
					b.core.assetStatus = &identitycore.UserAssetsStatus{Status: "not_configured", MaxUploadFileSize: 4}
				}, 400, "guard.file_size_exceeded"},
				{"not an image", func(_ *bench, req *request) {
					if strings.Contains(req.body, `name="file"`) { // keep an earlier refusal's body
						setAvatar(req, "file", "a.gif", []byte("<svg/>"))
					}
				}, 400, "guard.mime_type_not_allowed"},
				{"no storage", func(b *bench, _ *request) {
					if b.core.assetStatus == nil {
						b.core.assetStatus = &identitycore.UserAssetsStatus{Status: "not_configured"}
					}
				}, 400, "storage.not_configured"},
				{"upload fails", func(b *bench, _ *request) { b.core.fail["UploadUserAsset"] = storageFailure }, 500, "storage.upload_error"},
			},
			ok: http.StatusOK,
		},
	}
	for _, pattern := range unsupportedRoutes {
		method, path, _ := strings.Cut(pattern, " ")
		path = strings.NewReplacer("{verificationId}", "v1", "{target}", "github", "{connectorId}", "c1",
			"{trustedDeviceId}", "d1").Replace(path)
		cases = append(cases, orderCase{
			name: pattern, req: request{method: method, path: path},
			setup:    func(*bench, *request) {},
			refusals: []refusal{noToken(), accountCenterOff()},
			ok:       http.StatusNotImplemented,
		})
	}
	return cases
}

// isCurrent marks the caller's session by the sid of its client; a token without sid marks none.
func TestSessionsIsCurrent(t *testing.T) {
	b := newBench(t)
	b.core.sessions = []fakeSession{
		{user: benchUser, uid: "mine", sids: map[string]string{"app1": "sid1", "other": "sid9"}},
		{user: benchUser, uid: "elsewhere", sids: map[string]string{"app1": "sid2"}},
		{user: "u2", uid: "theirs", sids: map[string]string{"app1": "sid1"}},
	}
	grant(b, sessionsScopeName)
	b.settings.Fields["session"] = accountcenter.ReadOnly
	req := request{method: "GET", path: "/api/my-account/sessions"}
	withStepUp(b, &req)
	current := func() string {
		t.Helper()
		a := b.do(req)
		if a.status != 200 {
			t.Fatalf("%d %s", a.status, a.body)
		}
		var body struct {
			Sessions []struct {
				Payload   struct{ UID string }
				IsCurrent *bool
			}
		}
		if err := json.Unmarshal(a.body, &body); err != nil {
			t.Fatal(err)
		}
		out := ""
		for _, s := range body.Sessions {
			if s.IsCurrent == nil {
				t.Fatalf("isCurrent missing: %s", a.body)
			}
			if *s.IsCurrent {
				out += s.Payload.UID
			}
		}
		return out
	}
	if got := current(); got != "" {
		t.Fatalf("a token without sid: current %q", got)
	}
	p := b.caller()
	p.SessionID = "sid1"
	b.setCaller(*p)
	if got := current(); got != "mine" {
		t.Fatalf("current %q, want mine", got)
	}
	p.ClientID = "other" // the same sid under another client is another authorization
	b.setCaller(*p)
	if got := current(); got != "" {
		t.Fatalf("sid of another client: current %q", got)
	}
}

// The answers the core gives for a missing or foreign session and grant become Logto's.
func TestSessionNotFoundAnswers(t *testing.T) {
	b := newBench(t)
	b.core.sessions = []fakeSession{{user: "u2", uid: "theirs"}}
	b.core.grants = []fakeGrant{{user: "u2", id: "g2"}}
	grant(b, sessionsScopeName)
	editable(b, "session")
	for path, want := range map[string]string{
		"/api/my-account/sessions/nope":   "400 oidc.session_not_found",
		"/api/my-account/sessions/theirs": "400 oidc.invalid_session_account_id",
		"/api/my-account/sessions/" + "é": "400 oidc.session_not_found",
		"/api/my-account/grants/g2":       "404 oidc.invalid_grant",
		"/api/my-account/grants/" + "a.b": "404 oidc.invalid_grant",
	} {
		req := request{method: "DELETE", path: path}
		withStepUp(b, &req)
		a := b.do(req)
		if got := fmt.Sprintf("%d %s", a.status, a.code); got != want {
			t.Errorf("%s: %s %s, want %s", path, got, a.body, want)
		}
	}
	if len(b.changed) != 0 {
		t.Errorf("a refused revocation reported users as changed: %v", b.changed)
	}
}

// A repeated enum parameter is an array to Logto's query parser: 400 with zod's invalid_type.
func TestRepeatedQueryParameter(t *testing.T) {
	b := newBench(t)
	a := b.do(request{method: "DELETE", path: "/api/my-account/sessions/s1?revokeGrantsTarget=all&revokeGrantsTarget=all"})
	if a.status != 400 || a.code != "guard.invalid_input" || !strings.Contains(string(a.body), `"expected":"'all' | 'firstParty'","received":"array"`) {
		t.Fatalf("%d %s", a.status, a.body)
	}
}

// Multipart bodies that break off or run past the bound before the file are refused cleanly.
func TestAvatarBrokenBodies(t *testing.T) {
	b := newBench(t)
	grant(b, "profile")
	editable(b, "avatar")
	b.core.assetStatus = &identitycore.UserAssetsStatus{Status: "ready", MaxUploadFileSize: 16}
	send := func(body, contentType string) answer {
		return b.do(request{method: "POST", path: "/api/my-account/user-assets/avatar", body: body,
			header: map[string]string{"Content-Type": contentType}})
	}
	body, ct := avatarBody("file", "a.gif", tinyGIF)
	if a := send(body[:len(body)/2], ct); a.status != 400 || a.code != "guard.invalid_input" {
		t.Errorf("cut short: %d %s", a.status, a.body)
	}
	var big bytes.Buffer
	mw := multipart.NewWriter(&big)
	_ = mw.WriteField("note", strings.Repeat("x", 80<<10)) // past the bound before any file
	w, _ := mw.CreateFormFile("file", "a.gif")
	_, _ = w.Write(tinyGIF)
	_ = mw.Close()
	if a := send(big.String(), mw.FormDataContentType()); a.status != 400 || a.code != "guard.file_size_exceeded" {
		t.Errorf("too big before the file: %d %s", a.status, a.body)
	}
	if a := send(body, "multipart/form-data"); a.status != 400 || a.code != "guard.invalid_input" {
		t.Errorf("no boundary: %d %s", a.status, a.body)
	}
	if len(b.core.uploads) != 0 {
		t.Errorf("%d files reached the core", len(b.core.uploads))
	}
}
