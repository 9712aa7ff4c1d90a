package devcore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
)

// Logto is a Node.js application: its JSON keeps object keys in the order the objects were built,
// and its user columns are Postgres jsonb. Clients should not care about key order, but the
// recorded exchanges are compared byte for byte by some tests, so the dev core reproduces the
// order where it is cheap: fixed shapes are Go structs (field order = Logto's), free-form objects
// use the two helpers below.

// member is one key of an ordered JSON object.
type member struct {
	Key   string
	Value any
}

// ordered is a JSON object that keeps its keys in insertion order (Go maps would sort them).
type ordered []member

// MarshalJSON writes the members in order.
func (o ordered) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, err := marshalNoEscape(m.Key)
		if err != nil {
			return nil, err
		}
		v, err := marshalNoEscape(m.Value)
		if err != nil {
			return nil, err
		}
		buf.Write(k)
		buf.WriteByte(':')
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// get returns the value of key, or nil.
func (o ordered) get(key string) any {
	for _, m := range o {
		if m.Key == key {
			return m.Value
		}
	}
	return nil
}

// set replaces the value of key in place, or appends the key.
func (o ordered) set(key string, value any) ordered {
	for i := range o {
		if o[i].Key == key {
			o[i].Value = value
			return o
		}
	}
	return append(o, member{key, value})
}

// decodeOrdered reads a JSON object keeping its top-level key order; values stay raw.
func decodeOrdered(raw []byte) (ordered, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	var out ordered
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out = out.set(tok.(string), v)
	}
	return out, nil
}

// jsonb re-encodes a JSON value the way Postgres jsonb returns it: object keys sorted by length,
// then bytewise, duplicate keys collapsed to the last one. Logto stores customData and identities
// in jsonb columns, so this is the order its Management API answers with (exchange 35:
// {"n":1,"theme":"dark"}). Numbers keep their text.
func jsonb(v any) (json.RawMessage, error) {
	raw, err := marshalNoEscape(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var parsed any
	if err := dec.Decode(&parsed); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := writeJSONB(&buf, parsed); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeJSONB(buf *bytes.Buffer, v any) error {
	switch t := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool {
			if len(keys[i]) != len(keys[j]) {
				return len(keys[i]) < len(keys[j])
			}
			return keys[i] < keys[j]
		})
		buf.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			kb, _ := marshalNoEscape(k)
			buf.Write(kb)
			buf.WriteByte(':')
			if err := writeJSONB(buf, t[k]); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case []any:
		buf.WriteByte('[')
		for i, e := range t {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeJSONB(buf, e); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	default:
		b, err := marshalNoEscape(t)
		if err != nil {
			return err
		}
		buf.Write(b)
	}
	return nil
}

// marshalNoEscape is json.Marshal without Go's HTML escaping of <, > and &, which Node does not do.
func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// jsonContentType is what Logto (Koa) sends with every JSON body.
const jsonContentType = "application/json; charset=utf-8"

// writeJSON sends v as a JSON body with Logto's content type.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := marshalNoEscape(v)
	if err != nil {
		// Only a programming error gets here; answer the way Logto renders unexpected failures.
		status = http.StatusInternalServerError
		body = []byte(`{"message":"Internal server error."}`)
	}
	w.Header().Set("Content-Type", jsonContentType)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// maxBodyBytes bounds request bodies; the dev core never needs more.
const maxBodyBytes = 1 << 20

// readJSONBody reads a JSON request body as raw JSON. An empty body reads as {} (Koa's body parser
// does the same, which is how exchange 27's empty PATCH becomes an empty update). A body that is
// not JSON is answered like Logto's parser failure: 400 {"message": ...}; ok is false then.
func readJSONBody(w http.ResponseWriter, r *http.Request) (raw json.RawMessage, ok bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		writeJSON(w, http.StatusRequestEntityTooLarge, ordered{{"message", "request entity too large"}})
		return nil, false
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return json.RawMessage("{}"), true
	}
	if !json.Valid(body) {
		var probe any
		err := json.Unmarshal(body, &probe)
		writeJSON(w, http.StatusBadRequest, ordered{{"message", fmt.Sprint(err)}})
		return nil, false
	}
	return body, true
}
