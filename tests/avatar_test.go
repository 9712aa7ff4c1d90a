package tests

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/accountedge/caddy-account-api/tests/devcore"
)

// Real images of the five avatar types.
func testImages(t *testing.T) map[string][]byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 4, 4))
	img.Set(1, 1, color.RGBA{200, 10, 10, 255})
	out := map[string][]byte{}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	out["image/png"] = bytes.Clone(b.Bytes())
	b.Reset()
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	out["image/jpeg"] = bytes.Clone(b.Bytes())
	b.Reset()
	if err := gif.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	out["image/gif"] = bytes.Clone(b.Bytes())
	// BMP: file header whose size field is the file size, then an info header and pixels.
	bmp := make([]byte, 58)
	copy(bmp, "BM")
	binary.LittleEndian.PutUint32(bmp[2:], uint32(len(bmp)))
	binary.LittleEndian.PutUint32(bmp[10:], 54)
	out["image/bmp"] = bmp
	// WebP: a RIFF container whose size field covers the rest of the file.
	webp := append([]byte("RIFF\x00\x00\x00\x00WEBPVP8L"), make([]byte, 14)...)
	binary.LittleEndian.PutUint32(webp[4:], uint32(len(webp)-8))
	out["image/webp"] = webp
	return out
}

// uploadAvatar uploads one file part (field, filename, declared type, content) through Caddy.
func (e *env) uploadAvatar(token, field, filename, declared string, content []byte) reply {
	e.t.Helper()
	body, contentType := devcore.FilePart(field, filename, declared, content)
	return e.rawUpload(token, contentType, body)
}

// rawUpload posts body as the avatar; like callWith, a request that gets no answer fails the
// test with Errorf (safe in a burst's goroutines) and returns status 0.
func (e *env) rawUpload(token, contentType string, body io.Reader) reply {
	e.t.Helper()
	return e.rawUploadWith(e.client, token, contentType, body)
}

// rawUploadWith is rawUpload through client.
func (e *env) rawUploadWith(client *http.Client, token, contentType string, body io.Reader) reply {
	e.t.Helper()
	req, err := http.NewRequest("POST", e.caddy.URL()+"/api/my-account/user-assets/avatar", body)
	if err != nil {
		e.t.Errorf("avatar upload: %v", err)
		return reply{}
	}
	req.Header.Set("Content-Type", contentType)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		e.t.Errorf("avatar upload: %v", err)
		return reply{req: req}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, body: b, req: req, closed: resp.Close, proto: resp.ProtoMajor}
	e.api.ValidateResponse(e.t, req, r.status, r.header, r.body)
	return r
}

// fetch reads an uploaded asset back from the dev core.
func fetch(t *testing.T, url string) (string, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	return resp.Header.Get("Content-Type"), b
}

// TestAvatarUpload: each avatar type is stored as what its content is, whatever the client
// declared, under a sanitised name; lying content types and cut-off images are refused.
func TestAvatarUpload(t *testing.T) {
	e := newEnv(t, options{extra: "policy_cache_ttl 1ns"})
	tok := e.userToken(allScopes)
	for mimeType, content := range testImages(t) {
		r := e.uploadAvatar(tok, "file", "../../etc/my avatar?.img", "application/octet-stream", content)
		if r.status != 200 {
			t.Fatalf("%s: %d %s", mimeType, r.status, r.body)
		}
		url := r.json(t)["url"].(string)
		if !strings.HasSuffix(url, "/my-avatar-.img") {
			t.Errorf("%s stored as %s: the file name must be Logto-sanitised", mimeType, url)
		}
		gotType, gotContent := fetch(t, url)
		if gotType != mimeType || !bytes.Equal(gotContent, content) {
			t.Errorf("%s arrived as %s (%d bytes, want %d)", mimeType, gotType, len(gotContent), len(content))
		}
	}
	// The upload does not change the user: the client PATCHes the url as its avatar.
	if a := e.account(tok); a["avatar"] != nil {
		t.Fatalf("avatar changed by the upload: %v", a["avatar"])
	}

	images := testImages(t)
	png := images["image/png"]
	for name, c := range map[string]struct {
		declared string
		content  []byte
	}{
		"svg declared as png":     {"image/png", []byte(`<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>`)},
		"svg declared as svg":     {"image/svg+xml", []byte(`<?xml version="1.0"?><svg/>`)},
		"html declared as jpeg":   {"image/jpeg", []byte("<html><script>alert(1)</script></html>")},
		"png cut short":           {"image/png", png[:len(png)-3]},
		"png with a tail":         {"image/png", append(bytes.Clone(png), "<script>"...)},
		"jpeg without its end":    {"image/jpeg", images["image/jpeg"][:20]},
		"bmp with a wrong length": {"image/bmp", append(bytes.Clone(images["image/bmp"]), 0)},
		"zip declared as zip":     {"application/zip", []byte("PK\x03\x04rest")},
		"empty file":              {"image/png", nil},
	} {
		expectError(t, e.uploadAvatar(tok, "file", "a.png", c.declared, c.content), 400, "guard.mime_type_not_allowed")
		_ = name
	}
}

