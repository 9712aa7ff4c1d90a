package apierror

import (
	"fmt"
	"net/http"
	"strings"
)

// Issue is one input problem, shaped like the zod issues Logto's koaGuard reports.
type Issue struct {
	Code       string `json:"code"`
	Validation string `json:"validation,omitempty"`
	Expected   string `json:"expected,omitempty"`
	Received   string `json:"received,omitempty"`
	// Options, Minimum, Type, Inclusive and Exact are the extra members zod gives
	// invalid_union_discriminator and too_small issues.
	Options   []string `json:"options,omitempty"`
	Minimum   *int     `json:"minimum,omitempty"`
	Maximum   *int     `json:"maximum,omitempty"`
	Type      string   `json:"type,omitempty"`
	Inclusive *bool    `json:"inclusive,omitempty"`
	Exact     *bool    `json:"exact,omitempty"`
	Message   string   `json:"message"`
	Path      []any    `json:"path"`
}

// InvalidType reports a value of the wrong JSON type at path.
func InvalidType(expected, received string, path ...any) Issue {
	return Issue{
		Code: "invalid_type", Expected: expected, Received: received, Path: path,
		Message: fmt.Sprintf("Expected %s, received %s", expected, received),
	}
}

// InvalidString reports a string that failed a format check (validation "url", "regex", ...).
func InvalidString(validation, message string, path ...any) Issue {
	return Issue{Code: "invalid_string", Validation: validation, Message: message, Path: path}
}

// TooSmall reports a string shorter than min.
func TooSmall(min int, path ...any) Issue {
	inclusive, exact := true, false
	return Issue{
		Code: "too_small", Path: path, Minimum: &min, Type: "string", Inclusive: &inclusive, Exact: &exact,
		Message: fmt.Sprintf("String must contain at least %d character(s)", min),
	}
}

// Required reports a missing member, as zod does ("Required").
func Required(expected string, path ...any) Issue {
	return Issue{Code: "invalid_type", Expected: expected, Received: "undefined", Message: "Required", Path: path}
}

// TooBig reports a string longer than max.
func TooBig(max int, path ...any) Issue {
	inclusive, exact := true, false
	return Issue{
		Code: "too_big", Path: path, Maximum: &max, Type: "string", Inclusive: &inclusive, Exact: &exact,
		Message: fmt.Sprintf("String must contain at most %d character(s)", max),
	}
}

// BadDiscriminator reports a discriminated union's tag that is none of options.
func BadDiscriminator(options []string, path ...any) Issue {
	return Issue{Code: "invalid_union_discriminator", Options: options, Path: path,
		Message: "Invalid discriminator value. Expected " + enumUnion(options)}
}

// InvalidEnum reports a string that is none of options (zod enum and nativeEnum).
func InvalidEnum(options []string, got string, path ...any) Issue {
	return Issue{Code: "invalid_enum_value", Received: got, Options: options, Path: path,
		Message: fmt.Sprintf("Invalid enum value. Expected %s, received '%s'", enumUnion(options), got)}
}

// NotAnEnumValue reports a value of another JSON type (e.g. a repeated query parameter, which
// is an array) where an enum was expected.
func NotAnEnumValue(options []string, received string, path ...any) Issue {
	return InvalidType(enumUnion(options), received, path...)
}

// enumUnion names an enum's values as zod does: 'a' | 'b'.
func enumUnion(options []string) string {
	quoted := make([]string, len(options))
	for i, o := range options {
		quoted[i] = "'" + o + "'"
	}
	return strings.Join(quoted, " | ")
}

// InvalidBody is Logto's 400 guard.invalid_input for a request body, with the zod issues in data
// and the same one-line-per-issue details text.
func InvalidBody(issues ...Issue) *Error { return invalidInput("body", issues) }

// InvalidQuery is InvalidBody for the query string.
func InvalidQuery(issues ...Issue) *Error { return invalidInput("query", issues) }

// InvalidFiles is InvalidBody for the files of a multipart body.
func InvalidFiles(issues ...Issue) *Error { return invalidInput("files", issues) }

func invalidInput(part string, issues []Issue) *Error {
	if issues == nil {
		issues = []Issue{} // zod's issues are a list, even an empty one
	}
	lines := make([]string, len(issues))
	for i, is := range issues {
		path := make([]string, len(is.Path))
		for j, p := range is.Path {
			path[j] = fmt.Sprint(p)
		}
		lines[i] = fmt.Sprintf("Error in key path %q: (%s) %s", strings.Join(path, "."), is.Code, is.Message)
	}
	return &Error{
		Status:  http.StatusBadRequest,
		Code:    "guard.invalid_input",
		Message: "The request " + part + " is invalid.",
		Data:    map[string]any{"issues": issues, "name": "ZodError"},
		Details: strings.Join(lines, "\n"),
	}
}

// MalformedBody is the answer to a body that is not a JSON object at all.
func MalformedBody(reason string) *Error {
	return New(http.StatusBadRequest, "guard.invalid_input").WithDetails(reason)
}
