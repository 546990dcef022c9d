#!/usr/bin/env bash
# loadtest/events/run.sh: the event backbone end to end.
#
# Builds switchboard-loadtest-events in release and runs, in turn for
# BENCH_ROUNDS rounds, the bare lapin baseline (persistent messages with
# publisher confirms, consumer with prefetch and manual acks, on a fresh
# durable queue) and the pipeline (writers → outbox on PostgreSQL → relay →
# RabbitMQ → consumer with one effect row per event in PostgreSQL, on a
# fresh database, as a non-owner role under row-level security); then once
# the in-process bus alone and the pipeline on SQLite with it. Prints a
# Markdown table with the medians, the ratio to the baseline of the same
# run, where the CPU went, and the command to rerun. Exits non-zero only
# when the setup fails or the pipeline's effects do not match its events,
# never for a missed target. Knobs: loadtest/events/README.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

ROUNDS=${BENCH_ROUNDS:-3}
DURATION=${BENCH_DURATION:-60}
WARMUP=${BENCH_WARMUP:-10}
MAX_BACKLOG=${BENCH_MAX_BACKLOG:-5000}
LATENCY_RATE=${BENCH_LATENCY_RATE:-5000}
WRITERS=${BENCH_WRITERS:-8}
WRITER_BATCH=${BENCH_WRITER_BATCH:-20}
TENANTS=${BENCH_TENANTS:-8}
RELAYS=${BENCH_RELAYS:-1}
RELAY_BATCH=${BENCH_RELAY_BATCH:-500}
PACK_EVENTS=${BENCH_PACK_EVENTS:-64}
CONSUMERS=${BENCH_CONSUMERS:-1}
CONSUMER_BATCH=${BENCH_CONSUMER_BATCH:-512}
CONSUMER_CONCURRENCY=${BENCH_CONSUMER_CONCURRENCY:-2}
PREFETCH=${BENCH_PREFETCH:-256}
WINDOW=${BENCH_WINDOW:-500}
MEMORY_DURATION=${BENCH_MEMORY_DURATION:-10}
MEMORY_PIPELINE_DURATION=${BENCH_MEMORY_PIPELINE_DURATION:-20}
ADMIN_URL=${BENCH_ADMIN_URL:-postgres://switchboard_test:switchboard_test@127.0.0.1:5432/postgres}
AMQP_URL=${BENCH_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
SSLMODE=${BENCH_PG_SSLMODE:-prefer}
TARGET_PIPELINE=20000
TARGET_MEMORY=200000

say() { printf '==> %s\n' "$*" >&2; }
die() {
  printf 'loadtest/events/run.sh: %s\n' "$*" >&2
  exit 1
}

for knob in ROUNDS DURATION WARMUP WRITERS WRITER_BATCH TENANTS RELAYS RELAY_BATCH PACK_EVENTS \
  CONSUMERS CONSUMER_BATCH CONSUMER_CONCURRENCY PREFETCH WINDOW MEMORY_DURATION; do
  [[ ${!knob} =~ ^[1-9][0-9]*$ ]] || die "BENCH_$knob must be a positive integer (got '${!knob}')"
done
for knob in MAX_BACKLOG LATENCY_RATE MEMORY_PIPELINE_DURATION; do
  [[ ${!knob} =~ ^[0-9]+$ ]] || die "BENCH_$knob must be a non-negative integer (got '${!knob}')"
done
[[ $ADMIN_URL == postgres://*@127.0.0.1:*/* || $ADMIN_URL == postgresql://*@127.0.0.1:*/* ]] ||
  die "BENCH_ADMIN_URL must be postgres://user:password@127.0.0.1:port/db (loopback only)"
[[ $SSLMODE =~ ^(disable|prefer|require)$ ]] || die "BENCH_PG_SSLMODE must be disable, prefer or require"
[[ $AMQP_URL == amqp://*@127.0.0.1:* ]] || die "BENCH_AMQP_URL must be amqp://user:password@127.0.0.1:port/vhost (loopback only)"

# --- tools -----------------------------------------------------------------

missing=()
command -v psql >/dev/null || missing+=(postgresql-client)
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
  die "$(masked "$ADMIN_URL") must be a superuser (it creates a database and a role)"
# Databases an interrupted run left behind (each run drops its own).
for db in $(psql_at "$ADMIN_URL" -c "SELECT datname FROM pg_database WHERE datname LIKE 'sb\_bench\_events\_%'"); do
  psql_at "$ADMIN_URL" -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null
done
amqp_hostport=${AMQP_URL#*@}
amqp_hostport=${amqp_hostport%%/*}
(exec 3<>"/dev/tcp/${amqp_hostport%:*}/${amqp_hostport#*:}") 2>/dev/null ||
  die "RabbitMQ does not answer at $amqp_hostport; start it (./scripts/test does) or set BENCH_AMQP_URL"

# --- the binary ------------------------------------------------------------

bin=${CARGO_TARGET_DIR:-$repo/target}/release/switchboard-loadtest-events
if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
  say "building the release binary (cargo build --release -p switchboard-loadtest-events)"
  (cd "$repo" && cargo build --release -p switchboard-loadtest-events) || die "the release build failed"
fi
[[ -x $bin ]] || die "no binary at $bin"

work=$(mktemp -d "${TMPDIR:-/tmp}/sb-events-bench.XXXXXX")
bench_pid=
cleanup() {
  local status=$?
  if [[ -n $bench_pid ]] && kill -0 "$bench_pid" 2>/dev/null; then
    kill -INT "$bench_pid" 2>/dev/null || true
    wait "$bench_pid" 2>/dev/null || true
  fi
  if ((status != 0)); then
    printf 'loadtest/events/run.sh: failed; the logs are kept in %s\n' "$work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

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
rabbit_pids() { pgrep -x beam.smp || true; }
postgres_pids() { pgrep -x postgres || true; }

# Runs the binary with SCENARIO ARGS… in the background; reads the CPU
# counters from WARMUP + 1 s after its start to 1 s before the end of its
# measured window, while the load is steady. Sets cpu_machine, cpu_bench,
# cpu_postgres, cpu_rabbit (in cores); its stdout lands in $work/out.
run_measured() { # WARMUP SECONDS ARGS…
  local warmup=$1 seconds=$2 t0 t1 m_busy0 m_total0 m_busy1 m_total1 b0 b1 p0 p1 r0 r1
  shift 2
  sleep 1
  "$bin" "$@" >"$work/out" 2>"$work/err" &
  bench_pid=$!
  sleep "$((warmup + 1))"
  # shellcheck disable=SC2046
  b0=$(process_ticks "$bench_pid") p0=$(process_ticks $(postgres_pids)) r0=$(process_ticks $(rabbit_pids))
  read -r m_busy0 m_total0 <<<"$(machine_ticks)"
  t0=$(date +%s.%N)
  sleep "$((seconds > 3 ? seconds - 2 : 1))"
  t1=$(date +%s.%N)
  read -r m_busy1 m_total1 <<<"$(machine_ticks)"
  # shellcheck disable=SC2046
  b1=$(process_ticks "$bench_pid") p1=$(process_ticks $(postgres_pids)) r1=$(process_ticks $(rabbit_pids))
  if ! wait "$bench_pid"; then
    bench_pid=
    cat "$work/err" >&2
    die "switchboard-loadtest-events $1 failed"
  fi
  bench_pid=
  grep -E '^  ' "$work/err" >&2 || true
  read -r cpu_machine cpu_bench cpu_postgres cpu_rabbit < <(awk -v n="$ncpu" -v hz="$clk_tck" \
    -v t="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
    -v mb=$((m_busy1 - m_busy0)) -v mt=$((m_total1 - m_total0)) \
    -v b="$(ticks_since "$b0" "$b1")" -v p="$(ticks_since "$p0" "$p1")" -v r="$(ticks_since "$r0" "$r1")" \
    'BEGIN { printf "%.2f %.2f %.2f %.2f\n", (mt ? n * mb / mt : 0), b / hz / t, p / hz / t, r / hz / t }')
}

field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $1"; }
result_line() { grep -m1 "^RESULT scenario=$1 " "$work/out" || die "no $1 result in: $(cat "$work/out" "$work/err")"; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

read -r m_busy0 m_total0 <<<"$(machine_ticks)"
sleep 3
read -r m_busy1 m_total1 <<<"$(machine_ticks)"
background=$(awk -v n="$ncpu" -v b=$((m_busy1 - m_busy0)) -v t=$((m_total1 - m_total0)) 'BEGIN { printf "%.2f", t ? n * b / t : 0 }')
say "background load before the run: $background of $ncpu cores busy"

pg_url="${ADMIN_URL%%\?*}?sslmode=$SSLMODE"
pipeline_args=(pipeline --admin-url "$pg_url" --amqp-url "$AMQP_URL" --duration "$DURATION"
  --warmup "$WARMUP" --max-backlog "$MAX_BACKLOG" --writers "$WRITERS"
  --writer-batch "$WRITER_BATCH" --tenants "$TENANTS" --relays "$RELAYS" --relay-batch "$RELAY_BATCH"
  --pack-events "$PACK_EVENTS" --consumers "$CONSUMERS" --consumer-batch "$CONSUMER_BATCH"
  --consumer-concurrency "$CONSUMER_CONCURRENCY" --prefetch "$PREFETCH" --profile)
baseline_args=(baseline --amqp-url "$AMQP_URL" --duration "$DURATION" --warmup 5
  --window "$WINDOW" --prefetch "$PREFETCH" --max-backlog "$MAX_BACKLOG" --tenants "$TENANTS")

declare -a b_rate b_min b_p50 b_p99 b_max b_cpu b_bench b_pg b_rabbit
declare -a p_rate p_min p_p50 p_p99 p_max p_cpu p_bench p_pg p_rabbit p_appended p_ok p_profile
declare -a l_rate l_min l_p50 l_p99 l_max l_appended l_ok
for round in $(seq "$ROUNDS"); do
  say "round $round/$ROUNDS: baseline (${DURATION}s)"
  run_measured 5 "$DURATION" "${baseline_args[@]}"
  line=$(result_line baseline)
  b_rate+=("$(field "$line" events_per_s)") b_min+=("$(field "$line" min_1s_per_s)")
  b_p50+=("$(field "$line" p50_ms)") b_p99+=("$(field "$line" p99_ms)") b_max+=("$(field "$line" max_ms)")
  b_cpu+=("$cpu_machine") b_bench+=("$cpu_bench") b_pg+=("$cpu_postgres") b_rabbit+=("$cpu_rabbit")

  say "round $round/$ROUNDS: pipeline as fast as it goes (${WARMUP}s warm-up, ${DURATION}s measured, then drain and check)"
  run_measured "$WARMUP" "$DURATION" "${pipeline_args[@]}" --rate 0
  line=$(result_line pipeline)
  p_rate+=("$(field "$line" events_per_s)") p_min+=("$(field "$line" min_1s_per_s)")
  p_p50+=("$(field "$line" p50_ms)") p_p99+=("$(field "$line" p99_ms)") p_max+=("$(field "$line" max_ms)")
  p_appended+=("$(field "$line" appended_per_s)") p_ok+=("$(field "$line" verified)")
  p_cpu+=("$cpu_machine") p_bench+=("$cpu_bench") p_pg+=("$cpu_postgres") p_rabbit+=("$cpu_rabbit")
  p_profile+=("$(grep -m1 '^RESULT scenario=pipeline-profile ' "$work/out" || true)")
  printf '    baseline %s events/s, p99 %s ms | pipeline %s events/s, p99 %s ms, verified %s\n' \
    "${b_rate[-1]}" "${b_p99[-1]}" "${p_rate[-1]}" "${p_p99[-1]}" "${p_ok[-1]}" >&2

  if ((LATENCY_RATE > 0)); then
    say "round $round/$ROUNDS: pipeline at $LATENCY_RATE events/s (${WARMUP}s warm-up, ${DURATION}s measured)"
    run_measured "$WARMUP" "$DURATION" "${pipeline_args[@]}" --rate "$LATENCY_RATE"
    line=$(result_line pipeline)
    l_rate+=("$(field "$line" events_per_s)") l_min+=("$(field "$line" min_1s_per_s)")
    l_p50+=("$(field "$line" p50_ms)") l_p99+=("$(field "$line" p99_ms)") l_max+=("$(field "$line" max_ms)")
    l_appended+=("$(field "$line" appended_per_s)") l_ok+=("$(field "$line" verified)")
    printf '    pipeline at %s/s: %s events/s, p99 %s ms, verified %s\n' \
      "$LATENCY_RATE" "${l_rate[-1]}" "${l_p99[-1]}" "${l_ok[-1]}" >&2
  fi
done

say "in-process bus (${MEMORY_DURATION}s), then the pipeline on SQLite + in-process bus (${MEMORY_PIPELINE_DURATION}s)"
run_measured 2 "$MEMORY_DURATION" memory --duration "$MEMORY_DURATION" --warmup 2 \
  --pipeline-duration "$MEMORY_PIPELINE_DURATION"
memory_line=$(result_line memory-bus)
memory_pipeline_line=
((MEMORY_PIPELINE_DURATION > 0)) && memory_pipeline_line=$(result_line memory-pipeline)

# --- the table -------------------------------------------------------------

fmt_int() { # 12345.6 → 12,346
  awk -v x="$1" 'BEGIN { s = sprintf("%d", x + 0.5); t = ""
    while (length(s) > 3) { t = "," substr(s, length(s) - 2) t; s = substr(s, 1, length(s) - 3) }
    print s t }'
}
fmt_ms() { awk -v x="$1" 'BEGIN { printf (x < 10 ? "%.2f" : (x < 1000 ? "%.1f" : "%.0f")), x }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b ? a / b : 0 }'; }
at_least() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }
us_per_event() { awk -v c="$1" -v r="$2" 'BEGIN { printf "%.0f", r ? c * 1e6 / r : 0 }'; }
rest() { awk -v m="$1" -v a="$2" -v b="$3" -v c="$4" 'BEGIN { printf "%.2f", m - a - b - c }'; }
joined() { printf '%s / ' "$@" | sed 's# / $##'; }
profile_median() { # KEY: the median of the pipeline profiles' KEY
  local values=() line
  for line in "${p_profile[@]}"; do values+=("$(field "$line" "$1")"); done
  median "${values[@]}"
}

b_m=$(median "${b_rate[@]}")
p_m=$(median "${p_rate[@]}")
verified=yes
for ok in "${p_ok[@]}" "${l_ok[@]}"; do [[ $ok == yes ]] || verified=no; done
p_result=FAIL
at_least "$p_m" "$TARGET_PIPELINE" && [[ $verified == yes ]] && p_result=pass
m_rate=$(field "$memory_line" events_per_s)
m_result=FAIL
at_least "$m_rate" "$TARGET_MEMORY" && m_result=pass

rerun="BENCH_PG_SSLMODE=$SSLMODE BENCH_ROUNDS=$ROUNDS BENCH_DURATION=$DURATION BENCH_WARMUP=$WARMUP BENCH_MAX_BACKLOG=$MAX_BACKLOG BENCH_LATENCY_RATE=$LATENCY_RATE BENCH_WRITERS=$WRITERS BENCH_WRITER_BATCH=$WRITER_BATCH BENCH_TENANTS=$TENANTS BENCH_RELAYS=$RELAYS BENCH_RELAY_BATCH=$RELAY_BATCH BENCH_PACK_EVENTS=$PACK_EVENTS BENCH_CONSUMERS=$CONSUMERS BENCH_CONSUMER_BATCH=$CONSUMER_BATCH BENCH_CONSUMER_CONCURRENCY=$CONSUMER_CONCURRENCY BENCH_PREFETCH=$PREFETCH loadtest/events/run.sh"
pg_version=$(psql_at "$ADMIN_URL" -c 'SHOW server_version' | cut -d' ' -f1)
pg_sync=$(psql_at "$ADMIN_URL" -c 'SHOW synchronous_commit')
if [[ $(psql_at "$ADMIN_URL" -c 'SHOW ssl') == on && $SSLMODE != disable ]]; then
  pg_tls="over TLS (sslmode=$SSLMODE)"
else
  pg_tls="without TLS (sslmode=$SSLMODE)"
fi
rabbit_version=$( (rabbitmqctl -q version 2>/dev/null || true) | head -n1)
commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$repo" status --porcelain --untracked-files=no -- . ':!loadtest' 2>/dev/null | grep -q . &&
  echo ", uncommitted changes" || true)

cat <<EOT

### Event backbone: outbox → RabbitMQ → consumer ($(date -u +%Y-%m-%d), commit $commit$dirty)

- Pipeline: \`switchboard-loadtest-events pipeline\`, release build, one process: $WRITERS writer
  tasks, each committing transactions of $WRITER_BATCH events of one tenant (round robin over $TENANTS
  tenants; ~250-byte \`user.updated\` envelopes) through \`outbox::append\`; $RELAYS \`Relay\`(s) of
  $RELAY_BATCH rows per round, packing a tenant's consecutive events of one routing key into one
  message, up to $PACK_EVENTS per message; $CONSUMERS \`Consumer\`(s), batch $CONSUMER_BATCH events applied in $CONSUMER_CONCURRENCY concurrent transactions
  (tenants shared out), prefetch $PREFETCH messages, whose
  handler writes one row per event into \`bench_effects\` (one multi-row \`INSERT\` per tenant
  group, in the consumer's transaction). Each role has its own pool and bus connections.
  PostgreSQL $pg_version (synchronous_commit=$pg_sync) $pg_tls, a fresh migrated database per run,
  services connected as a member of \`switchboard_app\` (row-level security on, the effects table
  too); RabbitMQ ${rabbit_version:-(version unknown)} through \`RabbitMqBus\` (durable topic exchange and
  queue, persistent messages, publisher confirms, manual acks).
- Load: "as fast as it goes" = writers append as fast as they can while at most
  $(fmt_int "$MAX_BACKLOG") events are appended but not yet applied (so its latency is the
  latency at saturation, about that backlog over the rate); "at $(fmt_int "$LATENCY_RATE")/s" = writers
  paced to that rate. ${WARMUP} s warm-up, then ${DURATION} s measured; an event counts when its effect is
  committed and its delivery acknowledged; latency = that instant − the event's \`occurred_at\`
  (set just before the writer's transaction). Then the writers stop, the backlog drains and
  the database is checked: one effect per appended event, no duplicate, nothing unpublished.
- Baseline, in the same rounds: a bare lapin loop on a fresh durable queue bound like the
  consumer's, same envelopes and routing keys: persistent publishes with confirms in windows of
  $WINDOW (publish the window, then await its confirms), a consumer with prefetch $PREFETCH acking
  each delivery; at most $(fmt_int "$MAX_BACKLOG") messages unconsumed; latency = consumed − published.
  It carries one event per message, so it bounds a pipeline that does the same; the pipeline
  packs events (above), pays RabbitMQ's per-message cost once per pack, and can exceed it.
- Rounds: $ROUNDS, each running the baseline, then the pipeline as fast as it goes$( ((LATENCY_RATE > 0)) && echo ", then at $(fmt_int "$LATENCY_RATE")/s"); medians of the rounds.
- Machine: $ncpu cores, shared ($background cores busy before the run); PostgreSQL, RabbitMQ and
  the load generator run on the same cores.

| scenario | events/s (median of $ROUNDS) | slowest 1 s | p50 ms | p99 ms | max ms | target | vs baseline | result |
|---|---:|---:|---:|---:|---:|---|---:|---|
| baseline: bare lapin publish + consume | $(fmt_int "$b_m") | $(fmt_int "$(median "${b_min[@]}")") | $(fmt_ms "$(median "${b_p50[@]}")") | $(fmt_ms "$(median "${b_p99[@]}")") | $(fmt_ms "$(median "${b_max[@]}")") | — | 1.00 | baseline |
| pipeline, as fast as it goes | $(fmt_int "$p_m") | $(fmt_int "$(median "${p_min[@]}")") | $(fmt_ms "$(median "${p_p50[@]}")") | $(fmt_ms "$(median "${p_p99[@]}")") | $(fmt_ms "$(median "${p_max[@]}")") | ≥ 20,000 events/s for ${DURATION} s, p99 reported | $(ratio "$p_m" "$b_m") | $p_result |
EOT
if ((LATENCY_RATE > 0)); then
  l_m=$(median "${l_rate[@]}")
  l_result="kept up"
  at_least "$l_m" "$(awk -v r="$LATENCY_RATE" 'BEGIN { print r * 0.98 }')" || l_result="fell behind"
  cat <<EOT
| pipeline at $(fmt_int "$LATENCY_RATE") events/s | $(fmt_int "$l_m") | $(fmt_int "$(median "${l_min[@]}")") | $(fmt_ms "$(median "${l_p50[@]}")") | $(fmt_ms "$(median "${l_p99[@]}")") | $(fmt_ms "$(median "${l_max[@]}")") | — | $(ratio "$l_m" "$b_m") | $l_result |
EOT
fi
cat <<EOT
| in-process bus: \`publish_batch\` → \`next\` + \`ack\` | $(fmt_int "$m_rate") | — | — | — | — | ≥ 200,000 events/s | — | $m_result |
EOT
if [[ -n $memory_pipeline_line ]]; then
  cat <<EOT
| for information: pipeline on SQLite + in-process bus, as fast as it goes | $(fmt_int "$(field "$memory_pipeline_line" events_per_s)") | $(fmt_int "$(field "$memory_pipeline_line" min_1s_per_s)") | $(fmt_ms "$(field "$memory_pipeline_line" p50_ms)") | $(fmt_ms "$(field "$memory_pipeline_line" p99_ms)") | $(fmt_ms "$(field "$memory_pipeline_line" max_ms)") | — | — | $([[ $(field "$memory_pipeline_line" verified) == yes ]] && echo verified || echo MISMATCH) |
EOT
fi
cat <<EOT

Rounds (events/s): baseline $(joined "${b_rate[@]}"); pipeline $(joined "${p_rate[@]}")$( ((LATENCY_RATE > 0)) && echo "; at $(fmt_int "$LATENCY_RATE")/s $(joined "${l_rate[@]}")"). Effects checked against the
appended events after every pipeline run: $(joined "${p_ok[@]}" "${l_ok[@]}").

Where the CPU went (medians of the rounds, in cores of $ncpu, over the measured window but its
edges; µs of CPU per event; PostgreSQL = all its processes on the machine):

| scenario | machine busy | load test process | PostgreSQL | RabbitMQ | rest (neighbours) | load test µs/event | PostgreSQL µs/event | RabbitMQ µs/event |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
| baseline | $(median "${b_cpu[@]}") | $(median "${b_bench[@]}") | $(median "${b_pg[@]}") | $(median "${b_rabbit[@]}") | $(rest "$(median "${b_cpu[@]}")" "$(median "${b_bench[@]}")" "$(median "${b_pg[@]}")" "$(median "${b_rabbit[@]}")") | $(us_per_event "$(median "${b_bench[@]}")" "$b_m") | — | $(us_per_event "$(median "${b_rabbit[@]}")" "$b_m") |
| pipeline, as fast as it goes | $(median "${p_cpu[@]}") | $(median "${p_bench[@]}") | $(median "${p_pg[@]}") | $(median "${p_rabbit[@]}") | $(rest "$(median "${p_cpu[@]}")" "$(median "${p_bench[@]}")" "$(median "${p_pg[@]}")" "$(median "${p_rabbit[@]}")") | $(us_per_event "$(median "${p_bench[@]}")" "$p_m") | $(us_per_event "$(median "${p_pg[@]}")" "$p_m") | $(us_per_event "$(median "${p_rabbit[@]}")" "$p_m") |

Pipeline phases, as fast as it goes (medians of the rounds): relay $(profile_median relay_rounds_per_s) rounds/s of
$(profile_median relay_rows_per_round) rows in $(profile_median relay_messages_per_round) messages, each $(profile_median relay_publish_ms) ms publishing and awaiting confirms + $(profile_median relay_db_ms) ms
more waiting for the PostgreSQL transaction that runs meanwhile (moves the cursor past the previous batch, reads the next);
consumer $(profile_median consumer_batches_per_s) batches/s of $(profile_median consumer_groups_per_batch) tenant groups × $(profile_median consumer_events_per_group) events in $CONSUMER_CONCURRENCY concurrent transactions
(so these shares overlap and are approximate): $(profile_median consumer_idle) waiting for deliveries,
$(profile_median consumer_marks) decoding, begin + processed marks ($(profile_median consumer_marks_ms) ms per batch), $(profile_median consumer_effects) effects insert
($(profile_median consumer_effects_ms) ms per group), $(profile_median consumer_commit_ack) last commit + acks ($(profile_median consumer_commit_ack_ms) ms per batch),
$(profile_median consumer_between_groups) between groups (tenant switch, or another share's work);
writers $(profile_median writer_tx_per_s) transactions/s of $(profile_median writer_tx_ms) ms.

Rerun: \`$rerun\`
EOT
[[ $verified == yes ]] || die "the pipeline's effects did not match its events in every run"
