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
	Message    string `json:"message"`
	Path       []any  `json:"path"`
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
	return Issue{
		Code: "too_small", Path: path,
		Message: fmt.Sprintf("String must contain at least %d character(s)", min),
	}
}

// InvalidBody is Logto's 400 guard.invalid_input for a request body, with the zod issues in data
// and the same one-line-per-issue details text.
func InvalidBody(issues ...Issue) *Error {
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
		Message: "The request body is invalid.",
		Data:    map[string]any{"issues": issues, "name": "ZodError"},
		Details: strings.Join(lines, "\n"),
	}
}

// MalformedBody is the answer to a body that is not a JSON object at all.
func MalformedBody(reason string) *Error {
	return New(http.StatusBadRequest, "guard.invalid_input").WithDetails(reason)
}
