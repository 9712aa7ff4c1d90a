package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
)

// fakeSessions is the part of fakeCore for the sessions, grants and avatar routes. Its zero
// value is a core without sessions or grants whose storage is ready.
type fakeSessions struct {
	sessions    []fakeSession // of every user
	grants      []fakeGrant
	assetStatus *identitycore.UserAssetsStatus // nil: ready, 20 MiB
	uploads     []identitycore.Asset
}

type fakeSession struct {
	user, uid string
	sids      map[string]string // client id → sid
}

type fakeGrant struct{ user, id, clientID string }

func (f *fakeCore) Sessions(_ context.Context, id string) ([]identitycore.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("Sessions"); err != nil {
		return nil, err
	}
	var out []identitycore.Session
	for _, s := range f.sessions {
		if s.user != id {
			continue
		}
		auths := map[string]any{}
		for client, sid := range s.sids {
			auths[client] = map[string]string{"sid": sid, "grantId": "g-" + client}
		}
		raw, _ := json.Marshal(map[string]any{
			"payload":        map[string]any{"uid": s.uid, "kind": "Session", "accountId": s.user, "authorizations": auths},
			"lastSubmission": nil, "clientId": nil, "accountId": s.user, "expiresAt": 1,
		})
		var sess identitycore.Session
		if err := json.Unmarshal(raw, &sess); err != nil {
			return nil, err
		}
		out = append(out, sess)
	}
	return out, nil
}

func (f *fakeCore) DeleteSession(_ context.Context, id, sessionID, revokeGrants string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("DeleteSession " + revokeGrants); err != nil {
		return err
	}
	i := slices.IndexFunc(f.sessions, func(s fakeSession) bool { return s.uid == sessionID })
	switch {
	case i < 0:
		return notFound("oidc.session_not_found")
	case f.sessions[i].user != id:
		return notFound("oidc.invalid_session_account_id")
	}
	f.sessions = slices.Delete(f.sessions, i, i+1)
	return nil
}

func (f *fakeCore) Grants(_ context.Context, id, appType string) ([]json.RawMessage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("Grants " + appType); err != nil {
		return nil, err
	}
	var out []json.RawMessage
	for _, g := range f.grants {
		if g.user == id {
			out = append(out, json.RawMessage(fmt.Sprintf(`{"id":%q,"application":{"id":%q,"name":"x"}}`, g.id, g.clientID)))
		}
	}
	return out, nil
}

func (f *fakeCore) DeleteGrant(_ context.Context, id, grantID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("DeleteGrant"); err != nil {
		return err
	}
	i := slices.IndexFunc(f.grants, func(g fakeGrant) bool { return g.id == grantID && g.user == id })
	if i < 0 {
		return notFound("oidc.invalid_grant")
	}
	f.grants = slices.Delete(f.grants, i, i+1)
	return nil
}

func (f *fakeCore) UserAssetsStatus(context.Context) (*identitycore.UserAssetsStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("UserAssetsStatus"); err != nil {
		return nil, err
	}
	if f.assetStatus != nil {
		s := *f.assetStatus
		return &s, nil
	}
	return &identitycore.UserAssetsStatus{Status: "ready", MaxUploadFileSize: 20 << 20,
		AllowUploadMimeTypes: []string{"image/jpeg", "image/png", "image/gif", "image/svg+xml", "image/webp", "image/bmp"}}, nil
}

func (f *fakeCore) UploadUserAsset(_ context.Context, asset identitycore.Asset) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("UploadUserAsset"); err != nil {
		return "", err
	}
	f.uploads = append(f.uploads, asset)
	return "https://assets.example/" + asset.Filename, nil
}

// storageFailure is the core's answer when its storage provider fails.
var storageFailure = &identitycore.Error{Status: http.StatusInternalServerError, Code: "storage.upload_error"}