// TestAvatarLargerThanMaxBodySize: an avatar is bounded by the core's upload limit, not by
// max_body_size (which bounds JSON bodies), whether the client sends its length or streams it
// chunked.
func TestAvatarLargerThanMaxBodySize(t *testing.T) {
	e := newEnv(t, options{extra: "max_body_size 64KiB"})
	tok := e.userToken(allScopes)
	png := testImages(t)["image/png"]
	content := append(bytes.Clone(png[:len(png)-12]), bytes.Repeat([]byte{7}, 200<<10)...)
	content = append(content, png[len(png)-12:]...)
	body, contentType := devcore.FilePart("file", "big.png", "image/png", content)
	raw, _ := io.ReadAll(body)
	for name, b := range map[string]io.Reader{
		"with its length": bytes.NewReader(raw),
		"chunked":         io.MultiReader(bytes.NewReader(raw)), // no length: sent chunked
	} {
		r := e.rawUpload(tok, contentType, b)
		if r.status != 200 {
			t.Fatalf("%s: a %d KiB avatar over a 64 KiB max_body_size: %d %s", name, len(content)>>10, r.status, r.body)
		}
		if _, got := fetch(t, r.json(t)["url"].(string)); !bytes.Equal(got, content) {
			t.Fatalf("%s: stored %d bytes, want %d", name, len(got), len(content))
		}
	}
}

// TestAvatarBodyTimeCountsFromItsReading: an avatar's body is read after authentication, so
// body_timeout counts from then: a prompt upload behind a core slower than body_timeout is
// stored, while a file that trickles in is still cut off with 408 request.timeout.
func TestAvatarBodyTimeCountsFromItsReading(t *testing.T) {
	e := newEnv(t, options{extra: "body_timeout 1s"})
	tok := e.userToken(allScopes)
	e.core.Core.SetIntrospectionDelay(1500 * time.Millisecond) // every upload asks the core again
	defer e.core.Core.SetIntrospectionDelay(0)
	png := testImages(t)["image/png"]
	content := append(bytes.Clone(png[:len(png)-12]), bytes.Repeat([]byte{9}, 256<<10)...)
	content = append(content, png[len(png)-12:]...)
	r := e.uploadAvatar(tok, "file", "prompt.png", "image/png", content)
	if r.status != 200 {
		t.Fatalf("a prompt %d KiB upload behind a core slower than body_timeout: %d %s", len(content)>>10, r.status, r.body)
	}
	if _, got := fetch(t, r.json(t)["url"].(string)); !bytes.Equal(got, content) {
		t.Fatalf("stored %d bytes, want %d", len(got), len(content))
	}

	// The same file, its head at once and then a byte every 300ms.
	body, contentType := devcore.FilePart("file", "slow.png", "image/png", content)
	raw, _ := io.ReadAll(body)
	pr, pw := io.Pipe()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer pw.Close()
		if _, err := pw.Write(raw[:len(raw)-len(content)]); err != nil {
			return
		}
		for _, b := range raw[len(raw)-len(content):] {
			select {
			case <-stop:
				return
			case <-time.After(300 * time.Millisecond):
			}
			if _, err := pw.Write([]byte{b}); err != nil {
				return
			}
		}
	}()
	start := time.Now()
	r = e.rawUpload(tok, contentType, pr)
	expectError(t, r, http.StatusRequestTimeout, "request.timeout")
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("a trickling file held the request for %v", took)
	}
	if !r.closed {
		t.Error("a body out of time must close its connection")
	}

	// A small file is read whole with its head; storing it takes longer than body_timeout, and
	// the bound must not end the request meanwhile.
	e.core.Core.SetIntrospectionDelay(0)
	delay := int64(1500)
	e.coreJSON("POST", "/dev/user-assets", devcore.UserAssetsConfig{UploadDelayMs: &delay}, nil)
	if r := e.uploadAvatar(tok, "file", "small.png", "image/png", png); r.status != 200 {
		t.Fatalf("a %d-byte upload to a storage slower than body_timeout: %d %s", len(png), r.status, r.body)
	}

	// Refused before its body is read (no token), a trickling body is still bounded: the server
	// reads what is left of it before answering, within body_timeout, then hangs up.
	addr := strings.TrimPrefix(e.caddy.URL(), "http://")
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/my-account/user-assets/avatar HTTP/1.1\r\nHost: %s\r\n"+
		"Content-Type: %s\r\nContent-Length: 200000\r\n\r\n--", addr, contentType)
	go func() { // a byte every 300ms, until the server hangs up
		for {
			select {
			case <-stop:
				return
			case <-time.After(300 * time.Millisecond):
			}
			if _, err := conn.Write([]byte("x")); err != nil {
				return
			}
		}
	}()
	start = time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second)) // the test's own bound
	answer, err := io.ReadAll(conn)                            // until the server closes the connection
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("an unauthenticated trickling avatar body still held its connection after 20s: %q", answer)
	}
	if line, _, _ := strings.Cut(string(answer), "\r\n"); !strings.Contains(line, "401") {
		t.Fatalf("answer %q", answer)
	}
	t.Logf("an unauthenticated trickling avatar body: answered and closed after %v", time.Since(start).Round(100*time.Millisecond))
}

