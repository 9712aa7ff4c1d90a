package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"

	"github.com/accountedge/caddy-account-api/accountapi/apierror"
	"github.com/accountedge/caddy-account-api/accountapi/httpbody"
)

// bodyFirst reads the request body before anything else is done, within its size bound and
// its time bound, so that the time bound measures the client alone and never how long the core
// takes to authenticate it. The routes decode the body later, in Logto's check order, and a
// failure to read it is reported then (see readObject).
func (h *Handler) bodyFirst(w http.ResponseWriter, r *http.Request) *http.Request {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return r
	}
	if r.URL.Path == avatarPath {
		// A file, not a JSON body: its guard streams it under the core's size bound, which
		// max_body_size must not cut short (nor consume a part of, when the length is unknown),
		// and bounds its time from when it reads, after authentication (avatarFile). Over
		// HTTP/1 it is bounded from now as well: a request refused before its body is read
		// still has the rest of it read by the server, which must not wait for ever. (HTTP/2
		// resets an unread stream instead, and a bound that ran out there ends the body for
		// good, so none is set before the guard reads.)
		if r.ProtoMajor == 1 {
			httpbody.Start(w, r, h.cfg.BodyTimeout)
		}
		return r
	}
	httpbody.Start(w, r, h.cfg.BodyTimeout)
	raw, err := httpbody.Read(w, r, h.cfg.MaxBodyBytes)
	if err != nil {
		return r.WithContext(context.WithValue(r.Context(), bodyKey{}, err))
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	return r.WithContext(context.WithValue(r.Context(), bodyKey{}, raw))
}

// bodyKey holds what bodyFirst read: the body ([]byte) or why it could not (error).
type bodyKey struct{}

// readObject reads the request body as a JSON object, member by member. An empty body is an
// empty object (as Logto's body parser makes it); anything that is not one JSON object is a 400;
// a body over the limit is a 413 (one slower than the body timeout never gets here: see
// ServeHTTP).
func (h *Handler) readObject(c *call) (map[string]json.RawMessage, error) {
	var raw []byte
	switch v := c.r.Context().Value(bodyKey{}).(type) {
	case []byte:
		raw = v
	case error:
		switch {
		case errors.Is(v, httpbody.ErrTooLarge):
			return nil, apierror.PayloadTooLarge
		default:
			return nil, apierror.MalformedBody("The request body could not be read.")
		}
	}
	return decodeObject(raw)
}

// decodeObject parses a body as one JSON object, member by member.
func decodeObject(raw []byte) (map[string]json.RawMessage, error) {
	obj := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(raw)) == 0 {
		return obj, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return nil, apierror.MalformedBody("The request body must be a JSON object.")
	}
	if dec.More() {
		return nil, apierror.MalformedBody("The request body must be a single JSON object.")
	}
	return obj, nil
}

// fields validates body members one by one and collects every problem, as zod does.
type fields struct {
	obj    map[string]json.RawMessage
	issues []apierror.Issue
}

// has reports whether the body has member key (even with a null value).
func (f *fields) has(key string) bool { _, ok := f.obj[key]; return ok }

// err returns the collected problems as a guard error, or nil.
func (f *fields) err() error {
	if len(f.issues) == 0 {
		return nil
	}
	return apierror.InvalidBody(f.issues...)
}

// str reads an optional string member; nullable allows null (returned as nil).
func (f *fields) str(key string, nullable bool, path ...any) (value *string, present bool) {
	raw, ok := f.obj[key]
	if !ok {
		return nil, false
	}
	if jsonType(raw) == "null" && nullable {
		return nil, true
	}
	var s string
	// json.Unmarshal leaves a string untouched on null, so the type is checked first.
	if jsonType(raw) != "string" || json.Unmarshal(raw, &s) != nil {
		f.issues = append(f.issues, apierror.InvalidType("string", jsonType(raw), append(path, key)...))
		return nil, true
	}
	return &s, true
}

// object reads an optional JSON-object member.
func (f *fields) object(key string, path ...any) (value map[string]json.RawMessage, present bool) {
	raw, ok := f.obj[key]
	if !ok {
		return nil, false
	}
	if jsonType(raw) != "object" {
		f.issues = append(f.issues, apierror.InvalidType("object", jsonType(raw), append(path, key)...))
		return nil, true
	}
	_ = json.Unmarshal(raw, &value)
	return value, true
}

// requiredString reads a required string member ("" when it is missing or not a string, with
// the issue recorded).
func (f *fields) requiredString(key string, path ...any) string {
	v, present := f.str(key, false, path...)
	if !present {
		f.issues = append(f.issues, apierror.Required("string", append(path, key)...))
	}
	if v == nil {
		return ""
	}
	return *v
}

// boolean reads a boolean member; required makes a missing one an issue. nil when it is
// missing or not a boolean.
func (f *fields) boolean(key string, required bool, path ...any) *bool {
	raw, ok := f.obj[key]
	if !ok {
		if required {
			f.issues = append(f.issues, apierror.Required("boolean", append(path, key)...))
		}
		return nil
	}
	if jsonType(raw) != "boolean" {
		f.issues = append(f.issues, apierror.InvalidType("boolean", jsonType(raw), append(path, key)...))
		return nil
	}
	b := string(bytes.TrimSpace(raw)) == "true"
	return &b
}

// strings reads a required array of strings, with an issue for each item that is not one.
func (f *fields) strings(key string) []string {
	raw, ok := f.obj[key]
	if !ok {
		f.issues = append(f.issues, apierror.Required("array", key))
		return nil
	}
	var items []json.RawMessage
	if jsonType(raw) != "array" || json.Unmarshal(raw, &items) != nil {
		f.issues = append(f.issues, apierror.InvalidType("array", jsonType(raw), key))
		return nil
	}
	out := make([]string, 0, len(items))
	for i, item := range items {
		var s string
		if jsonType(item) != "string" || json.Unmarshal(item, &s) != nil {
			f.issues = append(f.issues, apierror.InvalidType("string", jsonType(item), key, i))
			continue
		}
		out = append(out, s)
	}
	return out
}

// check records an invalid_string issue when ok is false.
func (f *fields) check(ok bool, validation, message string, path ...any) {
	if !ok {
		f.issues = append(f.issues, apierror.InvalidString(validation, message, path...))
	}
}

// jsonType names a JSON value's type as zod does in its messages.
func jsonType(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "undefined"
	}
	switch raw[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// usernamePattern is Logto's username body rule.
var usernamePattern = regexp.MustCompile(`^[A-Z_a-z]\w*$`)

// isURL mirrors zod's url(): anything the WHATWG URL parser accepts as an absolute URL.
func isURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme != "" && (u.Host != "" || u.Opaque != "")
}
