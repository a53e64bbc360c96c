#!/usr/bin/env bash
# The primary + hot standby that the integration tests named Standby* share (a ctest
# fixture: tests/CMakeLists.txt runs `start` before the first of them and `stop` after the
# last), so that each test does not pay for an initdb and a base backup of its own.
#
#   tests/scripts/standby_pair.sh start DIR   DIR/p: a primary of PGSEED_PG_VERSION,
#                                             DIR/s: its hot standby (scripts/pg.sh standby)
#   tests/scripts/standby_pair.sh stop DIR    stops both and removes DIR
#
# Logical decoding on a standby needs PostgreSQL 16: on 15 `start` makes nothing (the
# tests skip themselves there, saying why). Each test makes a database of its own on the
# primary; the tests start a pair of their own when PGSEED_STANDBY_DIR is not set.
set -euo pipefail

scripts=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../scripts" && pwd)
pg=$scripts/pg.sh
(($# == 2)) || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
dir=$2

case "$1" in
  start)
    if ((${PGSEED_PG_VERSION:-15} < 16)); then
      echo "PostgreSQL ${PGSEED_PG_VERSION:-15}: no standby pair (logical decoding on a standby needs 16)"
      exit 0
    fi
    "$pg" stop "$dir/s" >/dev/null 2>&1 || true
    "$pg" stop "$dir/p" >/dev/null 2>&1 || true
    mkdir -p "$dir"
    chmod 0755 "$dir"  # the servers run as the postgres OS user when we are root
    "$pg" start "$dir/p"
    "$pg" standby "$dir/p" "$dir/s"
    ;;
  stop)
    "$pg" stop "$dir/s" >/dev/null 2>&1 || true
    "$pg" stop "$dir/p" >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
  *)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
