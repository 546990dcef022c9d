#!/usr/bin/env bash
# loadtest/http/run.sh: the public REST API under HTTP load.
#
# Seeds one tenant with 10,000 users in a fresh PostgreSQL database and runs
# the node two ways on loopback, side by side: one process
# (`switchboard serve --services all`, gateway + identity in process) and
# split in two (`serve --services gateway` calling identity over gRPC in
# `serve --services identity,routing,events,webhooks,edge`, both signing with one
# internal key). PostgreSQL as a member of switchboard_app, so row-level
# security applies; Redis for the cache and rate limits. wrk drives
# API-key-authenticated `GET /v1/users/{id}` and `GET /v1/users?limit=50`
# at each. `pgbench -S` on the same database, in the same run and
# interleaved with our rounds, is the baseline. Prints a Markdown table;
# exits non-zero only when the setup fails, never for a missed target.
# Knobs: loadtest/http/README.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

DB=${BENCH_DB:-sb_bench}
APP_ROLE=${BENCH_APP_ROLE:-sb_bench_app}
USERS=${BENCH_USERS:-10000}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
THREADS=${BENCH_THREADS:-2}
DURATION=${BENCH_DURATION:-20}
WARMUP=${BENCH_WARMUP:-5}
ROUNDS=${BENCH_ROUNDS:-3}
POOL=${BENCH_POOL:-8}
PGBENCH_SCALE=${BENCH_PGBENCH_SCALE:-10}
ADMIN_URL=${BENCH_ADMIN_URL:-postgres://switchboard_test:switchboard_test@127.0.0.1:5432/postgres}
REDIS_URL=${BENCH_REDIS_URL:-redis://127.0.0.1:6379}
LOG_LEVEL=${BENCH_LOG_LEVEL:-warn}
SSLMODE=${BENCH_PG_SSLMODE:-prefer}
TARGET_GET_RPS=5000
TARGET_GET_P99_MS=20
TARGET_LIST_RPS=1500
TARGET_GET_VS_PGBENCH=0.25 # one process, GET /v1/users/{id}, ÷ pgbench -S
TARGET_SPLIT_VS_ONE=0.80   # split ÷ one process, each scenario (the hop costs < 20 %)

say() { printf '==> %s\n' "$*" >&2; }
die() {
  printf 'loadtest/http/run.sh: %s\n' "$*" >&2
  exit 1
}

for knob in USERS CONNECTIONS THREADS DURATION WARMUP ROUNDS POOL PGBENCH_SCALE; do
  [[ ${!knob} =~ ^[1-9][0-9]*$ ]] || die "BENCH_$knob must be a positive integer (got '${!knob}')"
done
[[ $DB =~ ^[a-z_][a-z0-9_]*$ ]] || die "BENCH_DB must be a plain lowercase identifier"
[[ $APP_ROLE =~ ^[a-z_][a-z0-9_]*$ ]] || die "BENCH_APP_ROLE must be a plain lowercase identifier"
[[ $ADMIN_URL == postgres://*@127.0.0.1:*/* || $ADMIN_URL == postgresql://*@127.0.0.1:*/* ]] ||
  die "BENCH_ADMIN_URL must be postgres://user:password@127.0.0.1:port/db (loopback only)"
[[ $SSLMODE =~ ^(disable|prefer|require)$ ]] || die "BENCH_PG_SSLMODE must be disable, prefer or require"
[[ $REDIS_URL == redis://127.0.0.1:* ]] || die "BENCH_REDIS_URL must be redis://127.0.0.1:port (loopback only)"

# --- tools -----------------------------------------------------------------

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v jq >/dev/null || missing+=(jq)
command -v curl >/dev/null || missing+=(curl)
command -v psql >/dev/null || missing+=(postgresql-client)
command -v pgbench >/dev/null || missing+=(postgresql) # Debian ships pgbench with the server
command -v redis-cli >/dev/null || missing+=(redis-tools)
command -v pgrep >/dev/null || missing+=(procps)
if ((${#missing[@]})); then
  sudo=()
  ((EUID == 0)) || sudo=(sudo)
  say "installing ${missing[*]}"
  "${sudo[@]}" apt-get install -y "${missing[@]}" >/dev/null ||
    { "${sudo[@]}" apt-get update >/dev/null && "${sudo[@]}" apt-get install -y "${missing[@]}" >/dev/null; } ||
    die "cannot install ${missing[*]}"
fi
command -v cargo >/dev/null || die "cargo is not on PATH"

# --- backends --------------------------------------------------------------

psql_at() { # URL, psql arguments…: quiet, unaligned, stop on the first error
  local url=$1
  shift
  psql "$url" -X -q -At -v ON_ERROR_STOP=1 "$@"
}
masked() { sed -E 's#(://[^:/@]+):[^@]*@#\1:***@#' <<<"$1"; }
bench_url() { printf '%s/%s?sslmode=%s' "${ADMIN_URL%/*}" "$1" "$SSLMODE"; } # the admin URL on database $1

if ! psql_at "$ADMIN_URL" -c 'SELECT 1' >/dev/null 2>&1; then
  if [[ -z ${BENCH_ADMIN_URL:-} ]] && ((EUID == 0)) && command -v runuser >/dev/null &&
    runuser -u postgres -- psql -X -q -At -d postgres -c 'SELECT 1' >/dev/null 2>&1; then
    say "creating the switchboard_test role, as ./scripts/test does"
    runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -d postgres <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'switchboard_test') THEN
    CREATE ROLE switchboard_test LOGIN SUPERUSER PASSWORD 'switchboard_test';
  END IF;
END $$;
SQL
  fi
  psql_at "$ADMIN_URL" -c 'SELECT 1' >/dev/null ||
    die "cannot connect to PostgreSQL as $(masked "$ADMIN_URL"); start it (./scripts/test does) or set BENCH_ADMIN_URL"
fi
[[ $(psql_at "$ADMIN_URL" -c 'SELECT rolsuper FROM pg_roles WHERE rolname = current_user') == t ]] ||
  die "$(masked "$ADMIN_URL") must be a superuser (it creates a role and seeds past row-level security)"
max_connections=$(psql_at "$ADMIN_URL" -c 'SHOW max_connections')
# The one-process server and the split's identity node keep pools of up to
# $POOL each, the split's gateway (which queries nothing itself) one of 2,
# plus a few system-scope connections; other clients may be connected.
in_use=$(psql_at "$ADMIN_URL" -c 'SELECT count(*) FROM pg_stat_activity WHERE backend_type = $$client backend$$')
((CONNECTIONS + 2 * POOL + 2 + 8 + in_use <= max_connections)) ||
  die "pgbench needs $CONNECTIONS connections and the servers 2 × $POOL + 10; PostgreSQL allows $max_connections and $in_use are in use"
redis-cli -u "$REDIS_URL" ping 2>/dev/null | grep -q PONG ||
  die "Redis does not answer at $REDIS_URL; start it (./scripts/test does) or set BENCH_REDIS_URL"

# --- the binary ------------------------------------------------------------

bin=${SWITCHBOARD_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/switchboard}
if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
  say "building the release binary (cargo build --release -p switchboard)"
  (cd "$repo" && cargo build --release -p switchboard) || die "the release build failed"
fi
[[ -x $bin ]] || die "no binary at $bin"

# --- work directory, and stopping what we start ------------------------------

work=$(mktemp -d "${TMPDIR:-/tmp}/sb-http-bench.XXXXXX")
cache_prefix="sb_bench_$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
# The servers, by name: `one` (every service in one process), `gateway` and
# `identity` (the split). Stopped in reverse order of start.
declare -A server_pid=()
started=()
stop_server() { # NAME
  local pid=${server_pid[$1]:-}
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local status=$? index name
  for ((index = ${#started[@]} - 1; index >= 0; index--)); do
    stop_server "${started[index]}"
  done
  # Our rate-limit buckets expire by themselves; remove them anyway.
  redis-cli -u "$REDIS_URL" --scan --pattern "$cache_prefix:*" 2>/dev/null | head -n 100000 |
    xargs -r -n 500 redis-cli -u "$REDIS_URL" del >/dev/null 2>&1 || true
  if ((status != 0)); then
    printf 'loadtest/http/run.sh: failed; the server logs are kept in %s/*.log\n' "$work" >&2
    for name in "${started[@]}"; do
      printf -- '--- %s.log (last lines)\n' "$name" >&2
      tail -n 20 "$work/$name.log" 2>/dev/null >&2 || true
    done
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- database --------------------------------------------------------------

admin_db=$(bench_url "$DB")
say "creating database $DB (dropping the previous one)"
psql_at "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
# SWITCHBOARD_BIN is this script's knob, not a config key: the binary would
# refuse it as unknown.
env -u SWITCHBOARD_BIN SWITCHBOARD_DATABASE__URL="$admin_db" SWITCHBOARD_TELEMETRY__LOG_LEVEL=warn \
  "$bin" migrate up >"$work/migrate.log" 2>&1 || { cat "$work/migrate.log" >&2; die "migrate up failed"; }

app_password=$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')
# The system workers (relay, webhook dispatcher, number lookup) log in as a
# role of their own, a member of switchboard_system.
sys_role="${APP_ROLE}_sys"
psql_at "$admin_db" -v role="$APP_ROLE" -v sys="$sys_role" -v password="$app_password" >/dev/null <<'SQL'
SET client_min_messages = warning;
SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOBYPASSRLS', :'role')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD :'password';
GRANT switchboard_app TO :"role";
SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOBYPASSRLS', :'sys')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'sys') \gexec
ALTER ROLE :"sys" LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD :'password';
GRANT switchboard_system TO :"sys";
-- A plan whose rate limits the benchmark cannot reach, so no request is a 429.
INSERT INTO plans (code, name, seat_limit, api_requests_per_second, api_burst, features, created_at)
VALUES ('bench', 'Benchmark', 1000000, 1e9, 1000000000, 'voice,chat', now());
SQL
app_url="postgres://$APP_ROLE:$app_password@${ADMIN_URL#*@}"
app_url="${app_url%/*}/$DB?sslmode=$SSLMODE"
sys_url="postgres://$sys_role:$app_password@${ADMIN_URL#*@}"
sys_url="${sys_url%/*}/$DB?sslmode=$SSLMODE"

# --- the servers -----------------------------------------------------------

# One internal key that every process signs and checks service credentials
# with, and one access-token key, as a deployment's nodes share them.
mkdir -p "$work/keys"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/keys/internal.key"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/keys/access-token.key"
chmod 600 "$work/keys/"*.key

# Starts `switchboard serve --services SERVICES` as NAME in the background,
# with its own data directory; more SWITCHBOARD_* settings may follow.
start_server() { # NAME SERVICES [VAR=VALUE…]
  local name=$1 services=$2
  shift 2
  mkdir -p "$work/$name/data"
  (
    cd "$work/$name"
    exec env -u RUST_LOG -u SWITCHBOARD_BIN \
      SWITCHBOARD_DATA_DIR="$work/$name/data" \
      SWITCHBOARD_DATABASE__URL="$app_url" \
      SWITCHBOARD_DATABASE__SYSTEM_URL="$sys_url" \
      SWITCHBOARD_DATABASE__MAX_CONNECTIONS="$POOL" \
      SWITCHBOARD_CACHE__BACKEND=redis \
      SWITCHBOARD_CACHE__REDIS__URL="$REDIS_URL" \
      SWITCHBOARD_CACHE__REDIS__KEY_PREFIX="$cache_prefix" \
      SWITCHBOARD_BUS__BACKEND=memory \
      SWITCHBOARD_OBJECTS__BACKEND=local \
      SWITCHBOARD_SERVER__HTTP_ADDR=127.0.0.1:0 \
      SWITCHBOARD_SERVER__GRPC_ADDR=127.0.0.1:0 \
      SWITCHBOARD_SERVER__METRICS_ADDR=127.0.0.1:0 \
      SWITCHBOARD_EDGE__SIP_UDP=127.0.0.1:0 \
      SWITCHBOARD_EDGE__SIP_TCP=127.0.0.1:0 \
      SWITCHBOARD_SERVER__SHUTDOWN_GRACE=5s \
      SWITCHBOARD_TELEMETRY__LOG_LEVEL="$LOG_LEVEL" \
      SWITCHBOARD_GATEWAY__EXPOSE_VERIFICATION_TOKEN=true \
      SWITCHBOARD_INTERNAL__SIGNING_KEYS="[{kid=\"bench-internal\",secret_file=\"$work/keys/internal.key\"}]" \
      SWITCHBOARD_AUTH__SIGNING_KEYS="[{kid=\"bench-access\",secret_file=\"$work/keys/access-token.key\"}]" \
      "$@" \
      "$bin" serve --services "$services"
  ) >"$work/$name.out" 2>"$work/$name.log" &
  server_pid[$name]=$!
  started+=("$name")
}

# Waits until NAME has printed its addresses and answers /readyz with 200;
# sets http_of[NAME] and grpc_of[NAME].
declare -A http_of=() grpc_of=()
wait_ready() { # NAME
  local name=$1 pid=${server_pid[$1]} http= grpc=
  for _ in $(seq 300); do
    kill -0 "$pid" 2>/dev/null || die "the server $name exited at start"
    http=$(sed -n 's#^ *HTTP *\(http://127\.0\.0\.1:[0-9]*\).*#\1#p' "$work/$name.out")
    grpc=$(sed -n 's#^ *gRPC *\(http://127\.0\.0\.1:[0-9]*\).*#\1#p' "$work/$name.out")
    [[ -n $http && -n $grpc ]] && break
    sleep 0.1
  done
  [[ -n $http && -n $grpc ]] || die "the server $name printed no HTTP and gRPC addresses within 30 s"
  for _ in $(seq 300); do
    if [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$http/readyz") == 200 ]]; then
      http_of[$name]=$http grpc_of[$name]=$grpc
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || die "the server $name exited before it was ready"
    sleep 0.1
  done
  die "$http/readyz ($name) did not answer 200 within 30 s"
}

SPLIT_SERVICES=identity,routing,events,webhooks,edge
say "starting: one process (serve --services all) and the split's identity node (serve --services $SPLIT_SERVICES); pool $POOL each, Redis cache, embedded bus and objects"
start_server one all
start_server identity "$SPLIT_SERVICES"
wait_ready one
wait_ready identity
say "starting the split's gateway (serve --services gateway, peers at ${grpc_of[identity]})"
start_server gateway gateway \
  SWITCHBOARD_DATABASE__MAX_CONNECTIONS=2 \
  SWITCHBOARD_PEERS__IDENTITY="${grpc_of[identity]}" \
  SWITCHBOARD_PEERS__ROUTING="${grpc_of[identity]}" \
  SWITCHBOARD_PEERS__WEBHOOKS="${grpc_of[identity]}" \
  SWITCHBOARD_PEERS__EDGE="${grpc_of[identity]}"
wait_ready gateway
grep -q "peers .*identity=${grpc_of[identity]}" "$work/gateway.out" ||
  die "the split's gateway does not call identity at ${grpc_of[identity]}: $(cat "$work/gateway.out")"
base=${http_of[one]}
declare -A base_of=([one]=${http_of[one]} [split]=${http_of[gateway]})

# --- tenant, API key, users ------------------------------------------------

api() { # METHOD PATH TOKEN BODY EXPECTED-STATUS: the body lands in $work/answer.json
  local args=(-sS --max-time 30 -o "$work/answer.json" -w '%{http_code}' -X "$1"
    -H 'Content-Type: application/json')
  [[ -n $3 ]] && args+=(-H "Authorization: Bearer $3")
  [[ -n $4 ]] && args+=(--data "$4")
  local status
  status=$(curl "${args[@]}" "$base$2") || die "$1 $2 failed"
  [[ $status == "$5" ]] || die "$1 $2 answered $status, not $5: $(head -c 600 "$work/answer.json")"
}
answer() { jq -er "$1" "$work/answer.json" || die "no $1 in $(head -c 600 "$work/answer.json")"; }

say "signing a tenant up, putting it on plan bench (switchboard tenants set-plan), creating an API key"
password="bench-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')-passphrase"
# New tenants start on `trial`; an operator puts them on another plan.
api POST /v1/signup "" "$(jq -nc --arg password "$password" \
  '{company: "Bench Tenant", email: "owner@bench.example.com", password: $password, plan: "trial", time_zone: "UTC"}')" 201
tenant_id=$(answer .tenant.id)
tenant_slug=$(answer .tenant.slug)
(
  cd "$work/one"
  exec env -u RUST_LOG -u SWITCHBOARD_BIN \
    SWITCHBOARD_DATA_DIR="$work/one/data" \
    SWITCHBOARD_DATABASE__URL="$app_url" \
    SWITCHBOARD_CACHE__BACKEND=redis \
    SWITCHBOARD_CACHE__REDIS__URL="$REDIS_URL" \
    SWITCHBOARD_CACHE__REDIS__KEY_PREFIX="$cache_prefix" \
    SWITCHBOARD_TELEMETRY__LOG_LEVEL=warn \
    SWITCHBOARD_AUTH__SIGNING_KEYS="[{kid=\"bench-access\",secret_file=\"$work/keys/access-token.key\"}]" \
    "$bin" tenants set-plan "$tenant_slug" bench
) >"$work/set-plan.log" 2>&1 || { cat "$work/set-plan.log" >&2; die "switchboard tenants set-plan failed"; }
owner_token=$(answer .tokens.access_token)
verification=$(answer .email_verification_token)
api POST /v1/auth/verify-email "" "$(jq -nc --arg token "$verification" '{token: $token}')" 204
api POST /v1/api-keys "$owner_token" '{"name": "load test", "scopes": ["read"]}' 201
api_key=$(answer .secret)

say "seeding $((USERS - 1)) users next to the owner (one INSERT … SELECT generate_series)"
psql_at "$admin_db" -v tenant="$tenant_id" -v count="$((USERS - 1))" >/dev/null <<'SQL'
INSERT INTO users (id, tenant_id, email, display_name, password_hash, roles, all_clients,
                   status, created_at, updated_at)
SELECT gen_random_uuid(), :'tenant'::uuid, 'user' || n || '@bench.example.com', 'Bench User ' || n,
       NULL, 'admin', true, 'active', now(), now()
FROM generate_series(1, :count) AS n;
VACUUM ANALYZE;
SQL
[[ $(psql_at "$admin_db" -v tenant="$tenant_id" <<<"SELECT count(*) FROM users WHERE tenant_id = :'tenant'") == "$USERS" ]] ||
  die "the tenant does not have $USERS users after seeding"
psql_at "$admin_db" -v tenant="$tenant_id" >"$work/get.paths" <<'SQL'
SELECT '/v1/users/' || id FROM users WHERE tenant_id = :'tenant' ORDER BY random() LIMIT 1000;
SQL
echo '/v1/users?limit=50' >"$work/list.paths"

# One of each request, checked, before any load, at each deployment.
first=$(head -n 1 "$work/get.paths")
for mode in one split; do
  base=${base_of[$mode]}
  api GET "$first" "$api_key" "" 200
  [[ $(answer .id) == "${first##*/}" ]] || die "GET $first ($mode) answered another user"
  api GET '/v1/users?limit=50' "$api_key" "" 200
  [[ $(answer '.data | length') == 50 ]] || die "GET /v1/users?limit=50 ($mode) did not return 50 users"
done

say "initializing pgbench tables in $DB (pgbench -i -s $PGBENCH_SCALE)"
pgbench -i -q -s "$PGBENCH_SCALE" "$admin_db" >"$work/pgbench-init.log" 2>&1 ||
  { cat "$work/pgbench-init.log" >&2; die "pgbench -i failed"; }

# --- measuring -------------------------------------------------------------

ncpu=$(nproc)
clk_tck=$(getconf CLK_TCK)
machine_ticks() { # busy and total jiffies of the whole machine
  local _cpu user nice system idle iowait irq softirq steal rest
  read -r _cpu user nice system idle iowait irq softirq steal rest </proc/stat
  echo "$((user + nice + system + irq + softirq + steal)) $((user + nice + system + idle + iowait + irq + softirq + steal))"
}
process_ticks() { # PIDs…: "pid ticks" lines, user + system CPU in clock ticks
  local pid stat fields
  for pid in "$@"; do
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    read -r -a fields <<<"${stat##*) }"
    echo "$pid $((fields[11] + fields[12]))"
  done
}
ticks_since() { # BEFORE AFTER ("pid ticks" lines): CPU of the processes alive at the end
  awk 'NR == FNR { before[$1] = $2; next } { total += $2 - before[$1] } END { print total + 0 }' \
    <(printf '%s\n' "$1") <(printf '%s\n' "$2")
}
xacts() { psql_at "$ADMIN_URL" -c "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '$DB'"; }

# Runs a load generator for SECONDS in the background and reads the CPU
# counters from its start to one second before its planned end, while the
# load is steady: when wrk stops, the requests it leaves in flight are
# cancelled and the pool drops their connections, and a process that is
# gone takes its CPU counters with it. Sets cpu_machine, cpu_postgres and
# cpu_redis (in cores), cpu_of[NAME] for each server (in cores) and
# xact_delta (transactions in the benchmark database over the whole run);
# the generator's output lands in $work/measured.out.
declare -A cpu_of=()
measure() { # SECONDS COMMAND…
  local seconds=$1 pid t0 t1 m_busy0 m_total0 m_busy1 m_total1 s0 s1 p0 p1 r0 r1 x0 name span
  shift
  sleep 1 # let the previous run's connections close
  x0=$(xacts)
  # shellcheck disable=SC2046
  s0=$(process_ticks "${server_pid[@]}") p0=$(process_ticks $(pgrep -x postgres)) r0=$(process_ticks $(pgrep -x redis-server))
  read -r m_busy0 m_total0 <<<"$(machine_ticks)"
  t0=$(date +%s.%N)
  "$@" >"$work/measured.out" &
  pid=$!
  sleep "$((seconds > 2 ? seconds - 1 : seconds))"
  t1=$(date +%s.%N)
  read -r m_busy1 m_total1 <<<"$(machine_ticks)"
  # shellcheck disable=SC2046
  s1=$(process_ticks "${server_pid[@]}") p1=$(process_ticks $(pgrep -x postgres)) r1=$(process_ticks $(pgrep -x redis-server))
  wait "$pid" || exit 1 # the generator said why
  sleep 1.5 # backends flush their statistics at most once a second
  xact_delta=$(($(xacts) - x0))
  span=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
  read -r cpu_machine cpu_postgres cpu_redis < <(awk -v n="$ncpu" -v hz="$clk_tck" -v t="$span" \
    -v mb=$((m_busy1 - m_busy0)) -v mt=$((m_total1 - m_total0)) \
    -v p="$(ticks_since "$p0" "$p1")" -v r="$(ticks_since "$r0" "$r1")" \
    'BEGIN { printf "%.2f %.2f %.2f\n", (mt ? n * mb / mt : 0), p / hz / t, r / hz / t }')
  for name in "${!server_pid[@]}"; do
    cpu_of[$name]=$(awk -v hz="$clk_tck" -v t="$span" -v s="$(ticks_since \
      "$(grep "^${server_pid[$name]} " <<<"$s0")" "$(grep "^${server_pid[$name]} " <<<"$s1")")" \
      'BEGIN { printf "%.2f", s / hz / t }')
  done
}

field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $1"; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
sum() { printf '%s\n' "$@" | awk '{ s += $1 } END { print s + 0 }'; }
percentile() { sort -g | awk -v p="$1" '{ v[NR] = $1 } END { i = int(NR * p / 100 + 0.999999); if (i < 1) i = 1; print v[i] + 0 }'; }

run_wrk() { # BASE-URL PATHS-FILE SECONDS → the WRK summary line
  local out
  out=$(BENCH_PATHS=$2 BENCH_API_KEY=$api_key wrk -t "$THREADS" -c "$CONNECTIONS" -d "${3}s" \
    --timeout 5s -s "$here/rotate.lua" "$1") || die "wrk failed: $out"
  grep '^WRK ' <<<"$out" || die "wrk printed no summary: $out"
}
run_pgbench() { # SECONDS LOG-PREFIX → "tps p50_ms p99_ms failed"
  local out tps failed
  rm -f "$2".*
  out=$(pgbench -S -c "$CONNECTIONS" -j "$THREADS" -T "$1" -l --sampling-rate=0.1 \
    --log-prefix="$2" "$admin_db" 2>&1) || die "pgbench failed: $out"
  tps=$(awk '/^tps = / { print $3; exit }' <<<"$out")
  failed=$(awk -F': *' '/^number of failed transactions/ { split($2, a, " "); print a[1]; exit }' <<<"$out")
  [[ -n $tps ]] || die "pgbench printed no tps: $out"
  # The sampled per-transaction log: field 3 is the latency in microseconds.
  echo "$tps $(cat "$2".* | awk '{ print $3 / 1000 }' | percentile 50) $(cat "$2".* | awk '{ print $3 / 1000 }' | percentile 99) ${failed:-0}"
}

# What the machine's neighbours use while we are idle: the run is only as
# clean as this.
read -r m_busy0 m_total0 <<<"$(machine_ticks)"
sleep 3
read -r m_busy1 m_total1 <<<"$(machine_ticks)"
background=$(awk -v n="$ncpu" -v b=$((m_busy1 - m_busy0)) -v t=$((m_total1 - m_total0)) 'BEGIN { printf "%.2f", t ? n * b / t : 0 }')
say "background load before the run: $background of $ncpu cores busy"

say "warming up: ${WARMUP}s each of pgbench -S, then GET /v1/users/{id} and GET /v1/users?limit=50 at each deployment"
run_pgbench "$WARMUP" "$work/pgbench-warmup" >/dev/null
for mode in one split; do
  for scenario in get list; do
    run_wrk "${base_of[$mode]}" "$work/$scenario.paths" "$WARMUP" >/dev/null
  done
done

# One value a round per run (pg, and each deployment × scenario) in arrays
# named <run>_<what>.
runs=(one_get split_get one_list split_list)
for run in pg "${runs[@]}"; do
  for what in rps p50 p99 err cpu srv gw idn pg redis rest xact; do
    declare -a "${run}_${what}=()"
  done
done
for round in $(seq "$ROUNDS"); do
  say "round $round/$ROUNDS: ${DURATION}s each, $CONNECTIONS connections, $THREADS threads"
  measure "$DURATION" run_pgbench "$DURATION" "$work/pgbench-$round"
  read -r tps p50 p99 failed <"$work/measured.out"
  pg_rps+=("$tps") pg_p50+=("$p50") pg_p99+=("$p99") pg_err+=("$failed") pg_cpu+=("$cpu_machine")

  # One process and split back to back, in turns: odd rounds start with
  # one process, even rounds with the split.
  order=(one split)
  ((round % 2 == 0)) && order=(split one)
  for scenario in get list; do
    for mode in "${order[@]}"; do
      run=${mode}_${scenario}
      measure "$DURATION" run_wrk "${base_of[$mode]}" "$work/$scenario.paths" "$DURATION"
      line=$(<"$work/measured.out")
      errors=$(($(field "$line" non2xx) + $(field "$line" socket_errors)))
      requests=$(field "$line" requests)
      per_request=$(awk -v x="$xact_delta" -v r="$requests" 'BEGIN { printf "%.1f", r ? x / r : 0 }')
      if [[ $mode == one ]]; then
        server=${cpu_of[one]} gw=— idn=—
      else
        gw=${cpu_of[gateway]} idn=${cpu_of[identity]}
        server=$(awk -v a="$gw" -v b="$idn" 'BEGIN { printf "%.2f", a + b }')
      fi
      declare -n rps=${run}_rps p50s=${run}_p50 p99s=${run}_p99 errs=${run}_err cpu=${run}_cpu \
        srv=${run}_srv gws=${run}_gw idns=${run}_idn pg=${run}_pg rd=${run}_redis rest=${run}_rest \
        xa=${run}_xact
      rps+=("$(field "$line" rps)") p50s+=("$(field "$line" p50_ms)") p99s+=("$(field "$line" p99_ms)")
      errs+=("$errors") cpu+=("$cpu_machine") srv+=("$server") gws+=("$gw") idns+=("$idn")
      pg+=("$cpu_postgres") rd+=("$cpu_redis") xa+=("$per_request")
      # Everything else: wrk, the idle servers, the neighbours.
      rest+=("$(awk -v m="$cpu_machine" -v a="$server" -v b="$cpu_postgres" -v c="$cpu_redis" 'BEGIN { printf "%.2f", m - a - b - c }')")
      unset -n rps p50s p99s errs cpu srv gws idns pg rd rest xa
    done
  done
  printf '    pgbench -S %s tps | GET /v1/users/{id} one process %s req/s, split %s | GET /v1/users?limit=50 one process %s req/s, split %s\n' \
    "${pg_rps[-1]}" "${one_get_rps[-1]}" "${split_get_rps[-1]}" "${one_list_rps[-1]}" "${split_list_rps[-1]}" >&2
done

# --- the table -------------------------------------------------------------

fmt_int() { # 12345.6 → 12,346
  awk -v x="$1" 'BEGIN { s = sprintf("%d", x + 0.5); t = ""
    while (length(s) > 3) { t = "," substr(s, length(s) - 2) t; s = substr(s, 1, length(s) - 3) }
    print s t }'
}
fmt_ms() { awk -v x="$1" 'BEGIN { printf (x < 10 ? "%.2f" : "%.1f"), x }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b ? a / b : 0 }'; }
at_least() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }
at_most() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }
per_round() { # ARRAY-NAME: its values, whole, separated by " / "
  local -n values=$1
  printf '%s / ' "${values[@]%.*}" | sed 's# / $##'
}
round_ratios() { # NUMERATOR-ARRAY-NAME DENOMINATOR-ARRAY-NAME: each round's ratio
  local -n a=$1 b=$2
  local i out=()
  for i in "${!a[@]}"; do out+=("$(ratio "${a[i]}" "${b[i]}")"); done
  printf '%s / ' "${out[@]}" | sed 's# / $##'
}

pg_m=$(median "${pg_rps[@]}")
declare -A m=() errors_of=() p99_of=() result=()
for run in "${runs[@]}"; do
  declare -n rps=${run}_rps errs=${run}_err p99s=${run}_p99
  m[$run]=$(median "${rps[@]}") errors_of[$run]=$(sum "${errs[@]}") p99_of[$run]=$(median "${p99s[@]}")
  unset -n rps errs p99s
  result[$run]=FAIL
done
at_least "$(ratio "${m[one_get]}" "$pg_m")" "$TARGET_GET_VS_PGBENCH" && at_least "${m[one_get]}" "$TARGET_GET_RPS" &&
  at_most "${p99_of[one_get]}" "$TARGET_GET_P99_MS" && ((errors_of[one_get] == 0)) && result[one_get]=PASS
at_least "${m[one_list]}" "$TARGET_LIST_RPS" && ((errors_of[one_list] == 0)) && result[one_list]=PASS
for scenario in get list; do
  at_least "$(ratio "${m[split_$scenario]}" "${m[one_$scenario]}")" "$TARGET_SPLIT_VS_ONE" &&
    ((errors_of[split_$scenario] == 0)) && result[split_$scenario]=PASS
done

rerun="BENCH_PG_SSLMODE=$SSLMODE BENCH_DURATION=$DURATION BENCH_ROUNDS=$ROUNDS BENCH_CONNECTIONS=$CONNECTIONS BENCH_THREADS=$THREADS BENCH_POOL=$POOL loadtest/http/run.sh"
pg_version=$(psql_at "$ADMIN_URL" -c 'SHOW server_version' | cut -d' ' -f1)
if [[ $(psql_at "$ADMIN_URL" -c 'SHOW ssl') == on && $SSLMODE != disable ]]; then
  pg_tls="over TLS (sslmode=$SSLMODE, pgbench too)"
else
  pg_tls="without TLS (sslmode=$SSLMODE, pgbench too)"
fi
commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$repo" status --porcelain --untracked-files=no -- . ':!loadtest' 2>/dev/null | grep -q . &&
  echo ", uncommitted changes" || true)

row() { # RUN LABEL TARGET: one row of the table
  local run=$1 vs_one=—
  local -n p50s=${run}_p50
  [[ $run == split_* ]] && vs_one=$(ratio "${m[$run]}" "${m[one_${run#split_}]}")
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$2" "$(fmt_int "${m[$run]}")" \
    "$(fmt_ms "$(median "${p50s[@]}")")" "$(fmt_ms "${p99_of[$run]}")" "${errors_of[$run]}" "$3" \
    "$(ratio "${m[$run]}" "$pg_m")" "$vs_one" "${result[$run]}"
}
cpu_row() { # RUN LABEL: one row of the CPU table
  local run=$1 split_cpu=—
  local -n cpu=${run}_cpu srv=${run}_srv gws=${run}_gw idns=${run}_idn pg=${run}_pg rd=${run}_redis \
    rest=${run}_rest xa=${run}_xact
  [[ $run == split_* ]] && split_cpu="$(median "${gws[@]}") / $(median "${idns[@]}")"
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$2" "$(median "${cpu[@]}")" \
    "$(median "${srv[@]}")" "$split_cpu" "$(median "${pg[@]}")" "$(median "${rd[@]}")" "$(median "${rest[@]}")" \
    "$(awk -v c="$(median "${srv[@]}")" -v r="${m[$run]}" 'BEGIN { printf "%.0f", c * 1e6 / r }')" \
    "$(awk -v c="$(median "${pg[@]}")" -v r="${m[$run]}" 'BEGIN { printf "%.0f", c * 1e6 / r }')" \
    "$(median "${xa[@]}")"
}

cat <<EOF

### HTTP API: users by API key, one process and split ($(date -u +%Y-%m-%d), commit $commit$dirty)

- Servers, release build, all three running for the whole run, on loopback:
  **one process**, \`switchboard serve --services all\` (gateway and
  identity in process); **split**, \`serve --services gateway\` calling
  identity (and routing, webhooks) over gRPC in \`serve --services
  $SPLIT_SERVICES\`, both signing service credentials with one internal
  key file. PostgreSQL $pg_version as \`$APP_ROLE\`, a member of
  \`switchboard_app\` (row-level security on), $pg_tls, pool of $POOL per
  process; Redis for the cache (credentials, tenant facts, rate limits), one
  key prefix for all; bus and objects embedded (memory, local).
- Data: one tenant on a plan with unreachable rate limits, $(fmt_int "$USERS") users;
  \`GET /v1/users/{id}\` rotates over 1,000 random ids.
- Load: wrk over loopback, $CONNECTIONS connections, $THREADS threads, API key
  in \`Authorization\`; ${WARMUP} s warm-up of each, then $ROUNDS rounds of ${DURATION} s, each
  running the baseline, then each scenario at one process and at the split
  back to back (odd rounds one process first, even rounds split first);
  medians of the rounds (p50 and p99 too); errors are non-2xx answers plus
  socket errors. "split / one process" = the split's median ÷ one
  process's: the gRPC hop costs 1 − that.
- Baseline: \`pgbench -S -c $CONNECTIONS -j $THREADS -T $DURATION\` on the same database
  (scale $PGBENCH_SCALE; latencies from a 10 % sample of transactions).
- Machine: $ncpu cores, shared ($background cores busy before the run); wrk and
  pgbench run on the same cores.

| scenario | req/s (median of $ROUNDS) | p50 ms | p99 ms | errors / non-2xx | target | vs pgbench -S | split / one process | result |
|---|---:|---:|---:|---:|---|---:|---:|---|
| baseline: \`pgbench -S\` | $(fmt_int "$pg_m") tps | $(fmt_ms "$(median "${pg_p50[@]}")") | $(fmt_ms "$(median "${pg_p99[@]}")") | $(sum "${pg_err[@]}") | — | 1.00 | — | baseline |
$(row one_get '`GET /v1/users/{id}`, one process' "≥ $TARGET_GET_VS_PGBENCH of pgbench -S (and ≥ $(fmt_int "$TARGET_GET_RPS") req/s, p99 ≤ $TARGET_GET_P99_MS ms)")
$(row split_get '`GET /v1/users/{id}`, split' "≥ $TARGET_SPLIT_VS_ONE of one process")
$(row one_list '`GET /v1/users?limit=50`, one process' "≥ $(fmt_int "$TARGET_LIST_RPS") req/s")
$(row split_list '`GET /v1/users?limit=50`, split' "≥ $TARGET_SPLIT_VS_ONE of one process")

Rounds (req/s): pgbench -S $(per_round pg_rps);
\`GET /v1/users/{id}\` one process $(per_round one_get_rps), split $(per_round split_get_rps)
(split / one process $(round_ratios split_get_rps one_get_rps));
\`GET /v1/users?limit=50\` one process $(per_round one_list_rps), split $(per_round split_list_rps)
(split / one process $(round_ratios split_list_rps one_list_rps)).

Where the CPU went (medians of the rounds, in cores of $ncpu, read over each
run but its last second; µs of CPU per request; switchboard = the processes
serving the run, for the split its gateway + identity node; PostgreSQL = all
its processes on the machine; rest = wrk, the idle servers and the
neighbours):

| scenario | machine busy | switchboard | split: gateway / identity node | PostgreSQL | Redis | rest | switchboard µs/req | PostgreSQL µs/req | PG transactions/req |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|
| baseline: \`pgbench -S\` | $(median "${pg_cpu[@]}") | — | — | — | — | — | — | — | 1 |
$(cpu_row one_get '`GET /v1/users/{id}`, one process')
$(cpu_row split_get '`GET /v1/users/{id}`, split')
$(cpu_row one_list '`GET /v1/users?limit=50`, one process')
$(cpu_row split_list '`GET /v1/users?limit=50`, split')

Rerun: \`$rerun\`
EOF
