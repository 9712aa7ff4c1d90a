package logto

import (
	"bytes"
	"context"
	"errors"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"

	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
)

// UserAssetsStatus implements identitycore.Core.
func (c *Client) UserAssetsStatus(ctx context.Context) (*identitycore.UserAssetsStatus, error) {
	var s identitycore.UserAssetsStatus
	if err := c.call(ctx, http.MethodGet, "/api/user-assets/service-status", nil, nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// UploadUserAsset implements identitycore.Core: POST /api/user-assets, multipart field "file".
func (c *Client) UploadUserAsset(ctx context.Context, asset identitycore.Asset) (string, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	h := textproto.MIMEHeader{}
	// The caller gives a sanitised file name; quotes and line breaks are refused here anyway so
	// the part header cannot be forged.
	if strings.ContainsAny(asset.Filename, "\"\\\r\n") {
		return "", identitycore.ErrInvalidID
	}
	h.Set("Content-Disposition", `form-data; name="file"; filename="`+asset.Filename+`"`)
	h.Set("Content-Type", asset.ContentType)
	part, err := mw.CreatePart(h)
	if err != nil {
		return "", err
	}
	if _, err := part.Write(asset.Content); err != nil {
		return "", err
	}
	if err := mw.Close(); err != nil {
		return "", err
	}
	var out struct {
		URL string `json:"url"`
	}
	if err := c.exchange(ctx, http.MethodPost, "/api/user-assets", nil, mw.FormDataContentType(), body.Bytes(), &out); err != nil {
		return "", err
	}
	if out.URL == "" {
		return "", &identitycore.UnavailableError{Op: "POST /api/user-assets", Cause: errors.New("the core gave no url")}
	}
	return out.URL, nil
}
