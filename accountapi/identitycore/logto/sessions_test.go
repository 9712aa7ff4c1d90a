package logto

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
)

// TestSessionCallsNeverSendAnInvalidID: an invalid user, session or grant id fails before any
// request leaves.
func TestSessionCallsNeverSendAnInvalidID(t *testing.T) {
	f := &fakeLogto{tokenTTL: 3600, userStatus: func(string) (int, string) {
		t.Error("the core was called")
		return 500, ""
	}}
	c := newClient(t, f, "s3cret")
	ctx := context.Background()
	for name, err := range map[string]error{
		"sessions of ..":      func() error { _, err := c.Sessions(ctx, ".."); return err }(),
		"delete session ../x": c.DeleteSession(ctx, "u1", "../x", ""),
		"grants of a/b":       func() error { _, err := c.Grants(ctx, "a/b", ""); return err }(),
		"delete grant é":      c.DeleteGrant(ctx, "u1", "é"),
	} {
		if !errors.Is(err, identitycore.ErrInvalidID) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestDeleteSessionAndUploadAnswers(t *testing.T) {
	var got *http.Request
	var gotBody string
	f := &fakeLogto{tokenTTL: 3600}
	c := newClient(t, f, "s3cret")
	ctx := context.Background()

	f.userStatus = func(string) (int, string) {
		return 404, `{"code":"oidc.session_not_found","message":"Session not found."}`
	}
	err := c.DeleteSession(ctx, "u1", "s1", "firstParty")
	if ce, ok := errors.AsType[*identitycore.Error](err); !ok || ce.Status != 404 || ce.Code != "oidc.session_not_found" {
		t.Fatalf("%v", err)
	}

	// A 500 that is Logto's verdict (the storage failed) is kept as such, not an outage.
	c2 := newClient(t, &fakeLogto{tokenTTL: 3600}, "s3cret")
	c2.http.Transport = roundTrip(func(r *http.Request) (*http.Response, error) {
		if r.URL.Path == "/oidc/token" {
			return jsonResponse(200, `{"access_token":"t","expires_in":3600}`), nil
		}
		got = r
		b, _ := io.ReadAll(r.Body)
		gotBody = string(b)
		return jsonResponse(500, `{"code":"storage.upload_error","message":"x"}`), nil
	})
	_, err = c2.UploadUserAsset(ctx, identitycore.Asset{Filename: "a.png", ContentType: "image/png", Content: []byte("PNG")})
	if ce, ok := errors.AsType[*identitycore.Error](err); !ok || ce.Status != 500 || ce.Code != "storage.upload_error" {
		t.Fatalf("%v", err)
	}
	if !strings.HasPrefix(got.Header.Get("Content-Type"), "multipart/form-data; boundary=") ||
		!strings.Contains(gotBody, `name="file"; filename="a.png"`) || !strings.Contains(gotBody, "Content-Type: image/png") {
		t.Fatalf("upload request %v\n%s", got.Header, gotBody)
	}
	// Any other 5xx is an outage.
	c2.http.Transport = roundTrip(func(r *http.Request) (*http.Response, error) {
		if r.URL.Path == "/oidc/token" {
			return jsonResponse(200, `{"access_token":"t","expires_in":3600}`), nil
		}
		return jsonResponse(500, `{"code":"unknown"}`), nil
	})
	_, err = c2.UploadUserAsset(ctx, identitycore.Asset{Filename: "a.png", ContentType: "image/png"})
	if _, ok := errors.AsType[*identitycore.UnavailableError](err); !ok {
		t.Fatalf("%v", err)
	}
	if _, err := c2.UploadUserAsset(ctx, identitycore.Asset{Filename: "a\".png", ContentType: "image/png"}); !errors.Is(err, identitycore.ErrInvalidID) {
		t.Fatalf("a quote in the file name: %v", err)
	}
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func jsonResponse(status int, body string) *http.Response {
	return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(body))}
}
