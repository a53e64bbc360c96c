# The workload matrix of scripts/bench.sh (issue 16), sourced by it: copy and stream cases,
# each measured against its physical limit in the same run, interleaved per repeat
# (limit, SQLite, RocksDB), so that a change of the machine's load hits all three alike.
#
#   copy cases    wide rows, narrow rows, numeric/timestamp-heavy, bytea + TOASTed text,
#                 many small tables. Limit: `psql -c 'COPY t TO STDOUT' >/dev/null` of the
#                 same tables. pgseed: `pgseed sync` into a fresh store (its copy phase).
#   stream cases  insert-heavy (1000-row transactions), update-heavy (random keys of a table
#                 larger than the store caches), delete-heavy (random keys), one-row
#                 transactions at the rate pgbench gets from the source, one very large
#                 transaction, keyless (REPLICA IDENTITY FULL, duplicate rows) updates and
#                 deletes, and the migration-heavy stream (create/insert/drop transactions).
#                 Limit: pg_recvlogical (pgoutput, same publication, same WAL range, --endpos).
#                 pgseed: one-shot `pgseed sync` catch-up (its apply phase).
#
# Source CPU is the server's own accounting: the postmaster reaps every backend that exits
# and the kernel adds the backend's user+system time to the postmaster's cutime/cstime
# (/proc/PID/stat fields 16-17). A run's source CPU is the growth of that sum from before the
# run to after all the run's backends (COPY backends, walsenders) have exited, with no
# other client connected in between; autovacuum is off on the bench server, so no worker
# adds to it. It covers everything the run made the server do (slot creation, snapshot
# export, catalog queries, COPY, decoding), not only the hot loop.
#
# Uses bench.sh's: q qv say die now elapsed logt record meta rate mb timed pgseed_run helper
# drop_slot wait_flushed, $SRC $AUX $pg $work $bin $rows $changes $repeat $quick.

pm_pid=$(head -n 1 "$pg/data/postmaster.pid")
# Waits until no client backend or walsender is left (the postmaster has reaped them all).
src_idle() {
  local i
  for i in $(seq 1 800); do
    ps --ppid "$pm_pid" -o args= | grep -qE '127\.0\.0\.1\(|\[local\]' || return 0
    sleep 0.025
  done
  die "server backends did not exit: $(ps --ppid "$pm_pid" -o args= | grep -E '127\.0\.0\.1\(|\[local\]' | head -n 3)"
}
# CPU ticks of every server process that has exited so far (the postmaster's children).
src_ticks() { src_idle; awk '{ print $16 + $17 }' "/proc/$pm_pid/stat"; }
tck=$(getconf CLK_TCK)

# mx_record CASE RUNNER ROWS SRC_TICKS0 SRC_TICKS1 [PHASE_START PHASE_END]: records what the
# last timed/pgseed_run measured (WALL, CPU_S, RSS_KB), the source's CPU, how busy the
# machine's CPUs were during the phase (default: the whole command, T0 .. T1), and how much
# of the phase pgseed's busiest thread was on a CPU or waiting for one.
mx_record() {
  local c=$1 who=$2 n=$3 t0=$4 t1=$5 pa=${6:-$T0} pb=${7:-$T1} src phase use
  src=$(awk -v a="$t0" -v b="$t1" -v h="$tck" 'BEGIN { printf "%.3f", (b - a) / h }')
  phase=$(elapsed "$pa" "$pb")
  read -r -a use <<<"$(helper busy "$work/cpu.tsv" "$pa" "$pb")"
  record matrix "$c/$who" wall_s "$WALL"
  record matrix "$c/$who" rows "$n"
  record matrix "$c/$who" rows_per_s_whole_command "$(rate "$n" "$WALL")"
  record matrix "$c/$who" rows_per_s "$(rate "$n" "$phase")"
  record matrix "$c/$who" cpu_s "$CPU_S"
  record matrix "$c/$who" cpu_s_per_mrow "$(awk -v s="$CPU_S" -v n="$n" 'BEGIN { printf "%.3f", s * 1e6 / n }')"
  record matrix "$c/$who" rss_mb "$(mb "$RSS_KB")"
  record matrix "$c/$who" src_cpu_s "$src"
  record matrix "$c/$who" src_cpu_s_per_mrow "$(awk -v s="$src" -v n="$n" 'BEGIN { printf "%.3f", s * 1e6 / n }')"
  record matrix "$c/$who" machine_busy "${use[0]}"
  record matrix "$c/$who" machine_iowait "${use[1]}"
  record matrix "$c/$who" busiest_thread "${use[2]}"
}
rmstore() { rm -rf "${1#*:}" "${1#*:}-wal" "${1#*:}-shm" "${1#*:}-pgseed-copy"; }
storeof() { if [ "$1" = sqlite ]; then echo "sqlite:$work/$2.db"; else echo "rocksdb:$work/$2.rocks"; fi; }

