#!/usr/bin/env bash
# Changes per second from the source to a fan-out edge (#17), and to the hub for comparison.
#
#   scripts/bench-fanout.sh [ROWS] [ROWS_PER_TXN]     (default 200000 rows, 1000 per txn)
#
# Starts its own PostgreSQL (scripts/pg.sh) and a one-node nats-server JetStream on free
# loopback ports, runs a hub (sqlite, --follow --publish) and a sqlite edge (--from, --follow)
# once both are caught up, writes ROWS inserts in transactions of ROWS_PER_TXN, and reports
# the seconds from the first write until the hub, then the edge, hold the last one. Then a
# second, new edge restores the hub's first snapshot and catches up on the whole stream
# (NATS -> edge alone). Then latency and the source's cost: pgbench writes one-row
# transactions at RATE/s (env LAT_RATE, default 1000) for LAT_SECONDS (default 15) while the
# hub and one edge follow, then again with three edges; a poller (scripts/bench/helper.py)
# records when each row becomes visible in the hub's and the first edge's SQLite files, and
# the latency is that minus the row's commit timestamp on the source (p50/p99/max); the
# source's CPU-s over each run is the sum of every server process's user+system time
# (/proc, live processes and the postmaster's reaped children). Cleans up everything it
# started. Needs build/pgseed, pgbench, python3.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rows=${1:-200000}
per_txn=${2:-1000}
bin=$PWD/build/pgseed
work=$(mktemp -d /tmp/pgseed-bench-fanout-XXXXXX)
chmod 755 "$work"  # pg.sh runs the server as postgres
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  scripts/pg.sh stop "$work/pg" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

PG_EXTRA_OPTS="-c track_commit_timestamp=on -c autovacuum=off" scripts/pg.sh start "$work/pg" >/dev/null
conn=$(cat "$work/pg/conninfo")
nats-server -js -a 127.0.0.1 -p -1 -sd "$work/js" --ports_file_dir "$work" >"$work/nats.log" 2>&1 &
pids+=($!)
until ls "$work"/*.ports >/dev/null 2>&1; do sleep 0.05; done
url=$(sed 's/.*"\(nats:[^"]*\)".*/\1/' "$work"/*.ports)

psql "$conn" -qX -c "CREATE TABLE b (id bigint PRIMARY KEY, v text, n int); CREATE PUBLICATION p FOR TABLE b;"
"$bin" sync --source "$conn" --store "$work/hub.db" --publication p --follow --publish "$url" --stream bench \
  >"$work/hub.log" 2>&1 &
pids+=($!)
"$bin" sync --from "$url/bench" --store "$work/edge.db" --follow >"$work/edge.log" 2>&1 &
pids+=($!)

