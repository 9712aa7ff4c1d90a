#!/usr/bin/env bash
# Build, try out and test the account_api Caddy module.
#
#   ./xcaddy.sh build [--force]   build ./caddy with this module (xcaddy)
#   ./xcaddy.sh run               quickstart: dev core + Caddy with Caddyfile.example
#   ./xcaddy.sh dev ARGS...       xcaddy's plugin-dev mode (xcaddy ARGS) with this machine's GOPROXY fix
#   ./xcaddy.sh test [ARGS...]    the whole test suite (what .ci/run calls)
#   ./xcaddy.sh bench [ARGS...]   benchmark table (tests/bench; ARGS go to it)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"

CADDY_VERSION_PIN="v2.11.9"
XCADDY_VERSION="v0.4.5"
MODULE="github.com/accountedge/caddy-account-api"
# The zero pseudo-version Go gives a replaced module. Naming it in --with lets
# `go get` take this module from ./ without asking the proxy, which answers
# 403 (not 404) for an unpublished path, a hard error.
ZERO_VERSION="v0.0.0-00010101000000-000000000000"
# Where build puts the binary; the tests read the same variable (tests/harness).
export CADDY_BIN="${CADDY_BIN:-$ROOT/caddy}"

usage() {
	cat <<'EOF'
usage: ./xcaddy.sh COMMAND

  build [--force]  build ./caddy (Caddy v2.11.9 + this module) with xcaddy;
                   skipped when ./caddy is newer than the Go sources
  run              quickstart: start the development core (a stand-in for
                   Logto), print a user token and example curl lines, and
                   run Caddy with Caddyfile.example on http://127.0.0.1:8080;
                   ports: DEVCORE_PORT (3901), ACCOUNT_API_HTTP_PORT (8080),
                   ACCOUNT_API_ADMIN_PORT (2019); Ctrl-C or SIGTERM stops all
  dev ARGS...      xcaddy's plugin-dev mode: build Caddy with this checkout
                   and run `caddy ARGS` (e.g. dev list-modules,
                   dev run -- --config Caddyfile.example)
  test [ARGS...]   install test dependencies, build, gofmt, go vet, go test,
                   the account page's browser tests (chromium), the fuzzers
                   (ARGS go to `go test` and skip the rest, e.g. -run TestName -v)
  fuzz             run every fuzz target for FUZZTIME (default 10s)
  bench [ARGS...]  build, then measure req/s and latency of the module
                   against Caddy's respond, coalescing and cache memory
                   (about a minute; ARGS go to tests/bench, e.g. -c 32)
  help             this text
EOF
}

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# find_xcaddy prints the path of xcaddy, installing the pinned version into
# GOPATH/bin when it is neither on PATH nor there already.
find_xcaddy() {
	if command -v xcaddy >/dev/null 2>&1; then
		command -v xcaddy
		return
	fi
	local gobin
	gobin="$(go env GOPATH)/bin"
	if [[ ! -x "$gobin/xcaddy" ]]; then
		log "installing xcaddy $XCADDY_VERSION"
		go install "github.com/caddyserver/xcaddy/cmd/xcaddy@$XCADDY_VERSION"
	fi
	echo "$gobin/xcaddy"
}

# sources_newer_than_caddy prints the first build input newer than ./caddy.
# tests/ and *_test.go do not go into the binary, so editing them does not
# force a rebuild; the account page's files (go:embed) do.
sources_newer_than_caddy() {
	find . \( -path ./tests -o -path ./.git -o -path ./.bin \) -prune -o \
		\( \( -name '*.go' ! -name '*_test.go' \) -o -name go.mod -o -name go.sum -o -path './accountapi/page/assets/*' \) \
		-type f -newer "$CADDY_BIN" -print -quit
}

# build_goproxy prints GOPROXY for xcaddy's plugin-dev mode, which names no
# version: the configured proxies joined with '|' (fall through on any error,
# not only 404/410) and then an empty file:// proxy, which answers "not
# found". A 403 for an unpublished path thus becomes "no such module" and Go
# settles on the replaced module.
# "direct" is dropped: only the module proxy is reachable here, and a git
# fetch of an unpublished path could only fail slowly.
build_goproxy() {
	local empty="$ROOT/.bin/goproxy-empty" list=() entries=() e
	mkdir -p "$empty"
	IFS=',|' read -ra list <<<"$(go env GOPROXY)"
	for e in "${list[@]}"; do
		case "$e" in
		direct | off | "") ;;
		*) entries+=("$e") ;;
		esac
	done
	entries+=("file://$empty")
	(
		IFS='|'
		echo "${entries[*]}"
	)
}

