#!/usr/bin/env bash
# `scripts/pg.sh standby` makes a working hot standby (of the major PGSEED_PG_VERSION, default
# 15): it accepts read-only queries, refuses writes, holds the rows the base backup copied and
# receives a row written on the primary afterwards; `promote` makes it writable; `stop`
# drops its physical slot on the primary. On 17+, `standby --sync-slots` sets up slot
# synchronisation on both sides and `stop` undoes the primary's part; before 17 it is
# refused.
#
# Run by ctest (tests/CMakeLists.txt) as scripts.standby; needs no other server.
set -euo pipefail

scripts=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../scripts" && pwd)
pg=$scripts/pg.sh
work=$(mktemp -d /tmp/pgseed-standby.XXXXXX)
chmod 0755 "$work"  # the server runs as the postgres OS user
primary=$work/p
standby=$work/s
cleanup() {
  "$pg" stop "$standby" >/dev/null 2>&1 || true
  "$pg" stop "$primary" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "FAILED: $*" >&2; exit 1; }
q() { psql -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }

# synchronous_standby_names='*': a commit with synchronous_commit=remote_apply returns only
# once a standby has applied it, so the check below waits on that event, not on a sleep.
# Set at start (not by a reload, which reaches the walsenders asynchronously); the commits
# before the standby exists use synchronous_commit=local.
P=$(PG_EXTRA_OPTS="-c synchronous_standby_names=*" "$pg" start "$primary")
PGOPTIONS="-c synchronous_commit=local" q "$P" -c "CREATE TABLE t (id int PRIMARY KEY, v text);
  INSERT INTO t VALUES (1, 'before the backup')"
major=$(q "$P" -c "SHOW server_version_num")
major=$((major / 10000))
echo "primary: PostgreSQL $major at $P"

# PG_EXTRA_OPTS set (empty): the standby does not inherit synchronous_standby_names, which
# would make its own commits wait for a standby once it is promoted.
S=$(PG_EXTRA_OPTS='' "$pg" standby "$primary" "$standby")
echo "standby: $S"
[ "$(cat "$standby/data/PG_VERSION")" = "$major" ] || fail "standby is not of major $major"
[ "$(q "$S" -c "SELECT pg_is_in_recovery()")" = t ] || fail "standby is not in recovery"
[ "$(q "$S" -c "SELECT v FROM t WHERE id = 1")" = "before the backup" ] ||
  fail "standby lacks the row copied by the base backup"
err=$(q "$S" -c "INSERT INTO t VALUES (99, 'x')" 2>&1) && fail "standby accepted a write"
[[ $err == *"read-only transaction"* ]] || fail "unexpected error for a write on the standby: $err"
slot=$(cat "$standby/primary_slot_name")
[ "$(q "$P" -c "SELECT active FROM pg_replication_slots WHERE slot_name = '$slot'")" = t ] ||
  fail "the standby does not stream through its slot $slot"

# A row written on the primary after the backup.
PGOPTIONS="-c synchronous_commit=remote_apply -c statement_timeout=60s" timeout 60 \
  psql -X -q -v ON_ERROR_STOP=1 "$P" -c "INSERT INTO t VALUES (2, 'after the backup')" ||
  fail "the standby did not apply the primary's commit within 60 s"
[ "$(q "$S" -c "SELECT v FROM t WHERE id = 2")" = "after the backup" ] ||
  fail "standby does not see the row written on the primary"

"$pg" promote "$standby"
[ "$(q "$S" -c "SELECT pg_is_in_recovery()")" = f ] || fail "promoted standby still in recovery"
q "$S" -c "INSERT INTO t VALUES (3, 'on the promoted standby')" || fail "promoted standby refuses a write"

"$pg" stop "$standby"
[ "$(q "$P" -c "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$slot'")" = 0 ] ||
  fail "pg.sh stop left the standby's slot $slot on the primary"
echo "standby of PostgreSQL $major: ok"

standby2=$work/s2
if ((major < 17)); then
  err=$(PG_EXTRA_OPTS='' "$pg" standby --sync-slots "$primary" "$standby2" 2>&1) &&
    fail "standby --sync-slots accepted PostgreSQL $major"
  [[ $err == *"needs PostgreSQL 17"* ]] || fail "unexpected error for --sync-slots on $major: $err"
  [ ! -e "$standby2" ] || fail "a refused standby --sync-slots left $standby2"
  exit 0
fi
S2=$(PG_EXTRA_OPTS='' "$pg" standby --sync-slots "$primary" "$standby2")
slot2=$(cat "$standby2/primary_slot_name")
[ "$(q "$P" -c "SHOW synchronized_standby_slots")" = "$slot2" ] ||
  fail "the primary's synchronized_standby_slots does not name $slot2"
[ "$(q "$S2" -c "SHOW sync_replication_slots")" = on ] || fail "sync_replication_slots is not on"
[ "$(q "$S2" -c "SHOW hot_standby_feedback")" = on ] || fail "hot_standby_feedback is not on"
[ "$(q "$S2" -c "SHOW primary_slot_name")" = "$slot2" ] || fail "primary_slot_name is not $slot2"
[[ $(q "$S2" -c "SHOW primary_conninfo") == *dbname=* ]] || fail "primary_conninfo has no dbname"
# Not inherited: a promoted standby has no such slot to wait for.
[ -z "$(q "$S2" -c "SHOW synchronized_standby_slots")" ] ||
  fail "the standby inherited the primary's synchronized_standby_slots"
"$pg" stop "$standby2"
[ -z "$(q "$P" -c "SHOW synchronized_standby_slots")" ] ||
  fail "pg.sh stop left $slot2 in the primary's synchronized_standby_slots"
echo "standby --sync-slots of PostgreSQL $major: ok"
