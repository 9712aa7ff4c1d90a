package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddytest"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	d := caddyfile.NewTestDispenser(`account_api https://core.example {
		client_id m2m
		client_secret {env.SECRET}
		management_resource https://tenant.logto.app/api
		core_timeout 2s
		jwt {
			audience https://api.example https://api2.example
			algorithms RS256 ES384
			leeway 30s
		}
		cache_key 0123456789abcdef0123
		token_cache_ttl 1m
		negative_cache_ttl 5s
		token_cache_size 5000
		redis redis://127.0.0.1:6379/2 {
			key_prefix acct:
			timeout 50ms
		}
		account_center {
			enabled true
			fields {
				name edit
				avatar read_only
			}
		}
		cors_origins https://app.example
		max_body_size 64KiB
	}`)
	var h Handler
	if err := h.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	switch {
	case h.CoreURL != "https://core.example", h.ClientID != "m2m", h.ClientSecret != "{env.SECRET}":
		t.Fatalf("core settings: %+v", h)
	case time.Duration(h.CoreTimeout) != 2*time.Second, time.Duration(h.TokenCacheTTL) != time.Minute:
		t.Fatalf("durations: %+v", h)
	case h.JWT == nil || len(h.JWT.Audiences) != 2 || len(h.JWT.Algorithms) != 2 || time.Duration(h.JWT.Leeway) != 30*time.Second:
		t.Fatalf("jwt: %+v", h.JWT)
	case h.Redis == nil || h.Redis.URL != "redis://127.0.0.1:6379/2" || h.Redis.KeyPrefix != "acct:":
		t.Fatalf("redis: %+v", h.Redis)
	case h.AccountCenter == nil || *h.AccountCenter.Enabled != true || h.AccountCenter.Fields["avatar"] != "read_only":
		t.Fatalf("account center: %+v", h.AccountCenter)
	case h.MaxBodySize != 64*1024 || h.TokenCacheSize != 5000 || h.CORSOrigins[0] != "https://app.example":
		t.Fatalf("limits: %+v", h)
	}
}

func TestUnmarshalCaddyfileErrors(t *testing.T) {
	for name, input := range map[string]string{
		"unknown option":  "account_api { colour blue }",
		"bad duration":    "account_api { core_timeout soon }",
		"two args":        "account_api { client_id a b }",
		"unknown jwt":     "account_api { jwt { audiance x } }",
		"bad enabled":     "account_api { account_center { enabled maybe } }",
		"extra directive": "account_api http://a http://b",
		"bad size":        "account_api { max_body_size lots }",
	} {
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err == nil {
			t.Errorf("%s: accepted %q", name, input)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := Handler{CoreURL: "http://core", ClientID: "a", ClientSecret: "b"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, h := range map[string]Handler{
		"no core":         {ClientID: "a", ClientSecret: "b"},
		"no secret":       {CoreURL: "http://core", ClientID: "a"},
		"jwt without aud": {CoreURL: "http://core", ClientID: "a", ClientSecret: "b", JWT: &JWTConfig{}},
		"short key":       {CoreURL: "http://core", ClientID: "a", ClientSecret: "b", CacheKey: "short"},
		"redis nothing":   {CoreURL: "http://core", ClientID: "a", ClientSecret: "b", Redis: &RedisConfig{}},
	} {
		if err := h.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestProvisionResolvesPlaceholdersAndStaticSettings(t *testing.T) {
	t.Setenv("ACCOUNT_API_TEST_SECRET", "s3cret-value")
	enabled := false
	h := Handler{CoreURL: "http://127.0.0.1:1", ClientID: "m2m", ClientSecret: "{env.ACCOUNT_API_TEST_SECRET}",
		AccountCenter: &AccountCenterConfig{Enabled: &enabled, Fields: map[string]string{"name": "edit"}}}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	if err := h.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	defer h.Cleanup()
	if h.ClientSecret != "s3cret-value" || h.rt.settings != nil {
		t.Fatalf("secret %q, cached settings %v", h.ClientSecret, h.rt.settings)
	}
	bad := Handler{CoreURL: "http://127.0.0.1:1", ClientID: "m2m", ClientSecret: "x",
		AccountCenter: &AccountCenterConfig{Fields: map[string]string{"name": "write"}}}
	if err := bad.Provision(ctx); err == nil {
		t.Fatal("an unknown field control was accepted")
	}
}

// TestCaddyfileAdapt compares `caddy adapt` output with testdata/*.caddytest (Caddyfile, a
// "----------" line, the expected JSON). UPDATE_GOLDEN=1 rewrites the expected JSON.
func TestCaddyfileAdapt(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.caddytest")
	if len(files) == 0 {
		t.Fatal("no golden files")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		input, expected, ok := strings.Cut(string(data), "----------\n")
		if !ok {
			t.Fatalf("%s: no separator", f)
		}
		if os.Getenv("UPDATE_GOLDEN") != "" {
			out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(input), nil)
			if err != nil {
				t.Fatal(err)
			}
			var pretty bytes.Buffer
			_ = json.Indent(&pretty, out, "", "\t")
			_ = os.WriteFile(f, []byte(input+"----------\n"+pretty.String()+"\n"), 0o644)
			continue
		}
		if !caddytest.CompareAdapt(t, f, input, "caddyfile", strings.TrimRight(expected, "\n")) {
			t.Errorf("%s: adapted JSON differs", f)
		}
	}
}
