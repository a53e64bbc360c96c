#!/usr/bin/env bash
# Benchmarks pgseed against the physical limits on this machine (issues 6 and 16).
#
#   scripts/bench.sh [--rows N] [--repeat K] [--changes C] [--only SECTION[,SECTION]]
#                    [--big] [--quick] [--busy-cpu] [--out FILE] [--profile DIR]
#
#   --rows N      rows of the `events` table (default 1000000); the smaller tables scale with it
#   --repeat K    repetitions of every timed run (default 3): median, min and max are reported
#   --changes C   changes per stream workload (default N/5)
#   --only S      run only these sections: copy, stream, memory, latency, migrations,
#                 matrix-copy, matrix-stream, formats (comma-separated; default all)
#   --quick       everything tiny (smoke test, a few minutes): --rows 4000 --repeat 1
#                 --changes 2000 unless given, 3 s of latency, 50 migrations
#   --big         memory: also sync a 5M-row table (implied by --rows >= 5000000)
#   --busy-cpu    keep one CPU busy the whole run with another process (`stress-ng --cpu 1`,
#                 or a shell loop when stress-ng is missing): the figures of a machine that
#                 is not idle, as an edge node rarely is
#   --out FILE    machine-readable results (default bench-results.json)
#   --profile DIR `perf record --call-graph dwarf` the last repeat's pgseed copy into SQLite
#                 and stream apply into SQLite, into DIR (those runs are then slower)
#
# It starts its own throwaway PostgreSQL 15 (scripts/pg.sh, removed on exit), generates the
# data set, and measures, in one run:
#   copy     raw `psql COPY ... TO STDOUT > /dev/null` of the published tables; `pgseed sync`
#            (fresh store, one-shot) into SQLite and into RocksDB; `pgcopydb copy table-data`
#            into a second database on the same server (skipped when pgcopydb is missing)
#   stream   C changes (small and large transactions) drained by pg_recvlogical (pgoutput,
#            same publication, same WAL range) vs applied by `pgseed sync` one-shot
#   memory   peak RSS of every pgseed run, one source transaction of min(N, 1M) rows,
#            and (--big) a 5M-row table
#   matrix-copy    copy cases (wide, narrow, numeric/timestamp, bytea + TOAST, many small
#                  tables) vs raw COPY TO STDOUT of the same tables    (scripts/bench/matrix.sh)
#   matrix-stream  stream cases (insert-heavy, update-heavy, delete-heavy, one-row txns, one
#                  large txn, keyless, migration-heavy) vs pg_recvlogical of the same WAL;
#                  per case rows/s, ratio, pgseed CPU-s, source CPU-s per million rows (the
#                  server's own accounting of its exited backends), peak RSS; and for
#                  every target not met, the measured reason: how busy the machine's CPUs
#                  were (/proc/stat, sampled every 0.1 s) during the timed phase, how much
#                  of the phase pgseed's busiest thread was on a CPU or waiting for one
#                  (schedstat), and the CPU per million rows of pgseed and the source
#                  against the limit's
#   formats        the source's CPU per row for COPY text vs binary and pgoutput binary
#                  'false' vs 'true' (PostgreSQL's own clients; scripts/bench/formats.sh)
#   latency  `pgseed sync --follow` into SQLite under ~1000 single-row transactions/s
#            (pgbench -R 1000 -T 20): commit time on the source (track_commit_timestamp)
#            to the moment a reader of the SQLite file first sees the row, p50/p99
# Binary: ${PGSEED_BIN:-build/pgseed} (built with scripts/setup.sh when missing). Needs
# python3 (statistics, JSON, the latency poller), /usr/bin/time, pgbench, pg_recvlogical.
set -euo pipefail
export LC_ALL=C

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD

rows=1000000
repeat=3
changes=
only=copy,stream,memory,latency,migrations,matrix-copy,matrix-stream,formats
quick=0
rows_given=0
repeat_given=0
big=0
busy_cpu=0
out=bench-results.json
profile=
while (($#)); do
  case "$1" in
    --rows) rows=$2; rows_given=1; shift 2 ;;
    --repeat) repeat=$2; repeat_given=1; shift 2 ;;
    --quick) quick=1; shift ;;
    --changes) changes=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --big) big=1; shift ;;
    --busy-cpu) busy_cpu=1; shift ;;
    --out) out=$2; shift 2 ;;
    --profile) profile=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
if ((quick)); then
  ((rows_given)) || rows=4000
  ((repeat_given)) || repeat=1
  changes=${changes:-2000}
fi
[[ $rows =~ ^[0-9]+$ ]] && ((rows >= 1000)) || { echo "bench.sh: --rows must be >= 1000" >&2; exit 2; }
[[ $repeat =~ ^[0-9]+$ ]] && ((repeat >= 1)) || { echo "bench.sh: --repeat must be >= 1" >&2; exit 2; }
changes=${changes:-$((rows / 5))}
((changes >= 100)) || changes=100
((rows >= 5000000)) && big=1
for s in ${only//,/ }; do
  case "$s" in copy|stream|memory|latency|migrations|matrix-copy|matrix-stream|formats) ;; *) echo "bench.sh: unknown section: $s" >&2; exit 2 ;; esac
