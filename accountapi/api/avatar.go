package api

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"path"
	"regexp"
	"slices"

	"github.com/accountedge/caddy-account-api/accountapi/apierror"
	"github.com/accountedge/caddy-account-api/accountapi/httpbody"
	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
)

// logtoMaxUploadFileSize is Logto's upload bound (20 MiB), used when the core's service status
// gives none (storage not configured: the answer is then storage.not_configured anyway).
const logtoMaxUploadFileSize = 20 << 20

// multipartOverhead is what an avatar body may hold beyond the file: part headers, boundaries
// and small form fields.
const multipartOverhead = 64 << 10

// maxConcurrentUploads bounds the avatar files one instance reads at once: each may keep the
// core's bound (20 MiB) in memory twice (the file, then the request to the core). Others wait
// for a slot, as long as their client does.
const maxConcurrentUploads = 8

// avatarUpload is what the avatar route's guard found: the core's storage status and the file
// part, not read yet.
type avatarUpload struct {
	status *identitycore.UserAssetsStatus
	limit  int64
	file   *multipart.Part
	body   io.Reader // the whole body, under its size bound, to read to its end
}

// avatarPath is the avatar route's path: its body is a file, read by avatarFile, not bodyFirst.
const avatarPath = "/api/my-account/user-assets/avatar"

// avatarFile is the guard of the avatar route, Logto's koaGuard on the files: the body must be
// multipart with a part named "file" that carries a file name (formidable, behind Logto's
// koaBody, takes a part without one for a plain field); 400 on the files otherwise. It reads the
// body only up to that part; the core's service status sets the bound of what may follow.
func avatarFile(h *Handler, c *call) error {
	status, err := h.assets.Get(c.r.Context())
	if err != nil {
		return coreError(err)
	}
	limit := int64(logtoMaxUploadFileSize)
	if status.MaxUploadFileSize > 0 {
		limit = status.MaxUploadFileSize
	}
	missing := apierror.InvalidFiles(apierror.Required("array", "file"))
	mediaType, params, err := mime.ParseMediaType(c.r.Header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/form-data" || params["boundary"] == "" {
		return missing
	}
	// The body is read from here on, after authentication and the core's status, which may
	// take longer than the body is given: its time counts from now (again for the file, once
	// it has an upload slot), so a prompt client behind a slow core is not cut off.
	httpbody.Start(c.w, c.r, h.cfg.BodyTimeout)
	body := http.MaxBytesReader(c.w, c.r.Body, limit+multipartOverhead)
	mr := multipart.NewReader(body, params["boundary"])
	for {
		part, err := mr.NextPart()
		switch {
		case errors.Is(err, io.EOF):
			return missing
		case err != nil:
			return unreadable(c.w, err)
		case part.FormName() == "file" && part.FileName() != "":
			c.input = &avatarUpload{status: status, limit: limit, file: part, body: body}
			return nil
		}
		// NextPart discards the rest of this part.
	}
}

// unreadable is the answer to a multipart body that breaks off, goes past the size bound or
// arrives too slowly.
func unreadable(w http.ResponseWriter, err error) error {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return apierror.FileSizeExceeded
	}
	if httpbody.TimedOut(w, err) {
		return apierror.BodyTimeout
	}
	return apierror.InvalidFiles().WithDetails("The multipart body could not be read.")
}

