package caddymodule

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/redis/go-redis/v9"

	"github.com/accountedge/caddy-account-api/tests/harness"
)

// TestRedisTLSChecksTheServer: over TLS the module trusts the server only through the given
// authority and name; an unknown authority or another name is refused at the handshake.
func TestRedisTLSChecksTheServer(t *testing.T) {
	rs := harness.StartRedisTLS(t)
	for name, c := range map[string]struct {
		config RedisConfig
		want   string // "" when PING must answer
	}{
		"trusted authority":   {RedisConfig{Addresses: []string{rs.Addr()}, TLS: &RedisTLS{CAFile: rs.CAFile()}}, ""},
		"rediss url":          {RedisConfig{URL: "rediss://" + rs.Addr(), TLS: &RedisTLS{CAFile: rs.CAFile()}}, ""},
		"system authorities":  {RedisConfig{Addresses: []string{rs.Addr()}, TLS: &RedisTLS{}}, "certificate"},
		"another server name": {RedisConfig{Addresses: []string{rs.Addr()}, TLS: &RedisTLS{CAFile: rs.CAFile(), ServerName: "redis.example"}}, "certificate"},
		"plain to a tls port": {RedisConfig{Addresses: []string{rs.Addr()}}, "EOF"},
	} {
		c.config.setDefaults()
		opts, err := c.config.options()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		opts.MaxRetries = -1
		client := redis.NewUniversalClient(opts)
		err = client.Ping(context.Background()).Err()
		client.Close()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: got %v, want an error about %q", name, err, c.want)
		}
	}
}

func TestUnmarshalRedisTLS(t *testing.T) {
	var h Handler
	d := caddyfile.NewTestDispenser(`account_api https://core.example {
		redis {
			address 10.0.0.1:6379 10.0.0.2:6379
			tls {
				ca_file /etc/redis/ca.pem
				server_name redis.internal
			}
		}
	}`)
	if err := h.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	if tls := h.Redis.TLS; tls == nil || tls.CAFile != "/etc/redis/ca.pem" || tls.ServerName != "redis.internal" {
		t.Fatalf("tls: %+v", h.Redis.TLS)
	}
	h = Handler{}
	if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("account_api https://core.example {\nredis {\naddress 10.0.0.1:6379\ntls\n}\n}")); err != nil || h.Redis.TLS == nil {
		t.Fatalf("a bare tls: %v %+v", err, h.Redis)
	}
	for input, want := range map[string]string{
		"tls on":                    "wrong argument count",
		"tls {\nverify off\n}":      `unrecognized redis tls option "verify"`,
		"tls {\nca_file\n}":         "wrong argument count",
		"tls {\nserver_name\n}":     "wrong argument count",
		"tls {\nca_file a b\n}":     "wrong argument count",
		"tls {\nserver_name a b\n}": "wrong argument count",
	} {
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("account_api https://core.example {\nredis {\naddress 10.0.0.1:6379\n" + input + "\n}\n}"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", input, err, want)
		}
	}
}

func TestConfigureRefusesRedisTLS(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		redis RedisConfig
		want  string
	}{
		"plain url":   {RedisConfig{URL: "redis://10.0.0.1:6379", TLS: &RedisTLS{}}, "tls with a redis:// url, which is unencrypted: use rediss://"},
		"skip_verify": {RedisConfig{URL: "rediss://10.0.0.1:6379?skip_verify=1", TLS: &RedisTLS{}}, "drop skip_verify"},
		"no file":     {RedisConfig{Addresses: []string{"10.0.0.1:6379"}, TLS: &RedisTLS{CAFile: "/nonexistent/ca.pem"}}, "redis tls ca_file: open /nonexistent/ca.pem"},
		"not pem":     {RedisConfig{Addresses: []string{"10.0.0.1:6379"}, TLS: &RedisTLS{CAFile: notPEM}}, "holds no PEM certificate"},
		"unset":       {RedisConfig{Addresses: []string{"10.0.0.1:6379"}, TLS: &RedisTLS{CAFile: "{env.ACCOUNT_API_TEST_UNSET}"}}, "redis tls ca_file is empty"},
	} {
		h := base()
		h.Redis = &c.redis
		if err := h.configure(caddy.NewReplacer()); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", name, err, c.want)
		} else if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: the error quotes the password: %v", name, err)
		}
	}
}

