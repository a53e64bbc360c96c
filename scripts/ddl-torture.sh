#!/usr/bin/env bash
# Runs the DDL torture test (tests/integration/test_ddl_torture.cpp) long: seeded random
# migrations interleaved with DML while `sync --follow` runs and is killed now and then,
# then the store compared with the source, on both stores, round after round.
#
#   scripts/ddl-torture.sh [--minutes N] [--ops N]    defaults: 10 minutes, 400 steps a round
#
# Builds first (scripts/setup.sh), starts a throwaway PostgreSQL (removed on exit), prints
# one line per round and store (seed, migrations, kills, result) and a total; exits
# non-zero when any round failed (its seed reproduces it: PGSEED_TORTURE_SEED=...).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
repo=$PWD
minutes=10
ops=400
while (($#)); do
  case "$1" in
    --minutes) minutes=$2; shift 2 ;;
    --ops) ops=$2; shift 2 ;;
    -h|--help) sed -n '2,10s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "ddl-torture.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
done
scripts/setup.sh >/dev/null || { echo "ddl-torture.sh: build failed" >&2; exit 1; }
pgdir=$(mktemp -d /tmp/pgseed-torture.XXXXXX)
trap '"$repo/scripts/pg.sh" stop "$pgdir" >/dev/null 2>&1' EXIT
scripts/pg.sh start "$pgdir" >/dev/null || { echo "ddl-torture.sh: could not start PostgreSQL" >&2; exit 1; }
export PGSEED_TEST_CONNINFO=$(cat "$pgdir/conninfo") PGSEED_PG_DIR=$pgdir PGSEED_SCRIPTS_DIR=$repo/scripts
export PGSEED_TORTURE_OPS=$ops
end=$((SECONDS + minutes * 60))
rounds=0 failed=0 migrations=0
while ((SECONDS < end)); do
  seed=$((RANDOM * 32768 + RANDOM))
  out=$(PGSEED_TORTURE_SEED=$seed build/tests/pgseed_integration_tests \
        --gtest_filter='Stores/DdlTortureTest.*' 2>&1)
  rc=$?
  echo "$out" | grep '^torture: seed .*:' | sed 's/^/round: /'
  n=$(echo "$out" | grep '^torture: seed .*:' | sed -E 's/.*: ([0-9]+) migrations.*/\1/' | awk '{s += $1} END {print s + 0}')
  migrations=$((migrations + ${n:-0}))
  rounds=$((rounds + 1))
  if ((rc != 0)); then
    failed=$((failed + 1))
    echo "$out" | grep -E 'Failure|differs|error' | head -n 20 | sed 's/^/  | /'
  fi
done
echo "ddl-torture: $rounds rounds (both stores each), $migrations migrations survived, $failed rounds failed"
((failed == 0))
