#!/usr/bin/env bash
# Streaming of transactions in progress, measured: one source transaction of ROWS inserted
# rows (default 1,000,000) caught up by a one-shot `pgseed sync`, with pgoutput protocol
# version 1 (sync --no-stream-in-progress: the walsender decodes the whole transaction,
# spilling it beyond logical_decoding_work_mem, before it sends anything) and version 2
# (streaming 'on', the default on 14+). Per run:
#   walsender CPU-s   the postmaster's cutime+cstime across the sync (its exited children:
#                     the walsender and pgseed's catalog connection; autovacuum is off)
#   spill/stream MB   pg_stat_replication_slots of the run's slot
#   wall s, peak RSS  of pgseed (GNU time)
# Each run has a database, slot and store of its own; the modes alternate, REPEAT times.
#
#   scripts/bench/in_progress.sh [--rows N] [--repeat K] [--store sqlite|rocksdb]
#
# Starts its own PostgreSQL (PGSEED_PG_VERSION, default 15) under a temp dir, removed at
# the end. Uses ${PGSEED_BIN:-build/pgseed}.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

rows=1000000 repeat=2 kind=sqlite
while (($#)); do
  case "$1" in
    --rows) rows=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    --store) kind=$2; shift 2 ;;
    *) echo "in_progress.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
done
bin=${PGSEED_BIN:-build/pgseed}
work=$(mktemp -d /tmp/pgseed-inprog-XXXXXX)
chmod 755 "$work"  # the server may run as another user (pg.sh as root)
trap 'scripts/pg.sh stop "$work/pg" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
PG_EXTRA_OPTS="-c autovacuum=off" scripts/pg.sh start "$work/pg" >/dev/null
server=$(cat "$work/pg/conninfo")
q() { psql -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }
pm_pid=$(head -1 "$work/pg/data/postmaster.pid" 2>/dev/null || q "$server" -c "SELECT pg_postmaster_pid()" 2>/dev/null)
# The postmaster's children's CPU (cutime + cstime), in clock ticks.
children_ticks() { awk '{print $16 + $17}' "/proc/$pm_pid/stat"; }
hz=$(getconf CLK_TCK)

printf '%-8s %-4s %10s %10s %10s %8s %10s\n' mode run walsnd_cpu spill_MB stream_MB wall_s rss_MB
for ((r = 1; r <= repeat; r++)); do
  for mode in proto1 proto2; do
    db="inprog_${mode}_$r"
    q "$server" -c "CREATE DATABASE $db"
    src="$server dbname=$db"
    q "$src" -c "CREATE TABLE m (id int PRIMARY KEY, v int)"
    store="$kind:$work/$db.store"
    "$bin" -q sync --source "$src" --store "$store" --tables m --slot "s_$db"
    q "$src" -c "INSERT INTO m SELECT i, i % 1000 FROM generate_series(1, $rows) i"
    flag=()
    [ $mode = proto1 ] && flag=(--no-stream-in-progress)
    t0=$(children_ticks)
    /usr/bin/time -f '%e %M' -o "$work/time" "$bin" -q sync --source "$src" --store "$store" "${flag[@]}"
    # The walsender's exit is what adds its CPU to the postmaster's children.
    while [ -n "$(q "$src" -c "SELECT active_pid FROM pg_replication_slots WHERE slot_name = 's_$db' AND active")" ]; do
      sleep 0.1
    done
    t1=$(children_ticks)
    read -r spill stream < <(q "$src" -F ' ' -c "SELECT spill_bytes, stream_bytes FROM pg_stat_replication_slots WHERE slot_name = 's_$db'")
    read -r wall rss <"$work/time"
    got=$(q "$src" -c "SELECT count(*) FROM m")
    [ "$got" = "$rows" ] || { echo "source has $got rows" >&2; exit 1; }
    n=$("$bin" dump --store "$store" --table m --format csv | wc -l)
    [ "$n" = "$rows" ] || { echo "$mode: the store has $n rows, not $rows" >&2; exit 1; }
    awk -v m=$mode -v r=$r -v t=$((t1 - t0)) -v hz="$hz" -v sp="${spill:-0}" -v st="${stream:-0}" \
        -v w="$wall" -v k="$rss" \
        'BEGIN { printf "%-8s %-4s %10.2f %10.1f %10.1f %8.2f %10.1f\n", m, r, t / hz, sp / 1048576, st / 1048576, w, k / 1024 }'
    "$bin" -q drop --source "$src" --store "$store" --delete-store >/dev/null
    q "$server" -c "DROP DATABASE $db"
  done
done
