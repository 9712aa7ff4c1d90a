package devcore

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// apiError is Logto's RequestError body. The field order (code, data, details, message) is the
// order the recorded exchanges show (exchanges 8 and 14).
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Data    any    `json:"data,omitempty"`
	Details string `json:"details,omitempty"`
	Message string `json:"message"`
}

// Logto's English messages (logto-account-api.md section 9) for the codes the dev core emits.
var messages = map[string]string{
	"auth.authorization_header_missing":           "Authorization header is missing.",
	"auth.authorization_token_type_not_supported": "Authorization type is not supported.",
	"auth.unauthorized":                           "Unauthorized. Please check credentials and its scope.",
	"auth.forbidden":                              "Forbidden. Please check your user roles and permissions.",
	"auth.jwt_sub_missing":                        "Missing `sub` in JWT.",
	"entity.not_found":                            "The resource does not exist.",
	"entity.value_too_long":                       "The length of value is too long and exceeds the limit.",
	"entity.invalid_input":                        "Invalid input. Value list must not be empty.",
	"guard.invalid_input":                         "The request body is invalid.",
	"request.invalid_input":                       "Input is invalid. %s",
	"session.invalid_credentials":                 "Incorrect account or password. Please check your input.",
	"user.username_already_in_use":                "This username is already in use.",
	"user.email_already_in_use":                   "This email is associated with an existing account.",
	"user.phone_already_in_use":                   "This phone number is associated with an existing account.",
	"user.invalid_phone":                          "Invalid phone number.",
	"user.identity_not_exist":                     "The social account has not been registered yet.",
	"user.identity_already_in_use":                "The social account has been associated with an existing account.",
	"verification_code.not_found":                 "Verification code not found. Please send verification code first.",
	"verification_code.code_mismatch":             "Invalid verification code.",
	"verification_code.expired":                   "Verification code has expired. Please request a new verification code.",
	"verification_code.exceed_max_try":            "Verification code retries limitation exceeded. Please request a new verification code.",
	"request.message_rate_limited":                "Too many messages sent to this recipient. Please try again later.",
	"connector.unexpected_type":                   "The connector's type is unexpected.",
	"connector.not_found":                         "Cannot find any available connector for type: %s.",
	"connector.invalid_response":                  "The connector's response is invalid.",
	"session.invalid_connector_id":                "Unable to find available connector with id %s.",
	"dev.invalid_input":                           "Invalid input for the dev API: %s",
	"oidc.invalid_request":                        "Request is invalid.",
	"oidc.invalid_client":                         "Client authentication failed.",
	"oidc.invalid_target":                         "Invalid resource indicator.",
	"oidc.unsupported_grant_type":                 "Unsupported `grant_type` requested.",
	"oidc.unsupported_token_type":                 "An OIDC error occurred: oidc.unsupported_token_type.",

	// MFA (mfa.go).
	"user.totp_already_in_use":                                "TOTP is already in use.",
	"user.totp_secret_invalid":                                "Invalid TOTP secret supplied.",
	"user.backup_code_already_in_use":                         "Backup code is already in use.",
	"user.wrong_backup_code_format":                           "Backup code format is invalid.",
	"session.mfa.backup_code_can_not_be_alone":                "Backup code can not be the only MFA.",
	"sign_in_experiences.duplicated_mfa_factors":              "Duplicated MFA factors.",
	"sign_in_experiences.backup_code_cannot_be_enabled_alone": "Backup code cannot be enabled alone.",

	// Sessions, grants and user assets (sessions.go, assets.go).
	"oidc.session_not_found":          "Session not found.",
	"oidc.invalid_session_account_id": "Session accountId mismatch.",
	"oidc.invalid_grant":              "Grant request is invalid.",
	"guard.file_size_exceeded":        "File size exceeded.",
	"guard.mime_type_not_allowed":     "MIME type is not allowed.",
	"storage.not_configured":          "Storage provider is not configured.",
	"storage.upload_error":            "Failed to upload file to the storage provider.",
}

