package caddymodule

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// readmeOptionExamples holds one working Caddyfile line (or block) per documented option,
// keyed by the option's path in the README's options table (subdirectives after their block,
// with a dot). Each is added to a minimal valid configuration and must adapt and validate.
var readmeOptionExamples = map[string]string{
	"core_url":                              "core_url https://auth.example.com",
	"client_id":                             "client_id m2m",
	"client_secret":                         "client_secret {env.ACCOUNT_API_README_SECRET}",
	"management_resource":                   "management_resource https://tenant.logto.app/api",
	"management_scope":                      "management_scope all",
	"core_timeout":                          "core_timeout 2s",
	"jwt":                                   "jwt {\naudience https://api.example.com\n}",
	"jwt.audience":                          "jwt {\naudience https://api.example.com https://api2.example.com\n}",
	"jwt.issuer":                            "jwt {\naudience a\nissuer https://auth.example.com/oidc\n}",
	"jwt.jwks_url":                          "jwt {\naudience a\njwks_url https://auth.example.com/oidc/jwks\n}",
	"jwt.algorithms":                        "jwt {\naudience a\nalgorithms RS256 ES384\n}",
	"jwt.leeway":                            "jwt {\naudience a\nleeway 30s\n}",
	"cache_key":                             "cache_key 0123456789abcdef",
	"token_cache_ttl":                       "token_cache_ttl 1m",
	"negative_cache_ttl":                    "negative_cache_ttl 5s",
	"token_cache_size":                      "token_cache_size 5000",
	"redis":                                 "redis redis://127.0.0.1:6379/0",
	"redis.url":                             "redis {\nurl rediss://user:pw@127.0.0.1:6380/1\n}",
	"redis.address":                         "redis {\naddress 127.0.0.1:7000 127.0.0.1:7001\n}",
	"redis.master_name":                     "redis {\naddress 127.0.0.1:26379\nmaster_name mymaster\n}",
	"redis.username":                        "redis {\naddress 127.0.0.1:6379\nusername app\n}",
	"redis.password":                        "redis {\naddress 127.0.0.1:6379\npassword {env.REDIS_PASSWORD}\n}",
	"redis.db":                              "redis {\naddress 127.0.0.1:6379\ndb 2\n}",
	"redis.key_prefix":                      "redis {\naddress 127.0.0.1:6379\nkey_prefix acct:\n}",
	"redis.timeout":                         "redis {\naddress 127.0.0.1:6379\ntimeout 50ms\n}",
	"redis.dial_timeout":                    "redis {\naddress 127.0.0.1:6379\ndial_timeout 1s\n}",
	"redis.tls":                             "redis {\naddress 10.0.0.1:6379 10.0.0.2:6379\ntls\n}",
	"redis.tls.ca_file":                     "redis {\naddress 10.0.0.1:6379\ntls {\nca_file testdata/redis-ca.pem\n}\n}",
	"redis.tls.server_name":                 "redis {\naddress 10.0.0.1:6379\ntls {\nserver_name redis.internal\n}\n}",
	"account_center":                        "account_center {\nenabled true\n}",
	"account_center.enabled":                "account_center {\nenabled false\n}",
	"account_center.fields":                 "account_center {\nfields {\nname edit\ncustomData read_only\ntrustedDevice off\n}\n}",
	"account_center.cache_ttl":              "account_center {\ncache_ttl 1m\n}",
	"cors_origins":                          "cors_origins https://app.example.com http://localhost:5173",
	"max_body_size":                         "max_body_size 512KB",
	"policy_cache_ttl":                      "policy_cache_ttl 2m",
	"profile_cache":                         "profile_cache off",
	"profile_cache.max_age":                 "profile_cache {\nmax_age 30s\n}",
	"profile_cache.max_entries":             "profile_cache {\nmax_entries 500\n}",
	"disable_local_cache":                   "disable_local_cache",
	"webhook":                               "webhook /webhooks/logto {\nsigning_key k1_0123456789abcdef\n}",
	"webhook.path":                          "webhook {\npath /hooks/logto\nsigning_key k1_0123456789abcdef\n}",
	"webhook.signing_key":                   "webhook {\nsigning_key k1_0123456789abcdef k2_0123456789abcdef\n}",
	"rate_limits":                           "rate_limits {\ntoken_failures_per_ip 60 1m\n}",
	"rate_limits.code_send_per_identifier":  "rate_limits {\ncode_send_per_identifier 10 10m\n}",
	"rate_limits.code_send_per_user":        "rate_limits {\ncode_send_per_user 20 10m\n}",
	"rate_limits.code_tries_per_record":     "rate_limits {\ncode_tries_per_record 10\n}",
	"rate_limits.code_check_per_user":       "rate_limits {\ncode_check_per_user 30 10m\n}",
	"rate_limits.code_send_per_ip":          "rate_limits {\ncode_send_per_ip 50 10m\n}",
	"rate_limits.code_send_plus_addressing": "rate_limits {\ncode_send_plus_addressing distinct\n}",
	"rate_limits.password_failures_per_ip":  "rate_limits {\npassword_failures_per_ip 10 15m\n}",
	"rate_limits.token_failures_per_ip":     "rate_limits {\ntoken_failures_per_ip off\n}",
	"body_timeout":                          "body_timeout 10s",
	"webhook.max_age":                       "webhook {\nsigning_key k1_0123456789abcdef\nmax_age 2m\n}",
	"page":                                  "page /account {\nclient_id spa-app\n}",
	"page.path":                             "page {\npath /me\nclient_id spa-app\n}",
	"page.client_id":                        "page {\nclient_id {env.ACCOUNT_API_README_SECRET}\n}",
	"page.issuer":                           "page {\nclient_id spa-app\nissuer https://auth.example.com/oidc\n}",
	"page.scopes":                           "page {\nclient_id spa-app\nscopes openid profile email\n}",
}