// uploadAvatar is POST /api/my-account/user-assets/avatar after its checks (reference §3.3
// N33: the file, the profile scope with 401, first-party client, the avatar field): the size,
// the content sniffed as JPEG, PNG, GIF, WebP or BMP with a valid end (whatever type the client
// declared), storage configured, then the upload. It answers {url}; the user's avatar is not
// changed (the client PATCHes /api/my-account with the url).
func (h *Handler) uploadAvatar(c *call) error {
	ctx := c.r.Context()
	up := input[*avatarUpload](c)
	// The wait for a slot is not the client's: the bound is lifted meanwhile (also so that the
	// server, watching a body it has read whole, does not end the request), and set again for
	// the file.
	httpbody.Finish(c.w)
	select {
	case h.uploadSlots <- struct{}{}:
		defer func() { <-h.uploadSlots }()
	case <-ctx.Done():
		return apierror.CoreUnavailable.WithCause(ctx.Err())
	}
	httpbody.Start(c.w, c.r, h.cfg.BodyTimeout)
	content, err := io.ReadAll(io.LimitReader(up.file, up.limit+1))
	if err != nil {
		return unreadable(c.w, err)
	}
	if int64(len(content)) > up.limit {
		return apierror.FileSizeExceeded
	}
	// The rest of the body (its closing boundary) is read within the bound too; then the bound
	// is lifted, so that it cannot cut short the upload to the core, which may take longer.
	if _, err := io.Copy(io.Discard, up.body); err != nil {
		return unreadable(c.w, err)
	}
	httpbody.Finish(c.w)
	mimeType := sniffAvatar(content)
	if mimeType == "" || (len(up.status.AllowUploadMimeTypes) > 0 && !slices.Contains(up.status.AllowUploadMimeTypes, mimeType)) {
		return apierror.MimeTypeNotAllowed
	}
	if up.status.Status != "ready" {
		return apierror.StorageNotConfigured
	}
	url, err := h.cfg.Core.UploadUserAsset(ctx, identitycore.Asset{
		Filename:    avatarFilename(up.file.FileName(), mimeType),
		ContentType: mimeType,
		Content:     content,
	})
	if err != nil {
		return coreError(err)
	}
	return writeJSON(c.w, http.StatusOK, map[string]string{"url": url})
}

// sniffAvatar names the image type the content really is, with Logto's signatures and end
// markers (routes/avatar-upload.ts), or "" when it is none of the five avatar types or is cut
// short. SVG is never an avatar: it can carry script.
func sniffAvatar(b []byte) string {
	le32 := func(off int) int {
		if len(b) < off+4 {
			return -1
		}
		return int(binary.LittleEndian.Uint32(b[off:]))
	}
	switch {
	case bytes.HasPrefix(b, []byte{0xff, 0xd8, 0xff}):
		if bytes.HasSuffix(b, []byte{0xff, 0xd9}) {
			return "image/jpeg"
		}
	case bytes.HasPrefix(b, []byte{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'}):
		if bytes.HasSuffix(b, []byte{'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82}) {
			return "image/png"
		}
	case bytes.HasPrefix(b, []byte("GIF8")):
		if b[len(b)-1] == 0x3b {
			return "image/gif"
		}
	case bytes.HasPrefix(b, []byte("BM")):
		if len(b) >= 6 && le32(2) == len(b) {
			return "image/bmp"
		}
	case bytes.HasPrefix(b, []byte("RIFF")) && len(b) >= 12 && bytes.Equal(b[8:12], []byte("WEBP")):
		if le32(4)+8 == len(b) {
			return "image/webp"
		}
	}
	return ""
}

// avatarExtensions are Logto's first file extensions of the avatar types.
var avatarExtensions = map[string]string{
	"image/jpeg": "jpeg", "image/png": "png", "image/gif": "gif", "image/webp": "webp", "image/bmp": "bmp",
}

// unsafeFilenameChars are what Logto's sanitizeFilename replaces with '-'.
var unsafeFilenameChars = regexp.MustCompile(`[^\w.-]`)

// avatarFilename is Logto's sanitizeFilename: the base name with every character outside
// [A-Za-z0-9_.-] replaced by '-', at most 128 bytes; "avatar.<ext>" when nothing is left. The
// Management API would use the client's name as it is, in the object key.
func avatarFilename(name, mimeType string) string {
	base := path.Base(name)
	if base == "." || base == "/" || base == ".." { // Logto would keep ".."; an object key should not
		base = ""
	}
	safe := unsafeFilenameChars.ReplaceAllString(base, "-")
	if len(safe) > 128 {
		safe = safe[:128]
	}
	if safe == "" {
		return "avatar." + avatarExtensions[mimeType]
	}
	return safe
}
