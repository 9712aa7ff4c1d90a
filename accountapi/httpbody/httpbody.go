// Package httpbody reads request bodies within a size bound and a time bound, so that neither a
// huge nor a slow body can hold a connection or memory for long.
package httpbody

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

// Errors of Read.
var (
	ErrTooLarge = errors.New("httpbody: body too large")
	ErrTimeout  = errors.New("httpbody: body too slow")
	ErrRead     = errors.New("httpbody: body unreadable")
)

// Start bounds the time the request's body may take to arrive, counted from now: reads of the
// body fail after that, including the server's own reading of an unread body after the
// handler, which then closes the connection. Call it first thing for a request that has a
// body, or right before reading a body read late; Read (or Finish) lifts the bound once the
// body is in, so the rest of the request is not cut short. Over HTTP/2 a bound that ran out
// ends the body for good: a later Start does not bring it back.
func Start(w http.ResponseWriter, r *http.Request, timeout time.Duration) {
	if timeout <= 0 || r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(timeout))
}

// Read reads the whole body, at most maxBytes of it. A body that does not arrive within the
// bound Start set is ErrTimeout; the response then asks to close the connection.
func Read(w http.ResponseWriter, r *http.Request, maxBytes int64) ([]byte, error) {
	if r.ContentLength > maxBytes {
		return nil, ErrTooLarge
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBytes))
	if err == nil {
		Finish(w)
		return raw, nil
	}
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return nil, ErrTooLarge
	}
	if TimedOut(w, err) {
		return nil, ErrTimeout
	}
	return nil, ErrRead
}

// Finish lifts the bound Start set, once the body is in: the rest of the request is not bound
// (the server watches the idle connection from then on, and a deadline left on it would end the
// request). After a failure the bound stays, so the server's reading of what is left fails fast
// and the connection closes.
func Finish(w http.ResponseWriter) {
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
}

// TimedOut reports whether err, from reading the body, is the bound Start set running out; the
// response then asks to close the connection, whose unread rest cannot be read in time either.
func TimedOut(w http.ResponseWriter, err error) bool {
	if ne, ok := errors.AsType[net.Error](err); (ok && ne.Timeout()) || errors.Is(err, os.ErrDeadlineExceeded) {
		w.Header().Set("Connection", "close")
		return true
	}
	return false
}