// newError builds a Logto error; args fill a message template (only request.invalid_input and
// the dev codes have one).
func newError(status int, code string, args ...any) *apiError {
	msg := messages[code]
	if len(args) > 0 {
		msg = fmt.Sprintf(msg, args...)
	}
	return &apiError{Status: status, Code: code, Message: msg}
}

func (e *apiError) write(w http.ResponseWriter) { writeJSON(w, e.Status, e) }

// writeInternalError answers like Logto does for a failure that is not a RequestError.
func writeInternalError(w http.ResponseWriter) {
	writeJSON(w, http.StatusInternalServerError, ordered{{"message", "Internal server error."}})
}

func writeError(w http.ResponseWriter, status int, code string) {
	newError(status, code).write(w)
}

// oidcError is the body Logto renders for oidc-provider errors: Logto's code and message first,
// then oidc-provider's own error and error_description (exchange 6).
type oidcError struct {
	Status           int    `json:"-"`
	Code             string `json:"code"`
	Message          string `json:"message"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

func newOIDCError(status int, err, description string) *oidcError {
	code := "oidc." + err
	return &oidcError{Status: status, Code: code, Message: messages[code], Error: err, ErrorDescription: description}
}

func (e *oidcError) write(w http.ResponseWriter) { writeJSON(w, e.Status, e) }

// guard collects zod-style issues for a request body, the way Logto's koaGuard reports them:
// 400 guard.invalid_input with data {issues, name: "ZodError"} and a details string (exchange 14).
// Only the issue kinds the dev core's bodies can produce are modelled.
type guard struct {
	issues []ordered
}

// path is a zod issue path: object keys and array indexes.
type path []any

func (p path) with(key any) path { return append(append(path{}, p...), key) }

// zodType is zod's name for the type of a JSON value ("received" in issues).
func zodType(raw json.RawMessage) string {
	s := strings.TrimSpace(string(raw))
	switch {
	case s == "":
		return "undefined"
	case s == "null":
		return "null"
	case s == "true" || s == "false":
		return "boolean"
	case s[0] == '"':
		return "string"
	case s[0] == '[':
		return "array"
	case s[0] == '{':
		return "object"
	default:
		return "number"
	}
}

// typeIssue: the value is not of the expected type ("Required" when it is missing).
func (g *guard) typeIssue(p path, expected string, raw json.RawMessage) {
	received := zodType(raw)
	msg := fmt.Sprintf("Expected %s, received %s", expected, received)
	if received == "undefined" {
		msg = "Required"
	}
	g.issues = append(g.issues, ordered{
		{"code", "invalid_type"}, {"expected", expected}, {"received", received},
		{"path", nonNilPath(p)}, {"message", msg},
	})
}

// stringIssue: a string failed a check; validation is "regex" or "url".
func (g *guard) stringIssue(p path, validation string) {
	msg := "Invalid"
	if validation == "url" {
		msg = "Invalid url"
	}
	g.issues = append(g.issues, ordered{
		{"validation", validation}, {"code", "invalid_string"}, {"message", msg}, {"path", nonNilPath(p)},
	})
}

// tooSmallIssue: a string is shorter than min (zod .min()).
func (g *guard) tooSmallIssue(p path, min int) {
	g.issues = append(g.issues, ordered{
		{"code", "too_small"}, {"minimum", min}, {"type", "string"}, {"inclusive", true}, {"exact", false},
		{"message", fmt.Sprintf("String must contain at least %d character(s)", min)}, {"path", nonNilPath(p)},
	})
}

// enumIssue: a string is not one of options.
func (g *guard) enumIssue(p path, options []string, got string) {
	quoted := make([]string, len(options))
	for i, o := range options {
		quoted[i] = "'" + o + "'"
	}
	g.issues = append(g.issues, ordered{
		{"received", got}, {"code", "invalid_enum_value"}, {"options", options}, {"path", nonNilPath(p)},
		{"message", fmt.Sprintf("Invalid enum value. Expected %s, received '%s'", strings.Join(quoted, " | "), got)},
	})
}

// unionIssue: a value matched none of the options of `string().or(literal(”))` (the shape of the
// nullable identifier fields of PATCH /api/users/{userId}); zod nests one error per option.
func (g *guard) unionIssue(p path, raw json.RawMessage) {
	var received any
	_ = json.Unmarshal(raw, &received)
	asString := &guard{}
	asString.typeIssue(p, "string", raw)
	literal := ordered{
		{"received", received}, {"code", "invalid_literal"}, {"expected", ""},
		{"path", nonNilPath(p)}, {"message", `Invalid literal value, expected ""`},
	}
	g.issues = append(g.issues, ordered{
		{"code", "invalid_union"},
		{"unionErrors", []ordered{
			{{"issues", asString.issues}, {"name", "ZodError"}},
			{{"issues", []ordered{literal}}, {"name", "ZodError"}},
		}},
		{"path", nonNilPath(p)}, {"message", "Invalid input"},
	})
}

func nonNilPath(p path) path {
	if p == nil {
		return path{}
	}
	return p
}

// err returns the 400 answer for the collected issues, or nil when there are none.
// refused answers the collected issues as Logto's 400 and reports whether there were any.
func (g *guard) refused(w http.ResponseWriter) bool {
	e := g.err()
	if e == nil {
		return false
	}
	e.write(w)
	return true
}

func (g *guard) err() *apiError {
	if len(g.issues) == 0 {
		return nil
	}
	lines := make([]string, len(g.issues))
	for i, is := range g.issues {
		var keys []string
		for _, k := range is.get("path").(path) {
			keys = append(keys, fmt.Sprint(k))
		}
		lines[i] = fmt.Sprintf("Error in key path %q: (%s) %s", strings.Join(keys, "."), is.get("code"), is.get("message"))
	}
	e := newError(http.StatusBadRequest, "guard.invalid_input")
	e.Data = ordered{{"issues", g.issues}, {"name", "ZodError"}}
	e.Details = strings.Join(lines, "\n")
	return e
}

// object reads raw as a JSON object (zod object: unknown keys are later ignored). On any other
// type it records an issue and returns nil.
func (g *guard) object(p path, raw json.RawMessage) map[string]json.RawMessage {
	if zodType(raw) != "object" {
		g.typeIssue(p, "object", raw)
		return nil
	}
	var m map[string]json.RawMessage
	_ = json.Unmarshal(raw, &m)
	return m
}

// str reads raw as a string, recording an issue otherwise.
func (g *guard) str(p path, raw json.RawMessage) (string, bool) {
	if zodType(raw) != "string" {
		g.typeIssue(p, "string", raw)
		return "", false
	}
	var s string
	_ = json.Unmarshal(raw, &s)
	return s, true
}

// nullableString is one of the optional user fields: null, ” or a string that passes check
// (check may be nil). set reports whether the key was present; value nil means null.
type nullableString struct {
	set   bool
	value *string
}

// nullableStr validates `string().<check>.or(literal(”)).nullable()`. check returns the failed
// validation name ("regex", "url") or "".
func (g *guard) nullableStr(body map[string]json.RawMessage, key string, check func(string) string) nullableString {
	raw, ok := body[key]
	if !ok {
		return nullableString{}
	}
	switch zodType(raw) {
	case "null":
		return nullableString{set: true}
	case "string":
		var s string
		_ = json.Unmarshal(raw, &s)
		if s != "" && check != nil {
			if failed := check(s); failed != "" {
				g.stringIssue(path{key}, failed)
				return nullableString{}
			}
		}
		return nullableString{set: true, value: &s}
	default:
		g.unionIssue(path{key}, raw)
		return nullableString{}
	}
}
