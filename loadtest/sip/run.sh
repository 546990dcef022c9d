#!/usr/bin/env bash
# loadtest/sip/run.sh: calls per second through the edge, against
# Kamailio and the generator's own ceiling, in one run.
#
# The rig is the project's shared one (../shared/bench/sip: uac.xml,
# uas.xml, step.sh, run.sh, kamailio.sh), so every target is measured by
# the same code: SIPp UAC (127.0.0.1:5090) -> target -> SIPp UAS
# (127.0.0.1:5080); 1 s calls over UDP; a step passes with < 0.1 % failed
# calls; the highest passing rate is found by stepping up and bisecting.
#   1. direct:   UAC -> UAS (the generator's ceiling);
#   2. kamailio: UAC -> Kamailio, a stateful proxy (4 workers) -> UAS;
#   3. edge:     UAC -> `switchboard dev` (release build, every service in
#      one process, embedded backends) as a carrier's call to a tenant's
#      number, routed by routing to an agent (the number's rule rings the
#      agent directly), whose one registered phone is the UAS: two dialogs
#      per call, routing's decision, the call's records written to the
#      tenant's outbox.
# Prints a Markdown table (rate, ratio to direct and to Kamailio, CPU per
# call) and the command to rerun it. Exits non-zero only when setup fails.
# Knobs: SECS (20 s per step), CALL_MS (1000), START (1000 cps; EDGE_START
# 200 for the edge, whose ceiling is lower), MAX (12000),
# BENCH_EDGE_PORT (5071), KAM_PORT (5070), SWITCHBOARD_BIN, BENCH_SKIP_BUILD=1.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
rig=${BENCH_RIG:-$repo/../shared/bench/sip}
EDGE_PORT=${BENCH_EDGE_PORT:-5071}
KAM_PORT=${KAM_PORT:-5070}
START=${START:-1000}
EDGE_START=${EDGE_START:-200}
MAX=${MAX:-12000}
export SECS=${SECS:-20} CALL_MS=${CALL_MS:-1000}
NUMBER=+12125550199
HTTP=127.0.0.1:18081

say() { printf '==> %s\n' "$*" >&2; }
die() {
  printf 'loadtest/sip/run.sh: %s\n' "$*" >&2
  exit 1
}

