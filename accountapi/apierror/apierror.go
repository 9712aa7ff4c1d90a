// Package apierror holds the Account API's error vocabulary: Logto's error codes with their
// English messages and HTTP statuses, and the JSON body Logto renders for them.
package apierror

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Error is a Logto-shaped API error: it renders as {"code","message","data"?,"details"?} with
// Status as the HTTP status.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
	Details string `json:"details,omitempty"`

	// cause is kept for logs only; it never reaches the response body.
	cause error
}

func (e *Error) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("%s (%d): %v", e.Code, e.Status, e.cause)
	}
	return fmt.Sprintf("%s (%d)", e.Code, e.Status)
}

// Unwrap returns the internal cause, if any.
func (e *Error) Unwrap() error { return e.cause }

// New returns the error for code with the given status and the catalogue's message.
func New(status int, code string) *Error {
	return &Error{Status: status, Code: code, Message: Message(code)}
}

// WithData returns a copy of e carrying data in its body.
func (e *Error) WithData(data any) *Error {
	c := *e
	c.Data = data
	return &c
}

// WithDetails returns a copy of e carrying details in its body.
func (e *Error) WithDetails(details string) *Error {
	c := *e
	c.Details = details
	return &c
}

// WithCause returns a copy of e that remembers cause for logging.
func (e *Error) WithCause(cause error) *Error {
	c := *e
	c.cause = cause
	return &c
}

// As returns err as an *Error; anything else becomes a 500.
func As(err error) *Error {
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	return Internal(err)
}

// Internal is an unexpected failure: the body says nothing about the cause.
func Internal(cause error) *Error {
	return New(http.StatusInternalServerError, "unknown").WithCause(cause)
}

// Write renders err as a Logto error body. Any error that is not an *Error becomes a 500
// whose body reveals nothing of the cause.
func Write(w http.ResponseWriter, err error) {
	e := As(err)
	body, mErr := json.Marshal(e)
	if mErr != nil { // only possible with unmarshalable Data: a programming error
		e = Internal(mErr)
		body, _ = json.Marshal(e)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}
