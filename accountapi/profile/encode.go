package profile

import (
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"
)

// The profile is encoded by hand: it is the body of every account page load, and encoding/json
// spends most of its time there on reflection, on one allocation per Field, and on validating
// and compacting again the raw JSON the core sent (custom data, identities, profile claims),
// which json.Unmarshal has already validated. The output is byte for byte what json.Marshal of
// the struct gives (TestAppendJSONMatchesEncodingJSON).

// MarshalJSON implements json.Marshaler.
func (v View) MarshalJSON() ([]byte, error) { return v.AppendJSON(make([]byte, 0, 512)), nil }

// AppendJSON appends the JSON encoding of v to b.
func (v View) AppendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, v.ID)
	b = appendStringPtr(b, "username", v.Username)
	b = appendStringPtr(b, "primaryEmail", v.PrimaryEmail)
	b = appendStringPtr(b, "primaryPhone", v.PrimaryPhone)
	b = appendStringPtr(b, "name", v.Name)
	b = appendStringPtr(b, "avatar", v.Avatar)
	b = appendRaw(b, "customData", v.CustomData)
	if v.Identities.set {
		b = append(b, `,"identities":`...)
		if v.Identities.value == nil {
			b = append(b, "null"...)
		} else {
			b = append(b, '{')
			keys := make([]string, 0, len(v.Identities.value))
			for k := range v.Identities.value {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for i, k := range keys {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendString(b, k)
				b = append(b, ':')
				b = appendRawValue(b, v.Identities.value[k])
			}
			b = append(b, '}')
		}
	}
	if v.LastSignInAt.set {
		b = append(b, `,"lastSignInAt":`...)
		if v.LastSignInAt.value == nil {
			b = append(b, "null"...)
		} else {
			b = strconv.AppendInt(b, *v.LastSignInAt.value, 10)
		}
	}
	b = appendInt(b, "createdAt", v.CreatedAt)
	b = appendInt(b, "updatedAt", v.UpdatedAt)
	b = appendRaw(b, "profile", v.Profile)
	b = appendStringPtr(b, "applicationId", v.ApplicationID)
	b = appendStringPtr(b, "cimdClientId", v.CimdClientID)
	b = appendBool(b, "isSuspended", v.IsSuspended)
	b = appendBool(b, "hasPassword", v.HasPassword)
	b = append(b, `,"hasSecurityVerificationMethod":`...)
	b = strconv.AppendBool(b, v.HasSecurityVerificationMethod)
	return append(b, '}')
}

func member(b []byte, name string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	return append(b, '"', ':')
}

func appendStringPtr(b []byte, name string, f Field[*string]) []byte {
	if !f.set {
		return b
	}
	b = member(b, name)
	if f.value == nil {
		return append(b, "null"...)
	}
	return appendString(b, *f.value)
}

func appendRaw(b []byte, name string, f Field[json.RawMessage]) []byte {
	if !f.set {
		return b
	}
	return appendRawValue(member(b, name), f.value)
}

// appendRawValue appends JSON the core sent, already validated by json.Unmarshal. encoding/json
// would compact it; the core's bodies are compact already, and any insignificant whitespace
// left is still valid JSON.
func appendRawValue(b []byte, raw json.RawMessage) []byte {
	if len(raw) == 0 {
		return append(b, "null"...)
	}
	return append(b, raw...)
}

func appendInt(b []byte, name string, f Field[int64]) []byte {
	if !f.set {
		return b
	}
	return strconv.AppendInt(member(b, name), f.value, 10)
}

func appendBool(b []byte, name string, f Field[bool]) []byte {
	if !f.set {
		return b
	}
	return strconv.AppendBool(member(b, name), f.value)
}

const hex = "0123456789abcdef"

// appendString appends s as a JSON string exactly as encoding/json does by default: HTML
// characters, U+2028 and U+2029 escaped, invalid UTF-8 replaced by U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