cmd_build() {
	local force=0
	for arg in "$@"; do
		case "$arg" in
		--force) force=1 ;;
		*) die "build: unknown argument $arg" ;;
		esac
	done
	if [[ $force -eq 0 && -x "$CADDY_BIN" && -z "$(sources_newer_than_caddy)" ]]; then
		log "$CADDY_BIN is up to date (use --force to rebuild)"
		return
	fi
	local xcaddy
	xcaddy="$(find_xcaddy)"
	log "building $CADDY_BIN (Caddy $CADDY_VERSION_PIN + $MODULE); a cold build takes 2-3 min on 2 cores, up to 10 when Caddy's modules must be downloaded too"
	# The same recipe as the README's "Building into your own Caddy", with
	# this checkout as the module's source.
	CADDY_VERSION="$CADDY_VERSION_PIN" "$xcaddy" build "$CADDY_VERSION_PIN" \
		--output "$CADDY_BIN" \
		--with "$MODULE@$ZERO_VERSION=$ROOT"
	# A binary without the module would make every later step misleading.
	# (grep without -q: an early exit would SIGPIPE caddy and trip pipefail.)
	if ! "$CADDY_BIN" list-modules | grep -x 'http.handlers.account_api' >/dev/null; then
		die "$CADDY_BIN was built but does not list http.handlers.account_api"
	fi
	log "built $CADDY_BIN"
}

