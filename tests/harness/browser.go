package harness

import (
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Browser is a cookie-keeping HTTP client that follows no redirect, so a test checks every hop
// of a sign-in or sign-out as a browser would make it. Base is the origin it talks to.
type Browser struct {
	t      testing.TB
	Base   string
	client *http.Client
}

// NewBrowser returns a Browser on base with no cookies.
func NewBrowser(t testing.TB, base string) *Browser {
	jar, _ := cookiejar.New(nil)
	return &Browser{t: t, Base: base, client: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// From makes the browser connect from 127.0.0.n: another client address on this machine.
func (b *Browser) From(n byte) *Browser {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, n)}, Timeout: 5 * time.Second}
	b.client.Transport = &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}
	return b
}

// Send makes a request to Base+path, with form as a form-encoded body when it is not nil, and
// returns the status, headers and body of the answer. A request that gets no answer fails the
// test.
func (b *Browser) Send(method, path string, form url.Values) (int, http.Header, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.Base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(raw)
}