# ---------------------------------------------------------------------------------------
# Copy cases: each makes its tables and publication mc_CASE in $SRC, then run_copy_case.

mc_narrow() {
  q "$SRC" -c "CREATE TABLE mc_narrow (id bigint PRIMARY KEY, v int NOT NULL, f bool NOT NULL)" \
    -c "INSERT INTO mc_narrow SELECT g, (g * 7919) % 100000, g % 3 = 0 FROM generate_series(1::bigint, $rows) g"
  echo mc_narrow
}
mc_wide() {   # 40 columns, ~1.1 KB of COPY text per row
  local cols="id bigint PRIMARY KEY" sel="g" k n=$((rows / 10))
  for k in $(seq 1 26); do cols+=", t$k text"; sel+=", m.m || '$k'"; done
  for k in $(seq 1 13); do cols+=", i$k int"; sel+=", (g * $k) % 1000003"; done
  q "$SRC" -c "CREATE TABLE mc_wide ($cols)" \
    -c "INSERT INTO mc_wide SELECT $sel FROM generate_series(1::bigint, $n) g, LATERAL (SELECT md5(g::text) AS m) m"
  echo mc_wide
}
mc_numts() {  # numeric and timestamps, which pgseed stores as text (numeric) or converts
  local n=$((rows / 2))
  q "$SRC" -c "CREATE TABLE mc_numts (id bigint PRIMARY KEY, a numeric(18,6), b numeric(12,2),
      c numeric, d numeric(38,10), e timestamptz, f timestamptz, g timestamp, h date, i interval, j float8)" \
    -c "INSERT INTO mc_numts SELECT g, (g * 104729 % 1000000007) / 1000.0, (g % 100000) / 7.0,
      g::numeric ^ 2 / 3, g * 3.14159265358979323846::numeric(38,10),
      timestamptz '2024-01-01 00:00:00+00' + g * interval '1.5 seconds', now() - g * interval '1 minute',
      timestamp '2020-02-29 12:00:00' + g * interval '17 ms', date '2000-01-01' + (g % 9000)::int,
      (g % 1000) * interval '1 hour 3 minutes', g / 7.0 FROM generate_series(1::bigint, $n) g"
  echo mc_numts
}
mc_toast() {  # ~2 KB of random bytea and ~8 KB of hex text per row: both stored out of line
  local n=$((rows / 250 > 20 ? rows / 250 : 20))
  q "$SRC" -c "CREATE TABLE mc_toast (id int PRIMARY KEY, b bytea, t text)" \
    -c "INSERT INTO mc_toast SELECT g,
      decode((SELECT string_agg(md5(g || '/' || k), '') FROM generate_series(1, 64) k), 'hex'),
      (SELECT string_agg(md5(k || '-' || g), '') FROM generate_series(1, 256) k)
      FROM generate_series(1, $n) g"
  echo mc_toast
}
mc_many() {   # many small tables
  local nt=$((quick ? 50 : 500)) n=$((rows / 2000 > 20 ? rows / 2000 : 20))
  q "$SRC" -c "CREATE SCHEMA mc_many" -c "DO \$\$ BEGIN FOR i IN 1..$nt LOOP
      EXECUTE format('CREATE TABLE mc_many.t%s (id int PRIMARY KEY, name text, qty int, at timestamptz)', i);
      EXECUTE format('INSERT INTO mc_many.t%s SELECT g, ''item '' || g, g %% 17, timestamptz ''2024-01-01 00:00:00+00'' + g * interval ''1 s''
        FROM generate_series(1, $n) g', i); END LOOP; END \$\$"
  qv "$SRC" -c "SELECT 'mc_many.' || relname FROM pg_class WHERE relnamespace = 'mc_many'::regnamespace AND relkind = 'r' ORDER BY relname"
}

# run_copy_case CASE TABLE...: limit, SQLite, RocksDB, $repeat times.
run_copy_case() {
  local c=$1 t n bytes r kind store slot a b t0 t1 args=()
  shift
  q "$SRC" -c "VACUUM (FREEZE, ANALYZE)" -c "CREATE PUBLICATION mc_$c FOR TABLE $(IFS=,; echo "$*")"
  local counts=()
  for t in "$@"; do
    args+=(-c "COPY $t TO STDOUT")
    counts+=("SELECT count(*) FROM $t")
  done
  n=$(qv "$SRC" -c "SELECT sum(count) FROM ($(printf '%s UNION ALL ' "${counts[@]}") SELECT 0) c")
  bytes=$(qv "$SRC" "${args[@]}" | wc -c)   # (this also warms the page cache)
  meta "case_copy_${c}" "$n rows in $# tables, $(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }') MB of COPY text"
  for ((r = 1; r <= repeat; r++)); do
    say "matrix copy $c $r/$repeat: $n rows"
    t0=$(src_ticks)
    timed psql -X -q -A -t -v ON_ERROR_STOP=1 "$SRC" "${args[@]}" >/dev/null
    t1=$(src_ticks)
    mx_record "copy_$c" limit "$n" "$t0" "$t1"
    for kind in sqlite rocksdb; do
      store=$(storeof $kind "mc-$c")
      slot=mc_${c}_$kind
      t0=$(src_ticks)
      pgseed_run "$work/mc-$c-$kind.log" sync --source "$SRC" --store "$store" --publication "mc_$c" --slot "$slot"
      t1=$(src_ticks)
      a=$(logt "$work/mc-$c-$kind.log" "info: created slot")
      b=$(logt "$work/mc-$c-$kind.log" "info: copied ")
      mx_record "copy_$c" "$kind" "$n" "$t0" "$t1" "$a" "$b"
      # The rows' own time, from pgseed's copy summary (rows / its rows/s): the rest of
      # the phase is connections, catalog, the store's set-up and its final commit.
      record matrix "copy_$c/$kind" rows_s "$(awk '/copy summary: [0-9]+ tables?,/ {
          for (i = 1; i <= NF; i++) if ($i == "rows/s)") { r = $(i - 1); gsub(/[(,]/, "", r) }
          for (i = 1; i <= NF; i++) if ($i == "rows,") { n = $(i - 1) }
          if (r > 0) printf "%.3f", n / r; exit }' "$work/mc-$c-$kind.log")"
      drop_slot "$SRC" "$slot"
      rmstore "$store"
    done
  done
  q "$SRC" -c "DROP PUBLICATION mc_$c"
}

matrix_copy() {
  local c tables
  for c in narrow wide numts toast many; do
    say "matrix copy $c: generating"
    "mc_$c" >"$work/mc-tables"
    mapfile -t tables <"$work/mc-tables"
    ((${#tables[@]})) || die "matrix copy $c: no tables"
    run_copy_case "$c" "${tables[@]}"
    q "$SRC" -c "SET client_min_messages = warning" -c "DROP TABLE $(IFS=,; echo "${tables[*]}")" -c "DROP SCHEMA IF EXISTS mc_many"
  done
}

# ---------------------------------------------------------------------------------------
# Stream cases: one publication ms_pub over their tables in $SRC, one store of each kind
# synced once (untimed); every repeat of a case: both stores caught up, a fresh
# pg_recvlogical slot, the workload, then the three drains of the same WAL range.

ms_setup() {
  local n=$rows nk=$((rows / 20))
  say "matrix stream: generating ($n-row update and delete tables, $nk keyless rows twice)"
  q "$SRC" -c "CREATE TABLE ms_ins (id bigint PRIMARY KEY, at timestamptz NOT NULL, v int, t text)" \
    -c "CREATE TABLE ms_upd (id bigint PRIMARY KEY, v int NOT NULL, at timestamptz, pad text)" \
    -c "CREATE TABLE ms_del (id bigint PRIMARY KEY, v int NOT NULL, pad text)" \
    -c "CREATE TABLE ms_one (id bigserial PRIMARY KEY, v int, t text)" \
    -c "CREATE TABLE ms_big (id bigint PRIMARY KEY, at timestamptz NOT NULL, v int, t text)" \
    -c "CREATE TABLE ms_keyless (a bigint, b int, t text)" \
    -c "ALTER TABLE ms_keyless REPLICA IDENTITY FULL" \
    -c "CREATE INDEX ON ms_keyless (a)" \
    -c "INSERT INTO ms_upd SELECT g, g % 1000, now(), md5(g::text) || md5((g + 1)::text) || md5((g + 2)::text) || md5((g + 3)::text) || md5((g + 4)::text) || md5((g + 5)::text) FROM generate_series(1, $n) g" \
    -c "INSERT INTO ms_del SELECT id, v, pad FROM ms_upd" \
    -c "INSERT INTO ms_keyless SELECT g, g % 1000, md5(g::text) FROM generate_series(1, $nk) g, generate_series(1, 2) d" \
    -c "VACUUM (FREEZE, ANALYZE)" \
    -c "CREATE PUBLICATION ms_pub FOR TABLE ms_ins, ms_upd, ms_del, ms_one, ms_big, ms_keyless"
  ms_procedures
  echo "INSERT INTO ms_one (v, t) VALUES (1, '0123456789abcdef0123456789abcdef');" >"$work/ms_one.sql"
  ms_sqlite=$(storeof sqlite ms); ms_rocks=$(storeof rocksdb ms)
  for kind in sqlite rocksdb; do
    pgseed_run "$work/ms-init-$kind.log" sync --source "$SRC" --store "$(storeof $kind ms)" --publication ms_pub --slot ms_$kind
  done
}

# The workloads' procedures (the stream cases and scripts/bench/formats.sh).
ms_procedures() {
  # Random keys without repeats: id = 1 + (i * p) mod n with p prime to n visits each once.
  q "$SRC" -c "
    CREATE OR REPLACE PROCEDURE ms_random(verb text, n bigint, cnt int, first bigint, per_txn int)
    LANGUAGE plpgsql AS \$\$
    DECLARE p bigint := 1000003; k bigint;
    BEGIN
      WHILE n % p = 0 LOOP p := p + 2; END LOOP;
      FOR i IN first .. first + cnt - 1 LOOP
        k := 1 + (i * p) % n;
        IF verb = 'update' THEN UPDATE ms_upd SET v = v + 1, at = now() WHERE id = k;
        ELSIF verb = 'delete' THEN DELETE FROM ms_del WHERE id = k;
        ELSIF verb = 'keyless' THEN
          -- two equal rows per key: change one of them, then delete the other
          UPDATE ms_keyless SET b = b + 1 WHERE ctid = (SELECT ctid FROM ms_keyless WHERE a = k LIMIT 1);
          DELETE FROM ms_keyless WHERE ctid = (SELECT ctid FROM ms_keyless WHERE a = k AND b = k % 1000 LIMIT 1);
        END IF;
        IF (i - first + 1) % per_txn = 0 THEN COMMIT; END IF;
      END LOOP;
    END \$\$;" \
    -c "
    CREATE OR REPLACE PROCEDURE ms_inserts(first bigint, cnt int, per_txn int)
    LANGUAGE plpgsql AS \$\$
    BEGIN
      FOR b IN 0 .. (cnt - 1) / per_txn LOOP
        INSERT INTO ms_ins SELECT g, now(), g % 1000, md5(g::text)
          FROM generate_series(first + b * per_txn, least(first + cnt, first + (b + 1) * per_txn) - 1) g;
        COMMIT;
      END LOOP;
    END \$\$;"
}

# Workloads: each sets N (the changes it made; for migrations the transactions).
ms_next_ins=1; ms_next_upd=0; ms_next_del=0; ms_next_big=1; ms_next_kl=0
wl_insert() { N=$changes; q "$SRC" -c "SET synchronous_commit = off" -c "CALL ms_inserts($ms_next_ins, $N, 1000)"; ms_next_ins=$((ms_next_ins + N)); }
wl_update() { N=$changes; q "$SRC" -c "SET synchronous_commit = off" -c "CALL ms_random('update', $rows, $N, $ms_next_upd, 100)"; ms_next_upd=$((ms_next_upd + N)); }
wl_delete() {
  N=$((changes * repeat > rows ? rows / repeat : changes))
  q "$SRC" -c "SET synchronous_commit = off" -c "CALL ms_random('delete', $rows, $N, $ms_next_del, 100)"; ms_next_del=$((ms_next_del + N))
}
wl_keyless() {   # an update and a delete per step, each of one of two equal rows
  local steps=$((changes / 100 > 50 ? changes / 100 : 50)) nk=$((rows / 20))
  ((steps * repeat <= nk)) || steps=$((nk / repeat))
  N=$((2 * steps))
  q "$SRC" -c "SET synchronous_commit = off" -c "CALL ms_random('keyless', $nk, $steps, $ms_next_kl, 50)"; ms_next_kl=$((ms_next_kl + steps))
}
wl_onerow() {   # as many one-row transactions as 4 pgbench clients get through
  local before after
  before=$(qv "$SRC" -c "SELECT count(*) FROM ms_one")
  PGOPTIONS='-c synchronous_commit=off' pgbench -n -f "$work/ms_one.sql" -c 4 -j 2 -T "$((quick ? 2 : 10))" "$SRC" \
    >"$work/pgbench-one.log" 2>&1 || die "pgbench failed: $(tail -n 5 "$work/pgbench-one.log")"
  after=$(qv "$SRC" -c "SELECT count(*) FROM ms_one")
  N=$((after - before))
  record matrix stream_onerow/source txn_per_s "$(awk '/^tps/ { print $3; exit }' "$work/pgbench-one.log")"
}
wl_bigtxn() {
  N=$changes
  q "$SRC" -c "SET synchronous_commit = off" -c "INSERT INTO ms_big SELECT g, now(), g % 1000, md5(g::text) FROM generate_series($ms_next_big, $((ms_next_big + N - 1))) g"
  ms_next_big=$((ms_next_big + N))
}

# run_stream_case CASE DB PUB SQLITE_STORE ROCKS_STORE
run_stream_case() {
  local c=$1 db=$2 pub=$3 ss=$4 rs=$5 r kind store endpos a b t0 t1
  for ((r = 1; r <= repeat; r++)); do
    # A slot's decoding restarts at its restart_lsn, which moves only past a running-xacts
    # record the slot has decoded and confirmed (the server logs one at a checkpoint, and
    # every 15 s of activity). Without one here, every repeat's pgseed run would decode
    # again all the WAL since its slot's creation (its source CPU grew by repeat: 111, 140,
    # 200 ticks for equal workloads), while pg_recvlogical's fresh slot decodes only the
    # workload. The checkpoint's record, decoded and confirmed by the catch-ups, puts both
    # at the workload's start, as a following pgseed's slot is on a server with traffic.
    q "$db" -c "CHECKPOINT"
    pgseed_run "$work/catchup.log" sync --source "$db" --store "$ss"
    pgseed_run "$work/catchup.log" sync --source "$db" --store "$rs"
    qv "$db" -c "SELECT pg_create_logical_replication_slot('mx_recv', 'pgoutput')" >/dev/null
    "wl_$c"
    endpos=$(qv "$db" -c "SELECT pg_current_wal_insert_lsn()")
    SRC=$db wait_flushed "$endpos"
    say "matrix stream $c $r/$repeat: $N changes, up to $endpos"
    ((r > 1)) || meta "case_stream_$c" "$N changes per run"
    t0=$(src_ticks)
    timed pg_recvlogical -d "$db" --slot mx_recv --start -o proto_version=1 \
      -o publication_names="$pub" --endpos="$endpos" -f /dev/null
    t1=$(src_ticks)
    mx_record "stream_$c" limit "$N" "$t0" "$t1"
    drop_slot "$db" mx_recv
    for kind in sqlite rocksdb; do
      if [ $kind = sqlite ]; then store=$ss; else store=$rs; fi
      t0=$(src_ticks)
      pgseed_run "$work/ms-$c-$kind.log" sync --source "$db" --store "$store"
      t1=$(src_ticks)
      a=$(logt "$work/ms-$c-$kind.log" "info: streaming from")
      b=$(logt "$work/ms-$c-$kind.log" "info: applied ")
      mx_record "stream_$c" "$kind" "$N" "$t0" "$t1" "$a" "$b"
    done
  done
}

# The migration-heavy stream (the schema issue): transactions that each create a table,
# insert two rows and drop it, on a source whose publication covers a schema of T tables.
ms_mig_setup() {
  local nt=$((quick ? 20 : 500)) nm=$((quick ? 50 : 1000))
  migration_workload mx "$nt" "$nm" "$work/mx-migrations.sql"
  meta case_stream_migrations "$nm create/insert/drop transactions per run, $nt published tables"
  for kind in sqlite rocksdb; do
    pgseed_run "$work/mx-init-$kind.log" sync --source "$AUX" --store "$(storeof $kind mx)" --publication mx_pub --slot mx_$kind
  done
}
wl_migrations() { N=$(grep -c . "$work/mx-migrations.sql"); q "$AUX" -f "$work/mx-migrations.sql" >/dev/null; }

matrix_stream() {
  local c
  ms_setup
  for c in insert update delete onerow bigtxn keyless; do
    run_stream_case "$c" "$SRC" ms_pub "$ms_sqlite" "$ms_rocks"
  done
  # The stores must hold what the source holds.
  for c in ms_ins ms_upd ms_del ms_one ms_big ms_keyless; do
    local src_n n
    src_n=$(qv "$SRC" -c "SELECT count(*) FROM $c")
    for store in "$ms_sqlite" "$ms_rocks"; do
      n=$(store_rows "$store" "$c")
      [ "$n" = "$src_n" ] || die "after the stream cases, $store holds $n $c rows, the source $src_n"
    done
  done
  for kind in sqlite rocksdb; do drop_slot "$SRC" "ms_$kind"; done
  rmstore "$ms_sqlite"; rmstore "$ms_rocks"
  q "$SRC" -c "DROP PUBLICATION ms_pub" -c "DROP TABLE ms_ins, ms_upd, ms_del, ms_one, ms_big, ms_keyless"
  ms_mig_setup
  run_stream_case migrations "$AUX" mx_pub "$(storeof sqlite mx)" "$(storeof rocksdb mx)"
  for kind in sqlite rocksdb; do drop_slot "$AUX" "mx_$kind"; rmstore "$(storeof $kind mx)"; done
  q "$AUX" -c "SET client_min_messages = warning" -c "DROP PUBLICATION mx_pub" -c "DROP SCHEMA mx CASCADE"
}
