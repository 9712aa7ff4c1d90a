package identitycore

import (
	"strings"
	"testing"
)

func TestIDRules(t *testing.T) {
	for _, ok := range []string{"abc123", "mock-social", "a_b", strings.Repeat("x", 128)} {
		if !ConnectorID.Valid(ok) {
			t.Errorf("connector id %q refused", ok)
		}
	}
	for _, bad := range []string{"", ".", "..", "a.b", "a/b", "a%2Fb", "a b", "ü", "a?b", "a#b", "a\x00", strings.Repeat("x", 129)} {
		if ConnectorID.Valid(bad) || IdentityTarget.Valid(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
	if SessionID.Valid("a.b") || !SessionID.Valid("Ab_-9") {
		t.Error("session ids are nanoids: letters, digits, - and _")
	}
}