// TestRedisPoolKeyFollowsTrust: a reload that changes whom the TLS connection trusts (its
// authority file's content, skip_verify, the server name) gets a new client.
func TestRedisPoolKeyFollowsTrust(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	pem, err := os.ReadFile("testdata/redis-ca.pem")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ca, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	key := func(c RedisConfig) string {
		c.setDefaults()
		k, _, err := c.poolKey()
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	base := key(RedisConfig{Addresses: []string{"10.0.0.1:6379"}, TLS: &RedisTLS{CAFile: ca}})
	if key(RedisConfig{Addresses: []string{"10.0.0.1:6379"}, TLS: &RedisTLS{CAFile: ca}}) != base {
		t.Fatal("the same settings must share the client")
	}
	if key(RedisConfig{Addresses: []string{"10.0.0.1:6379"}, TLS: &RedisTLS{CAFile: ca, ServerName: "redis.internal"}}) == base {
		t.Error("another server name shared the client")
	}
	if key(RedisConfig{URL: "rediss://10.0.0.1:6379?skip_verify=true"}) == key(RedisConfig{URL: "rediss://10.0.0.1:6379"}) {
		t.Error("dropping skip_verify kept the client that skips the checks")
	}
	if err := os.WriteFile(ca, append(pem, pem...), 0o600); err != nil { // rotated in place
		t.Fatal(err)
	}
	if key(RedisConfig{Addresses: []string{"10.0.0.1:6379"}, TLS: &RedisTLS{CAFile: ca}}) == base {
		t.Error("an authority rotated in its file kept the old client")
	}
}

// TestUnencryptedConnectionsAreNamed: what Provision warns of, and only that.
func TestUnencryptedConnectionsAreNamed(t *testing.T) {
	for name, c := range map[string]struct {
		edit func(h *Handler)
		want []string
	}{
		"https core":               {func(h *Handler) {}, nil},
		"http core on loopback":    {func(h *Handler) { h.CoreURL = "http://127.0.0.1:3001" }, nil},
		"http core on localhost":   {func(h *Handler) { h.CoreURL = "http://localhost:3001" }, nil},
		"http core on ::1":         {func(h *Handler) { h.CoreURL = "http://[::1]:3001" }, nil},
		"http core on the network": {func(h *Handler) { h.CoreURL = "http://logto:3001" }, []string{"core_url is http://"}},
		"redis on loopback":        {func(h *Handler) { h.Redis = &RedisConfig{Addresses: []string{"127.0.0.1:6379"}} }, nil},
		"redis on the network":     {func(h *Handler) { h.Redis = &RedisConfig{Addresses: []string{"127.0.0.1:6379", "10.0.0.2:6379"}} }, []string{"redis is not encrypted"}},
		"redis url on the network": {func(h *Handler) { h.Redis = &RedisConfig{URL: "redis://cache:6379/0"} }, []string{"redis is not encrypted"}},
		"rediss url":               {func(h *Handler) { h.Redis = &RedisConfig{URL: "rediss://cache:6379/0"} }, nil},
		"redis tls":                {func(h *Handler) { h.Redis = &RedisConfig{Addresses: []string{"10.0.0.2:6379"}, TLS: &RedisTLS{}} }, nil},
		"rediss without verifying": {func(h *Handler) { h.Redis = &RedisConfig{URL: "rediss://cache:6379/0?skip_verify=true"} }, []string{"skip_verify"}},
		"skip_verify=1":            {func(h *Handler) { h.Redis = &RedisConfig{URL: "rediss://cache:6379/0?skip_verify=1"} }, []string{"skip_verify"}},
		"unix socket":              {func(h *Handler) { h.Redis = &RedisConfig{URL: "unix:///run/redis.sock"} }, nil},
		"localhost.":               {func(h *Handler) { h.Redis = &RedisConfig{Addresses: []string{"localhost.:6379"}} }, nil},
		"both in clear": {func(h *Handler) {
			h.CoreURL = "http://10.0.0.1"
			h.Redis = &RedisConfig{URL: "redis://10.0.0.3:6379"}
		}, []string{"core_url is http://", "redis is not encrypted"}},
	} {
		h := base()
		c.edit(&h)
		if err := h.configure(caddy.NewReplacer()); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := h.unencrypted()
		if len(got) != len(c.want) {
			t.Errorf("%s: warnings %q, want %d", name, got, len(c.want))
			continue
		}
		for i, w := range c.want {
			if !strings.Contains(got[i], w) {
				t.Errorf("%s: warning %q, want one about %q", name, got[i], w)
			}
		}
	}
}