// TestReadmeOptionsTable keeps the README's options table and the Caddyfile parser in step:
// every option the parser knows is documented, and every documented option has an example
// that adapts and validates.
func TestReadmeOptionsTable(t *testing.T) {
	documented := readmeOptions(t)
	for _, path := range documented {
		if _, ok := readmeOptionExamples[path]; !ok {
			t.Errorf("README documents %q: add an example of it to readmeOptionExamples", path)
		}
	}
	for path := range readmeOptionExamples {
		if !slices.Contains(documented, path) {
			t.Errorf("%q has an example but no row in the README's options table", path)
		}
	}

	// Every documented option is accepted.
	t.Setenv("ACCOUNT_API_README_SECRET", "s3cret")
	t.Setenv("REDIS_PASSWORD", "pw")
	for path, example := range readmeOptionExamples {
		input := "account_api {\ncore_url https://auth.example.com\nclient_id m2m\nclient_secret s3cret\n" + example + "\n}"
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err != nil {
			t.Errorf("%s: the README's option is not accepted: %v", path, err)
			continue
		}
		if err := h.configure(caddy.NewReplacer()); err != nil {
			t.Errorf("%s: the README's option is refused: %v", path, err)
		}
	}

	// Every option the parser knows is documented: each case label of the Caddyfile parser
	// (at least one of a clause's spellings) is a name in the table.
	names := map[string]bool{}
	for _, path := range documented {
		for _, n := range strings.Split(path, ".") {
			names[n] = true
		}
	}
	for _, clause := range parserOptions(t) {
		if !slices.ContainsFunc(clause, func(n string) bool { return names[n] }) {
			t.Errorf("the Caddyfile parser accepts %s, which the README's options table does not document", strings.Join(clause, "/"))
		}
	}
}

// readmeOptions returns the option paths of the options table in README.md's Configuration
// section: the first word of each code span in a row's first cell, joined with dots
// ("`jwt` › `audience <aud…>`" is jwt.audience).
func readmeOptions(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n## Configuration\n")
	if !ok {
		t.Fatal("README.md has no Configuration section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	_, table, ok := strings.Cut(section, "\n| option |")
	if !ok {
		t.Fatal("the Configuration section has no options table")
	}
	span := regexp.MustCompile("`([^`]+)`")
	var paths []string
	for _, line := range strings.Split(table, "\n")[2:] {
		if !strings.HasPrefix(line, "|") {
			break
		}
		first, _, _ := strings.Cut(strings.ReplaceAll(line[1:], `\|`, ""), "|")
		first, _, _ = strings.Cut(first, "(") // "(or the directive's argument)"
		var parts []string
		for _, m := range span.FindAllStringSubmatch(first, -1) {
			parts = append(parts, strings.Fields(m[1])[0])
		}
		if len(parts) == 0 {
			t.Fatalf("options table row without an option: %s", line)
		}
		paths = append(paths, strings.Join(parts, "."))
	}
	if len(paths) < 10 {
		t.Fatalf("only %d options found in the README's table", len(paths))
	}
	return paths
}

// parserOptions returns the string case labels of the switch statements in the package's
// Caddyfile parsing functions (UnmarshalCaddyfile and unmarshal*), one list per case clause.
func parserOptions(t *testing.T) [][]string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var clauses [][]string
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || !strings.HasPrefix(strings.ToLower(fn.Name.Name), "unmarshal") {
				continue
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				cc, ok := n.(*ast.CaseClause)
				if !ok {
					return true
				}
				var labels []string
				for _, e := range cc.List {
					if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
						s, _ := strconv.Unquote(lit.Value)
						labels = append(labels, s)
					}
				}
				if len(labels) > 0 {
					clauses = append(clauses, labels)
				}
				return true
			})
		}
	}
	if len(clauses) < 10 {
		t.Fatalf("only %d Caddyfile options found in the parser", len(clauses))
	}
	return clauses
}
