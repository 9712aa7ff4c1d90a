package devcore

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"slices"
	"time"
)

// User assets: Logto's storage of uploaded files (routes/user-assets.ts). The dev core keeps
// them in memory and serves them back under /dev/user-assets/, so a test can see what arrived.

// logtoMaxUploadFileSize is Logto's maxUploadFileSize (20 MiB).
const logtoMaxUploadFileSize = 20 << 20

// allowUploadMimeTypes is Logto's list: the Management API trusts the declared type.
var allowUploadMimeTypes = []string{
	"image/jpeg", "image/png", "image/gif", "image/vnd.microsoft.icon", "image/x-icon",
	"image/svg+xml", "image/tiff", "image/webp", "image/bmp", "application/zip",
}

// userAssets is the storage provider's state.
type userAssets struct {
	configured  bool
	maxSize     int64
	failUploads bool
	uploadDelay time.Duration
	stored      map[string]storedAsset
}

type storedAsset struct {
	contentType string
	content     []byte
}

// newUserAssets is a configured storage provider: the quickstart can upload avatars.
func newUserAssets() userAssets {
	return userAssets{configured: true, maxSize: logtoMaxUploadFileSize, stored: map[string]storedAsset{}}
}

// handleUserAssetsStatus is GET /api/user-assets/service-status.
func (c *Core) handleUserAssetsStatus(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	a := c.assets
	c.mu.Unlock()
	if !a.configured {
		writeJSON(w, http.StatusOK, ordered{{"status", "not_configured"}, {"isExperienceAvatarUploadEnabled", true}})
		return
	}
	writeJSON(w, http.StatusOK, ordered{
		{"status", "ready"}, {"allowUploadMimeTypes", allowUploadMimeTypes},
		{"maxUploadFileSize", a.maxSize}, {"isExperienceAvatarUploadEnabled", true},
	})
}

// handleUploadUserAsset is POST /api/user-assets in Logto's order: the file (guard), its size,
// its declared type, the storage provider, the upload.
func (c *Core) handleUploadUserAsset(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	maxSize := c.assets.maxSize
	c.mu.Unlock()
	name, declared, content, size, ok := readFilePart(w, r, maxSize)
	if !ok {
		return
	}
	if size > maxSize {
		writeError(w, http.StatusBadRequest, "guard.file_size_exceeded")
		return
	}
	if !slices.Contains(allowUploadMimeTypes, declared) {
		writeError(w, http.StatusBadRequest, "guard.mime_type_not_allowed")
		return
	}
	c.mu.Lock()
	delay := c.assets.uploadDelay
	c.mu.Unlock()
	time.Sleep(delay) // the storage provider at work, outside the core's lock
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case !c.assets.configured:
		writeError(w, http.StatusBadRequest, "storage.not_configured")
		return
	case c.assets.failUploads:
		writeError(w, http.StatusInternalServerError, "storage.upload_error")
		return
	}
	// Logto's object key: <tenant>/<user (here the M2M app)>/yyyy/MM/dd/<id>/<original name>.
	key := "default/" + c.cfg.ClientID + "/" + time.Now().Format("2006/01/02") + "/" + randomString(idAlphabet, 8) + "/" + name
	c.assets.stored[key] = storedAsset{contentType: declared, content: content}
	writeJSON(w, http.StatusOK, ordered{{"url", baseURL(r) + "/dev/user-assets/" + key}})
}

// readFilePart reads the first "file" part that has a file name, keeping at most max+1 bytes
// (its size is then known to exceed max). A request without one is Logto's 400 on the files.
func readFilePart(w http.ResponseWriter, r *http.Request, max int64) (name, contentType string, content []byte, size int64, ok bool) {
	invalid := func() {
		e := newError(http.StatusBadRequest, "guard.invalid_input")
		e.Message = "The request files is invalid."
		e.write(w)
	}
	mediaType, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/form-data" {
		invalid()
		return
	}
	mr := multipart.NewReader(http.MaxBytesReader(w, r.Body, max+1<<20), params["boundary"])
	for {
		part, err := mr.NextPart()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				writeError(w, http.StatusBadRequest, "guard.file_size_exceeded")
				return
			}
			invalid()
			return
		}
		if part.FormName() != "file" || part.FileName() == "" {
			continue
		}
		content, err = io.ReadAll(io.LimitReader(part, max+1))
		if err != nil {
			writeError(w, http.StatusBadRequest, "guard.file_size_exceeded")
			return
		}
		return part.FileName(), part.Header.Get("Content-Type"), content, int64(len(content)), true
	}
}

// FilePart encodes a multipart/form-data body with one file part (form name field, the given
// file name and declared type), after an ordinary form field, as a browser sends an upload. It
// returns the body and its Content-Type. Tests of uploads (here and end to end) build theirs
// with it.
func FilePart(field, filename, contentType string, content []byte) (*bytes.Buffer, string) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("note", "a form field before the file")
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="`+field+`"; filename="`+filename+`"`)
	h.Set("Content-Type", contentType)
	part, _ := mw.CreatePart(h)
	_, _ = part.Write(content)
	_ = mw.Close()
	return &body, mw.FormDataContentType()
}

// UserAssetsConfig is the body of POST /dev/user-assets: the storage provider's state.
type UserAssetsConfig struct {
	// Status is "ready" or "not_configured".
	Status string `json:"status,omitempty"`
	// MaxUploadFileSize replaces Logto's 20 MiB bound (bytes).
	MaxUploadFileSize int64 `json:"maxUploadFileSize,omitempty"`
	// FailUploads makes every upload fail with 500 storage.upload_error.
	FailUploads *bool `json:"failUploads,omitempty"`
	// UploadDelayMs makes the storage provider take that long to store each upload.
	UploadDelayMs *int64 `json:"uploadDelayMs,omitempty"`
}

func (c *Core) handleDevUserAssets(w http.ResponseWriter, r *http.Request) {
	var req UserAssetsConfig
	if !decodeDevBody(w, r, &req) {
		return
	}
	if req.Status != "" && req.Status != "ready" && req.Status != "not_configured" {
		devInputError(w, `status must be "ready" or "not_configured"`)
		return
	}
	if req.MaxUploadFileSize < 0 {
		devInputError(w, "maxUploadFileSize must be positive")
		return
	}
	c.mu.Lock()
	if req.Status != "" {
		c.assets.configured = req.Status == "ready"
	}
	if req.MaxUploadFileSize > 0 {
		c.assets.maxSize = req.MaxUploadFileSize
	}
	if req.FailUploads != nil {
		c.assets.failUploads = *req.FailUploads
	}
	if req.UploadDelayMs != nil {
		c.assets.uploadDelay = time.Duration(*req.UploadDelayMs) * time.Millisecond
	}
	c.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (c *Core) handleDevGetUserAsset(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	a, ok := c.assets.stored[r.PathValue("key")]
	c.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "entity.not_found")
		return
	}
	w.Header().Set("Content-Type", a.contentType)
	_, _ = w.Write(a.content)
}
