#!/usr/bin/env bash
# Soak test: pgseed followers under a DML + DDL writer and random faults, then compared
# exactly with the source.
#
#   scripts/soak.sh --minutes N [--store sqlite|rocksdb|both] [--seed S] [--keep]
#
# Starts a throwaway PostgreSQL (scripts/pg.sh; PGSEED_PG_VERSION picks the major), creates
# a schema and a FOR ALL TABLES publication `soak`, and starts one `pgseed sync --follow` per
# store (each with its own store and slot, soak_sqlite / soak_rocksdb). Then, for N minutes:
#   - a writer runs seeded transactions: inserts, updates (also of keys, of TOASTed rows,
#     special floats), deletes on keyed tables; inserts, updates and deletes on a keyless
#     table (REPLICA IDENTITY FULL) whose counter column `n` is unique on the source;
#     migrations: add, drop, rename and retype columns, create, rename and drop tables (all
#     in the publication); some transactions large, some rolled back;
#   - at random moments one fault: kill -9 of a follower (restarted), SIGTERM of a follower
#     (must exit 0; restarted), a server crash (immediate stop) and restart, a fast server
#     restart, pg_terminate_backend of a follower's walsender.
# At the end the writer stops, each follower must catch up while it follows (its slot's
# confirmed_flush_lsn reaches the source's WAL position), stop on SIGTERM with exit 0, a
# one-shot `pgseed sync` must exit 0, `pgseed verify` must exit 0, the store must hold
# exactly the published tables, each table's `pgseed dump` must equal the source's COPY
# (sorted), and the keyless table must hold no counter value twice. A follower that exits on
# its own is a failure too. The checks wait for events (process exits, slot LSNs, one-shot
# sync); only the moments of faults and writes depend on timing.
#
# Prints each fault as it is injected and a summary (seed, faults by kind, transactions,
# rows and migrations written, PASS/FAIL with the first difference); exits non-zero on any
# failure and then keeps its directory (logs, stores, server) for a look. The seed (random
# unless given) makes the writer's transactions and the faults' sequence reproducible; their
# timing is not.
#
# Environment: PGSEED_BIN (default build/pgseed, built by scripts/setup.sh when missing),
#              PGSEED_PG_VERSION (15 default), SOAK_TXNS_PER_BATCH (25), SOAK_PAUSE (0.1 s
#              between batches of the writer: its pace).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
repo=$PWD

minutes=
stores=both
seed=
keep=0
usage() { sed -n '2,38s/^# \{0,1\}//p' "$0"; exit "${1:-2}"; }
while (($#)); do
  case "$1" in
    --minutes) minutes=${2:-}; shift 2 || usage ;;
    --store) stores=${2:-}; shift 2 || usage ;;
    --seed) seed=${2:-}; shift 2 || usage ;;
    --keep) keep=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "soak.sh: unknown argument: $1" >&2; usage ;;
  esac
done
if ! [[ $minutes =~ ^[0-9]+$ ]] || ((minutes == 0)); then
  echo "soak.sh: --minutes N (a whole number > 0) is required" >&2
  exit 2
fi
case "$stores" in
  sqlite|rocksdb) kinds=("$stores") ;;
  both) kinds=(sqlite rocksdb) ;;
  *) echo "soak.sh: --store sqlite|rocksdb|both, not '$stores'" >&2; exit 2 ;;
esac
if [ -z "$seed" ]; then seed=$(( $(od -An -N4 -tu4 /dev/urandom) % 1000000000 )); fi
[[ $seed =~ ^[0-9]+$ ]] || { echo "soak.sh: --seed takes a number" >&2; exit 2; }
RANDOM=$seed

pgseed=${PGSEED_BIN:-$repo/build/pgseed}
if [ -z "${PGSEED_BIN:-}" ] && [ ! -x "$pgseed" ]; then
  scripts/setup.sh >/dev/null || { echo "soak.sh: setup/build failed" >&2; exit 1; }
fi
[ -x "$pgseed" ] || { echo "soak.sh: no pgseed binary at $pgseed" >&2; exit 1; }
PSQL=/usr/lib/postgresql/15/bin/psql
PG_ISREADY=/usr/lib/postgresql/15/bin/pg_isready
txns_per_batch=${SOAK_TXNS_PER_BATCH:-25}
pause=${SOAK_PAUSE:-0.1}

work=$(mktemp -d /tmp/pgseed-soak.XXXXXX)
chmod 0755 "$work"  # the server (user postgres, when run as root) lives in $work/pg
pgdir=$work/pg
t0=$EPOCHREALTIME
failures=()
writer_pid=
declare -A fpid store slot flog
for k in "${kinds[@]}"; do
  slot[$k]=soak_$k
  flog[$k]=$work/follower-$k.log
