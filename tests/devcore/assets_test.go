package devcore

import (
	"io"
	"net/http"
	"testing"
)

// uploadRequest is a multipart POST /api/user-assets with one part named field.
func (tc *testCore) uploadRequest(token, field, filename, contentType string, content []byte) *http.Request {
	tc.t.Helper()
	body, ct := FilePart(field, filename, contentType, content)
	req, err := http.NewRequest(http.MethodPost, tc.url+"/api/user-assets", body)
	if err != nil {
		tc.t.Fatal(err)
	}
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Authorization", "Bearer "+token)
	return req
}

// TestUserAssets: the service status and uploads, in Logto's check order, against the document.
func TestUserAssets(t *testing.T) {
	router := managementRouter(t)
	tc := newTestCore(t)
	tok := tc.m2mToken()
	status := func() response {
		req := tc.request(http.MethodGet, "/api/user-assets/service-status", tok, nil)
		resp := tc.send(req)
		validateManagementResponse(t, router, req, resp)
		return resp
	}
	if s := status().json(t); s["status"] != "ready" || s["maxUploadFileSize"] != float64(20<<20) {
		t.Fatalf("default status %v", s)
	}

	// The declared type is trusted: an SVG (or text declared as PNG) is stored as declared.
	req := tc.uploadRequest(tok, "file", "a.svg", "image/svg+xml", []byte("<svg onload=alert(1)>"))
	resp := tc.send(req)
	validateManagementResponse(t, router, req, resp)
	url, _ := resp.json(t)["url"].(string)
	got, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(got.Body)
	got.Body.Close()
	if string(b) != "<svg onload=alert(1)>" || got.Header.Get("Content-Type") != "image/svg+xml" {
		t.Fatalf("stored %q as %q", b, got.Header.Get("Content-Type"))
	}

	expectError(t, tc.send(tc.uploadRequest(tok, "file", "a.txt", "text/plain", []byte("x"))), 400, "guard.mime_type_not_allowed", "MIME type is not allowed.")
	expectError(t, tc.send(tc.uploadRequest(tok, "other", "a.png", "image/png", []byte("x"))), 400, "guard.invalid_input", "The request files is invalid.")

	tc.do(http.MethodPost, "/dev/user-assets", "", UserAssetsConfig{MaxUploadFileSize: 4})
	expectError(t, tc.send(tc.uploadRequest(tok, "file", "a.png", "image/png", []byte("12345"))), 400, "guard.file_size_exceeded", "File size exceeded.")
	fail := true
	tc.do(http.MethodPost, "/dev/user-assets", "", UserAssetsConfig{FailUploads: &fail})
	expectError(t, tc.send(tc.uploadRequest(tok, "file", "a.png", "image/png", []byte("1"))), 500, "storage.upload_error", "Failed to upload file to the storage provider.")
	tc.do(http.MethodPost, "/dev/user-assets", "", UserAssetsConfig{Status: "not_configured"})
	if s := status().json(t); s["status"] != "not_configured" || s["maxUploadFileSize"] != nil {
		t.Fatalf("not configured: %v", s)
	}
	expectError(t, tc.send(tc.uploadRequest(tok, "file", "a.png", "image/png", []byte("1"))), 400, "storage.not_configured", "Storage provider is not configured.")
}