applied() { { "$bin" status --store "$1" --format json 2>/dev/null || true; } | sed -n 's/.*"applied_lsn":"\([^"]*\)".*/\1/p'; }
lsn_num() { local l=$1; printf '%d' $(( (16#${l%/*} << 32) | 16#${l#*/} )); }
wait_past() {  # store lsn
  local want; want=$(lsn_num "$2")
  for _ in $(seq 1 6000); do
    local a; a=$(applied "$1")
    if [ -n "$a" ] && [ "$(lsn_num "$a")" -gt "$want" ]; then return 0; fi
    sleep 0.02
  done
  echo "bench-fanout: $1 did not catch up" >&2; exit 1
}
mark() { psql "$conn" -qAtX -c "SELECT pg_current_wal_lsn()"; }

m=$(mark); psql "$conn" -qX -c "INSERT INTO b VALUES (-1, 'warm', 0)"
wait_past "$work/hub.db" "$m"; wait_past "$work/edge.db" "$m"

txns=$(( rows / per_txn ))
sql="$work/load.sql"
: >"$sql"
for ((t = 0; t < txns; t++)); do
  echo "INSERT INTO b SELECT g, md5(g::text), g % 1000 FROM generate_series($((t * per_txn)), $((t * per_txn + per_txn - 1))) g;" >>"$sql"
done
start=$(date +%s.%N)
psql "$conn" -qX -f "$sql"
end_mark=$(mark); psql "$conn" -qX -c "INSERT INTO b VALUES (-2, 'done', 0)"
written=$(date +%s.%N)
wait_past "$work/hub.db" "$end_mark"; hub_done=$(date +%s.%N)
wait_past "$work/edge.db" "$end_mark"; edge_done=$(date +%s.%N)
awk -v s="$start" -v w="$written" -v h="$hub_done" -v e="$edge_done" -v r="$rows" -v t="$txns" 'BEGIN {
  printf "rows %d in %d transactions; written in %.2f s\n", r, t, w - s;
  printf "source -> hub:  %.2f s, %.0f changes/s\n", h - s, r / (h - s);
  printf "source -> edge: %.2f s, %.0f changes/s (edge done %.2f s after the hub)\n", e - s, r / (e - s), e - h }'

# A new edge: the snapshot (one row), then every change from the stream.
c0=$(date +%s.%N)
"$bin" sync --from "$url/bench" --store "$work/edge2.db" >"$work/edge2.log" 2>&1
c1=$(date +%s.%N)
awk -v s="$c0" -v e="$c1" -v r="$rows" 'BEGIN {
  printf "new edge, one-shot catch-up on the stream: %.2f s, %.0f changes/s\n", e - s, r / (e - s) }'

# Latency and the source's cost, with one edge and then with three.
lat_rate=${LAT_RATE:-1000}
lat_seconds=${LAT_SECONDS:-15}
pm=$(head -n 1 "$work/pg/data/postmaster.pid")
# Clock ticks of every server process: live ones, and those the postmaster has reaped.
src_ticks() {
  local t=0 p
  for p in $(pgrep -P "$pm") "$pm"; do
    t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo $((t + $(awk '{ print $16 + $17 }' "/proc/$pm/stat")))
}
psql "$conn" -qX -c "CREATE TABLE lat (id bigserial PRIMARY KEY, pad text NOT NULL); ALTER PUBLICATION p ADD TABLE lat;"
echo "INSERT INTO lat (pad) VALUES ('0123456789abcdef0123456789abcdef');" >"$work/lat.sql"
m=$(mark); psql "$conn" -qX -c "INSERT INTO lat (pad) VALUES ('warm')"
wait_past "$work/hub.db" "$m"; wait_past "$work/edge.db" "$m"
helper() { python3 scripts/bench/helper.py "$@"; }
lat_run() {  # label
  rm -f "$work/poll.stop"
  helper poll "$work/hub.db" "$work/poll.stop" "$work/seen-hub.tsv" & local p1=$!
  helper poll "$work/edge.db" "$work/poll.stop" "$work/seen-edge.tsv" & local p2=$!
  local first; first=$(psql "$conn" -qAtX -c "SELECT coalesce(max(id), 0) FROM lat")
  local c0; c0=$(src_ticks)
  pgbench -n -f "$work/lat.sql" -c 4 -j 2 -R "$lat_rate" -T "$lat_seconds" "$conn" >"$work/pgbench.log" 2>&1
  local m; m=$(mark); psql "$conn" -qX -c "INSERT INTO lat (pad) VALUES ('done')"
  wait_past "$work/hub.db" "$m"; wait_past "$work/edge.db" "$m"
  for e in "${extra_edges[@]}"; do wait_past "$e" "$m"; done
  local c1; c1=$(src_ticks)
  touch "$work/poll.stop"; wait "$p1" "$p2"
  psql "$conn" -qAtX -c "COPY (SELECT id, extract(epoch FROM pg_xact_commit_timestamp(xmin))::float8 FROM lat WHERE id > $first AND pad <> 'done') TO STDOUT" >"$work/commits.tsv"
  read -r h50 h90 h99 hmax hn hmiss tps < <(helper latency "$work/seen-hub.tsv" "$work/commits.tsv")
  read -r e50 e90 e99 emax en emiss tps < <(helper latency "$work/seen-edge.tsv" "$work/commits.tsv")
  awk -v l="$1" -v tps="$tps" -v h50="$h50" -v h99="$h99" -v hmax="$hmax" -v e50="$e50" -v e99="$e99" -v emax="$emax" \
      -v cpu="$(( c1 - c0 ))" -v hz="$(getconf CLK_TCK)" -v n="$hn" 'BEGIN {
    printf "%s: %d rows at %.0f txn/s; commit -> visible ms p50/p99/max: hub %.1f/%.1f/%.1f, edge %.1f/%.1f/%.1f; source CPU %.2f s (%.2f ms per transaction)\n",
      l, n, tps, h50, h99, hmax, e50, e99, emax, cpu / hz, n ? 1000 * cpu / hz / n : 0 }'
}
extra_edges=()
lat_run "1 edge"
for k in 3 4; do
  "$bin" sync --from "$url/bench" --store "$work/edge$k.db" --follow >"$work/edge$k.log" 2>&1 &
  pids+=($!)
  extra_edges+=("$work/edge$k.db")
done
m=$(mark); psql "$conn" -qX -c "INSERT INTO lat (pad) VALUES ('warm')"
for e in "${extra_edges[@]}"; do wait_past "$e" "$m"; done
lat_run "3 edges"