done
store[sqlite]=sqlite:$work/store.db
store[rocksdb]=rocksdb:$work/rocksdb

elapsed() { awk -v a="${1:-$t0}" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
took() { echo "took $(elapsed "$f0") s"; }
say() { echo "soak: [$(elapsed)s] $*"; }
fail() { failures+=("$*"); say "FAILURE: $*"; }
# rnd N: a number in [0, N) from the seeded generator (in $r: not in a subshell, which
# would not advance the parent's sequence).
rnd() { r=$(( (RANDOM * 32768 + RANDOM) % $1 )); }

cleanup() {
  local k
  [ -n "$writer_pid" ] && kill -TERM "$writer_pid" 2>/dev/null
  for k in "${!fpid[@]}"; do kill -KILL "${fpid[$k]}" 2>/dev/null; done
  wait 2>/dev/null
  if ((${#failures[@]} > 0 || keep)); then
    # The server is stopped but kept with the stores and logs.
    KEEP=1 scripts/pg.sh stop "$pgdir" >/dev/null 2>&1
    echo "soak: kept $work (logs: follower-*.log, writer.out, writer.err, pg/server.log)"
  else
    scripts/pg.sh stop "$pgdir" >/dev/null 2>&1
    rm -rf "$work"
  fi
}
trap cleanup EXIT
# Interrupted: the directory is kept too.
trap 'failures+=(interrupted); exit 130' INT
trap 'failures+=(interrupted); exit 143' TERM

scripts/pg.sh start "$pgdir" >/dev/null || { echo "soak.sh: could not start PostgreSQL" >&2; exit 1; }
conninfo=$(cat "$pgdir/conninfo")
q() { "$PSQL" -X -q -A -t -v ON_ERROR_STOP=1 "$conninfo" "$@"; }
pg_version=$(q -c "SHOW server_version")
say "seed $seed, $minutes minutes, stores: ${kinds[*]}, PostgreSQL $pg_version, pgseed $("$pgseed" --version 2>&1 | head -n 1)"
say "rerun: scripts/soak.sh --minutes $minutes --store $stores --seed $seed   (dir $work)"

# --- schema ------------------------------------------------------------------------------
# Fixed tables: soak_acct (key, TOASTed `big`, arrays, jsonb, numeric), soak_pair (composite
# key, special floats), soak_log (keyless, REPLICA IDENTITY FULL; `n` from a sequence, so
# unique on the source; an index on it, not a key). Dynamic tables soak_dyn_* come and go.
# Migrations only touch columns named x* and the soak_dyn_* tables, so the writer's DML on
# the fixed columns always finds them. The helpers pick their victim by md5(name || seed):
# the same seed, the same choice (on the same catalog).
q >/dev/null <<'SQL' || { echo "soak.sh: schema setup failed" >&2; exit 1; }
CREATE TABLE soak_acct (id int PRIMARY KEY, owner text NOT NULL, balance numeric(14,2) NOT NULL,
  tags text[], doc jsonb, big text, updated timestamptz NOT NULL DEFAULT now());
CREATE TABLE soak_pair (a int, b text, v double precision, flag boolean, at timestamptz,
  PRIMARY KEY (a, b));
CREATE SEQUENCE soak_log_n;
CREATE TABLE soak_log (n bigint NOT NULL DEFAULT nextval('soak_log_n'), txn int, note text,
  at timestamptz DEFAULT now());
ALTER TABLE soak_log REPLICA IDENTITY FULL;
CREATE INDEX ON soak_log (n);
INSERT INTO soak_acct (id, owner, balance, tags, doc, big)
  SELECT g, 'o' || g, g % 1000, ARRAY['init'], jsonb_build_object('g', g),
         CASE WHEN g % 10 = 0 THEN (SELECT string_agg(md5(i::text || g), '') FROM generate_series(1, 300) i) END
  FROM generate_series(1, 5000) g;
INSERT INTO soak_pair SELECT g, 'b' || (g % 5), g / 7.0, g % 2 = 0, now() FROM generate_series(1, 2000) g;
INSERT INTO soak_log (txn, note) SELECT 0, 'init ' || g FROM generate_series(1, 2000) g;
CREATE PUBLICATION soak FOR ALL TABLES;

CREATE FUNCTION soak_tables() RETURNS SETOF regclass LANGUAGE sql AS $$
  SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
  WHERE s.nspname = 'public' AND c.relkind = 'r' AND c.relname LIKE 'soak\_%' $$;
CREATE FUNCTION soak_dyn_tables() RETURNS SETOF regclass LANGUAGE sql AS $$
  SELECT t FROM soak_tables() t WHERE t::text LIKE 'soak\_dyn\_%' $$;
-- An x* column of a soak table, chosen by seed.
CREATE FUNCTION soak_pick_column(seed int, OUT t regclass, OUT c name) LANGUAGE sql AS $$
  SELECT a.attrelid::regclass, a.attname FROM pg_attribute a
  WHERE a.attrelid IN (SELECT soak_tables()) AND a.attnum > 0 AND NOT a.attisdropped
    AND a.attname LIKE 'x%'
  ORDER BY md5(a.attrelid::regclass::text || a.attname || seed) LIMIT 1 $$;
CREATE FUNCTION soak_add_column(seed int, col text, dflt int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE t regclass; n int;
BEGIN
  SELECT x INTO t FROM soak_tables() x ORDER BY md5(x::text || seed) LIMIT 1;
  SELECT count(*) INTO n FROM pg_attribute WHERE attrelid = t AND attname LIKE 'x%' AND NOT attisdropped;
  IF t IS NULL OR n >= 5 THEN RETURN ''; END IF;
  IF seed % 3 = 0 THEN
    EXECUTE format('ALTER TABLE %s ADD COLUMN %I int', t, col);
  ELSE
    EXECUTE format('ALTER TABLE %s ADD COLUMN %I int DEFAULT %s', t, col, dflt);
  END IF;
  RETURN 'mig:add_column';
END $$;
CREATE FUNCTION soak_drop_column(seed int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE p record;
BEGIN
  SELECT * INTO p FROM soak_pick_column(seed);
  IF p.t IS NULL THEN RETURN ''; END IF;
  EXECUTE format('ALTER TABLE %s DROP COLUMN %I', p.t, p.c);
  RETURN 'mig:drop_column';
END $$;
CREATE FUNCTION soak_rename_column(seed int, newname text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE p record;
BEGIN
  SELECT * INTO p FROM soak_pick_column(seed);
  IF p.t IS NULL THEN RETURN ''; END IF;
  EXECUTE format('ALTER TABLE %s RENAME COLUMN %I TO %I', p.t, p.c, newname);
  RETURN 'mig:rename_column';
END $$;
-- int <-> bigint with a USING expression: a table rewrite (new relfilenode), new values.
CREATE FUNCTION soak_retype_column(seed int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE p record; typ text;
BEGIN
  SELECT * INTO p FROM soak_pick_column(seed);
  IF p.t IS NULL THEN RETURN ''; END IF;
  SELECT format_type(atttypid, atttypmod) INTO typ FROM pg_attribute WHERE attrelid = p.t AND attname = p.c;
  IF typ = 'integer' THEN
    EXECUTE format('ALTER TABLE %s ALTER COLUMN %I TYPE bigint USING %I + 1', p.t, p.c, p.c);
  ELSE
    EXECUTE format('ALTER TABLE %s ALTER COLUMN %I TYPE int USING (%I - 1)::int', p.t, p.c, p.c);
  END IF;
  RETURN 'mig:retype_column';
END $$;
CREATE FUNCTION soak_touch_extra(seed int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE p record; n int;
BEGIN
  SELECT * INTO p FROM soak_pick_column(seed);
  IF p.t IS NULL THEN RETURN ''; END IF;
  EXECUTE format('UPDATE %s SET %I = coalesce(%I, 0) + 1 WHERE abs(hashtext(ctid::text || %s)) %% 40 = 0',
                 p.t, p.c, p.c, seed);
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN 'rows:' || n;
END $$;
CREATE FUNCTION soak_create_table(name text, nrows int) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT count(*) FROM soak_dyn_tables()) >= 8 THEN RETURN ''; END IF;
  EXECUTE format('CREATE TABLE %I (id int PRIMARY KEY, v text, w numeric)', name);
  EXECUTE format('INSERT INTO %I SELECT g, %L || g, g * 1.5 FROM generate_series(1, %s) g', name, name, nrows);
  RETURN 'mig:create_table rows:' || nrows;
END $$;
CREATE FUNCTION soak_drop_table(seed int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE t regclass;
BEGIN
  SELECT x INTO t FROM soak_dyn_tables() x ORDER BY md5(x::text || seed) LIMIT 1;
  IF t IS NULL THEN RETURN ''; END IF;
  EXECUTE format('DROP TABLE %s', t);
  RETURN 'mig:drop_table';
END $$;
CREATE FUNCTION soak_rename_table(seed int, newname text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE t regclass;
BEGIN
  SELECT x INTO t FROM soak_dyn_tables() x ORDER BY md5(x::text || seed) LIMIT 1;
  IF t IS NULL THEN RETURN ''; END IF;
  EXECUTE format('ALTER TABLE %s RENAME TO %I', t, newname);
  RETURN 'mig:rename_table';
END $$;
-- DML on a dynamic table: insert, update, delete, now and then a TRUNCATE.
CREATE FUNCTION soak_dyn_dml(seed int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE t regclass; n int;
BEGIN
  SELECT x INTO t FROM soak_dyn_tables() x ORDER BY md5(x::text || seed) LIMIT 1;
  IF t IS NULL THEN RETURN ''; END IF;
  IF seed % 10 < 5 THEN
    EXECUTE format('INSERT INTO %s (id, v, w) SELECT m + g, %L, g / 3.0 FROM generate_series(1, 5) g, '
                   '(SELECT coalesce(max(id), 0) AS m FROM %s) s', t, 'ins ' || seed, t);
  ELSIF seed % 10 < 8 THEN
    EXECUTE format('UPDATE %s SET v = v || %L WHERE id %% 7 = %s', t, '.', seed % 7);
  ELSIF seed % 100 = 9 THEN
    EXECUTE format('TRUNCATE %s', t);
    RETURN 'truncate';
  ELSE
    EXECUTE format('DELETE FROM %s WHERE id %% 11 = %s', t, seed % 11);
  END IF;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN 'rows:' || n;
END $$;
SQL

# --- the writer --------------------------------------------------------------------------
# Batch b of the writer is the SQL that this awk program prints for srand(seed + b * 7919):
# $txns_per_batch transactions, each either DML (1-6 statements; 1% large) or a migration
# (2%); 3% end in ROLLBACK. psql (not -q) prints each command's tag, and the helpers' results
# (mig:KIND, rows:N): the summary counts committed transactions, rows and migrations from them.
gen_awk='
function ri(lo, hi) { return lo + int(rand() * (hi - lo + 1)) }
function acct() { return ri(1, 6000) * (rand() < 0.1 ? -1 : 1) }
function fl(   r) {
  r = rand()
  if (r < 0.03) return "'"'"'NaN'"'"'"
  if (r < 0.06) return "'"'"'-0'"'"'"
  if (r < 0.08) return "'"'"'Infinity'"'"'"
  if (r < 0.09) return "'"'"'-Infinity'"'"'"
  if (r < 0.10) return "1e-300"
  return sprintf("%d.%d", ri(-100000, 100000), ri(0, 999))
}
function dml(tx,   r, id, a, b) {
  r = rand()
  if (r < 0.17) { id = acct(); return sprintf("INSERT INTO soak_acct (id, owner, balance, tags, doc) VALUES (%d, %so%d%s, %d.%02d, ARRAY[%st%d%s, %su%s], %s{\"k\": %d, \"tx\": \"%d\"}%s) ON CONFLICT (id) DO UPDATE SET balance = soak_acct.balance + excluded.balance, doc = excluded.doc, updated = now();", id, Q, id, Q, ri(-500, 500), ri(0, 99), Q, ri(0, 9), Q, Q, Q, Q, ri(0, 1000), tx, Q) }
  if (r < 0.21) { id = ri(1, 6000); return sprintf("INSERT INTO soak_acct (id, owner, balance) SELECT g, %sbulk%s, g %% 1000 FROM generate_series(%d, %d) g ON CONFLICT (id) DO NOTHING;", Q, Q, id, id + ri(1, 40)) }
  if (r < 0.35) { id = acct(); return sprintf("UPDATE soak_acct SET balance = balance - 1.25, tags = ARRAY[%sx%d%s, NULL], updated = now() WHERE id BETWEEN %d AND %d;", Q, tx % 97, Q, id, id + ri(0, 5)) }
  if (r < 0.39) { id = acct(); return sprintf("UPDATE soak_acct SET big = (SELECT string_agg(md5(g::text || %s%d%s), %s%s) FROM generate_series(1, 300) g) WHERE id = %d;", Q, tx, Q, Q, Q, id) }
  if (r < 0.43) { id = acct(); return sprintf("UPDATE soak_acct SET id = -id WHERE id = %d AND NOT EXISTS (SELECT FROM soak_acct WHERE id = %d);", id, -id) }
  if (r < 0.50) { id = acct(); return sprintf("DELETE FROM soak_acct WHERE id BETWEEN %d AND %d;", id, id + ri(0, 2)) }
  if (r < 0.64) { return sprintf("INSERT INTO soak_pair (a, b, v, flag, at) VALUES (%d, %sb%d%s, %s, %s, now()) ON CONFLICT (a, b) DO UPDATE SET v = excluded.v, flag = NOT soak_pair.flag, at = excluded.at;", ri(1, 2500), Q, ri(0, 5), Q, fl(), (rand() < 0.5 ? "true" : "false")) }
  if (r < 0.68) { return sprintf("DELETE FROM soak_pair WHERE a = %d;", ri(1, 2500)) }
  if (r < 0.72) { a = ri(1, 2500); b = ri(0, 5); return sprintf("UPDATE soak_pair SET b = %sb9%s WHERE a = %d AND b = %sb%d%s AND NOT EXISTS (SELECT FROM soak_pair WHERE a = %d AND b = %sb9%s);", Q, Q, a, Q, b, Q, a, Q, Q) }
  if (r < 0.86) { return sprintf("INSERT INTO soak_log (txn, note) SELECT %d, %sn%s || g FROM generate_series(1, %d) g;", tx, Q, Q, ri(1, 5)) }
  if (r < 0.90) { return sprintf("UPDATE soak_log SET note = note || %s+%s WHERE n IN (SELECT n FROM soak_log ORDER BY n DESC LIMIT 2 OFFSET %d);", Q, Q, ri(0, 300)) }
  if (r < 0.93) { return sprintf("DELETE FROM soak_log WHERE n IN (SELECT n FROM soak_log ORDER BY n DESC LIMIT 2 OFFSET %d);", ri(0, 300)) }
  if (r < 0.96) { return sprintf("SELECT soak_touch_extra(%d);", ri(0, 1000000)) }
  return sprintf("SELECT soak_dyn_dml(%d);", ri(0, 1000000))
}
# soak_log keeps about its newest 10,000 rows: the SQLite store finds the row of a keyless
# update or delete by a scan of its table, so a delete costs the size of the table.
function big(tx,   r) {
  r = rand()
  if (r < 0.35) return sprintf("INSERT INTO soak_log (txn, note) SELECT %d, %sbulk %s || g FROM generate_series(1, 1000) g;", tx, Q, Q)
  if (r < 0.75) return sprintf("UPDATE soak_acct SET balance = balance + 1 WHERE id %% 7 = %d;", ri(0, 6))
  return "DELETE FROM soak_log WHERE n < (SELECT max(n) - 10000 FROM soak_log);"
}
function migration(tx,   r) {
  r = rand()
  if (r < 0.24) return sprintf("SELECT soak_add_column(%d, %sx%d%s, %d);", ri(0, 1000000), Q, tx, Q, ri(-5, 5))
  if (r < 0.40) return sprintf("SELECT soak_drop_column(%d);", ri(0, 1000000))
  if (r < 0.55) return sprintf("SELECT soak_rename_column(%d, %sx%dr%s);", ri(0, 1000000), Q, tx, Q)
  if (r < 0.63) return sprintf("SELECT soak_retype_column(%d);", ri(0, 1000000))
  if (r < 0.80) return sprintf("SELECT soak_create_table(%ssoak_dyn_%d%s, %d);", Q, tx, Q, ri(0, 300))
  if (r < 0.92) return sprintf("SELECT soak_drop_table(%d);", ri(0, 1000000))
  return sprintf("SELECT soak_rename_table(%d, %ssoak_dyn_%dr%s);", ri(0, 1000000), Q, tx, Q)
}
BEGIN {
  Q = "'"'"'"
  srand(seed + batch * 7919)
  for (t = 0; t < n; t++) {
    tx = batch * 100 + t
    print "BEGIN;"
    r = rand()
    if (r < 0.02) {
      print migration(tx)
      # now and then with DML in the same transaction
      if (rand() < 0.5) print dml(tx)
    } else if (r < 0.03) {
      print big(tx)
    } else {
      k = ri(1, 6)
      for (i = 0; i < k; i++) print dml(tx)
    }
    print (rand() < 0.03 ? "ROLLBACK;" : "COMMIT;")
  }
}'

writer() {
  local batch=0 rc
  trap - EXIT INT TERM
  trap 'exit 0' TERM
  while [ ! -e "$work/stop-writer" ]; do
    awk -v seed="$seed" -v batch="$batch" -v n="$txns_per_batch" "$gen_awk" |
      PGOPTIONS='-c synchronous_commit=off -c lock_timeout=5s -c statement_timeout=120s -c client_min_messages=warning' \
        "$PSQL" -X -A -t "$conninfo" >>"$work/writer.out" 2>>"$work/writer.err"
    rc=$?
    echo "-- end of batch $batch (psql exit $rc)" >>"$work/writer.out"
    batch=$((batch + 1))
    if ((rc != 0)); then
      # The server went away (a fault): wait until it accepts connections again.
      until "$PG_ISREADY" -q -d "$conninfo" || [ -e "$work/stop-writer" ]; do sleep 0.2; done
    fi
    sleep "$pause"
  done
  echo "$batch" >"$work/writer.batches"
}

# --- followers ---------------------------------------------------------------------------
start_follower() {
  local k=$1
  echo "== soak [$(elapsed)s]: start" >>"${flog[$k]}"
  "$pgseed" sync --source "$conninfo" --store "${store[$k]}" --publication soak --slot "${slot[$k]}" \
    --schema-check-interval 10 --follow >>"${flog[$k]}" 2>&1 &
  fpid[$k]=$!
}

# wait_exit PID SECONDS: waits for a child to exit; its exit status, or 124 on timeout.
wait_exit() {
  local pid=$1 deadline=$((SECONDS + $2))
  while kill -0 "$pid" 2>/dev/null; do
    ((SECONDS < deadline)) || return 124
    sleep 0.1
  done
  wait "$pid" 2>/dev/null  # (no "Killed" line from bash)
}

# wait_for SECONDS SQL: until the query prints t; 1 on timeout. Connection errors (the server
# restarting) count as not yet.
wait_for() {
  local deadline=$((SECONDS + $1))
  until [ "$(q -c "$2" 2>/dev/null)" = t ]; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}
slot_active_sql() { echo "SELECT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = '$1' AND active_pid IS NOT NULL)"; }
slot_inactive_sql() { echo "SELECT NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = '$1' AND active_pid IS NOT NULL)"; }
slot_reached_sql() { echo "SELECT coalesce((SELECT confirmed_flush_lsn >= '$2' FROM pg_replication_slots WHERE slot_name = '$1'), false)"; }

# A process's own death is a failure (a --follow sync retries what is transient); it is
# restarted, as a supervisor would, so that the soak goes on.
check_followers() {
  local k rc
  for k in "${!fpid[@]}"; do
    if ! kill -0 "${fpid[$k]}" 2>/dev/null; then
      wait "${fpid[$k]}" 2>/dev/null
      rc=$?
      fail "$k follower (pid ${fpid[$k]}) exited on its own with status $rc: $(tail -n 1 "${flog[$k]}")"
      wait_for 90 "$(slot_inactive_sql "${slot[$k]}")" || fail "$k: slot still active 90 s after its pgseed exited"
      start_follower "$k"
    fi
  done
}

# A server fault is injected once every follower streams (its slot active), so that it
# meets them in their retry loop, not in their start-up (before streaming, a --follow sync
# that cannot connect exits, as documented). Not a condition of correctness: after 30 s
# the fault comes anyway.
wait_streaming() {
  local k
  for k in "${kinds[@]}"; do
    wait_for 30 "$(slot_active_sql "${slot[$k]}")" || say "note: $k follower not streaming after 30 s"
  done
}

declare -A faults
fault_kinds=(kill9 sigterm server_crash server_restart walsender_kill)
for f in "${fault_kinds[@]}"; do faults[$f]=0; done

inject() {
  local f=$1 k rc pid
  f0=$EPOCHREALTIME
  rnd "${#kinds[@]}"
  k=${kinds[$r]}
  case "$f" in
    kill9)
      pid=${fpid[$k]}
      kill -KILL "$pid"
      wait_exit "$pid" 30 2>/dev/null
      rc=$?
      say "fault: kill -9 $k follower (pid $pid, exit $rc)"
      ((rc == 137)) || fail "$k follower: kill -9 gave exit status $rc"
      wait_for 90 "$(slot_inactive_sql "${slot[$k]}")" || fail "$k: slot still active 90 s after kill -9"
      rnd 30; sleep "0.$((r / 10))$((r % 10))"
      start_follower "$k"
      say "       $k follower restarted ($(took))"
      ;;
    sigterm)
      pid=${fpid[$k]}
      kill -TERM "$pid"
      wait_exit "$pid" 120
      rc=$?
      say "fault: SIGTERM $k follower (pid $pid, exit $rc after $(took))"
      if ((rc == 124)); then
        fail "$k follower did not stop within 120 s of SIGTERM"
        kill -KILL "$pid"; wait "$pid" 2>/dev/null
      elif ((rc != 0)); then
        fail "$k follower: SIGTERM gave exit status $rc (want 0): $(tail -n 1 "${flog[$k]}")"
      fi
      wait_for 90 "$(slot_inactive_sql "${slot[$k]}")" || fail "$k: slot still active 90 s after pgseed stopped"
      rnd 3; sleep "$r"
      start_follower "$k"
      say "       $k follower restarted ($(took))"
      ;;
    server_crash)
      wait_streaming
      f0=$EPOCHREALTIME
      say "fault: server crash (immediate shutdown)"
      scripts/pg.sh crash "$pgdir" >/dev/null || fail "pg.sh crash failed"
      rnd 4; sleep "$r"
      scripts/pg.sh restart "$pgdir" >/dev/null || fail "pg.sh restart after the crash failed"
      say "       server up again ($(took))"
      ;;
    server_restart)
      wait_streaming
      f0=$EPOCHREALTIME
      say "fault: server restart (fast)"
      scripts/pg.sh restart "$pgdir" >/dev/null || fail "pg.sh restart (fast) failed"
      say "       server up again ($(took))"
      ;;
    walsender_kill)
      wait_for 30 "$(slot_active_sql "${slot[$k]}")"
      pid=$(q -c "SELECT r.pid FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid
                  WHERE s.slot_name = '${slot[$k]}'" 2>/dev/null)
      if [ -z "$pid" ]; then
        say "fault: walsender of the $k follower: not streaming, none terminated"
        return
      fi
      q -c "SELECT pg_terminate_backend($pid)" >/dev/null
      say "fault: pg_terminate_backend($pid), the walsender of the $k follower"
      ;;
  esac
  faults[$f]=$((faults[$f] + 1))
}

# --- run ---------------------------------------------------------------------------------
for k in "${kinds[@]}"; do start_follower "$k"; done
# Streaming: the initial copy done, the slot confirmed past a position taken after it
# existed (pgseed confirms the server's position while the publication is idle).
for k in "${kinds[@]}"; do
  wait_for 300 "SELECT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = '${slot[$k]}')" ||
    fail "$k: no slot 300 s after the start"
done
mark=$(q -c "SELECT pg_current_wal_lsn()")
for k in "${kinds[@]}"; do
  wait_for 300 "$(slot_reached_sql "${slot[$k]}" "$mark")" || fail "$k: initial sync not done after 300 s"
done
say "followers streaming (${kinds[*]}); writer and faults for $minutes minutes"

writer &
writer_pid=$!
end=$((SECONDS + minutes * 60))
rnd 14; next=$((SECONDS + 2 + r))
while ((SECONDS < end)); do
  check_followers
  if ((SECONDS >= next)); then
    rnd "${#fault_kinds[@]}"
    inject "${fault_kinds[$r]}"
    rnd 14; next=$((SECONDS + 2 + r))
  fi
  sleep 0.2
done

# --- catch up and compare ----------------------------------------------------------------
touch "$work/stop-writer"
wait "$writer_pid"
writer_pid=
check_followers
end_lsn=$(q -c "SELECT pg_current_wal_lsn()")
say "writer stopped at $end_lsn; waiting for the followers to catch up"
for k in "${kinds[@]}"; do
  # Liveness, not correctness: a follower that does not get there in 10 minutes is stuck.
  if wait_for 600 "$(slot_reached_sql "${slot[$k]}" "$end_lsn")"; then
    say "$k follower caught up: $(q -c "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '${slot[$k]}'")"
  else
    fail "$k follower did not reach $end_lsn within 600 s (at $(q -c "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '${slot[$k]}'"))"
  fi
  check_followers
  pid=${fpid[$k]}
  kill -TERM "$pid"
  wait_exit "$pid" 120
  rc=$?
  ((rc == 0)) || fail "$k follower: final SIGTERM gave exit status $rc"
  unset "fpid[$k]"
done

# PostgreSQL's text output under pgseed's session settings (README: SQLite store).
export PGOPTIONS='-c TimeZone=UTC -c DateStyle=ISO -c IntervalStyle=postgres -c extra_float_digits=3 -c bytea_output=hex'
published=$(q -c "SELECT format('%I.%I', schemaname, tablename) FROM pg_publication_tables WHERE pubname = 'soak' ORDER BY 1")
declare -A result
for k in "${kinds[@]}"; do
  s=${store[$k]}
  nfail=${#failures[@]}
  if ! out=$("$pgseed" sync --source "$conninfo" --store "$s" 2>&1); then
    fail "$k: one-shot sync failed: $(echo "$out" | tail -n 1)"
  fi
  echo "$out" >>"${flog[$k]}"
  if ! out=$("$pgseed" verify --source "$conninfo" --store "$s" 2>&1); then
    # Its lines about the unequal tables (or its error), not its progress lines.
    fail "$k: pgseed verify: $(echo "$out" | grep -v -e '^$' -e '^pgseed: info:' -e ' equal (' | head -n 3 | cut -c1-300 | tr '\n' ' ')"
  fi
  echo "$out" >>"${flog[$k]}"
  stored=$("$pgseed" dump --store "$s" | grep '^-- ' | cut -c4- | LC_ALL=C sort)
  if [ "$stored" != "$(echo "$published" | LC_ALL=C sort)" ]; then
    fail "$k: stored tables differ from the published ones: $(diff <(echo "$published" | LC_ALL=C sort) <(echo "$stored") | grep '^[<>]' | head -n 4 | tr '\n' ' ')"
  fi
  ntables=0 nrows=0
  for t in $published; do
    cols=$(q -c "SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
                 FROM pg_attribute a JOIN pg_publication_tables pt ON pt.pubname = 'soak'
                   AND format('%I.%I', pt.schemaname, pt.tablename) = '$t'
                 WHERE a.attrelid = '$t'::regclass AND a.attnum > 0 AND NOT a.attisdropped
                   AND a.attname = ANY (pt.attnames)
                   AND (a.attgenerated = '' OR current_setting('server_version_num')::int >= 180000)")
    # The writer's values hold no newline: one csv record a line.
    q -c "COPY (SELECT $cols FROM $t) TO STDOUT (FORMAT csv)" | LC_ALL=C sort >"$work/src.csv"
    "$pgseed" dump --store "$s" --table "$t" --format csv | LC_ALL=C sort >"$work/dst.csv"
    if ! cmp -s "$work/src.csv" "$work/dst.csv"; then
      d=$(diff "$work/src.csv" "$work/dst.csv" | grep '^[<>]' | head -n 2 | cut -c1-200 | tr '\n' ' ')
      fail "$k: table $t differs ($(wc -l <"$work/dst.csv") rows stored, $(wc -l <"$work/src.csv") on the source; < source, > store): $d"
    fi
    ntables=$((ntables + 1))
    nrows=$((nrows + $(wc -l <"$work/dst.csv")))
  done
  "$pgseed" dump --store "$s" --table public.soak_log --format csv | cut -d, -f1 | LC_ALL=C sort | uniq -d >"$work/dup.txt"
  nlog=$("$pgseed" dump --store "$s" --table public.soak_log --format csv | wc -l)
  if [ -s "$work/dup.txt" ]; then
    fail "$k: keyless soak_log holds $(wc -l <"$work/dup.txt") counter values more than once (e.g. n = $(head -n 1 "$work/dup.txt"))"
  fi
  if ((${#failures[@]} == nfail)); then
    result[$k]="equal: verify ok, $ntables tables, $nrows rows, soak_log $nlog rows with no duplicate n"
  else
    result[$k]="FAILED ($(( ${#failures[@]} - nfail )) failures)"
  fi
done
q -c "SELECT n FROM soak_log GROUP BY n HAVING count(*) > 1 LIMIT 1" | grep -q . &&
  fail "the source's soak_log holds a counter value twice (the writer is wrong)"

# --- summary -----------------------------------------------------------------------------
read -r txns rollbacks rows migs <<<"$(awk '
  /^BEGIN$/ { open = 1; r = 0; m = 0; delete mk; next }
  /^(INSERT [0-9]+|UPDATE|DELETE) [0-9]+$/ { r += $NF; next }
  /^(mig:|rows:)/ { for (i = 1; i <= NF; i++) { if ($i ~ /^rows:/) r += substr($i, 6); if ($i ~ /^mig:/) { m++; mk[substr($i, 5)]++ } } next }
  /^COMMIT$/ { if (open) { t++; rows += r; migs += m; for (x in mk) kinds[x] += mk[x] } open = 0; next }
  /^ROLLBACK$/ { if (open) rb++; open = 0; next }
  END {
    s = ""; for (x in kinds) s = s (s == "" ? "" : ",") x "=" kinds[x]
    printf "%d %d %d %d(%s)\n", t, rb, rows, migs, s
  }' "$work/writer.out")"
total=0 fsum=""
for f in "${fault_kinds[@]}"; do total=$((total + faults[$f])); fsum+="$f ${faults[$f]}, "; done
echo
echo "== summary (soak, PostgreSQL $pg_version)"
echo "seed:        $seed (scripts/soak.sh --minutes $minutes --store $stores --seed $seed)"
echo "minutes:     $minutes (wall $(elapsed) s)"
echo "faults:      $total: ${fsum%, }"
echo "written:     $txns transactions committed ($rollbacks rolled back), $rows rows, $(cat "$work/writer.batches" 2>/dev/null || echo '?') batches"
echo "migrations:  ${migs%%(*} committed (${migs#*(}"
for k in "${kinds[@]}"; do
  echo "$k:$(printf '%*s' $((12 - ${#k})) '')${result[$k]:-not checked}"
done
if ((${#failures[@]} > 0)); then
  echo "result:      FAIL (${#failures[@]} failures); first: ${failures[0]}"
  echo "soak: FAILED"
  exit 1
fi
echo "result:      PASS"
echo "soak: all passed"
