package tests

import (
	"net/http"
	"strings"
	"testing"

	"github.com/accountedge/caddy-account-api/tests/devcore"
	"github.com/accountedge/caddy-account-api/tests/harness"
)

// TestManyInstancesOnRedisTopologies runs three Caddy instances on one Redis Sentinel setup, on
// one Redis Cluster and on a TLS-only Redis (by address and by rediss:// url): token answers and
// verification records made on one instance serve the others.
func TestManyInstancesOnRedisTopologies(t *testing.T) {
	for name, redisBlock := range map[string]func(t *testing.T) string{
		"sentinel": func(t *testing.T) string {
			s := harness.StartRedisSentinel(t)
			return "redis {\n address " + s.Sentinel.Addr() + "\n master_name " + s.MasterName + "\n }"
		},
		"cluster": func(t *testing.T) string {
			return "redis {\n address " + strings.Join(harness.StartRedisCluster(t), " ") + "\n }"
		},
		"tls": func(t *testing.T) string {
			r := harness.StartRedisTLS(t)
			return "redis {\n address " + r.Addr() + "\n tls {\n ca_file " + r.CAFile() + "\n }\n }"
		},
		"rediss_url": func(t *testing.T) string {
			r := harness.StartRedisTLS(t)
			return "redis rediss://" + r.Addr() + " {\n tls {\n ca_file " + r.CAFile() + "\n }\n }"
		},
	} {
		t.Run(name, func(t *testing.T) {
			opts := options{extra: redisBlock(t)}
			e := newEnv(t, opts)
			instances := []string{e.caddy.URL(), e.startCaddy(opts).URL(), e.startCaddy(opts).URL()}
			tok := e.userToken(allScopes)
			before := e.stats().Introspections
			for _, base := range instances {
				if r := e.call(base, "GET", "/api/my-account", tok, nil); r.status != 200 {
					t.Fatalf("%s: %d %s", base, r.status, r.body)
				}
			}
			if n := e.stats().Introspections - before; n != 1 {
				t.Fatalf("3 instances made %d introspections for one token, want 1", n)
			}
			// A step-up record made on the first instance is accepted by the other two.
			r := e.call(instances[0], "POST", "/api/verifications/password", tok, map[string]any{"password": devcore.DemoPassword})
			vid := r.json(t)["verificationRecordId"].(string)
			for i, base := range instances[1:] {
				r := e.call(base, "PATCH", "/api/my-account", tok, map[string]any{"username": name + "_user_" + string(rune('a'+i))},
					"logto-verification-id", vid)
				if r.status != http.StatusOK {
					t.Fatalf("instance %d refused the record: %d %s", i+2, r.status, r.body)
				}
			}
		})
	}
}