done
want() { [[ ",$only," == *",$1,"* ]]; }
case "$out" in /*) ;; *) out="$root/$out" ;; esac
if [ -n "$profile" ]; then
  case "$profile" in /*) ;; *) profile="$root/$profile" ;; esac
  mkdir -p "$profile"
  command -v perf >/dev/null || { echo "bench.sh: --profile needs perf (apt-get install linux-perf)" >&2; exit 2; }
fi

say() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { echo "bench.sh: $*" >&2; exit 1; }

for tool in python3 /usr/bin/time pgbench pg_recvlogical psql pg_dump; do
  command -v "$tool" >/dev/null || die "$tool is missing (scripts/setup.sh --no-build installs the packages; python3 too)"
done

bin=${PGSEED_BIN:-build/pgseed}
if [ ! -x "$bin" ]; then
  [ -z "${PGSEED_BIN:-}" ] || die "PGSEED_BIN=$bin is not executable"
  say "no $bin: building with scripts/setup.sh"
  scripts/setup.sh >&2
fi
case "$bin" in /*) ;; *) bin="$root/$bin" ;; esac

# ---------------------------------------------------------------------------------------
# Work directory, server, cleanup

work=$(mktemp -d /tmp/pgseed-bench.XXXXXX)
chmod 755 "$work"          # the server runs as `postgres` and must reach $work/pg
cp -p "$bin" "$work/pgseed"   # others may rebuild build/ while we measure
bin=$work/pgseed
pg=$work/pg
follow_pid=
poller_pid=
sampler_pid=
busy_pid=

cleanup() {
  local rc=$?
  set +e
  [ -n "$poller_pid" ] && kill "$poller_pid" 2>/dev/null
  [ -n "$sampler_pid" ] && kill "$sampler_pid" 2>/dev/null
  [ -n "$busy_pid" ] && kill "$busy_pid" 2>/dev/null
  if [ -n "$follow_pid" ]; then
    [ -f "$work/follow.pid" ] && kill -TERM "$(cat "$work/follow.pid")" 2>/dev/null
    wait "$follow_pid" 2>/dev/null
  fi
  if [ -d "$pg" ]; then scripts/pg.sh stop "$pg" >/dev/null 2>&1; fi
  if ((rc != 0)) && [ -f "$work/last.log" ]; then
    echo "bench.sh: failed; last pgseed log:" >&2
    tail -n 20 "$work/last.log" >&2
  fi
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# autovacuum off: the source CPU of a matrix run is that of the backends exiting meanwhile
# (scripts/bench/matrix.sh), and no autovacuum worker may be among them; tables are vacuumed
# where the data is made.
# track_commit_timestamp: the latency section reads each row's commit time from the source.
# A large max_wal_size keeps checkpoints out of the measurements.
say "starting a throwaway PostgreSQL in $pg"
PG_EXTRA_OPTS="-c autovacuum=off -c track_commit_timestamp=on -c max_wal_size=8GB -c checkpoint_timeout=30min" \
  scripts/pg.sh start "$pg" >/dev/null
conn_base=$(cat "$pg/conninfo")
conn_base=${conn_base% dbname=postgres}
SRC="$conn_base dbname=bench"
AUX="$conn_base dbname=bench_aux"
TGT="$conn_base dbname=bench_copy"
q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
qv() { psql -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }
q "$conn_base dbname=postgres" -c "CREATE DATABASE bench" -c "CREATE DATABASE bench_aux" -c "CREATE DATABASE bench_copy"

tsv=$work/results.tsv
: >"$tsv"
record() { printf '%s\t%s\t%s\t%s\n' "$@" >>"$tsv"; }   # section subject metric value
meta() { printf 'meta\t-\t%s\t%s\n' "$1" "$2" >>"$tsv"; }
now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", b - a }'; }
# Timestamp of the first log line containing $2 (pgseed's log, timestamped by ts_log).
logt() { awk -v p="$2" 'index($0, p) { print $1; exit }' "$1"; }
ts_log() { local l; while IFS= read -r l; do printf '%s %s\n' "$EPOCHREALTIME" "$l"; done >"$1"; }

# pgseed_run LOG [--perf FILE] ARGS...: runs pgseed with peak-RSS accounting, its stderr
# timestamped line by line into LOG. Sets WALL (seconds), RSS_KB, CPU_S (user + system) and
# T0, T1 (start and end, epoch seconds); timed CMD... sets the same for CMD.
pgseed_run() {
  local log=$1 t0 t1 rc perf=()
  shift
  if [ "${1:-}" = --perf ]; then
    perf=(perf record -q --call-graph dwarf,16384 -F 199 -o "$2" --)
    shift 2
  fi
  t0=$(now)
  set +e
  { /usr/bin/time -f '%M %U %S' -o "$work/rss" "${perf[@]}" "$bin" "$@" 2>&1 >/dev/null; } | ts_log "$log"
  rc=${PIPESTATUS[0]}
  set -e
  t1=$(now)
  T0=$t0 T1=$t1
  cp "$log" "$work/last.log"
  ((rc == 0)) || die "pgseed $* failed (exit $rc): $(tail -n 3 "$log")"
  WALL=$(elapsed "$t0" "$t1")
  RSS_KB=$(tail -n 1 "$work/rss" | awk '{ print $1 }')
  CPU_S=$(tail -n 1 "$work/rss" | awk '{ printf "%.2f", $2 + $3 }')
}
# timed CMD...: runs CMD under /usr/bin/time; sets WALL, RSS_KB and CPU_S.
timed() {
  local t0
  t0=$(now)
  /usr/bin/time -f '%M %U %S' -o "$work/rss" "$@"
  T0=$t0 T1=$(now)
  WALL=$(elapsed "$t0" "$T1")
  RSS_KB=$(tail -n 1 "$work/rss" | awk '{ print $1 }')
  CPU_S=$(tail -n 1 "$work/rss" | awk '{ printf "%.2f", $2 + $3 }')
}

drop_slot() { q "$1" -c "SELECT pg_drop_replication_slot('$2') FROM pg_replication_slots WHERE slot_name = '$2'" >/dev/null; }
store_rows() {  # rows of table $2 in store $1, from `pgseed status --format json`
  "$bin" status --store "$1" --format json |
    python3 -c 'import json,sys; t=sys.argv[1]; print(sum(x["rows"] for x in json.load(sys.stdin)["tables"] if x["name"] in (t, "public."+t)))' "$2"
}
# Waits until everything written so far is flushed: the walsender sends only flushed WAL,
# and the workloads commit with synchronous_commit = off.
wait_flushed() {
  local lsn=$1
  for _ in $(seq 1 200); do
    [ "$(qv "$SRC" -c "SELECT pg_current_wal_flush_lsn() >= '$lsn'::pg_lsn")" = t ] && return 0
    sleep 0.05
  done
  die "WAL did not flush up to $lsn"
}

helper() { python3 "$root/scripts/bench/helper.py" "$@"; }

meta rows "$rows"
meta repeat "$repeat"
meta cpus "$(nproc)"
meta cpu_model "$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
meta mem_gb "$(awk '/MemTotal/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)"
meta pg_version "$(qv "$SRC" -c 'SHOW server_version' | awk '{ print "PostgreSQL " $1 }')"
meta repo_head "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- src include 2>/dev/null || echo +local-changes)"
meta pgseed_binary "${PGSEED_BIN:-build/pgseed}, built $(date -u -r "$bin" +%Y-%m-%dT%H:%M:%SZ)"
meta date "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
meta loadavg_start "$(cut -d' ' -f1-3 /proc/loadavg)"
if awk -v c="$(nproc)" '{ exit !($1 > c / 2) }' /proc/loadavg; then
  say "warning: load average $(cut -d' ' -f1 /proc/loadavg) on $(nproc) CPUs: other work will skew the figures"
fi
meta command "scripts/bench.sh --rows $rows --repeat $repeat --changes $changes --only $only$( ((big)) && echo ' --big')$( ((quick)) && echo ' --quick')$( ((busy_cpu)) && echo ' --busy-cpu')"

# The machine's CPU use, and that of every pgseed thread, sampled every 0.1 s (a measured
# reason for a target not met).
python3 "$root/scripts/bench/helper.py" cpusample "$work/cpu.tsv" "$bin" &   # not `helper ... &`: a function in the background is a subshell, and killing it would leave python running
sampler_pid=$!
if ((busy_cpu)); then
  if command -v stress-ng >/dev/null; then
    stress-ng --cpu 1 --timeout 0 >/dev/null 2>&1 &
    meta busy_cpu "stress-ng --cpu 1 during the whole run"
  else
    sh -c 'while :; do :; done' &
    meta busy_cpu "a shell busy loop (no stress-ng) during the whole run"
  fi
  busy_pid=$!
  say "keeping one CPU busy (pid $busy_pid)"
fi

# ---------------------------------------------------------------------------------------
# Data set

# One `events` row per id: bigint key, timestamptz, ~100-byte text, int, numeric(12,2),
# ~200-byte jsonb, bool (~400 bytes per row on disk).
ev_sql="
CREATE FUNCTION ev(g bigint) RETURNS SETOF events LANGUAGE sql IMMUTABLE AS \$\$
SELECT g, timestamptz '2024-01-01 00:00:00+00' + g * interval '17 seconds',
  md5(g::text) || ' ' || md5((g+1)::text) || ' ' || md5((g+2)::text) || ' ' || left(md5((g+3)::text), 2),
  ((g * 7919) % 100000)::int, round(((g * 104729) % 10000000)::numeric / 100, 2),
  jsonb_build_object('user', (g*31) % 100000, 'kind', (ARRAY['click','view','purchase','share'])[1 + g % 4],
     'session', md5((g*5)::text), 'tags', jsonb_build_array(left(md5((g*3)::text), 12), left(md5((g*7)::text), 12), 'tag' || (g % 50)),
     'score', round(((g*13) % 1000) / 10.0, 1), 'ok', g % 2 = 0, 'ua', 'Mozilla/5.0 (X11; Linux) bench/' || (g % 97)),
  g % 3 <> 0
\$\$;"
events_ddl="CREATE TABLE events (id bigint NOT NULL, created_at timestamptz NOT NULL, title text NOT NULL,
  user_id int NOT NULL, amount numeric(12,2) NOT NULL, payload jsonb NOT NULL, active bool NOT NULL);"

n_customers=$((rows / 50))
n_products=$((rows / 200))
n_orders=$((rows / 10))
copy_rows=$((rows + n_customers + n_products + n_orders))
tables=(events customers products orders)

if want copy || want stream || want memory; then
  say "generating events ($rows rows) and customers/products/orders ($n_customers/$n_products/$n_orders rows)"
  t0=$(now)
  q "$SRC" -c "$events_ddl" -c "$ev_sql" -c "
    CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text NOT NULL,
      country char(2) NOT NULL, created_at timestamptz NOT NULL);
    CREATE TABLE products (id int PRIMARY KEY, sku text NOT NULL, name text NOT NULL,
      price numeric(10,2) NOT NULL, stock int NOT NULL, attrs jsonb);
    CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int NOT NULL, product_id int NOT NULL,
      qty int NOT NULL, total numeric(12,2) NOT NULL, status text NOT NULL, ordered_at timestamptz NOT NULL);"
  # ev() is slow on a small machine (md5, jsonb_build_object): it makes the first eighth of
  # the rows; the rest are copies of those with shifted ids and dates and a changed title.
  # Two sessions each (the server has the cores to spare while generating).
  gen_base=$(((rows + 7) / 8))
  q "$SRC" -c "INSERT INTO events SELECT e.* FROM generate_series(1::bigint, $((gen_base / 2))) g, ev(g) e" &
  gen1=$!
  q "$SRC" -c "INSERT INTO events SELECT e.* FROM generate_series($((gen_base / 2 + 1))::bigint, $gen_base) g, ev(g) e" \
    -c "INSERT INTO customers SELECT g, 'Customer ' || g, 'c' || g || '@example.com',
          (ARRAY['DE','FR','US','JP','BR'])[1 + g % 5], timestamptz '2023-01-01 00:00:00+00' + g * interval '1 hour'
        FROM generate_series(1, $n_customers) g" \
    -c "INSERT INTO products SELECT g, 'SKU-' || lpad(g::text, 8, '0'), 'Product ' || md5(g::text), (g % 10000) / 7.0,
          g % 500, jsonb_build_object('color', (ARRAY['red','green','blue'])[1 + g % 3], 'weight', g % 1000)
        FROM generate_series(1, $n_products) g" \
    -c "INSERT INTO orders SELECT g, 1 + g % $n_customers, 1 + g % $n_products, 1 + g % 7, (g % 100000) / 3.0,
          (ARRAY['new','paid','shipped','delivered'])[1 + g % 4], timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute'
        FROM generate_series(1::bigint, $n_orders) g"
  wait $gen1
  copies() {
    q "$SRC" -c "INSERT INTO events SELECT e.id + k * $gen_base, e.created_at + k * interval '1 day',
        overlay(e.title placing lpad(k::text, 2, '0') from 1 for 2), e.user_id, e.amount, e.payload, e.active
      FROM events e, generate_series($1, $2) k WHERE e.id <= $gen_base AND e.id + k * $gen_base <= $rows"
  }
  copies 1 3 &
  gen1=$!
  copies 4 7
  wait $gen1
  q "$SRC" -c "ALTER TABLE events ADD PRIMARY KEY (id)"
  # Frozen, hinted and analysed: no COPY run pays for hint-bit writes the others skip.
  q "$SRC" -c "VACUUM (FREEZE, ANALYZE)"
  q "$SRC" -c "CREATE PUBLICATION bench_pub FOR TABLE events, customers, products, orders"
  copy_bytes=0   # (this also warms the page cache for the copy runs)
  for t in "${tables[@]}"; do
    b=$(qv "$SRC" -c "COPY $t TO STDOUT" | wc -c)
    copy_bytes=$((copy_bytes + b))
  done
  meta copy_rows "$copy_rows"
  meta copy_mb "$(awk -v b="$copy_bytes" 'BEGIN { printf "%.1f", b / 1048576 }')"
  meta events_table_mb "$(qv "$SRC" -c "SELECT pg_total_relation_size('events') / 1048576")"
  say "data set ready in $(elapsed "$t0" "$(now)") s: $(qv "$SRC" -c "SELECT pg_size_pretty(pg_total_relation_size('events'))") events, $((copy_bytes / 1048576)) MB of COPY text"
fi
copy_mb=$(awk -v b="${copy_bytes:-0}" 'BEGIN { printf "%.6f", b / 1048576 }')
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.3f", n / s }'; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

stream_sqlite=
stream_rocks=

# ---------------------------------------------------------------------------------------
# copy

if want copy; then
  have_pgcopydb=0
  if command -v pgcopydb >/dev/null; then
    have_pgcopydb=1
    meta pgcopydb "$(pgcopydb --version 2>&1 | awk '/^pgcopydb version/ { print $3; exit }')"
    # Tables without indexes, as pgcopydb's own clone loads them (indexes come after).
    pg_dump -d "$SRC" --section=pre-data --no-publications | q "$TGT" >/dev/null
  else
    meta pgcopydb missing
    say "pgcopydb is not installed: the peer comparison is skipped"
  fi
  copy_args=()
  for t in "${tables[@]}"; do copy_args+=(-c "COPY $t TO STDOUT"); done
  for r in $(seq 1 "$repeat"); do
    say "copy $r/$repeat"
    timed psql -X -q -A -t -v ON_ERROR_STOP=1 "$SRC" "${copy_args[@]}" >/dev/null
    s=$WALL
    record copy raw_copy wall_s "$s"
    record copy raw_copy psql_cpu_s "$CPU_S"
    record copy raw_copy rows_per_s "$(rate "$copy_rows" "$s")"
    record copy raw_copy mb_per_s "$(rate "$copy_mb" "$s")"

    for kind in sqlite rocksdb; do
      if [ $kind = sqlite ]; then store="sqlite:$work/copy-$r.db"; else store="rocksdb:$work/copy-$r.rocks"; fi
      slot=bench_copy_${kind}_$r
      perf=()
      if [ -n "$profile" ] && [ $kind = sqlite ] && ((r == repeat)); then
        perf=(--perf "$profile/copy-sqlite.perf.data")
      fi
      pgseed_run "$work/copy-$kind-$r.log" "${perf[@]}" sync --source "$SRC" --store "$store" \
        --publication bench_pub --slot "$slot"
      a=$(logt "$work/copy-$kind-$r.log" "info: created slot")
      b=$(logt "$work/copy-$kind-$r.log" "info: copied ")
      record copy "pgseed_$kind" wall_s "$WALL"
      record copy "pgseed_$kind" rows_per_s_whole_command "$(rate "$copy_rows" "$WALL")"
      if [ -n "$a" ] && [ -n "$b" ]; then
        p=$(elapsed "$a" "$b")
        record copy "pgseed_$kind" copy_phase_s "$p"
        record copy "pgseed_$kind" rows_per_s "$(rate "$copy_rows" "$p")"
        record copy "pgseed_$kind" mb_per_s "$(rate "$copy_mb" "$p")"
      fi
      record copy "pgseed_$kind" rss_mb "$(mb "$RSS_KB")"
      record copy "pgseed_$kind" cpu_s "$CPU_S"
      if ((r == repeat)); then
        # The last repeat's stores and slots are the stream section's starting point.
        if [ $kind = sqlite ]; then stream_sqlite=$store; else stream_rocks=$store; fi
      else
        drop_slot "$SRC" "$slot"
        rm -rf "${store#*:}" "${store#*:}-wal" "${store#*:}-shm"
      fi
    done

    if ((have_pgcopydb)); then
      tables_csv=$(IFS=,; echo "${tables[*]}")
      q "$TGT" -c "TRUNCATE $tables_csv" -c "CHECKPOINT"
      rm -rf "$work/pgcopydb"
      t0=$(now)
      pgcopydb copy table-data --source "$SRC" --target "$TGT" --dir "$work/pgcopydb" \
        --table-jobs "$(nproc)" >"$work/pgcopydb-$r.log" 2>&1 ||
        die "pgcopydb failed: $(tail -n 5 "$work/pgcopydb-$r.log")"
      s=$(elapsed "$t0" "$(now)")
      n=$(qv "$TGT" -c "SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM customers) + (SELECT count(*) FROM products) + (SELECT count(*) FROM orders)")
      ((n == copy_rows)) || die "pgcopydb copied $n rows, expected $copy_rows"
      record copy pgcopydb wall_s "$s"
      record copy pgcopydb rows_per_s "$(rate "$copy_rows" "$s")"
      record copy pgcopydb mb_per_s "$(rate "$copy_mb" "$s")"
    fi
  done
  q "$conn_base dbname=postgres" -c "DROP DATABASE bench_copy" >/dev/null
fi

# ---------------------------------------------------------------------------------------
# stream

if want stream; then
  if [ -z "$stream_sqlite" ]; then
    say "stream: initial syncs (not timed)"
    stream_sqlite="sqlite:$work/stream.db"
    stream_rocks="rocksdb:$work/stream.rocks"
    pgseed_run "$work/stream-init-sqlite.log" sync --source "$SRC" --store "$stream_sqlite" --publication bench_pub
    pgseed_run "$work/stream-init-rocksdb.log" sync --source "$SRC" --store "$stream_rocks" --publication bench_pub
  fi
  # Small transactions of 1..10 changes (on average 5.5): 2/5 inserts, 2/5 updates of random
  # rows, 1/5 deletes; committed one by one (synchronous_commit off: same WAL, less waiting).
  q "$SRC" -c "
    CREATE PROCEDURE bench_small(n int, ins bigint, upd_lo bigint, upd_hi bigint, del bigint)
    LANGUAGE plpgsql AS \$\$
    DECLARE done int := 0; k int; t int := 0; u bigint;
    BEGIN
      PERFORM setseed(0.5);
      WHILE done < n LOOP
        k := least(1 + t % 10, n - done);
        FOR j IN 1..k LOOP
          CASE done % 5
            WHEN 0, 1 THEN INSERT INTO events SELECT * FROM ev(ins); ins := ins + 1;
            WHEN 2, 3 THEN u := upd_lo + floor(random() * (upd_hi - upd_lo))::bigint;  -- a constant: index scan
                           UPDATE events SET amount = amount + 1, active = NOT active, created_at = now() WHERE id = u;
            ELSE DELETE FROM events WHERE id = del; del := del + 1;
          END CASE;
          done := done + 1;
        END LOOP;
        COMMIT;
        t := t + 1;
      END LOOP;
    END \$\$;"
  n_small=$((changes / 2))
  n_large=$((changes - n_small))
  l_ins=$((n_large / 3)); l_upd=$((n_large / 3)); l_del=$((n_large - l_ins - l_upd))
  s_ins=0; s_upd=0; s_del=0
  for ((i = 0; i < n_small; i++)); do
    case $((i % 5)) in 0|1) s_ins=$((s_ins + 1)) ;; 2|3) s_upd=$((s_upd + 1)) ;; *) s_del=$((s_del + 1)) ;; esac
  done
  s_txns=$(python3 -c "
n=$n_small; d=t=0
while d<n: d+=min(1+t%10,n-d); t+=1
print(t)")
  meta stream_changes "$changes"
  meta stream_txns "$((s_txns + 3))"
  meta stream_mix "small: $s_ins inserts, $s_upd updates, $s_del deletes in $s_txns txns; large: 1 txn of $l_ins inserts, 1 of $l_upd updates, 1 of $l_del deletes"
  ins_next=$((rows + 1))
  del_next=1
  upd_lo=$((rows / 2)); upd_hi=$rows
  for r in $(seq 1 "$repeat"); do
    say "stream $r/$repeat: $changes changes"
    # Start line: both stores caught up (their slots confirmed to here) and a fresh
    # pg_recvlogical slot, all before the workload: the same WAL range for all three.
    pgseed_run "$work/catchup.log" sync --source "$SRC" --store "$stream_sqlite"
    pgseed_run "$work/catchup.log" sync --source "$SRC" --store "$stream_rocks"
    qv "$SRC" -c "SELECT pg_create_logical_replication_slot('bench_recv', 'pgoutput')" >/dev/null
    t0=$(now)
    q "$SRC" -c "SET synchronous_commit = off" \
      -c "CALL bench_small($n_small, $ins_next, $upd_lo, $upd_hi, $del_next)" \
      -c "INSERT INTO events SELECT e.* FROM generate_series($((ins_next + s_ins))::bigint, $((ins_next + s_ins + l_ins - 1))) g, ev(g) e" \
      -c "UPDATE events SET amount = amount + 1, active = NOT active, created_at = now() WHERE id BETWEEN $upd_lo AND $((upd_lo + l_upd - 1))" \
      -c "DELETE FROM events WHERE id BETWEEN $((del_next + s_del)) AND $((del_next + s_del + l_del - 1))"
    endpos=$(qv "$SRC" -c "SELECT pg_current_wal_insert_lsn()")
    say "  workload generated in $(elapsed "$t0" "$(now)") s, ends at $endpos"
    wait_flushed "$endpos"
    ins_next=$((ins_next + s_ins + l_ins))
    del_next=$((del_next + s_del + l_del))

    timed pg_recvlogical -d "$SRC" --slot bench_recv --start -o proto_version=1 \
      -o publication_names=bench_pub --endpos="$endpos" -f /dev/null
    s=$WALL
    record stream pg_recvlogical wall_s "$s"
    record stream pg_recvlogical cpu_s "$CPU_S"
    record stream pg_recvlogical rss_mb "$(mb "$RSS_KB")"
    record stream pg_recvlogical changes_per_s "$(rate "$changes" "$s")"
    drop_slot "$SRC" bench_recv

    for kind in sqlite rocksdb; do
      if [ $kind = sqlite ]; then store=$stream_sqlite; else store=$stream_rocks; fi
      perf=()
      if [ -n "$profile" ] && [ $kind = sqlite ] && ((r == repeat)); then
        perf=(--perf "$profile/stream-sqlite.perf.data")
      fi
      pgseed_run "$work/stream-$kind-$r.log" "${perf[@]}" sync --source "$SRC" --store "$store"
      a=$(logt "$work/stream-$kind-$r.log" "info: streaming from")
      b=$(logt "$work/stream-$kind-$r.log" "info: applied ")
      record stream "pgseed_$kind" wall_s "$WALL"
      record stream "pgseed_$kind" changes_per_s_whole_command "$(rate "$changes" "$WALL")"
      if [ -n "$a" ] && [ -n "$b" ]; then
        p=$(elapsed "$a" "$b")
        record stream "pgseed_$kind" apply_s "$p"
        record stream "pgseed_$kind" changes_per_s "$(rate "$changes" "$p")"
      fi
      record stream "pgseed_$kind" rss_mb "$(mb "$RSS_KB")"
      record stream "pgseed_$kind" cpu_s "$CPU_S"
    done
  done
  # The stores must hold what the source holds.
  src_n=$(qv "$SRC" -c "SELECT count(*) FROM events")
  for store in "$stream_sqlite" "$stream_rocks"; do
    n=$(store_rows "$store" events)
    [ "$n" = "$src_n" ] || die "after the stream runs, $store holds $n events rows, the source $src_n"
  done
  say "stream: stores hold the source's $src_n events rows"
fi
for store in "$stream_sqlite" "$stream_rocks"; do
  [ -n "$store" ] && rm -rf "${store#*:}" "${store#*:}-wal" "${store#*:}-shm"
done
qv "$SRC" -c "SELECT count(pg_drop_replication_slot(slot_name)) FROM pg_replication_slots" >/dev/null 2>&1 || true

# ---------------------------------------------------------------------------------------
# memory

if want memory; then
  txn_rows=$((rows < 1000000 ? rows : 1000000))
  say "memory: one source transaction of $txn_rows rows"
  q "$SRC" -c "CREATE TABLE bulk (LIKE events INCLUDING ALL)" -c "CREATE PUBLICATION bulk_pub FOR TABLE bulk"
  for kind in sqlite rocksdb; do
    if [ $kind = sqlite ]; then store="sqlite:$work/bulk.db"; else store="rocksdb:$work/bulk.rocks"; fi
    pgseed_run "$work/bulk-init-$kind.log" sync --source "$SRC" --store "$store" --publication bulk_pub --slot bulk_$kind
  done
  q "$SRC" -c "SET synchronous_commit = off" -c "INSERT INTO bulk SELECT * FROM events ORDER BY id LIMIT $txn_rows"
  n_bulk=$(qv "$SRC" -c "SELECT count(*) FROM bulk")
  meta big_txn_rows "$n_bulk"
  endpos=$(qv "$SRC" -c "SELECT pg_current_wal_insert_lsn()")
  wait_flushed "$endpos"
  for kind in sqlite rocksdb; do
    if [ $kind = sqlite ]; then store="sqlite:$work/bulk.db"; else store="rocksdb:$work/bulk.rocks"; fi
    pgseed_run "$work/bulk-$kind.log" sync --source "$SRC" --store "$store"
    record memory "pgseed_${kind}_txn_${n_bulk}_rows" rss_mb "$(mb "$RSS_KB")"
    record memory "pgseed_${kind}_txn_${n_bulk}_rows" cpu_s "$CPU_S"
    record memory "pgseed_${kind}_txn_${n_bulk}_rows" changes_per_s "$(rate "$n_bulk" "$WALL")"
    n=$(store_rows "$store" bulk)
    [ "$n" = "$n_bulk" ] || die "the big transaction left $n rows in $store, expected $n_bulk"
    drop_slot "$SRC" "bulk_$kind"
    rm -rf "${store#*:}" "${store#*:}-wal" "${store#*:}-shm"
  done
  q "$SRC" -c "DROP PUBLICATION bulk_pub" -c "DROP TABLE bulk"

  if ((big)); then
    big_rows=5000000
    say "memory: a table of $big_rows rows"
    q "$SRC" -c "CREATE TABLE big (LIKE events)"
    q "$SRC" -c "INSERT INTO big SELECT e.* FROM generate_series(1::bigint, $((big_rows / 2))) g, ev(g) e" &
    gen1=$!
    q "$SRC" -c "INSERT INTO big SELECT e.* FROM generate_series($((big_rows / 2 + 1))::bigint, $big_rows) g, ev(g) e"
    wait $gen1
    q "$SRC" -c "ALTER TABLE big ADD PRIMARY KEY (id)" -c "VACUUM (FREEZE, ANALYZE) big" \
      -c "CREATE PUBLICATION big_pub FOR TABLE big"
    for kind in sqlite rocksdb; do
      if [ $kind = sqlite ]; then store="sqlite:$work/big.db"; else store="rocksdb:$work/big.rocks"; fi
      pgseed_run "$work/big-$kind.log" sync --source "$SRC" --store "$store" --publication big_pub --slot big_$kind
      record memory "pgseed_${kind}_table_${big_rows}_rows" rss_mb "$(mb "$RSS_KB")"
      record memory "pgseed_${kind}_table_${big_rows}_rows" cpu_s "$CPU_S"
      record memory "pgseed_${kind}_table_${big_rows}_rows" rows_per_s "$(rate "$big_rows" "$WALL")"
      drop_slot "$SRC" "big_$kind"
      rm -rf "${store#*:}" "${store#*:}-wal" "${store#*:}-shm"
    done
    q "$SRC" -c "DROP PUBLICATION big_pub" -c "DROP TABLE big"
  fi
fi

# ---------------------------------------------------------------------------------------
# latency

if want latency; then
  say "latency: pgseed sync --follow into SQLite, pgbench -R 1000 -T $((quick ? 3 : 20))"
  q "$AUX" -c "CREATE TABLE lat (id bigserial PRIMARY KEY, pad text NOT NULL)" \
    -c "CREATE PUBLICATION lat_pub FOR TABLE lat"
  echo "INSERT INTO lat (pad) VALUES ('0123456789abcdef0123456789abcdef');" >"$work/lat.sql"
  lat_db=$work/lat.db
  set +e
  # sh -c records pgseed's pid (exec keeps it) so that it alone gets the SIGTERM.
  { /usr/bin/time -f '%M %U %S' -o "$work/rss-follow" sh -c 'echo $$ >"$0"; exec "$@"' "$work/follow.pid" \
      "$bin" sync --source "$AUX" --store "sqlite:$lat_db" --publication lat_pub --slot lat_follow \
      --follow 2>&1 >/dev/null | ts_log "$work/follow.log"; } &
  follow_pid=$!
  set -e
  for _ in $(seq 1 300); do
    grep -q "streaming from" "$work/follow.log" 2>/dev/null && break
    kill -0 "$follow_pid" 2>/dev/null || die "pgseed --follow exited: $(tail -n 3 "$work/follow.log")"
    sleep 0.1
  done
  grep -q "streaming from" "$work/follow.log" || die "pgseed --follow did not start streaming"
  helper poll "$lat_db" "$work/poll.stop" "$work/seen.tsv" &
  poller_pid=$!
  sleep 1
  pgbench -n -f "$work/lat.sql" -c 4 -j 2 -R 1000 -T "$((quick ? 3 : 20))" "$AUX" >"$work/pgbench.log" 2>&1 ||
    die "pgbench failed: $(tail -n 5 "$work/pgbench.log")"
  total=$(qv "$AUX" -c "SELECT count(*) FROM lat")
  for _ in $(seq 1 300); do   # wait until the store holds everything (at most 30 s)
    n=$(sqlite3 -readonly "$lat_db" "SELECT count(*) FROM lat" 2>/dev/null || echo 0)
    [ "$n" = "$total" ] && break
    sleep 0.1
  done
  sleep 0.2
  touch "$work/poll.stop"
  wait "$poller_pid"
  poller_pid=
  # SIGTERM: pgseed finishes the transaction in hand, confirms, exits 0.
  kill -TERM "$(cat "$work/follow.pid")"
  wait "$follow_pid" || die "pgseed --follow did not exit cleanly: $(tail -n 3 "$work/follow.log")"
  follow_pid=
  qv "$AUX" -c "COPY (SELECT id, extract(epoch FROM pg_xact_commit_timestamp(xmin))::float8 FROM lat) TO STDOUT" \
    >"$work/commits.tsv"
  read -r p50 p90 p99 pmax nseen nmiss tps < <(helper latency "$work/seen.tsv" "$work/commits.tsv")
  ((nmiss == 0)) || say "latency: $nmiss of $total rows never seen by the poller"
  record latency pgseed_sqlite_follow p50_ms "$p50"
  record latency pgseed_sqlite_follow p90_ms "$p90"
  record latency pgseed_sqlite_follow p99_ms "$p99"
  record latency pgseed_sqlite_follow max_ms "$pmax"
  record latency pgseed_sqlite_follow txn_per_s "$tps"
  record latency pgseed_sqlite_follow rows_seen "$nseen"
  if [ -s "$work/rss-follow" ]; then
    record latency pgseed_sqlite_follow rss_mb "$(mb "$(tail -n 1 "$work/rss-follow" | awk '{ print $1 }')")"
    record latency pgseed_sqlite_follow cpu_s "$(tail -n 1 "$work/rss-follow" | awk '{ printf "%.2f", $2 + $3 }')"
  fi
fi

# ---------------------------------------------------------------------------------------
# migrations: a migration-heavy stream (the schema issue): 1,000 transactions that each
# create a table, insert into it and drop it, on a source whose FOR ALL TABLES publication
# has 500 tables; pgseed's one-shot catch-up of them, per store. Each table new to the store
# costs one catalog lookup (it no longer exists when pgseed gets to it).

# migration_workload SCHEMA NTAB NMIG FILE: schema SCHEMA on $AUX with NTAB one-row tables
# and publication SCHEMA_pub for it; FILE gets NMIG transactions that each create a table
# there, insert two rows and drop it (used here and by the matrix's migration case).
migration_workload() {
  local schema=$1 ntab=$2 nmig=$3 file=$4 i
  q "$AUX" -c "CREATE SCHEMA $schema" -c "DO \$\$ BEGIN FOR i IN 1..$ntab LOOP
      EXECUTE format('CREATE TABLE $schema.t%s (id int PRIMARY KEY, v text)', i);
      EXECUTE format('INSERT INTO $schema.t%s VALUES (1, ''x'')', i); END LOOP; END \$\$" \
    -c "CREATE PUBLICATION ${schema}_pub FOR TABLES IN SCHEMA $schema"
  for i in $(seq 1 "$nmig"); do
    echo "BEGIN; CREATE TABLE $schema.n$i (id int PRIMARY KEY, v text); INSERT INTO $schema.n$i VALUES (1, 'a'), (2, 'b'); DROP TABLE $schema.n$i; COMMIT;"
  done >"$file"
}

if want migrations; then
  nmig=$((quick ? 50 : 1000)); ntab=$((quick ? 20 : 500))
  say "migrations: $nmig create/insert/drop transactions, $ntab published tables"
  migration_workload mig "$ntab" "$nmig" "$work/migrations.sql"
  meta migration_txns "$nmig"
  meta migration_tables "$ntab"
  for ((r = 1; r <= repeat; r++)); do
    for kind in sqlite rocksdb; do
      if [ $kind = sqlite ]; then store="sqlite:$work/mig.db"; else store="rocksdb:$work/mig.rocks"; fi
      pgseed_run "$work/mig-$kind.log" sync --source "$AUX" --store "$store" --publication mig_pub --slot mig_$kind
      q "$AUX" -f "$work/migrations.sql" >/dev/null
      pgseed_run "$work/mig-$kind.log" sync --source "$AUX" --store "$store"
      record migrations "pgseed_$kind" txn_per_s "$(rate "$nmig" "$WALL")"
      record migrations "pgseed_$kind" rss_mb "$(mb "$RSS_KB")"
      drop_slot "$AUX" "mig_$kind"
      rm -rf "${store#*:}" "${store#*:}-wal" "${store#*:}-shm"
    done
  done
  q "$AUX" -c "SET client_min_messages = warning" -c "DROP PUBLICATION mig_pub" -c "DROP SCHEMA mig CASCADE"
fi

# ---------------------------------------------------------------------------------------
# matrix: the workload matrix of issue 16 (scripts/bench/matrix.sh)

if want matrix-copy || want matrix-stream || want formats; then
  source "$root/scripts/bench/matrix.sh"
  want matrix-copy && matrix_copy
  want matrix-stream && matrix_stream
  if want formats; then
    source "$root/scripts/bench/formats.sh"
    formats
  fi
fi

# ---------------------------------------------------------------------------------------

meta loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)"
helper summarize "$tsv" "$out"
say "results written to $out"
if [ -n "$profile" ]; then
  say "profiles in $profile: perf report -i $profile/copy-sqlite.perf.data --no-children"
fi