# json_field extracts a top-level string field from a one-line JSON object.
# Values here (URLs, ids, tokens) contain no quotes, so sed is enough and
# the quickstart needs neither jq nor python.
json_field() {
	sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\\([^\"]*\\)\".*/\\1/p" <<<"$2"
}

# port_in_use reports whether something on 127.0.0.1 accepts connections on
# port $1 (bash's /dev/tcp: no extra tool needed).
port_in_use() {
	(: <"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# quickstart_port prints the port in the variable named $1 (default $2) after
# checking it is a number and free; $3 names its user in the error.
quickstart_port() {
	local var="$1" port="${!1:-$2}" what="$3"
	[[ "$port" =~ ^[0-9]+$ ]] && ((port > 0 && port < 65536)) ||
		die "$var=$port is not a port number"
	if port_in_use "$port"; then
		die "port $port ($what) is in use on 127.0.0.1: set $var to a free port, e.g. $var=$((port + 1)) ./xcaddy.sh run"
	fi
	echo "$port"
}

# CHILDREN are the processes `run` started; stop_children ends them (SIGTERM,
# which both handle as a graceful stop) and waits for them, so that the
# script never exits before its children are gone.
CHILDREN=()
stop_children() {
	local pid
	for pid in "${CHILDREN[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${CHILDREN[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	CHILDREN=()
}

cmd_run() {
	[[ -f Caddyfile.example ]] || die "Caddyfile.example missing"
	command -v curl >/dev/null 2>&1 || die "curl is needed (apt-get install -y curl)"
	# Neither 3001 (Logto's own port) nor 3002 (Logto's admin console), so a
	# local Logto can keep running. Caddyfile.example reads the last two.
	local port http_port admin_port
	port="$(quickstart_port DEVCORE_PORT 3901 "the development core")"
	http_port="$(quickstart_port ACCOUNT_API_HTTP_PORT 8080 "Caddy's site")"
	admin_port="$(quickstart_port ACCOUNT_API_ADMIN_PORT 2019 "Caddy's admin API")"
	export ACCOUNT_API_HTTP_PORT="$http_port" ACCOUNT_API_ADMIN_PORT="$admin_port"
	cmd_build

	mkdir -p .bin
	log "building the development core"
	go build -o .bin/devcore ./tests/devcore/cmd/devcore

	# Stop the children however this script ends: Caddy exiting, Ctrl-C,
	# SIGTERM, an error. Caddy runs in the background and the script waits
	# for it with `wait`, which a trapped signal interrupts at once (with a
	# foreground child, bash runs the trap only after the child exits).
	trap stop_children EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM

	local out=.bin/devcore.out errlog=.bin/devcore.log
	: >"$out"
	# The account page of Caddyfile.example signs in with the dev core's SPA, whose redirect URIs
	# must name the site's port.
	.bin/devcore -listen "127.0.0.1:$port" -account-page "http://127.0.0.1:$http_port/account" \
		-account-page "http://localhost:$http_port/account" >"$out" 2>"$errlog" &
	local devcore_pid=$!
	CHILDREN+=("$devcore_pid")

	# The dev core prints one JSON line with its URL and credentials once it
	# is listening; wait for it (or for the process to die).
	local line="" i
	for ((i = 0; i < 150; i++)); do
		line="$(head -n 1 "$out")"
		[[ -n "$line" && "$line" == *"}"* ]] && break
		kill -0 "$devcore_pid" 2>/dev/null || { cat "$errlog" >&2; die "dev core exited at start (DEVCORE_PORT=$port)"; }
		sleep 0.1
	done
	[[ -n "$line" ]] || { cat "$errlog" >&2; die "dev core printed nothing within 15s"; }

	local url client_id client_secret user_id password
	url="$(json_field url "$line")"
	client_id="$(json_field clientId "$line")"
	client_secret="$(json_field clientSecret "$line")"
	user_id="$(json_field demoUserId "$line")"
	password="$(json_field demoPassword "$line")"
	[[ -n "$url" && -n "$client_id" && -n "$user_id" ]] || die "unexpected dev core line: $line"

	# Caddyfile.example reads exactly these.
	export ACCOUNT_API_CORE_URL="$url"
	export ACCOUNT_API_CLIENT_ID="$client_id"
	export ACCOUNT_API_CLIENT_SECRET="$client_secret"

	local resp token
	resp="$(curl -s -X POST "$url/dev/tokens" -H 'content-type: application/json' \
		-d "{\"userId\":\"$user_id\",\"scope\":\"openid profile email phone identities custom_data address urn:logto:scope:sessions\"}")"
	token="$(json_field access_token "$resp")"
	[[ -n "$token" ]] || die "could not mint a user token: $resp"

	local api="http://127.0.0.1:$http_port"
	cat <<EOF

  Development core on $url (log: $errlog)
  It is a DEVELOPMENT STAND-IN for Logto, for trying the module locally:
  in-memory data, a plain dev sign-in form. Point ACCOUNT_API_CORE_URL at a real
  Logto in production.

  Account page: $api/account
  Open it in a browser and sign in as demo (or demo@example.com), password $password.

  Demo user $user_id, password $password. A user access token:

export TOKEN='$token'

  Try (in another terminal):

curl -s $api/api/my-account -H "authorization: Bearer \$TOKEN"
curl -s -X PATCH $api/api/my-account -H "authorization: Bearer \$TOKEN" -H 'content-type: application/json' -d '{"name":"Ada Lovelace"}'
export VID=\$(curl -s -X POST $api/api/verifications/password -H "authorization: Bearer \$TOKEN" -H 'content-type: application/json' -d '{"password":"$password"}' | sed -n 's/.*"verificationRecordId":"\([^"]*\)".*/\1/p'); echo "\$VID"
curl -s -X PATCH $api/api/my-account -H "authorization: Bearer \$TOKEN" -H "logto-verification-id: \$VID" -H 'content-type: application/json' -d '{"username":"ada_lovelace"}'
curl -s $api/api/my-account/user-assets/avatar -H "authorization: Bearer \$TOKEN" -F file=@photo.png

  Starting Caddy with Caddyfile.example on $api (admin 127.0.0.1:$admin_port); Ctrl-C stops both.

EOF
	"$CADDY_BIN" run --config Caddyfile.example --adapter caddyfile &
	local caddy_pid=$! rc=0
	CHILDREN+=("$caddy_pid")
	wait "$caddy_pid" || rc=$?
	exit "$rc"
}

# cmd_dev runs xcaddy's plugin-dev mode (`xcaddy ARGS`: build Caddy with the
# module of the current directory, then run `caddy ARGS`) with the pinned
# Caddy and the GOPROXY of build_goproxy: dev mode names no version, so it
# needs the fall-through that the proxy's 403 for this unpublished path breaks.
#
# Dev mode writes its binary to ./caddy and deletes it afterwards: the binary
# `build` made is moved aside meanwhile and put back however dev mode ends.
cmd_dev() {
	(($# > 0)) || die "dev: give caddy's arguments, e.g. ./xcaddy.sh dev list-modules"
	local xcaddy
	xcaddy="$(find_xcaddy)"
	mkdir -p .bin
	if [[ -e caddy ]]; then
		mv -f caddy .bin/caddy.before-dev
		trap 'mv -f .bin/caddy.before-dev caddy' EXIT
	fi
	GOPROXY="$(build_goproxy)" CADDY_VERSION="$CADDY_VERSION_PIN" "$xcaddy" "$@"
}

# apt_install installs Debian packages (as root, or through sudo).
apt_install() {
	local sudo=()
	if [[ $(id -u) -ne 0 ]]; then
		command -v sudo >/dev/null 2>&1 || die "$* missing and not root: install it"
		sudo=(sudo)
	fi
	"${sudo[@]}" apt-get update
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"
}

# ensure_redis installs redis-server for the tests that need a real one;
# in CI those tests fail rather than skip without it.
ensure_redis() {
	command -v redis-server >/dev/null 2>&1 && return
	log "installing redis-server (apt)"
	apt_install redis-server
}

# ensure_browser_tests installs what the account page's browser tests need: Debian's chromium
# (playwright-core drives it; it never downloads a browser of its own) and zbarimg, Node.js,
# and the pinned playwright-core from tests/browser/package-lock.json.
ensure_browser_tests() {
	if [[ ! -x "${CHROMIUM_BIN:-/usr/bin/chromium}" ]] || ! command -v zbarimg >/dev/null 2>&1; then
		log "installing chromium and zbar-tools (apt; zbarimg reads the page's QR code back)"
		apt_install chromium zbar-tools
	fi
	if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
		log "installing nodejs and npm (apt)"
		apt_install nodejs npm
	fi
	log "npm ci (tests/browser)"
	(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
}

# browser_tests runs the account page in chromium against ./caddy and the dev core, with
# node's test runner, whose summary (tests, pass, fail) ends its part of the output.
browser_tests() {
	mkdir -p .bin
	go build -o .bin/devcore ./tests/devcore/cmd/devcore
	log "browser tests (tests/browser: chromium, screenshots in tests/browser/output/)"
	(cd tests/browser && DEVCORE_BIN="$ROOT/.bin/devcore" node --test --test-reporter=spec)
}

# go_files lists the Go files git knows about (tracked, plus new files not
# ignored so a local run catches them before commit).
go_files() {
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		git ls-files --cached --others --exclude-standard -- '*.go' |
			while IFS= read -r f; do [[ -f "$f" ]] && printf '%s\n' "$f"; done
	else
		find . \( -path ./.git -o -path ./.bin \) -prune -o -name '*.go' -print
	fi
}

cmd_test() {
	ensure_redis
	ensure_browser_tests
	log "go mod download"
	go mod download
	cmd_build

	log "gofmt"
	local files=() unformatted
	mapfile -t files < <(go_files)
	if ((${#files[@]} > 0)); then
		unformatted="$(gofmt -l "${files[@]}")"
		if [[ -n "$unformatted" ]]; then
			printf 'gofmt needed on:\n%s\n' "$unformatted" >&2
			exit 1
		fi
	fi

	log "go vet ./..."
	go vet ./...

	log "go test ./..."
	go test -count=1 -timeout 20m ./... "$@"

	# Only the plain run: extra arguments (e.g. -run X) mean a developer is focusing.
	if (($# == 0)); then
		browser_tests
		cmd_fuzz
	fi
}

# FUZZ_TARGETS are "package target" pairs; each runs for FUZZTIME (default 10s) on top of its
# corpus in testdata/fuzz (which plain `go test` already replays).
FUZZ_TARGETS=(
	"./accountapi/api FuzzDecodeAccountPatch"
	"./accountapi/api FuzzDecodeProfilePatch"
	"./accountapi/api FuzzAvatarUpload"
	"./accountapi/auth FuzzBearerToken"
	"./accountapi/auth FuzzJWTVerify"
)

cmd_fuzz() {
	local entry pkg target
	for entry in "${FUZZ_TARGETS[@]}"; do
		read -r pkg target <<<"$entry"
		log "fuzz $target (${FUZZTIME:-10s})"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "${FUZZTIME:-10s}" "$pkg"
	done
}

# cmd_bench builds Caddy and the dev core, then runs tests/bench: it starts the dev core, a
# redis-server and Caddy on loopback, drives load from its own process and prints one table
# (req/s, p50, p99, ratio to the first row), the coalescing check and the cache memory. It
# bounds its own duration (about a minute) and stops every process it starts. BENCH_ARGS go to
# the bench, e.g. BENCH_ARGS="-duration 10s -c 32".
cmd_bench() {
	ensure_redis
	cmd_build
	mkdir -p .bin
	log "building the development core and the bench"
	go build -o .bin/devcore ./tests/devcore/cmd/devcore
	go build -o .bin/bench ./tests/bench
	# shellcheck disable=SC2086 # BENCH_ARGS is a list of flags
	.bin/bench -caddy "$CADDY_BIN" -devcore .bin/devcore ${BENCH_ARGS:-} "$@"
}

case "${1:-help}" in
build) shift; cmd_build "$@" ;;
run) shift; cmd_run "$@" ;;
dev) shift; cmd_dev "$@" ;;
test) shift; cmd_test "$@" ;;
bench) shift; cmd_bench "$@" ;;
fuzz) shift; cmd_fuzz ;;
help | -h | --help) usage ;;
*)
	usage >&2
	exit 2
	;;
esac