// TestAvatarOverHTTP2BehindASlowCore: over HTTP/2 (h2c here) a bound that runs out ends a
// stream's body for good, so none may run while the module authenticates or waits: a prompt
// 3 MiB upload (more than a stream buffers) behind a core slower than body_timeout is stored.
func TestAvatarOverHTTP2BehindASlowCore(t *testing.T) {
	e := newEnv(t, options{global: "\tservers {\n\t\tprotocols h1 h2c\n\t}\n", extra: "body_timeout 1s"})
	tok := e.userToken(allScopes)
	e.core.Core.SetIntrospectionDelay(1500 * time.Millisecond)
	defer e.core.Core.SetIntrospectionDelay(0)
	png := testImages(t)["image/png"]
	content := append(bytes.Clone(png[:len(png)-12]), bytes.Repeat([]byte{5}, 3<<20)...)
	content = append(content, png[len(png)-12:]...)
	body, contentType := devcore.FilePart("file", "h2.png", "image/png", content)
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Protocols: protocols}}
	r := e.rawUploadWith(client, tok, contentType, body)
	if r.proto != 2 {
		t.Fatalf("the test needs HTTP/2, got HTTP/%d", r.proto)
	}
	if r.status != 200 {
		t.Fatalf("a prompt 3 MiB upload over HTTP/2 behind a core slower than body_timeout: %d %s", r.status, r.body)
	}
	if _, got := fetch(t, r.json(t)["url"].(string)); !bytes.Equal(got, content) {
		t.Fatalf("stored %d bytes, want %d", len(got), len(content))
	}
}

