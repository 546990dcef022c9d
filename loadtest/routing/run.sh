#!/usr/bin/env bash
# loadtest/routing/run.sh: routing with Redis, one tenant with 2,000 agents,
# 100 queues and 20 skills.
#
# Builds switchboard-loadtest-routing in release and runs, for BENCH_ROUNDS
# rounds: the baseline (the engine and its record encoding in memory; PING
# and fenced writes of one enqueue's records through the same RedisCache,
# one at a time and concurrently), then the engine host (EngineHost on
# RedisCache, group commit): enqueue → offer in bursts with the agents freed
# between them, the full cycle (enqueue → offer → accept → end) as fast as
# it goes, the full cycle at BENCH_RATE contacts/s, and at BENCH_LOW_RATE
# contacts/s (for information). Prints a Markdown table with the medians, the ratio to the baseline of the same run, where the time
# went, and the command to rerun. Exits non-zero only when the setup fails
# or a run's state in Redis does not match its engine, never for a missed
# target. Knobs: loadtest/routing/README.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

ROUNDS=${BENCH_ROUNDS:-3}
DURATION=${BENCH_DURATION:-20}
WARMUP=${BENCH_WARMUP:-5}
BASELINE_DURATION=${BENCH_BASELINE_DURATION:-10}
CLIENTS=${BENCH_CLIENTS:-32}
BURST=${BENCH_BURST:-16}
RATE=${BENCH_RATE:-10000}
LOW_RATE=${BENCH_LOW_RATE:-2000}
REDIS_URL=${BENCH_REDIS_URL:-redis://127.0.0.1:6379}
TARGET_RATE=10000
TARGET_P99_MS=5

say() { printf '==> %s\n' "$*" >&2; }
die() {
  printf 'loadtest/routing/run.sh: %s\n' "$*" >&2
  exit 1
}

for knob in ROUNDS DURATION WARMUP BASELINE_DURATION CLIENTS BURST RATE LOW_RATE; do
  [[ ${!knob} =~ ^[1-9][0-9]*$ ]] || die "BENCH_$knob must be a positive integer (got '${!knob}')"
done
[[ $REDIS_URL =~ ^redis://(127\.0\.0\.1|localhost):[0-9]+(/[0-9]+)?$ ]] ||
  die "BENCH_REDIS_URL must be redis://127.0.0.1:port (loopback only)"
command -v cargo >/dev/null || die "cargo is not on PATH"

redis_hostport=${REDIS_URL#redis://}
redis_hostport=${redis_hostport%%/*}
(exec 3<>"/dev/tcp/${redis_hostport%:*}/${redis_hostport#*:}") 2>/dev/null ||
  die "Redis does not answer at $redis_hostport; start it (./scripts/test does) or set BENCH_REDIS_URL"

bin=${CARGO_TARGET_DIR:-$repo/target}/release/switchboard-loadtest-routing
if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
  say "building the release binary (cargo build --release -p switchboard-loadtest-routing)"
  (cd "$repo" && cargo build --release -p switchboard-loadtest-routing) || die "the release build failed"
fi
[[ -x $bin ]] || die "no binary at $bin"

work=$(mktemp -d "${TMPDIR:-/tmp}/sb-routing-bench.XXXXXX")
cleanup() {
  local status=$?
  if ((status != 0)); then
    printf 'loadtest/routing/run.sh: failed; the logs are kept in %s\n' "$work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- running ---------------------------------------------------------------

ncpu=$(nproc)
machine_ticks() { # busy and total jiffies of the whole machine
  local _cpu user nice system idle iowait irq softirq steal rest
  read -r _cpu user nice system idle iowait irq softirq steal rest </proc/stat
  echo "$((user + nice + system + irq + softirq + steal)) $((user + nice + system + idle + iowait + irq + softirq + steal))"
}
read -r m_busy0 m_total0 <<<"$(machine_ticks)"
sleep 3
read -r m_busy1 m_total1 <<<"$(machine_ticks)"
background=$(awk -v n="$ncpu" -v b=$((m_busy1 - m_busy0)) -v t=$((m_total1 - m_total0)) 'BEGIN { printf "%.2f", t ? n * b / t : 0 }')
say "background load before the run: $background of $ncpu cores busy"

run() { # ROUND ARGS…: appends the RESULT lines to $work/round-ROUND
  local round=$1
  shift
  if ! "$bin" "$@" >>"$work/round-$round" 2>>"$work/err"; then
    tail -n 30 "$work/err" >&2
    die "switchboard-loadtest-routing $* failed"
  fi
  tail -n 1 "$work/err" >&2
}

route=(route --redis-url "$REDIS_URL" --clients "$CLIENTS" --warmup "$WARMUP" --duration "$DURATION")
for round in $(seq "$ROUNDS"); do
  say "round $round/$ROUNDS: baseline (${BASELINE_DURATION}s measured per part)"
  run "$round" baseline --redis-url "$REDIS_URL" --clients "$CLIENTS" --warmup "$WARMUP" \
    --duration "$BASELINE_DURATION"
  say "round $round/$ROUNDS: host, bursts of $CLIENTS × $BURST, agents freed between them (${WARMUP}s + ${DURATION}s)"
  run "$round" "${route[@]}" --mode burst --burst "$BURST" --label host-burst
  say "round $round/$ROUNDS: host, full cycle as fast as it goes (${WARMUP}s + ${DURATION}s)"
  run "$round" "${route[@]}" --mode cycle --rate 0 --label host-cycle
  say "round $round/$ROUNDS: host, full cycle at $RATE contacts/s (${WARMUP}s + ${DURATION}s)"
  run "$round" "${route[@]}" --mode cycle --rate "$RATE" --label host-paced
  say "round $round/$ROUNDS: host, full cycle at $LOW_RATE contacts/s (${WARMUP}s + ${DURATION}s)"
  run "$round" "${route[@]}" --mode cycle --rate "$LOW_RATE" --label host-low
done

# --- the table ---------------------------------------------------------------

field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $1"; }
values() { # LABEL KEY: one value per round
  local round line
  for round in $(seq "$ROUNDS"); do
    line=$(grep -m1 "^RESULT scenario=$1 " "$work/round-$round") || die "no $1 result in round $round"
    field "$line" "$2"
  done
}
med() { values "$1" "$2" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
joined() { values "$1" "$2" | paste -sd/ | sed 's#/# / #g'; }
fmt_int() {
  awk -v x="$1" 'BEGIN { s = sprintf("%d", x + 0.5); t = ""
    while (length(s) > 3) { t = "," substr(s, length(s) - 2) t; s = substr(s, 1, length(s) - 3) }
    print s t }'
}
fmt_ms() { awk -v x="$1" 'BEGIN { printf (x < 10 ? "%.2f" : (x < 1000 ? "%.1f" : "%.0f")), x }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b ? a / b : 0 }'; }
at_least() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }
at_most() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }

verified=yes
for label in host-burst host-cycle host-paced host-low; do
  for ok in $(values "$label" verified); do [[ $ok == yes ]] || verified=no; done
done

serial=$(med write-serial per_s)
base_row() { # LABEL TEXT
  echo "| $2 | $(fmt_int "$(med "$1" per_s)") | $(fmt_int "$(med "$1" min_1s_per_s)") | $(fmt_ms "$(med "$1" p50_ms)") | $(fmt_ms "$(med "$1" p99_ms)") | $(fmt_ms "$(med "$1" max_ms)") | — | $(ratio "$(med "$1" per_s)" "$serial") | baseline |"
}
host_row() { # LABEL TEXT PER_S_KEY SLOWEST TARGET RESULT
  local slowest="—"
  [[ $4 == - ]] || slowest=$(fmt_int "$(med "$1" "$4")")
  echo "| $2 | $(fmt_int "$(med "$1" "$3")") | $slowest | $(fmt_ms "$(med "$1" offered_p50_ms)") | $(fmt_ms "$(med "$1" offered_p99_ms)") | $(fmt_ms "$(med "$1" offered_max_ms)") | $5 | $(ratio "$(med "$1" "$3")" "$serial") | $6 |"
}
kept_up() { at_least "$(med "$1" enqueued_per_s)" "$(awk -v r="${2:-$RATE}" 'BEGIN { print r * 0.98 }')"; }
kept_up_at() { # LABEL RATE
  kept_up "$1" "$2" && echo "kept up" || echo "fell behind"
}
throughput_result() { at_least "$(med "$1" routed_per_s)" "$TARGET_RATE" && echo PASS || echo FAIL; }
latency_result() { # LABEL
  if ! kept_up "$1"; then
    echo "FAIL (fell behind: $(fmt_int "$(med "$1" enqueued_per_s)")/s)"
  elif at_most "$(med "$1" offered_p99_ms)" "$TARGET_P99_MS"; then
    echo PASS
  else
    echo FAIL
  fi
}
profile_row() { # LABEL TEXT
  local per_op
  per_op=$(awk -v o="$(med "$1" ops_per_s)" 'BEGIN { printf "%.0f", o ? 1e6 / o : 0 }')
  echo "| $2 | $(med "$1" cpu_machine) | $(med "$1" cpu_this) | $(med "$1" cpu_redis) | $(awk -v m="$(med "$1" cpu_machine)" -v a="$(med "$1" cpu_this)" -v b="$(med "$1" cpu_redis)" 'BEGIN { printf "%.2f", m - a - b }') | $(fmt_int "$(med "$1" ops_per_s)") | $per_op | $(med "$1" engine_busy) | $(med "$1" engine_us_enqueue) / $(med "$1" engine_us_accept) / $(med "$1" engine_us_end) | $(fmt_int "$(med "$1" writes_per_s)") | $(med "$1" answered_per_write) | $(med "$1" us_per_write) | $(fmt_int "$(med "$1" redis_scripts_per_s)") | $(med "$1" redis_us_per_script) | $(fmt_int "$(med "$1" journal_events_per_s)") |"
}

throughput=$(throughput_result host-burst)
latency=$(latency_result host-paced)
commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$repo" status --porcelain --untracked-files=no -- crates services 2>/dev/null | grep -q . &&
  echo ", uncommitted changes in crates/ or services/" || true)
redis_version=$( (redis-cli -u "$REDIS_URL" INFO server 2>/dev/null || true) | sed -n 's/^redis_version:\([^\r]*\).*/\1/p')
rerun="BENCH_ROUNDS=$ROUNDS BENCH_DURATION=$DURATION BENCH_WARMUP=$WARMUP BENCH_BASELINE_DURATION=$BASELINE_DURATION BENCH_CLIENTS=$CLIENTS BENCH_BURST=$BURST BENCH_RATE=$RATE BENCH_LOW_RATE=$LOW_RATE loadtest/routing/run.sh"

cat <<EOT

### Routing with Redis: \`EngineHost\` on \`RedisCache\` ($(date -u +%Y-%m-%d), commit $commit$dirty)

- Tenant: one, with 2,000 agents (4–6 skills each, proficiency 1–10), 100 voice
  queues (1–2 required skills with a minimum proficiency), 20 skills, every agent
  available: the criterion bench's scenario, set up through the host (4,100
  operations). Contacts go to random staffed queues.
- Host: \`switchboard_routing::EngineHost::execute\` on \`RedisCache\` (Redis
  ${redis_version:-(version unknown)} on loopback, one multiplexed connection, lease of 10 s), group
  commit: each operation runs on the engine under the tenant's short lock; the tenant's
  writer writes everything applied during its previous round trip (changed records,
  routing events as journal fields, journal trims) in one \`fenced_write\` (Lua), then
  answers those callers, so no caller hears of its operation before it is in Redis. A trimmer takes the journal every 10 ms, 500 events a
  call, as the runtime's mover does after moving them to the outbox
  (\`journal\` + \`journal_done\`, whose trims ride along with the next write; the outbox itself is not
  part of this benchmark, nor are the runtime's notices).
- Load: $CLIENTS client tasks in one process (release build). "bursts": rounds in which
  each client enqueues $BURST contacts back to back (timed), then every offer is accepted
  and ended (not timed): contacts offered per second of enqueueing, like the criterion
  bench's \`enqueue_offer\`. "full cycle": each client enqueues a contact, then accepts
  and ends it (and any offer those operations make), as fast as it goes or paced to
  $(fmt_int "$RATE") contacts/s in all. Latency = from the call to \`execute(enqueue)\` to the
  returned \`Outcome\` carrying the contact's offer (only contacts an agent could take at
  once; those that waited are counted apart: $(joined host-cycle waited_count) in the as-fast runs).
  ${WARMUP} s warm-up, ${DURATION} s measured per run. After each run the state in Redis is
  read back: equal to the engine's records, consistent, every agent available, no
  contact left ($([[ $verified == yes ]] && echo "yes in every run" || echo "**NOT in every run**")).
- Baseline, same rounds and connection type: PING from $CLIENTS tasks; \`fenced_write\` of what
  the host writes for one enqueue (records and events, $(med encode fields_enqueue) fields, $(med encode bytes_enqueue) bytes) one at a time (what a
  host writing one operation per round trip can reach) and from $CLIENTS tasks at once (pipelined
  on the connection: what Redis takes in many small writes);
  ${BASELINE_DURATION} s measured each. "vs baseline" = the row's rate ÷ the one-at-a-time write rate.
- Rounds: $ROUNDS; medians of the rounds. Machine: $ncpu cores, shared ($background cores busy
  before the run); Redis and the load generator run on the same cores.

| scenario | per second (median of $ROUNDS) | slowest 1 s | p50 ms | p99 ms | max ms | target | vs baseline | result |
|---|---:|---:|---:|---:|---:|---|---:|---|
$(base_row ping "baseline: PING, $CLIENTS tasks (calls/s)")
$(base_row write-serial "baseline: \`fenced_write\` of one enqueue's records and events, one at a time (writes/s)")
$(base_row write-concurrent "baseline: the same write, $CLIENTS tasks at once (writes/s)")
$(host_row host-burst "EngineHost: enqueue → offer, bursts of $CLIENTS × $BURST, agents freed between bursts (contacts/s)" routed_per_s - "≥ $(fmt_int "$TARGET_RATE")/s" "$throughput")
$(host_row host-cycle "EngineHost: full cycle enqueue → offer → accept → end, as fast as it goes (contacts/s)" cycles_per_s cycles_min_1s_per_s "—" "—")
$(host_row host-paced "EngineHost: full cycle at $(fmt_int "$RATE") contacts/s (contacts/s; latency when an agent is free)" cycles_per_s cycles_min_1s_per_s "p99 ≤ ${TARGET_P99_MS} ms at $(fmt_int "$RATE")/s" "$latency")
$(host_row host-low "for information, EngineHost: full cycle at $(fmt_int "$LOW_RATE") contacts/s" cycles_per_s cycles_min_1s_per_s "—" "$(kept_up_at host-low "$LOW_RATE")")

Rounds (per second): write one at a time $(joined write-serial per_s), $CLIENTS at once
$(joined write-concurrent per_s); EngineHost bursts $(joined host-burst routed_per_s), full cycle
$(joined host-cycle cycles_per_s), at $(fmt_int "$RATE")/s $(joined host-paced cycles_per_s) (p99 $(joined host-paced offered_p99_ms) ms), at
$(fmt_int "$LOW_RATE")/s p99 $(joined host-low offered_p99_ms) ms.

Where the time goes (medians of the rounds, over the measured window; cores of $ncpu;
"engine busy" = share of the wall time the tenant's engine was running an operation;
writes and callers per write from \`EngineHost::stats()\` (callers = operations and the
trimmer's \`journal_done\`); "µs per write" = wall time ÷ writes, the writer's cycle
(applied batch encoded, written, callers answered) when it never idles; Redis µs per
script from \`INFO commandstats\`, every client of this Redis included):

| run | machine busy | load test | Redis | rest (neighbours) | host operations/s | µs per operation | engine busy | engine µs enqueue / accept / end (p50) | writes/s | callers per write | µs per write | Redis scripts/s | Redis µs per script | journal events/s |
|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|
$(profile_row host-burst "EngineHost, bursts")
$(profile_row host-cycle "EngineHost, full cycle as fast as it goes")
$(profile_row host-paced "EngineHost, full cycle at $(fmt_int "$RATE")/s")
$(profile_row host-low "EngineHost, full cycle at $(fmt_int "$LOW_RATE")/s")

In memory (same scenario, $(med encode cycles) cycles, medians of the rounds' means): engine µs per
enqueue / accept / end $(med encode engine_us_enqueue) / $(med encode engine_us_accept) / $(med encode engine_us_end); encoding the changed
records and the routing events as the host does $(med encode encode_us_enqueue) / $(med encode encode_us_accept) / $(med encode encode_us_end) µs, for $(med encode fields_enqueue) / $(med encode fields_accept) / $(med encode fields_end)
fields of $(med encode bytes_enqueue) / $(med encode bytes_accept) / $(med encode bytes_end) bytes. A write one at a time: p50 $(fmt_ms "$(med write-serial p50_ms)") ms, Redis's own time
$(med write-serial redis_us_per_script) µs per script.

Rerun: \`$rerun\`
EOT
[[ $verified == yes ]] || die "a run's state in Redis did not match its engine"
