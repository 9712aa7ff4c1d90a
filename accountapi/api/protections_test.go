package api

import (
	"net/http"
	"testing"
)

func TestClientNetworkCountsIPv6By64(t *testing.T) {
	for ip, want := range map[string]string{
		"192.0.2.7":                "192.0.2.7",
		"::ffff:192.0.2.7":         "192.0.2.7", // an IPv4 client seen on a dual-stack socket
		"2001:db8:1:2:3:4:5:6":     "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1":     "2001:db8:1:2::/64",
		"fe80::1%eth0":             "fe80::/64",
		"not an address":           "not an address",
		"2001:db8:1:3::1":          "2001:db8:1:3::/64",
		"2001:0db8:0001:0002::abc": "2001:db8:1:2::/64",
	} {
		p := Protections{ClientIP: func(*http.Request) string { return ip }}
		if got := p.clientNetwork(nil); got != want {
			t.Errorf("%s → %s, want %s", ip, got, want)
		}
	}
}
