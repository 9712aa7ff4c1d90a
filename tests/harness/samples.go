package harness

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
)

// Exchange is one request/response pair recorded from a live Logto core
// (tests/testdata/logto/logto-samples*.json).
type Exchange struct {
	Title    string         `json:"title"`
	Note     string         `json:"note,omitempty"`
	Request  SampleRequest  `json:"request"`
	Response SampleResponse `json:"response"`
}

// SampleRequest is the recorded request. Body is raw JSON ("null" when
// the request had none); secrets in headers are placeholders such as
// "Bearer <m2m-access-token>".
type SampleRequest struct {
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body"`
}

// SampleResponse is the recorded response. Body is raw JSON: an object,
// an array, a string for non-JSON bodies, or null for empty ones.
type SampleResponse struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body"`
}

// HasBody reports whether the recorded body is present (not JSON null).
func (r SampleRequest) HasBody() bool { return hasJSON(r.Body) }

// HasBody reports whether the recorded body is present (not JSON null).
func (r SampleResponse) HasBody() bool { return hasJSON(r.Body) }

func hasJSON(b json.RawMessage) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && !bytes.Equal(b, []byte("null"))
}

// LoadSamples reads tests/testdata/logto/<file> (logto-samples.json or
// logto-samples-stepup.json) and returns its exchanges in recorded order;
// the order matters because later exchanges depend on earlier state.
func LoadSamples(t testing.TB, file string) []Exchange {
	t.Helper()
	path := Testdata(t, file)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("harness: read samples: %v", err)
	}
	var doc struct {
		About     string     `json:"about"`
		Exchanges []Exchange `json:"exchanges"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("harness: parse samples %s: %v", path, err)
	}
	if len(doc.Exchanges) == 0 {
		t.Fatalf("harness: samples %s hold no exchanges", path)
	}
	return doc.Exchanges
}

// Sample returns the exchange with exactly this title and fails the test
// when there is none, so a renamed sample shows up as a clear failure.
func Sample(t testing.TB, exchanges []Exchange, title string) Exchange {
	t.Helper()
	for _, e := range exchanges {
		if e.Title == title {
			return e
		}
	}
	t.Fatalf("harness: no sample titled %q", title)
	return Exchange{}
}
