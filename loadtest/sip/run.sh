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
NODE_HTTP=$HTTP NODE_EDGE_PORT=$EDGE_PORT
source "$repo/loadtest/common/node.sh"
node_install sipp=sip-tester kamailio=kamailio jq=jq curl=curl sqlite3=sqlite3 ss=iproute2 bc=bc
for port in 5080 5090 "$EDGE_PORT" "$KAM_PORT"; do
  ! ss -Hulpn "sport = :$port" | grep -q . || die "UDP port $port is in use"
done
node_build

work=$(mktemp -d "${TMPDIR:-/tmp}/sb-sip-bench.XXXXXX")
cleanup() {
  node_stop
  "$rig/kamailio.sh" stop "$KAM_PORT" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# --- the node ----------------------------------------------------------------
node_start "$work" '# Signaling only, as Kamailio here: no media relay (loadtest/media measures
# it against rtpengine). At thousands of 1 s calls a second it would also
# need more than the default port range.
media_relay = false'
node_line "$NUMBER"
register() { node_register; }

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