// TestAvatarChecks: Logto's order: the multipart file (400), the profile scope (401),
// first-party (403), the avatar field (400), the size, the content, the storage.
func TestAvatarChecks(t *testing.T) {
	e := newEnv(t, options{extra: "policy_cache_ttl 1ns"})
	png := testImages(t)["image/png"]
	noProfile := e.userToken("openid email")
	third := e.token(devcore.MintRequest{Scope: allScopes, ClientID: devcore.ThirdPartyAppID})
	tok := e.userToken(allScopes)

	expectError(t, e.rawUpload("", "multipart/form-data; boundary=x", strings.NewReader("")), 401, "auth.authorization_header_missing")
	// The file guard comes first of the route's checks.
	expectError(t, e.uploadAvatar(noProfile, "avatar", "a.png", "image/png", png), 400, "guard.invalid_input")
	expectError(t, e.rawUpload(noProfile, "application/json", strings.NewReader(`{"file":"x"}`)), 400, "guard.invalid_input")
	expectError(t, e.rawUpload(noProfile, "multipart/form-data; boundary=zz", strings.NewReader("--zz\r\nbroken")), 400, "guard.invalid_input")
	// A "file" part without a file name is a form field, not a file.
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("file", string(png))
	_ = mw.Close()
	expectError(t, e.rawUpload(tok, mw.FormDataContentType(), &body), 400, "guard.invalid_input")

	expectError(t, e.uploadAvatar(noProfile, "file", "a.png", "image/png", []byte("not an image")), 401, "auth.unauthorized")
	expectError(t, e.uploadAvatar(third, "file", "a.png", "image/png", []byte("not an image")), 403, "auth.third_party_application_forbidden")
	e.setFields(map[string]string{"avatar": "ReadOnly"})
	expectError(t, e.uploadAvatar(tok, "file", "a.png", "image/png", []byte("not an image")), 400, "account_center.field_not_editable")
	e.setFields(nil)

	// Size: the core's bound, read from its service status; past it, the body is not read on.
	e.coreJSON("POST", "/dev/user-assets", devcore.UserAssetsConfig{MaxUploadFileSize: 1024}, nil)
	big := append(bytes.Clone(png[:len(png)-12]), make([]byte, 2048)...)
	big = append(big, png[len(png)-12:]...)
	expectError(t, e.uploadAvatar(tok, "file", "a.png", "image/png", big), 400, "guard.file_size_exceeded")
	if r := e.uploadAvatar(tok, "file", "a.png", "image/png", png); r.status != 200 {
		t.Fatalf("a small image under the bound: %d %s", r.status, r.body)
	}
	// Far past Logto's 20 MiB bound: refused without buffering it all.
	e.coreJSON("POST", "/dev/user-assets", devcore.UserAssetsConfig{MaxUploadFileSize: 20 << 20}, nil)
	huge := make([]byte, 24<<20)
	copy(huge, png)
	expectError(t, e.uploadAvatar(tok, "file", "huge.png", "image/png", huge), 400, "guard.file_size_exceeded")

	// The content check comes before the storage one; then storage, then the upload.
	e.coreJSON("POST", "/dev/user-assets", devcore.UserAssetsConfig{Status: "not_configured"}, nil)
	expectError(t, e.uploadAvatar(tok, "file", "a.svg", "image/svg+xml", []byte("<svg/>")), 400, "guard.mime_type_not_allowed")
	expectError(t, e.uploadAvatar(tok, "file", "a.png", "image/png", png), 400, "storage.not_configured")
	fail := true
	e.coreJSON("POST", "/dev/user-assets", devcore.UserAssetsConfig{Status: "ready", FailUploads: &fail}, nil)
	expectError(t, e.uploadAvatar(tok, "file", "a.png", "image/png", png), 500, "storage.upload_error")
}

// TestAvatarBurst: more parallel uploads of a large image than the instance holds at once: all
// are served (the others wait for a slot), each stored intact.
func TestAvatarBurst(t *testing.T) {
	e := newEnv(t, options{})
	tok := e.userToken(allScopes)
	png := testImages(t)["image/png"]
	const n = 20
	results := make(chan error, n)
	for i := range n {
		go func() {
			// A valid PNG of about 1 MiB: junk before the end chunk, unique per upload.
			content := append(bytes.Clone(png[:len(png)-12]), bytes.Repeat([]byte{byte(i)}, 1<<20)...)
			content = append(content, png[len(png)-12:]...)
			r := e.call(e.caddy.URL(), "GET", "/api/my-account", tok, nil) // warm path in parallel
			if r.status != 200 {
				results <- fmt.Errorf("GET: %d", r.status)
				return
			}
			up := e.uploadAvatar(tok, "file", fmt.Sprintf("p%d.png", i), "image/png", content)
			if up.status != 200 {
				results <- fmt.Errorf("upload %d: %d %s", i, up.status, up.body)
				return
			}
			var m map[string]any
			_ = json.Unmarshal(up.body, &m)
			url, _ := m["url"].(string)
			resp, err := http.Get(url)
			if err != nil {
				results <- err
				return
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !bytes.Equal(got, content) {
				results <- fmt.Errorf("upload %d stored %d bytes, want %d", i, len(got), len(content))
				return
			}
			results <- nil
		}()
	}
	for range n {
		if err := <-results; err != nil {
			t.Error(err)
		}
	}
}
