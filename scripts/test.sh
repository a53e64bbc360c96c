#!/usr/bin/env bash
# Builds pgseed and runs every test against a throwaway PostgreSQL (15 unless told otherwise).
#
#   scripts/test.sh [ctest arguments...]     e.g. scripts/test.sh -R Sqlite
#   PGSEED_PG_VERSION=18 scripts/test.sh     the same against PostgreSQL 18 (15, 16, 17, 18;
#                                            16-18 installed on demand by scripts/pg-install.sh)
#
# Steps: scripts/setup.sh (install + build); scripts/pg.sh start in a temporary directory
# (always stopped and removed on exit); ctest with PGSEED_TEST_CONNINFO, PGSEED_PG_DIR and
# PGSEED_SCRIPTS_DIR exported (integration tests use `$PGSEED_SCRIPTS_DIR/pg.sh crash|restart
# $PGSEED_PG_DIR` to simulate a server crash; PGSEED_PG_VERSION stays exported, so servers
# that tests start themselves are of the same major); then scripts/fuzz.sh when it exists
# (not with PGSEED_FUZZ=0). Exits non-zero when anything failed.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
repo=$PWD

scripts/setup.sh || { echo "test.sh: setup/build failed" >&2; exit 1; }

pgdir=$(mktemp -d /tmp/pgseed-test.XXXXXX)
cleanup() {
  if [ -n "${ctest_pgid:-}" ]; then kill -TERM -- "-$ctest_pgid" 2>/dev/null; wait 2>/dev/null; fi
  "$repo/scripts/pg.sh" stop "$pgdir" || true
  rm -f "${ctest_log:-}" "${ctest_rc_file:-}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

export PGSEED_PG_VERSION=${PGSEED_PG_VERSION:-15}
pg_major=$PGSEED_PG_VERSION
scripts/pg-install.sh "$pg_major" >/dev/null || { echo "test.sh: could not install PostgreSQL $pg_major" >&2; exit 1; }
scripts/pg.sh start "$pgdir" >/dev/null || { echo "test.sh: could not start PostgreSQL $pg_major" >&2; exit 1; }
export PGSEED_TEST_CONNINFO
PGSEED_TEST_CONNINFO=$(cat "$pgdir/conninfo")
export PGSEED_PG_DIR=$pgdir
export PGSEED_SCRIPTS_DIR=$repo/scripts
pg_version=$(/usr/lib/postgresql/15/bin/psql -X -A -t -c "SHOW server_version" "$PGSEED_TEST_CONNINFO" 2>/dev/null)
echo "test: PostgreSQL ${pg_version:-$pg_major} at $PGSEED_TEST_CONNINFO (PGSEED_PG_DIR=$pgdir)"

ctest_log=$(mktemp)
ctest_rc_file=$(mktemp)
# ctest runs as a background job in its own process group, so that a SIGTERM/SIGINT to this
# script (whose trap fires at once during `wait`) can stop it and every test it started
# before the server is removed.
set -m
{ ctest --test-dir build --output-on-failure --no-tests=error -j2 "$@" 2>&1
  echo $? >"$ctest_rc_file"; } </dev/null | tee "$ctest_log" &
ctest_pgid=$(jobs -p %+)
wait "$ctest_pgid" 2>/dev/null
wait 2>/dev/null
ctest_pgid=
set +m
ctest_rc=$(cat "$ctest_rc_file")
ctest_rc=${ctest_rc:-1}
if ((ctest_rc != 0)); then
  echo "test: last lines of the PostgreSQL log ($pgdir/server.log):"
  tail -n 30 "$pgdir/server.log" 2>/dev/null | sed 's/^/  | /'
fi

fuzz_rc=0
fuzz_note="scripts/fuzz.sh: not present"
if [ "${PGSEED_FUZZ:-1}" = 0 ]; then
  # The fuzzer does not use the server: a second run on another major skips it.
  fuzz_note="scripts/fuzz.sh: skipped (PGSEED_FUZZ=0)"
elif [ -f scripts/fuzz.sh ]; then
  echo "test: running scripts/fuzz.sh"
  bash scripts/fuzz.sh
  fuzz_rc=$?
  if ((fuzz_rc == 0)); then fuzz_note="scripts/fuzz.sh: ok"; else fuzz_note="scripts/fuzz.sh: FAILED (exit $fuzz_rc)"; fi
fi

# The summary last, so it is what a CI log shows at the bottom.
echo
echo "== summary (PostgreSQL ${pg_version:-$pg_major})"
summary=$(grep -E 'tests passed|No tests were found' "$ctest_log" | tail -n 1)
echo "ctest: ${summary:-no summary (exit $ctest_rc)}"
sed -n '/The following tests FAILED:/,$p' "$ctest_log" | grep -v '^Errors while running CTest' | head -n 40
echo "$fuzz_note"
if ((ctest_rc != 0 || fuzz_rc != 0)); then
  echo "test: FAILED (PostgreSQL ${pg_version:-$pg_major})"
  exit 1
fi
echo "test: all passed (PostgreSQL ${pg_version:-$pg_major})"
