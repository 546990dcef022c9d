# loadtest/common/node.sh: what the SIP and media benchmarks share, sourced
# by loadtest/sip/run.sh and loadtest/media/run.sh (bash, set -euo pipefail):
#   node_install CMD=PKG ...   apt-get the packages whose command is missing
#                              (=PKG: the package itself is not installed)
#   node_build                 the release binary (unless BENCH_SKIP_BUILD=1)
#   node_start WORK EDGE_TOML  `switchboard dev --demo` in WORK, with the
#                              [edge] lines EDGE_TOML added to its config;
#                              sets $node (pid) and the agent's SIP account
#   node_line NUMBER           an inbound rule that rings agent1 directly,
#                              the number on it, and the demo tenant on a
#                              `bench` plan whose call limits are out of reach
#   node_register [EXPIRES]    agent1's phone registers from 127.0.0.1:5080
#                              (where the rig's UAS answers); 300 s default
#   node_stop
# Expects: $repo (the project root), say and die; reads NODE_HTTP
# (127.0.0.1:18081), NODE_EDGE_PORT (5071), SWITCHBOARD_BIN, CARGO_TARGET_DIR.

NODE_HTTP=${NODE_HTTP:-127.0.0.1:18081}
NODE_EDGE_PORT=${NODE_EDGE_PORT:-5071}
node=""
node_work=""

node_install() { # CMD=PKG ...: installs the packages of the missing commands
  local pair missing=() sudo=()
  for pair in "$@"; do
    if [[ -n ${pair%%=*} ]]; then
      command -v "${pair%%=*}" >/dev/null || missing+=("${pair#*=}")
    else
      dpkg -s "${pair#*=}" 2>/dev/null | grep -q '^Status: install ok installed' || missing+=("${pair#*=}")
    fi
  done
  ((${#missing[@]})) || return 0
  ((EUID == 0)) || sudo=(sudo)
  say "installing ${missing[*]}"
  "${sudo[@]}" apt-get install -y "${missing[@]}" >/dev/null ||
    { "${sudo[@]}" apt-get update >/dev/null && "${sudo[@]}" apt-get install -y "${missing[@]}" >/dev/null; } ||
    die "cannot install ${missing[*]}"
}

node_build() {
  node_bin=${SWITCHBOARD_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/switchboard}
  if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
    say "building the release binary (cargo build --release -p switchboard)"
    (cd "$repo" && cargo build --release -p switchboard) || die "the release build failed"
  fi
  [[ -x $node_bin ]] || die "no binary at $node_bin"
}

node_start() { # WORK EDGE_TOML
  node_work=$1
  cat >"$node_work/switchboard.toml" <<TOML
[server]
http_addr = "$NODE_HTTP"
grpc_addr = "127.0.0.1:19091"
metrics_addr = "127.0.0.1:19465"

[telemetry]
log_format = "text"
log_level = "warn"

[edge]
sip_udp = "127.0.0.1:$NODE_EDGE_PORT"
sip_tcp = "127.0.0.1:$NODE_EDGE_PORT"
# The generator is one source sending thousands of requests a second.
per_source_burst = 0
# SIPp's digest knows MD5 only.
digest_algorithms = ["MD5", "SHA-256"]
$2
TOML
  say "starting switchboard dev --demo (release) in $node_work"
  (cd "$node_work" && SWITCHBOARD_CONFIG="$node_work/switchboard.toml" exec "$node_bin" dev --demo >"$node_work/node.log" 2>&1) &
  node=$!
  local _
  for _ in $(seq 1 120); do
    grep -q "SIP accounts" "$node_work/node.log" 2>/dev/null && break
    kill -0 "$node" 2>/dev/null || die "the node stopped: $(tail -5 "$node_work/node.log")"
    sleep 0.5
  done
  sleep 1
  local account
  account=$(grep "agent1@demo.switchboard.test: user" "$node_work/node.log" | tail -1)
  [[ -n $account ]] || die "no demo SIP account in the banner: $(tail -20 "$node_work/node.log")"
  sip_user=$(awk '{print $3}' <<<"$account")
  sip_password=$(awk '{print $5}' <<<"$account")
  sip_domain=$(awk '{print $7}' <<<"$account")
}

node_api() { # METHOD PATH [JSON]: the answer's body; fails on a non-2xx
  curl -sSf -X "$1" "http://$NODE_HTTP$2" -H "authorization: Bearer $node_token" \
    -H 'content-type: application/json' ${3:+-d "$3"}
}

node_line() { # NUMBER
  node_token=$(curl -sSf "http://$NODE_HTTP/v1/auth/login" -H 'content-type: application/json' \
    -d '{"email":"owner@demo.switchboard.test","password":"switchboard-demo-7421","tenant":"switchboard-demo"}' |
    jq -r .access_token)
  [[ -n $node_token && $node_token != null ]] || die "the demo owner cannot sign in"
  local agent_id schedule_id rule_id
  agent_id=$(node_api GET '/v1/users?limit=100' | jq -r '.data[] | select(.email == "agent1@demo.switchboard.test") | .id')
  schedule_id=$(node_api GET /v1/schedules | jq -r '.data[0].id')
  rule_id=$(node_api POST /v1/inbound-rules "$(jq -nc --arg s "$schedule_id" --arg a "$agent_id" \
    '{name: "Bench line", schedule_id: $s, open: {type: "agent", agent_id: $a}, closed: {type: "agent", agent_id: $a}}')" | jq -r .id)
  node_api POST /v1/numbers "$(jq -nc --arg n "$1" --arg r "$rule_id" \
    '{number: $n, inbound_rule_id: $r, description: "Bench line"}')" >/dev/null

  # A plan the benchmark cannot reach the call limits of.
  sqlite3 "$node_work/data/switchboard.db" "INSERT INTO plans (code, name, seat_limit, api_requests_per_second, api_burst, features, created_at, max_concurrent_calls, calls_per_second) VALUES ('bench', 'Benchmark', 1000, 1e9, 1000000000, 'voice', strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now'), 1000000, 1000000)"
  (cd "$node_work" && SWITCHBOARD_CONFIG="$node_work/switchboard.toml" "$node_bin" tenants set-plan switchboard-demo bench >/dev/null) ||
    die "cannot put the demo tenant on the bench plan"
  sleep 6 # the plan's limits reach the edge through tenant.plan_changed
}

node_register() { # [EXPIRES=300]: the agent's phone is the UAS: it registers from its port
  local expires=${1:-300} scenario=$repo/services/edge/tests/sipp/register.xml
  if [[ $expires != 300 ]]; then # the same scenario asking for a longer binding (the edge allows 3600 s)
    sed -e "s/Expires: 300/Expires: $expires/" -e "s/expires=300/expires=$expires/" "$scenario" >"$node_work/register.xml"
    scenario=$node_work/register.xml
  fi
  (cd "$node_work" && sipp -sf "$scenario" -i 127.0.0.1 -p 5080 -m 1 \
    -s "$sip_user" -au "$sip_user" -ap "$sip_password" -key domain "$sip_domain" -auth_uri "$sip_domain" \
    -timeout 10s -timeout_error -nostdin -trace_err "127.0.0.1:$NODE_EDGE_PORT" >/dev/null 2>&1) ||
    die "the agent's phone (SIPp at 5080) did not register: $(cat "$node_work"/*errors.log 2>/dev/null | head -40)"
}

node_stop() {
  if [[ -n $node ]]; then
    kill "$node" 2>/dev/null && wait "$node" 2>/dev/null || true
    node=""
  fi
  return 0
}