[[ -x $rig/run.sh && -x $rig/step.sh ]] || die "the shared SIP rig is not at $rig (set BENCH_RIG)"
missing=()
command -v sipp >/dev/null || missing+=(sip-tester)
command -v kamailio >/dev/null || missing+=(kamailio)
command -v jq >/dev/null || missing+=(jq)
command -v curl >/dev/null || missing+=(curl)
command -v sqlite3 >/dev/null || missing+=(sqlite3)
command -v ss >/dev/null || missing+=(iproute2)
command -v bc >/dev/null || missing+=(bc)
if ((${#missing[@]})); then
  sudo=()
  ((EUID == 0)) || sudo=(sudo)
  say "installing ${missing[*]}"
  "${sudo[@]}" apt-get install -y "${missing[@]}" >/dev/null ||
    { "${sudo[@]}" apt-get update >/dev/null && "${sudo[@]}" apt-get install -y "${missing[@]}" >/dev/null; } ||
    die "cannot install ${missing[*]}"
fi
for port in 5080 5090 "$EDGE_PORT" "$KAM_PORT"; do
  ! ss -Hulpn "sport = :$port" | grep -q . || die "UDP port $port is in use"
done

bin=${SWITCHBOARD_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/switchboard}
if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
  say "building the release binary (cargo build --release -p switchboard)"
  (cd "$repo" && cargo build --release -p switchboard) || die "the release build failed"
fi
[[ -x $bin ]] || die "no binary at $bin"

work=$(mktemp -d "${TMPDIR:-/tmp}/sb-sip-bench.XXXXXX")
node=""
cleanup() {
  [[ -n $node ]] && kill "$node" 2>/dev/null && wait "$node" 2>/dev/null
  "$rig/kamailio.sh" stop "$KAM_PORT" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# --- the node ----------------------------------------------------------------
cat >"$work/switchboard.toml" <<TOML
[server]
http_addr = "$HTTP"
grpc_addr = "127.0.0.1:19091"
metrics_addr = "127.0.0.1:19465"

[telemetry]
log_format = "text"
log_level = "warn"

[edge]
sip_udp = "127.0.0.1:$EDGE_PORT"
sip_tcp = "127.0.0.1:$EDGE_PORT"
# The generator is one source sending thousands of requests a second.
per_source_burst = 0
# SIPp's digest knows MD5 only.
digest_algorithms = ["MD5", "SHA-256"]
# Signaling only, as Kamailio here: no media relay (loadtest/media measures
# it against rtpengine). At thousands of 1 s calls a second it would also
# need more than the default port range.
media_relay = false
TOML
say "starting switchboard dev --demo (release) in $work"
(cd "$work" && SWITCHBOARD_CONFIG="$work/switchboard.toml" exec "$bin" dev --demo >"$work/node.log" 2>&1) &
node=$!
for _ in $(seq 1 120); do
  grep -q "SIP accounts" "$work/node.log" 2>/dev/null && break
  kill -0 "$node" 2>/dev/null || die "the node stopped: $(tail -5 "$work/node.log")"
  sleep 0.5
done
sleep 1
account=$(grep "agent1@demo.switchboard.test: user" "$work/node.log" | tail -1)
[[ -n $account ]] || die "no demo SIP account in the banner: $(tail -20 "$work/node.log")"
sip_user=$(awk '{print $3}' <<<"$account")
sip_password=$(awk '{print $5}' <<<"$account")
sip_domain=$(awk '{print $7}' <<<"$account")

api() { # METHOD PATH [JSON]: the answer's body; fails on a non-2xx
  curl -sSf -X "$1" "http://$HTTP$2" -H "authorization: Bearer $token" \
    -H 'content-type: application/json' ${3:+-d "$3"}
}
token=$(curl -sSf "http://$HTTP/v1/auth/login" -H 'content-type: application/json' \
  -d '{"email":"owner@demo.switchboard.test","password":"switchboard-demo-7421","tenant":"switchboard-demo"}' |
  jq -r .access_token)
[[ -n $token && $token != null ]] || die "the demo owner cannot sign in"
agent_id=$(api GET '/v1/users?limit=100' | jq -r '.data[] | select(.email == "agent1@demo.switchboard.test") | .id')
schedule_id=$(api GET /v1/schedules | jq -r '.data[0].id')
rule_id=$(api POST /v1/inbound-rules "$(jq -nc --arg s "$schedule_id" --arg a "$agent_id" \
  '{name: "Bench line", schedule_id: $s, open: {type: "agent", agent_id: $a}, closed: {type: "agent", agent_id: $a}}')" | jq -r .id)
api POST /v1/numbers "$(jq -nc --arg n "$NUMBER" --arg r "$rule_id" \
  '{number: $n, inbound_rule_id: $r, description: "Bench line"}')" >/dev/null

# A plan the benchmark cannot reach the call limits of.
sqlite3 "$work/data/switchboard.db" "INSERT INTO plans (code, name, seat_limit, api_requests_per_second, api_burst, features, created_at, max_concurrent_calls, calls_per_second) VALUES ('bench', 'Benchmark', 1000, 1e9, 1000000000, 'voice', strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now'), 1000000, 1000000)"
(cd "$work" && SWITCHBOARD_CONFIG="$work/switchboard.toml" "$bin" tenants set-plan switchboard-demo bench >/dev/null) ||
  die "cannot put the demo tenant on the bench plan"
sleep 6 # the plan's limits reach the edge through tenant.plan_changed

register() { # the agent's phone is the UAS: it registers from its port
  (cd "$work" && sipp -sf "$repo/services/edge/tests/sipp/register.xml" -i 127.0.0.1 -p 5080 -m 1 \
    -s "$sip_user" -au "$sip_user" -ap "$sip_password" -key domain "$sip_domain" -auth_uri "$sip_domain" \
    -timeout 10s -timeout_error -nostdin -trace_err "127.0.0.1:$EDGE_PORT" >/dev/null 2>&1) ||
    die "the agent's phone (SIPp at 5080) did not register: $(cat "$work"/*errors.log 2>/dev/null | head -40)"
}

# --- the runs ------------------------------------------------------------------
export SIPP_REAL=$(command -v sipp) BENCH_NUMBER=$NUMBER
export PATH="$here/shim:$PATH"
say "direct: SIPp -> SIPp"
"$rig/run.sh" 127.0.0.1:5080 "$START" "$MAX" >"$work/direct.log"
say "kamailio on $KAM_PORT"
"$rig/kamailio.sh" start "$KAM_PORT" >/dev/null || die "Kamailio did not start"
"$rig/run.sh" "127.0.0.1:$KAM_PORT" "$START" "$MAX" >"$work/kamailio.log"
"$rig/kamailio.sh" stop "$KAM_PORT" >/dev/null
say "the edge on $EDGE_PORT (the phone registers from 5080 first)"
register
TARGET_PID=$node "$rig/run.sh" "127.0.0.1:$EDGE_PORT" "$EDGE_START" "$MAX" >"$work/edge.log"

field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }
best() { tail -1 "$work/$1.log"; }
rate_of() { sed 's/.* rate=\([0-9]*\) .*/\1/' <<<"$(best "$1")"; }
direct=$(rate_of direct)
kam=$(rate_of kamailio)
echo
echo "### SIP calls per second through the edge ($(date -u +%F), commit $(cd "$repo" && git rev-parse --short HEAD))"
echo
echo "| target | max sustained cps | vs direct | vs Kamailio | target CPU at that rate | CPU per call | invite RTT ms |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for name in direct kamailio edge; do
  line=$(best $name)
  rate=$(rate_of $name)
  cpu=$(field "$line" cpu_target)
  per_call=$(awk -v c="${cpu%\%}" -v r="$rate" 'BEGIN{ if (r > 0 && c+0 > 0) printf "%.0f µs", c * 10000 / r; else print "—" }')
  printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$rate" \
    "$(awk -v a="$rate" -v b="$direct" 'BEGIN{printf "%.2f", b ? a/b : 0}')" \
    "$(awk -v a="$rate" -v b="$kam" 'BEGIN{printf "%.2f", b ? a/b : 0}')" \
    "$cpu" "$per_call" "$(field "$line" invite_rtt_ms)"
done
echo
for name in direct kamailio edge; do echo "$name: $(best $name)"; done
echo
echo "Rerun: \`loadtest/sip/run.sh\` (SECS=$SECS CALL_MS=$CALL_MS START=$START EDGE_START=$EDGE_START)"
