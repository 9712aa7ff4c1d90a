package profilecache

import (
	"encoding/binary"
	"encoding/json"
	"errors"

	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
)

// The shared store keeps a user record in a compact binary form rather than JSON: without the
// in-process level (disable_local_cache) every GET decodes one, and parsing the JSON was most of
// the CPU a Redis hit costs here. The form keeps exactly what the record holds (nil and empty
// apart); the raw JSON parts (customData, profile, identities) are copied in as they are and
// handed back as slices of the stored bytes, never re-parsed.
//
// Layout: a version byte, then the fields in the order of identitycore.User. A string, raw JSON
// or collection is a uvarint n, 0 for nil, else its length (or count) plus one, then its bytes
// (or items); an integer is a varint; *int64 is a presence byte then a varint; the two booleans
// share one flags byte.

// userFormat is the version byte; a record in another form (JSON written by an older version,
// or a newer one) does not decode, which only costs a miss.
const userFormat = 1

var errBadRecord = errors.New("profilecache: malformed cached user record")

func encodeUser(u *identitycore.User) ([]byte, error) {
	n := 64 + len(u.ID) + len(u.CustomData) + len(u.Profile)
	for _, s := range []*string{u.Username, u.PrimaryEmail, u.PrimaryPhone, u.Name, u.Avatar, u.ApplicationID, u.CimdClientID} {
		if s != nil {
			n += len(*s) + binary.MaxVarintLen32
		}
	}
	for k, v := range u.Identities {
		n += len(k) + len(v) + 2*binary.MaxVarintLen32
	}
	for _, v := range u.SSOIdentities {
		n += len(v) + binary.MaxVarintLen32
	}
	b := make([]byte, 0, n)
	b = append(b, userFormat)
	b = appendString(b, u.ID)
	for _, s := range []*string{u.Username, u.PrimaryEmail, u.PrimaryPhone, u.Name, u.Avatar} {
		b = appendOptional(b, s)
	}
	b = appendRaw(b, u.CustomData)
	b = appendLen(b, u.Identities == nil, len(u.Identities))
	for k, v := range u.Identities {
		b = appendString(b, k)
		b = appendRaw(b, v)
	}
	b = append(b, boolByte(u.LastSignInAt != nil))
	if u.LastSignInAt != nil {
		b = binary.AppendVarint(b, *u.LastSignInAt)
	}
	b = binary.AppendVarint(b, u.CreatedAt)
	b = binary.AppendVarint(b, u.UpdatedAt)
	b = appendRaw(b, u.Profile)
	b = appendOptional(b, u.ApplicationID)
	b = appendOptional(b, u.CimdClientID)
	b = append(b, boolByte(u.IsSuspended)|boolByte(u.HasPassword)<<1)
	b = appendLen(b, u.SSOIdentities == nil, len(u.SSOIdentities))
	for _, v := range u.SSOIdentities {
		b = appendRaw(b, v)
	}
	return b, nil
}

// decodeUser reads a record written by encodeUser. Its raw JSON parts share b's memory: b must
// not be modified afterwards (cached records are read-only, see Cache.User).
func decodeUser(b []byte) (*identitycore.User, error) {
	if len(b) == 0 || b[0] != userFormat {
		return nil, errBadRecord
	}
	r := reader{b: b[1:]}
	u := &identitycore.User{}
	u.ID = r.string()
	for _, s := range []**string{&u.Username, &u.PrimaryEmail, &u.PrimaryPhone, &u.Name, &u.Avatar} {
		*s = r.optional()
	}
	u.CustomData = r.raw()
	if n, ok := r.len(); ok {
		u.Identities = make(map[string]json.RawMessage, min(n, len(r.b)))
		for range n {
			if r.err != nil {
				break
			}
			k := r.string()
			u.Identities[k] = r.raw()
		}
	}
	if r.byte() == 1 {
		v := r.varint()
		u.LastSignInAt = &v
	}
	u.CreatedAt = r.varint()
	u.UpdatedAt = r.varint()
	u.Profile = r.raw()
	u.ApplicationID = r.optional()
	u.CimdClientID = r.optional()
	flags := r.byte()
	u.IsSuspended, u.HasPassword = flags&1 != 0, flags&2 != 0
	if n, ok := r.len(); ok {
		u.SSOIdentities = make([]json.RawMessage, 0, min(n, len(r.b)))
		for range n {
			if r.err != nil {
				break
			}
			u.SSOIdentities = append(u.SSOIdentities, r.raw())
		}
	}
	if r.err != nil || len(r.b) != 0 || flags > 3 {
		return nil, errBadRecord
	}
	return u, nil
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// appendLen writes the length prefix of a string, raw JSON or collection (0 for nil).
func appendLen(b []byte, isNil bool, n int) []byte {
	if isNil {
		return append(b, 0)
	}
	return binary.AppendUvarint(b, uint64(n)+1)
}

func appendString(b []byte, s string) []byte {
	return append(appendLen(b, false, len(s)), s...)
}

func appendOptional(b []byte, s *string) []byte {
	if s == nil {
		return appendLen(b, true, 0)
	}
	return appendString(b, *s)
}

func appendRaw(b []byte, v json.RawMessage) []byte {
	return append(appendLen(b, v == nil, len(v)), v...)
}

// reader consumes an encoded record; the first error sticks and every later read is empty.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail() { r.err, r.b = errBadRecord, nil }

func (r *reader) byte() byte {
	if len(r.b) == 0 {
		r.fail()
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) varint() int64 {
	v, k := binary.Varint(r.b)
	if k <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[k:]
	return v
}

// len reads a length prefix: ok is false for nil (or after an error).
func (r *reader) len() (n int, ok bool) {
	v, k := binary.Uvarint(r.b)
	if k <= 0 || v > uint64(len(r.b)) {
		r.fail()
		return 0, false
	}
	r.b = r.b[k:]
	if v == 0 {
		return 0, false
	}
	return int(v - 1), true
}

// bytes reads a length-prefixed run of bytes, nil when it was written as nil.
func (r *reader) bytes() []byte {
	n, ok := r.len()
	if !ok {
		return nil
	}
	if n > len(r.b) {
		r.fail()
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) string() string { return string(r.bytes()) }

func (r *reader) optional() *string {
	v := r.bytes()
	if v == nil {
		return nil
	}
	s := string(v)
	return &s
}

func (r *reader) raw() json.RawMessage {
	v := r.bytes()
	if v == nil {
		return nil
	}
	return json.RawMessage(v)
}
