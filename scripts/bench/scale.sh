#!/usr/bin/env bash
# Scale (issue 16): one table of ROWS rows of ~400 bytes (default 10,000,000: ~4 GB of
# heap) copied by a fresh `pgseed sync` into each store, then CHANGES changes (default
# ROWS/2: half updates of existing rows, half inserts, in transactions of 10,000) applied
# by a one-shot sync of each store. Beside it, in the same run, the physical limits: raw
# `COPY big TO STDOUT > /dev/null`, and pg_recvlogical (pgoutput, same publication)
# draining the same changes. Per step: wall s, rows/s, ratio to the limit, pgseed peak RSS,
# store size. Run it at two sizes to see whether the cost grows linearly, e.g.
#
#   scripts/bench/scale.sh --rows 1000000 && scripts/bench/scale.sh --rows 10000000
#
# Each store is checked at the end: its row count, and `pgseed verify` (exit 0). Starts its
# own PostgreSQL (PGSEED_PG_VERSION, default 15) under WORKDIR (default a temp dir in /tmp,
# removed at the end; it needs ~4 KB per row of free disk). Uses ${PGSEED_BIN:-build/pgseed}.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

rows=10000000 changes= work=
while (($#)); do
  case "$1" in
    --rows) rows=$2; shift 2 ;;
    --changes) changes=$2; shift 2 ;;
    --workdir) work=$2; shift 2 ;;
    -h|--help) sed -n '2,15s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "scale.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ $rows =~ ^[0-9]+$ ]] && ((rows >= 20000)) || { echo "scale.sh: --rows must be >= 20000" >&2; exit 2; }
changes=${changes:-$((rows / 2))}
bin=${PGSEED_BIN:-build/pgseed}
[ -x "$bin" ] || { echo "scale.sh: no pgseed binary at $bin (scripts/setup.sh builds it)" >&2; exit 2; }
[ -n "$work" ] || work=$(mktemp -d /tmp/pgseed-scale-XXXXXX)
mkdir -p "$work"
chmod 755 "$work"  # the server runs as another user (pg.sh as root)
trap 'scripts/pg.sh stop "$work/pg" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
# A checkpoint every 5 minutes at most, WAL enough for the changes between them.
PG_EXTRA_OPTS="-c autovacuum=off -c max_wal_size=8GB -c checkpoint_timeout=15min" \
  scripts/pg.sh start "$work/pg" >/dev/null
src=$(cat "$work/pg/conninfo")
q() { psql -X -q -A -t -v ON_ERROR_STOP=1 "$src" "$@"; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }  # limit's secs, own secs
mb() { du -sm "$1" | cut -f1; }
row() { printf '%-7s %-14s %9s %12s %6s %8s %9s\n' "$@"; }

echo "scale: $rows rows, $changes changes; PostgreSQL $(q -c 'SHOW server_version'); $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
t0=$(now)
q -c "CREATE TABLE big (id bigint PRIMARY KEY, account int NOT NULL, created timestamptz NOT NULL,
        amount numeric(12,2) NOT NULL, status text NOT NULL, payload text NOT NULL)"
# ~400 bytes a row: 10 md5s of payload (compressible text, as most payloads are).
step=1000000
for ((lo = 1; lo <= rows; lo += step)); do
  hi=$((lo + step - 1)); ((hi > rows)) && hi=$rows
  q -c "INSERT INTO big SELECT i, i % 100000, '2024-01-01'::timestamptz + i * interval '1 second',
          (i % 1000000) / 100.0, (ARRAY['new','paid','shipped','done'])[1 + i % 4],
          repeat(md5(i::text), 10) FROM generate_series($lo, $hi) i"
done
q -c "CREATE PUBLICATION scale FOR TABLE big" -c "VACUUM ANALYZE big" >/dev/null
heap_mb=$(q -c "SELECT pg_table_size('big') / 1048576")
echo "scale: source table: $heap_mb MB heap+TOAST, generated in $(secs "$t0" "$(now)") s"
echo
row step runner wall_s rows_per_s xlimit rss_MB store_MB

# Copy: the limit, then each store.
t=$(now); psql -X -q "$src" -c "COPY big TO STDOUT" >/dev/null; copy_limit=$(secs "$t" "$(now)")
row copy "COPY TO STDOUT" "$copy_limit" "$(rate "$rows" "$copy_limit")" - - -
for kind in sqlite rocksdb; do
  store="$kind:$work/store.$kind"
  /usr/bin/time -f '%e %M' -o "$work/time" "$bin" -q sync --source "$src" --store "$store" \
    --publication scale --slot "scale_$kind"
  read -r wall rss <"$work/time"
  row copy "pgseed $kind" "$wall" "$(rate "$rows" "$wall")" "$(ratio "$copy_limit" "$wall")" \
    $((rss / 1024)) "$(mb "$work/store.$kind")"
done

# Stream: a pg_recvlogical slot made now drains the same WAL range as both stores' slots.
q -c "SELECT pg_create_logical_replication_slot('scale_limit', 'pgoutput')" >/dev/null
t=$(now)
txn=10000 half=$((txn / 2)) next=$((rows + 1)) done_changes=0 upd=1
while ((done_changes < changes)); do
  # One -c of two statements: one transaction.
  q -c "UPDATE big SET amount = amount + 1, status = 'changed' WHERE id BETWEEN $upd AND $((upd + half - 1));
        INSERT INTO big SELECT i, i % 100000, now(), 1.5, 'new', repeat(md5(i::text), 10)
          FROM generate_series($next, $((next + half - 1))) i"
  upd=$((upd + half)); ((upd + half > rows)) && upd=1
  next=$((next + half)); done_changes=$((done_changes + txn))
done
changes=$done_changes
end_lsn=$(q -c "SELECT pg_current_wal_lsn()")
echo "scale: $changes changes written in $(secs "$t" "$(now)") s (WAL to $end_lsn)"
t=$(now)
pg_recvlogical -d "$src" --slot scale_limit --start -E "$end_lsn" -o proto_version=1 \
  -o publication_names=scale -f /dev/null --no-loop
stream_limit=$(secs "$t" "$(now)")
row stream pg_recvlogical "$stream_limit" "$(rate "$changes" "$stream_limit")" - - -
for kind in sqlite rocksdb; do
  store="$kind:$work/store.$kind"
  /usr/bin/time -f '%e %M' -o "$work/time" "$bin" -q sync --source "$src" --store "$store"
  read -r wall rss <"$work/time"
  row stream "pgseed $kind" "$wall" "$(rate "$changes" "$wall")" "$(ratio "$stream_limit" "$wall")" \
    $((rss / 1024)) "$(mb "$work/store.$kind")"
done

# Every store equal to the source.
want=$(q -c "SELECT count(*) FROM big")
for kind in sqlite rocksdb; do
  store="$kind:$work/store.$kind"
  got=$("$bin" dump --store "$store" --table big --format csv | wc -l)
  [ "$got" = "$want" ] || { echo "scale: $kind store holds $got rows, the source $want" >&2; exit 1; }
  "$bin" -q verify --source "$src" --store "$store" >/dev/null ||
    { echo "scale: verify of the $kind store failed" >&2; exit 1; }
done
echo "scale: both stores hold the source's $want rows; verify ok"
