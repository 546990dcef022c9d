#!/usr/bin/env bash
# loadtest/media/run.sh: concurrent G.711 calls the edge's RTP relay
# carries, against Kamailio + rtpengine (userspace) and the generator's own
# ceiling, in one run (issue 22, "Speed (benchmark)").
#
# The rig is the project's shared one (../shared/bench/media: uac.xml,
# uas.xml, step.sh, run.sh, kamailio.sh, rtpengine.sh), so every path is
# measured by the same code: SIPp UAC (SIP 5090, RTP 6100) -> path -> SIPp
# UAS (SIP 5080, RTP echo 6000); each call streams PCMU 20 ms both ways
# (50 packets/s each way) for CALL_S seconds; a step holds N calls for
# WINDOW seconds and passes with < 0.1 % loss both ways, counted exactly
# (see the rig's README); the highest passing N is found by a ladder (x2)
# and two bisection steps (50-call grain).
#   1. direct:    UAC <-> UAS, RTP end to end;
#   2. rtpengine: UAC -> Kamailio (4 workers) -> UAS, media anchored in
#                 rtpengine (userspace, --table=-1, ports 20000-49999);
#   3. edge:      UAC -> `switchboard dev --demo` (release build, every
#                 service in one process) as a carrier's call to a number
#                 whose rule rings agent1 directly; agent1's one registered
#                 phone is the UAS; both SDPs anchored at the edge's relay
#                 (edge.media_relay, ports MEDIA_PORTS).
# Order: the sanity step, the edge, rtpengine, direct. Before the ladders, one sanity step of SANITY_N (50) calls through the
# edge must pass. The added one-way latency of each relay is measured at
# that load (N=50) from a short capture on lo (tcpdump), matching each RTP
# packet going into the relay with the same packet (SSRC, sequence,
# timestamp) coming out.
# Prints a Markdown table and the command to rerun it; raw files in OUT.
# Knobs: WINDOW (20 s), CALL_S (30 s), N_START (400; DIRECT_START,
# RTPE_START, EDGE_START each default to it), N_MAX (6400), BISECT (2
# bisection steps; DIRECT_BISECT for the direct path), SANITY_N (50),
# MEDIA_PORTS (50000-65000), BENCH_EDGE_PORT (5071), KAM_PORT (5070),
# NG_PORT (22222), LATENCY=0 (no capture), SANITY_ONLY=1 (stop after it), SKIP_DIRECT=1, SKIP_RTPENGINE=1,
# OUT (./out-<UTC time>), SWITCHBOARD_BIN, BENCH_SKIP_BUILD=1, BENCH_RIG.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
rig=${BENCH_RIG:-$repo/../shared/bench/media}
EDGE_PORT=${BENCH_EDGE_PORT:-5071}
KAM_PORT=${KAM_PORT:-5070}
NG_PORT=${NG_PORT:-22222}
RTPE_PORTS=20000-49999
MEDIA_PORTS=${MEDIA_PORTS:-50000-65000}
export WINDOW=${WINDOW:-20} CALL_S=${CALL_S:-30}
N_START=${N_START:-400}
DIRECT_START=${DIRECT_START:-$N_START}
RTPE_START=${RTPE_START:-$N_START}
EDGE_START=${EDGE_START:-$N_START}
BISECT=${BISECT:-2}
DIRECT_BISECT=${DIRECT_BISECT:-$BISECT}
N_MAX=${N_MAX:-6400}
SANITY_N=${SANITY_N:-50}
LATENCY=${LATENCY:-1}
NUMBER=+12125550199
out=${OUT:-$here/out-$(date -u +%Y%m%d-%H%M%S)}

say() { printf '==> %s\n' "$*" >&2; }
die() {
  printf 'loadtest/media/run.sh: %s\n' "$*" >&2
  exit 1
}

[[ -x $rig/run.sh && -x $rig/step.sh && -x $rig/rtpengine.sh ]] ||
  die "the shared media rig is not at $rig (set BENCH_RIG)"
