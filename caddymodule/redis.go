package caddymodule

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
)

// RedisConfig connects the module to Redis: standalone, Sentinel or Cluster.
type RedisConfig struct {
	// URL is a redis:// or rediss:// URL of one server. It holds the username, password and
	// database, so it cannot be combined with Addresses, Username, Password, DB or MasterName.
	URL string `json:"url,omitempty"`

	// Addresses are host:port pairs: one for a standalone server, several for a Cluster, or the
	// Sentinels when MasterName is set. In the Caddyfile: address (addresses is accepted too).
	Addresses []string `json:"addresses,omitempty"`

	// MasterName is the Sentinel master name; setting it selects Sentinel.
	MasterName string `json:"master_name,omitempty"`

	// Username and Password authenticate to Redis. Use placeholders such as {env.REDIS_PASSWORD}.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`

	// DB is the database number (standalone and Sentinel only).
	DB int `json:"db,omitempty"`

	// KeyPrefix starts every key the module writes. Default: "account_api:".
	KeyPrefix string `json:"key_prefix,omitempty"`

	// Timeout bounds each Redis call: a slow Redis must cost less than a cache miss.
	// Default: 100ms.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// DialTimeout bounds connecting. Default: 500ms.
	DialTimeout caddy.Duration `json:"dial_timeout,omitempty"`

	// TLS, when set, encrypts every connection (to the server, the Cluster's nodes, or the
	// Sentinels and the master they name) and checks the servers' certificates. With a url, TLS
	// comes from its scheme (rediss://); this block then only adjusts it.
	TLS *RedisTLS `json:"tls,omitempty"`
}

// RedisTLS is how the module checks Redis's certificates.
type RedisTLS struct {
	// CAFile is a PEM file of the certificate authorities that sign the servers' certificates,
	// for a Redis whose certificates no authority of the system signs. Default: the system's.
	CAFile string `json:"ca_file,omitempty"`

	// ServerName is the name the servers' certificates must carry. Default: the host of each
	// address (an IP address must then be in the certificate).
	ServerName string `json:"server_name,omitempty"`
}

// config builds the TLS settings on base (a rediss:// url's, or nil), and the digest of the
// authorities it read (zero without a ca_file), for the pool key.
func (t *RedisTLS) config(base *tls.Config) (*tls.Config, [sha256.Size]byte, error) {
	var digest [sha256.Size]byte
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if base != nil {
		cfg = base.Clone()
	}
	if t.ServerName != "" {
		cfg.ServerName = t.ServerName
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, digest, fmt.Errorf("account_api: redis tls ca_file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, digest, fmt.Errorf("account_api: redis tls ca_file %s holds no PEM certificate", t.CAFile)
		}
		digest = sha256.Sum256(pem)
	}
	return cfg, digest, nil
}

func (c *RedisConfig) setDefaults() {
	if c.KeyPrefix == "" {
		c.KeyPrefix = "account_api:"
	}
	if c.Timeout == 0 {
		c.Timeout = caddy.Duration(100 * time.Millisecond)
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = caddy.Duration(500 * time.Millisecond)
	}
}

// redisPool shares Redis clients across config reloads: a reload with the same connection
// settings keeps its pool of connections instead of reconnecting.
var redisPool = caddy.NewUsagePool()

type pooledClient struct{ redis.UniversalClient }

// Destruct closes the client when the last config using it is cleaned up.
func (p pooledClient) Destruct() error { return p.Close() }

// poolKey identifies the connection the configuration makes (the key of redisPool), with the
// password hashed so it never sits in memory dumps of the pool's keys in the clear.
func (c *RedisConfig) poolKey() (string, *redis.UniversalOptions, error) {
	opts, authorities, err := c.connection()
	if err != nil {
		return "", nil, err
	}
	// What decides whom a TLS connection trusts is in it too: a reload that rotates the
	// authorities in their file, or drops skip_verify, must get a new client.
	var trust any
	if t := opts.TLSConfig; t != nil {
		trust = []any{t.ServerName, t.InsecureSkipVerify, authorities}
	}
	fingerprint, _ := json.Marshal([]any{opts.Addrs, opts.MasterName, opts.Username,
		sha256.Sum256([]byte(opts.Password)), opts.DB, trust, c.Timeout, c.DialTimeout})
	sum := sha256.Sum256(fingerprint)
	return "account_api.redis." + hex.EncodeToString(sum[:]), opts, nil
}

// client returns the shared client for this configuration and the pool key to release.
func (c *RedisConfig) client() (redis.UniversalClient, string, error) {
	key, opts, err := c.poolKey()
	if err != nil {
		return nil, "", err
	}
	v, _, err := redisPool.LoadOrNew(key, func() (caddy.Destructor, error) {
		return pooledClient{redis.NewUniversalClient(opts)}, nil
	})
	if err != nil {
		return nil, "", err
	}
	return v.(pooledClient).UniversalClient, key, nil
}

// parseRedisURL is redis.ParseURL with errors that never quote the url, which holds the
// password (url.Parse's errors quote it whole).
func parseRedisURL(s string) (*redis.Options, error) {
	opts, err := redis.ParseURL(s)
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
	}
	return opts, err
}

// options converts the configuration (placeholders resolved, validated) for go-redis.
func (c *RedisConfig) options() (*redis.UniversalOptions, error) {
	opts, _, err := c.connection()
	return opts, err
}

// connection is options, with the digest of the TLS authorities' file it read (see config).
func (c *RedisConfig) connection() (*redis.UniversalOptions, [sha256.Size]byte, error) {
	var authorities [sha256.Size]byte
	opts := &redis.UniversalOptions{
		Addrs:      c.Addresses,
		MasterName: c.MasterName,
		Username:   c.Username,
		Password:   c.Password,
		DB:         c.DB,
	}
	if c.URL != "" {
		parsed, err := parseRedisURL(c.URL)
		if err != nil {
			return nil, authorities, fmt.Errorf("account_api: redis url: %w", err)
		}
		opts.Addrs = []string{parsed.Addr}
		opts.Username, opts.Password, opts.DB, opts.TLSConfig = parsed.Username, parsed.Password, parsed.DB, parsed.TLSConfig
	}
	if c.TLS != nil {
		cfg, digest, err := c.TLS.config(opts.TLSConfig)
		if err != nil {
			return nil, authorities, err
		}
		opts.TLSConfig, authorities = cfg, digest
	}
	timeout := time.Duration(c.Timeout)
	opts.ClientName = "caddy-account-api"
	opts.DialTimeout = time.Duration(c.DialTimeout)
	opts.ReadTimeout = timeout
	opts.WriteTimeout = timeout
	opts.PoolTimeout = timeout
	// Without it go-redis ignores context deadlines (caddy-engineering.md finding 3).
	opts.ContextTimeoutEnabled = true
	opts.MaxRetries = 1
	opts.MinIdleConns = 2
	return opts, authorities, nil
}
