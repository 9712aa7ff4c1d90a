package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sentinel is a Redis master watched by one Sentinel, as a module configured with
// `redis { address <sentinel>; master_name <name> }` sees it.
type Sentinel struct {
	Master     *Redis
	Sentinel   *Redis
	MasterName string
}

// StartRedisSentinel starts a master and a Sentinel monitoring it as "mymaster".
func StartRedisSentinel(t testing.TB) *Sentinel {
	t.Helper()
	master := StartRedis(t)
	port := FreePort(t)
	conf := filepath.Join(t.TempDir(), "sentinel.conf")
	// Sentinel rewrites its config file, so it lives in a writable temporary folder.
	body := fmt.Sprintf("bind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 %d 1\nsentinel down-after-milliseconds mymaster 1000\n", master.Port())
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startRedis(t, port, []string{conf, "--sentinel"})
	// The Sentinel knows the master once it answers get-master-addr-by-name.
	c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr()})
	defer c.Close()
	waitFor(t, 10*time.Second, "sentinel to know its master", func() bool {
		addr, err := c.GetMasterAddrByName(context.Background(), "mymaster").Result()
		return err == nil && len(addr) == 2
	})
	return &Sentinel{Master: master, Sentinel: s, MasterName: "mymaster"}
}

// StartRedisCluster starts three masters in cluster mode and joins them into one cluster that
// covers every slot; it returns their addresses.
func StartRedisCluster(t testing.TB) []string {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Fatalf("harness: redis-cli (from the redis-tools package) is needed to create a cluster")
	}
	var addrs []string
	for i := 0; i < 3; i++ {
		port := FreePort(t)
		r := startRedis(t, port, []string{"--cluster-enabled", "yes",
			"--cluster-config-file", fmt.Sprintf("nodes-%d.conf", port), "--cluster-node-timeout", "2000"})
		addrs = append(addrs, r.Addr())
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("harness: redis-cli --cluster create: %v\n%s", err, out)
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	defer c.Close()
	waitFor(t, 15*time.Second, "the cluster to be ok", func() bool {
		info, err := c.ClusterInfo(context.Background()).Result()
		return err == nil && strings.Contains(info, "cluster_state:ok")
	})
	return addrs
}

func waitFor(t testing.TB, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); !ok(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("harness: timed out waiting for %s", what)
		}
	}
}
