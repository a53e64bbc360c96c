#!/usr/bin/env bash
# A throwaway PostgreSQL 15 server for tests and the demo.
#
#   scripts/pg.sh start DIR     initdb DIR/data (trust auth, UTF8) and start it on a free
#                               127.0.0.1 port; writes DIR/conninfo and prints it.
#                               If DIR already holds a cluster, starts it on its old port.
#   scripts/pg.sh stop DIR      fast shutdown, then rm -rf DIR (keep it with KEEP=1)
#   scripts/pg.sh crash DIR     immediate shutdown (no checkpoint: like a server crash)
#   scripts/pg.sh restart DIR   start again on the same port, wait until ready
#   scripts/pg.sh status DIR    exit 0 when running
#   scripts/pg.sh psql DIR ...  psql on the cluster (extra arguments passed on)
#
# Environment: PG_EXTRA_OPTS   extra server options, e.g. "-c wal_level=replica
#                              -c max_wal_senders=0"; remembered for `restart` unless
#                              set again. KEEP=1 keeps DIR on stop.
#              PG_BIN          default /usr/lib/postgresql/15/bin
#
# initdb and postgres refuse to run as root: as root, the server runs as the `postgres`
# OS user (runuser); as any other user, as that user. The database superuser is always
# `postgres`. Files in DIR: data/ (PGDATA), server.log, conninfo, port, extra_opts;
# the Unix socket is in DIR too.
set -euo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

die() { echo "pg.sh: $*" >&2; exit 1; }
usage() { sed -n '2,21s/^# \{0,1\}//p' "$0"; exit 2; }

(($# >= 2)) || usage
cmd=$1
dir=$2
shift 2
[ -x "$PG_BIN/postgres" ] || die "no PostgreSQL 15 in $PG_BIN (run scripts/setup.sh --no-build)"

# Absolute path: it goes into unix_socket_directories and the server's cwd differs.
case "$dir" in /*) ;; *) dir="$PWD/$dir" ;; esac
data="$dir/data"
log="$dir/server.log"

# Runs a command as the OS user that owns the cluster, from a directory it can read.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd / && runuser -u postgres -- "$@")
  else
    (cd / && "$@")
  fi
}

running() { [ -f "$data/PG_VERSION" ] && as_pg "$PG_BIN/pg_ctl" status -D "$data" >/dev/null 2>&1; }

port_free() {
  local port=$1
  if command -v ss >/dev/null; then
    [ -z "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]
  else
    # Free when nothing answers on 127.0.0.1:port (the subshell's connect fails).
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 1; fi
  fi
}

random_port() {
  local p
  while :; do
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 40001))
    if port_free "$p"; then echo "$p"; return; fi
  done
}

extra_opts() {
  if [ -n "${PG_EXTRA_OPTS+set}" ]; then
    printf '%s' "$PG_EXTRA_OPTS" >"$dir/extra_opts"
  fi
  cat "$dir/extra_opts" 2>/dev/null || true
}

write_conninfo() {
  echo "host=127.0.0.1 port=$1 user=postgres dbname=postgres" >"$dir/conninfo"
}

# Starts the server on port $1 and waits until it accepts connections.
# Returns 1 when the port turned out to be taken (another start raced us to it).
start_on() {
  local port=$1 opts before out
  opts="-p $port $(extra_opts)"
  before=$(stat -c %s "$log" 2>/dev/null || echo 0)
  if ! out=$(as_pg "$PG_BIN/pg_ctl" start -D "$data" -l "$log" -w -t 120 -o "$opts" 2>&1); then
    # Only this attempt's part of the log counts.
    if tail -c +"$((before + 1))" "$log" 2>/dev/null | grep -q 'could not bind\|could not create any TCP/IP sockets'; then
      return 1
    fi
    echo "$out" >&2
    tail -c +"$((before + 1))" "$log" 2>/dev/null | tail -n 20 >&2 || true
    die "server in $dir did not start (log: $log)"
  fi
  for _ in $(seq 1 120); do
    if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres; then
      echo "$port" >"$dir/port"
      write_conninfo "$port"
      return 0
    fi
    sleep 0.5
  done
  die "server in $dir started but is not ready (log: $log)"
}

do_initdb() {
  # The socket path DIR/.s.PGSQL.NNNNN must fit in sockaddr_un (107 bytes).
  ((${#dir} <= 90)) || die "DIR is too long for a Unix socket path (${#dir} > 90 characters): $dir"
  mkdir -p "$dir"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$dir"
    chmod 0700 "$dir"
    runuser -u postgres -- test -w "$dir" ||
      die "user postgres cannot write $dir (check the permissions of its parent directories)"
  fi
  local locale=C.UTF-8
  locale -a 2>/dev/null | grep -qix 'c.utf-\{0,1\}8' || locale=C
  as_pg "$PG_BIN/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale="$locale" \
    --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  # Settings live in postgresql.conf so that `restart` gets them too. The port is given on
  # the command line (pg_ctl -o -p) and remembered in DIR/port.
  cat >>"$data/postgresql.conf" <<EOF

# --- scripts/pg.sh ---
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
wal_level = logical
max_replication_slots = 64
max_wal_senders = 64
max_connections = 200
shared_buffers = 256MB
log_line_prefix = '%m [%p] %q%u@%d '
EOF
}

case "$cmd" in
  start)
    if running; then
      cat "$dir/conninfo"
      exit 0
    fi
    if [ -f "$data/PG_VERSION" ] && [ -f "$dir/port" ]; then
      start_on "$(cat "$dir/port")" || die "port $(cat "$dir/port") of $dir is taken"
    else
      [ ! -e "$data" ] || die "$data exists but is not a cluster; remove it or pick another DIR"
      do_initdb
      started=0
      for _ in 1 2 3 4 5; do
        if start_on "$(random_port)"; then started=1; break; fi
      done
      ((started)) || die "no free port found for $dir"
    fi
    cat "$dir/conninfo"
    ;;
  restart)
    if [ ! -f "$data/PG_VERSION" ] || [ ! -f "$dir/port" ]; then die "no cluster in $dir (use start)"; fi
    if running; then
      as_pg "$PG_BIN/pg_ctl" stop -D "$data" -m fast -w >/dev/null
    fi
    start_on "$(cat "$dir/port")" || die "port $(cat "$dir/port") of $dir is taken"
    cat "$dir/conninfo"
    ;;
  stop)
    if running; then
      as_pg "$PG_BIN/pg_ctl" stop -D "$data" -m fast -w -t 120 >/dev/null
    fi
    if [ "${KEEP:-0}" != 1 ] && [ -e "$dir" ]; then
      rm -rf "$dir"
    fi
    ;;
  crash)
    running || die "no server running in $dir"
    as_pg "$PG_BIN/pg_ctl" stop -D "$data" -m immediate -w >/dev/null
    ;;
  status)
    running
    ;;
  psql)
    [ -f "$dir/conninfo" ] || die "no conninfo in $dir"
    exec "$PG_BIN/psql" "$(cat "$dir/conninfo")" "$@"
    ;;
  *)
    usage
    ;;
esac
