package caddymodule

import (
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/accountedge/caddy-account-api/accountapi/api"
	"github.com/accountedge/caddy-account-api/accountapi/ratelimit"
)

func TestUnmarshalRateLimits(t *testing.T) {
	var h Handler
	err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`account_api https://core.example {
		rate_limits {
			code_send_per_identifier 5 15m
			code_tries_per_record 3
			password_failures_per_ip 4 1h
			token_failures_per_ip off
			code_send_plus_addressing distinct
		}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	l := h.RateLimits.limits()
	def := api.DefaultLimits()
	switch {
	case l.CodeSendPerIdentifier != ratelimit.Limit{Max: 5, Window: 15 * time.Minute}:
		t.Fatalf("code_send_per_identifier: %+v", l.CodeSendPerIdentifier)
	case l.CodeTriesPerRecord != 3:
		t.Fatalf("code_tries_per_record: %d", l.CodeTriesPerRecord)
	case l.PasswordFailuresPerIP != ratelimit.Limit{Max: 4, Window: time.Hour}:
		t.Fatalf("password_failures_per_ip: %+v", l.PasswordFailuresPerIP)
	case !l.TokenFailuresPerIP.Off() || !l.DistinctSubaddresses:
		t.Fatalf("token_failures_per_ip off, code_send_plus_addressing distinct: %+v", l)
	case l.CodeSendPerUser != def.CodeSendPerUser || l.CodeCheckPerUser != def.CodeCheckPerUser:
		t.Fatalf("unset limits must keep their defaults: %+v", l)
	}
	if (*RateLimitsConfig)(nil).limits() != def {
		t.Fatal("no rate_limits block must mean the defaults")
	}
}

func TestUnmarshalRateLimitsErrors(t *testing.T) {
	for name, input := range map[string]string{
		"unknown limit":  "account_api { rate_limits { codes 1 1m } }",
		"missing window": "account_api { rate_limits { password_failures_per_ip 5 } }",
		"zero max":       "account_api { rate_limits { password_failures_per_ip 0 1m } }",
		"bad window":     "account_api { rate_limits { password_failures_per_ip 5 soon } }",
		"gone option":    "account_api { rate_limits { password_failures 5 1m } }",
		"plus":           "account_api { rate_limits { code_send_plus_addressing maybe } }",
		"zero tries":     "account_api { rate_limits { code_tries_per_record 0 } }",
		"extra args":     "account_api { rate_limits { code_check_per_user 5 1m 2 } }",
	} {
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err == nil {
			t.Errorf("%s: accepted %q", name, input)
		}
	}
}