NODE_EDGE_PORT=$EDGE_PORT
source "$repo/loadtest/common/node.sh"
node_install sipp=sip-tester kamailio=kamailio =kamailio-extra-modules rtpengine=rtpengine-daemon \
  rtpengine-ctl=rtpengine-utils gcc=gcc python3=python3 gawk=gawk bc=bc sqlite3=sqlite3 jq=jq curl=curl \
  ss=iproute2 tcpdump=tcpdump
for port in 5080 5090 6000 6100 8890 8891 "$EDGE_PORT" "$KAM_PORT" "$NG_PORT" 9900; do
  ! ss -Hulpn "sport = :$port" | grep -q . || die "UDP port $port is in use"
done
mlo=${MEDIA_PORTS%-*} mhi=${MEDIA_PORTS#*-}
((mlo > 49999 || mhi < 20000)) && ((mlo > 8891 || mhi < 5070)) ||
  die "MEDIA_PORTS $MEDIA_PORTS overlaps rtpengine's 20000-49999 or the generator's 5070-8891"
node_build

mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/sb-media-bench.XXXXXX")
rtpe_up=0
cleanup() {
  node_stop
  if ((rtpe_up)); then
    "$rig/kamailio.sh" stop "$KAM_PORT" >/dev/null 2>&1 || true
    "$rig/rtpengine.sh" stop "$NG_PORT" >/dev/null 2>&1 || true
  fi
  [[ -f $work/node.log ]] && cp "$work/node.log" "$out/node.log"
  rm -rf "$work"
}
trap cleanup EXIT

{
  echo "date=$(date -u +%FT%TZ) commit=$(cd "$repo" && git rev-parse --short HEAD)$(cd "$repo" && git diff --quiet HEAD -- . || echo +changes) host=$(hostname) cores=$(nproc) kernel=$(uname -r)"
  echo "sipp: $(sipp -v 2>/dev/null | grep -o 'SIPp v[^ ]*' | head -1)  kamailio: $(kamailio -v 2>/dev/null | head -1)  rtpengine: $(rtpengine --version 2>&1 | tail -1)"
  echo "net.core.rmem_default=$(cat /proc/sys/net/core/rmem_default) rmem_max=$(cat /proc/sys/net/core/rmem_max) fd_limit=$(ulimit -n)"
  echo "WINDOW=$WINDOW CALL_S=$CALL_S DIRECT_START=$DIRECT_START RTPE_START=$RTPE_START EDGE_START=$EDGE_START BISECT=$BISECT DIRECT_BISECT=$DIRECT_BISECT N_MAX=$N_MAX MEDIA_PORTS=$MEDIA_PORTS"
  echo "load before the run: $(cat /proc/loadavg)"
} >"$out/env.txt"

# --- the node ----------------------------------------------------------------
node_start "$work" "# The relay on, bound to loopback, on ports apart from rtpengine's
# (20000-49999) and the generator's; the calls' own RTP never pauses, so
# the media timeout is only a bound.
media_relay = true
media_bind = \"127.0.0.1\"
media_port_min = $mlo
media_port_max = $mhi
media_timeout = \"120s\""
node_line "$NUMBER"
# The rig's INVITEs go to the user part "service"; the edge routes by number.
export SIPP_REAL=$(command -v sipp) BENCH_NUMBER=$NUMBER
export PATH="$repo/loadtest/sip/shim:$PATH"

# capture PORTS_FILTER SECONDS DELAY NAME: RTP on lo, a few seconds, started
# DELAY seconds from now (after the sanity step's calls are up)
cap_pid=""
capture() {
  ((LATENCY)) || return 0
  (sleep "$3" && timeout "$2" tcpdump -i lo -n -s 64 -B 16384 -w "$out/lat-$4.pcap" \
    "udp and (port 6000 or port 6100 or portrange $1) and udp[8] & 0xc0 == 0x80" >/dev/null 2>&1 || true) &
  cap_pid=$!
}
capture_wait() { [[ -z $cap_pid ]] || wait "$cap_pid" || true; cap_pid=""; }
latency() { # NAME LO HI: "median p99 pairs" of relay in -> out, in µs
  ((LATENCY)) && [[ -s $out/lat-$1.pcap ]] || { echo "- - 0"; return; }
  python3 "$here/latency.py" "$out/lat-$1.pcap" "$2" "$3" 2>>"$out/latency.err" || echo "- - 0"
}
sanity_window=${SANITY_WINDOW:-10}

say "the agent's phone registers from 5080 (binding for an hour)"
node_register 3600
say "sanity: $SANITY_N calls through the edge (127.0.0.1:$EDGE_PORT)"
# the calls start at 1.5 N / CALL_S per second: N are up after ~2/3 CALL_S
capture "$mlo-$mhi" 3 $((CALL_S * 2 / 3 + 6)) edge
if ! line=$(RELAY_PID=$node RELAY_PORTS=$MEDIA_PORTS KEEP="$out/raw-sanity" \
  "$rig/step.sh" "127.0.0.1:$EDGE_PORT" "$SANITY_N" "$sanity_window" "$CALL_S"); then
  echo "$line" | tee "$out/sanity.log"
  die "the sanity step through the edge failed: raw files in $out/raw-sanity, the node's log in $out/node.log"
fi
echo "$line" | tee "$out/sanity.log" >&2
capture_wait
read -r edge_lat_med edge_lat_p99 edge_lat_n <<<"$(latency edge "$mlo" "$mhi")"
echo "edge added latency at $SANITY_N calls: median ${edge_lat_med} µs, p99 ${edge_lat_p99} µs ($edge_lat_n packets paired)" | tee -a "$out/sanity.log" >&2
if [[ ${SANITY_ONLY:-0} == 1 ]]; then
  say "SANITY_ONLY=1: no ladders; files in $out"
  exit 0
fi

# --- the runs ------------------------------------------------------------------
ladder() { # NAME TARGET START [env...]
  local name=$1 target=$2 start=$3
  shift 3
  say "$name: ladder from $start on $target ($(date -u +%T))"
  env "$@" KEEP="$out/raw" "$rig/run.sh" "$target" "$start" "$N_MAX" >"$out/$name.log" 2>"$out/$name.steps"
}
echo "node_pid=$node threads=$(ls /proc/"$node"/task | wc -l)" >>"$out/env.txt"
ladder edge "127.0.0.1:$EDGE_PORT" "$EDGE_START" BISECT="$BISECT" RELAY_PID="$node" RELAY_PORTS="$MEDIA_PORTS"
rtpe_lat_med=- rtpe_lat_p99=- rtpe_lat_n=0
if [[ -z ${SKIP_RTPENGINE:-} ]]; then
  rpid=$("$rig/rtpengine.sh" start "$NG_PORT" "${RTPE_PORTS%-*}" "${RTPE_PORTS#*-}") || die "rtpengine did not start"
  rtpe_up=1
  kpid=$("$rig/kamailio.sh" start "$KAM_PORT" 4 "udp:127.0.0.1:$NG_PORT") || die "Kamailio did not start"
  echo "rtpengine_pid=$rpid kamailio_pid=$kpid threads=$(ls /proc/"$rpid"/task | wc -l)" >>"$out/env.txt"
  if ((LATENCY)); then
    say "rtpengine: $SANITY_N calls, for its latency"
    capture "${RTPE_PORTS%-*}-${RTPE_PORTS#*-}" 3 $((CALL_S * 2 / 3 + 6)) rtpengine
    RELAY_PID=$rpid RELAY_PORTS=$RTPE_PORTS SIP_PID=$kpid \
      "$rig/step.sh" "127.0.0.1:$KAM_PORT" "$SANITY_N" "$sanity_window" "$CALL_S" >"$out/rtpengine-latency.log" || true
    capture_wait
    read -r rtpe_lat_med rtpe_lat_p99 rtpe_lat_n <<<"$(latency rtpengine "${RTPE_PORTS%-*}" "${RTPE_PORTS#*-}")"
  fi
  ladder rtpengine "127.0.0.1:$KAM_PORT" "$RTPE_START" BISECT="$BISECT" RELAY_PID="$rpid" RELAY_PORTS="$RTPE_PORTS" \
    SIP_PID="$kpid" RTPE_CLI=127.0.0.1:9900
  "$rig/kamailio.sh" stop "$KAM_PORT" >/dev/null
  "$rig/rtpengine.sh" stop "$NG_PORT" >/dev/null
  rtpe_up=0
fi

if [[ -z ${SKIP_DIRECT:-} ]]; then
  ladder direct 127.0.0.1:5080 "$DIRECT_START" BISECT="$DIRECT_BISECT"
fi

# --- the table -------------------------------------------------------------------
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1" | head -1; }
best_of() { [[ -s $out/$1.log ]] && sed 's/.* n=\([0-9]*\) first_fail.*/\1/' "$out/$1.log" | tail -1 || echo 0; }
direct=$(best_of direct)
rtpe=$(best_of rtpengine)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2f", a / b; else print "—" }'; }
echo
echo "### Media: concurrent G.711 calls through the edge's relay, against rtpengine ($(date -u +%F), commit $(cd "$repo" && git rev-parse --short HEAD))"
echo
echo "| path | max sustained calls (< 0.1 % loss) | first fail | vs rtpengine | vs direct | relay CPU at max | relay CPU per call | machine CPU | relayed pkt/s | added latency median / p99 (N=$SANITY_N) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for name in direct rtpengine edge; do
  [[ -s $out/$name.log ]] || continue
  line=$(tail -1 "$out/$name.log")
  n=$(best_of "$name")
  cpu=$(field "$line" cpu_relay)
  per_call=$(awk -v c="${cpu%\%}" -v n="$n" 'BEGIN{ if (n > 0 && c + 0 > 0) printf "%.0f µs/s", c * 10000 / n; else print "—" }')
  case $name in
  direct) lat="0 (no relay)" ;;
  rtpengine) lat=$([[ $rtpe_lat_n != 0 ]] && echo "$rtpe_lat_med / $rtpe_lat_p99 µs" || echo "not measured") ;;
  edge) lat=$([[ $edge_lat_n != 0 ]] && echo "$edge_lat_med / $edge_lat_p99 µs" || echo "not measured") ;;
  esac
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$n" \
    "$(sed -n 's/.*first_fail=\([0-9]*\).*/\1/p' <<<"$line")" "$(ratio "$n" "$rtpe")" "$(ratio "$n" "$direct")" \
    "${cpu:-—}" "$per_call" "$(field "$line" cpu_machine)" "$(field "$line" relayed_pps)" "$lat"
done
edge_n=$(best_of edge)
echo
echo "Goal (issue 22): >= 1.2x rtpengine's calls at < 0.1 % loss: edge/rtpengine = $(ratio "$edge_n" "$rtpe") -> $(awk -v a="$edge_n" -v b="$rtpe" 'BEGIN{ print (b > 0 && a >= 1.2 * b) ? "PASS" : "FAIL" }')"
echo
echo "Sanity ($SANITY_N calls through the edge): $(cat "$out/sanity.log")"
for name in direct rtpengine edge; do
  [[ -s $out/$name.steps ]] || continue
  echo
  echo "$name steps:"
  cat "$out/$name.steps"
done
echo
echo "Raw files: $out"
echo "Rerun: \`WINDOW=$WINDOW CALL_S=$CALL_S DIRECT_START=$DIRECT_START DIRECT_BISECT=$DIRECT_BISECT RTPE_START=$RTPE_START EDGE_START=$EDGE_START BISECT=$BISECT loadtest/media/run.sh\`"
