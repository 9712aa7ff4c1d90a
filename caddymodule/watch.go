package caddymodule

import (
	"net/http"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// successWatcher calls fire once, as soon as the next handler's final status is a success and
// before the body reaches the client: a cache then drops what the core has just changed (an
// admin's account-center or user change passing through the site), and the admin's next read
// sees the change.
type successWatcher struct {
	*caddyhttp.ResponseWriterWrapper
	fire    func()
	decided bool // the final status is known (and acted upon)
}

func watchSuccess(w http.ResponseWriter, fire func()) *successWatcher {
	return &successWatcher{ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: w}, fire: fire}
}

func (s *successWatcher) WriteHeader(status int) {
	if !s.decided && status >= 200 && status < 300 {
		s.fire()
	}
	if status >= 200 {
		s.decided = true // 1xx responses come before the final one
	}
	s.ResponseWriterWrapper.WriteHeader(status)
}

// Write covers a next handler that writes without WriteHeader (an implicit 200).
func (s *successWatcher) Write(b []byte) (int, error) {
	if !s.decided {
		s.fire()
		s.decided = true
	}
	return s.ResponseWriterWrapper.Write(b)
}
