#!/usr/bin/env bash
# `scripts/pg.sh standby` makes a working hot standby (of the major PGSEED_PG_VERSION, default
# 15): it accepts read-only queries, refuses writes, holds the rows the base backup copied and
# receives a row written on the primary afterwards; `promote` makes it writable; `stop`
# drops its physical slot on the primary.
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
