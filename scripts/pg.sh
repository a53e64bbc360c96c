#!/usr/bin/env bash
# A throwaway PostgreSQL server (15, 16, 17 or 18) for tests and the demo.
#
#   scripts/pg.sh start DIR     initdb DIR/data (trust auth, UTF8) and start it on a free
#                               127.0.0.1 port; writes DIR/conninfo and prints it.
#                               If DIR already holds a cluster, starts it on its old port.
#   scripts/pg.sh stop DIR      fast shutdown, then rm -rf DIR (keep it with KEEP=1)
#   scripts/pg.sh crash DIR     immediate shutdown (no checkpoint: like a server crash)
#   scripts/pg.sh restart DIR   start again on the same port, wait until ready
#   scripts/pg.sh status DIR    exit 0 when running
#   scripts/pg.sh psql DIR ...  psql on the cluster (extra arguments passed on)
#   scripts/pg.sh standby [--sync-slots] PRIMARY_DIR DIR
#                               a hot standby of the running cluster in PRIMARY_DIR, made in
#                               DIR and started (prints its conninfo); streams from the
#                               primary through a physical slot (DIR/primary_slot_name) that
#                               `stop DIR` drops again. Then start/stop/... DIR as any cluster.
#                               With hot_standby_feedback (the default here) it returns once
#                               the primary has the standby's first feedback.
#                               --sync-slots (17+): the standby keeps copies of the primary's
#                               failover slots (sync_replication_slots = on), and the primary
#                               names the standby's physical slot in synchronized_standby_slots
#                               (its logical walsenders send nothing the standby has not
#                               received; `stop DIR` takes it out again)
#   scripts/pg.sh promote DIR   promote a standby, wait until it accepts writes
#
# Environment: PGSEED_PG_VERSION  major version of a new cluster: 15 (default: Debian's) or
#                              16, 17, 18 (installed on demand by scripts/pg-install.sh).
#                              An existing cluster always runs with its own major version.
#              PG_EXTRA_OPTS   extra server options, e.g. "-c wal_level=replica
#                              -c max_wal_senders=0"; remembered for `restart` unless
#                              set again (a standby inherits its primary's). KEEP=1 keeps
#                              DIR on stop.
#              PG_BIN          server binaries (default: those of the version)
#
# initdb and postgres refuse to run as root: as root, the server runs as the `postgres`
# OS user (runuser); as any other user, as that user. The database superuser is always
# `postgres`. Files in DIR: data/ (PGDATA), server.log, conninfo, port, extra_opts;
# the Unix socket is in DIR too. Clients (psql, pg_isready) are Debian's 15 for every
# version: libpq and psql 15 speak to 16-18 servers.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CLIENT_BIN=/usr/lib/postgresql/15/bin

die() { echo "pg.sh: $*" >&2; exit 1; }
usage() { sed -n '2,40s/^# \{0,1\}//p' "$0"; exit 2; }

(($# >= 2)) || usage
cmd=$1
sync_slots=0
if [ "$cmd" = standby ]; then
  if [ "${2:-}" = --sync-slots ]; then sync_slots=1; shift; fi
  (($# == 3)) || usage
  primary=$2
  case "$primary" in /*) ;; *) primary="$PWD/$primary" ;; esac
  shift
fi
dir=$2
shift 2

# Absolute path: it goes into unix_socket_directories and the server's cwd differs.
case "$dir" in /*) ;; *) dir="$PWD/$dir" ;; esac
data="$dir/data"
log="$dir/server.log"

# The major version: an existing cluster's own (data/PG_VERSION), so that restart/crash/stop
# of a cluster made with PGSEED_PG_VERSION=18 work whatever the caller's environment says;
# a standby's is its primary's; else PGSEED_PG_VERSION.
if [ -f "$data/PG_VERSION" ]; then
  major=$(cat "$data/PG_VERSION")
elif [ "$cmd" = standby ] && [ -f "$primary/data/PG_VERSION" ]; then
  major=$(cat "$primary/data/PG_VERSION")
else
  major=${PGSEED_PG_VERSION:-15}
fi

# Sets PG_BIN to the server binaries of $major, installing them when missing. Not done for
# commands that need no server binary (stop of a DIR without a cluster, psql), so that those
# never download anything.
server_bin() {
  if [ -z "${PG_BIN:-}" ]; then
    PG_BIN=$("$here/pg-install.sh" "$major") || die "no PostgreSQL $major server (scripts/pg-install.sh $major failed)"
  fi
  [ -x "$PG_BIN/postgres" ] || die "no PostgreSQL server in $PG_BIN"
}
[ -x "$CLIENT_BIN/psql" ] || die "no PostgreSQL 15 clients in $CLIENT_BIN (run scripts/setup.sh --no-build)"

# Runs a command as the OS user that owns the cluster, from a directory it can read.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd / && runuser -u postgres -- "$@")
  else
    (cd / && "$@")
  fi
}

running() { [ -f "$data/PG_VERSION" ] && server_bin && as_pg "$PG_BIN/pg_ctl" status -D "$data" >/dev/null 2>&1; }

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
    if "$CLIENT_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres; then
      echo "$port" >"$dir/port"
      write_conninfo "$port"
      return 0
    fi
    sleep 0.5
  done
  die "server in $dir started but is not ready (log: $log)"
}

# Creates DIR for a new cluster, owned by the user the server runs as.
make_dir() {
  # The socket path DIR/.s.PGSQL.NNNNN must fit in sockaddr_un (107 bytes).
  ((${#dir} <= 90)) || die "DIR is too long for a Unix socket path (${#dir} > 90 characters): $dir"
  mkdir -p "$dir"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$dir"
    chmod 0700 "$dir"
    runuser -u postgres -- test -w "$dir" ||
      die "user postgres cannot write $dir (check the permissions of its parent directories)"
  fi
}

# Starts a new cluster on a free port (a few tries: another start may take the port first).
start_new() {
  local _
  for _ in 1 2 3 4 5; do
    if start_on "$(random_port)"; then return 0; fi
  done
  die "no free port found for $dir"
}

do_initdb() {
  make_dir
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

# psql (Debian's 15) on a conninfo, unaligned, tuples only, stopping at the first error.
q() { "$CLIENT_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }

# Makes DIR a hot standby of the running cluster in $primary and starts it.
#
# Debian's pg_basebackup 15 refuses 16+ servers, so the base backup is taken with the
# low-level API, the same way for every major: pg_backup_start and pg_backup_stop must run
# in ONE session (the backup is aborted when the session ends), so psql runs as a coprocess
# that stays connected while the data directory is copied. The copy is fuzzy (the primary
# keeps writing); replaying WAL from the backup's start, which the physical slot made first
# retains, makes it consistent. backup_label (from pg_backup_stop) tells the standby where
# that start is.
make_standby() {
  [ -f "$primary/data/PG_VERSION" ] && [ -f "$primary/conninfo" ] || die "no cluster in $primary"
  local pconn pport slot line lsn out=""
  pconn=$(cat "$primary/conninfo")
  pport=$(cat "$primary/port")
  "$CLIENT_BIN/pg_isready" -q -d "$pconn" || die "the primary in $primary is not running"
  [ ! -e "$data" ] || die "$data exists; remove it or pick another DIR"
  ((sync_slots == 0 || major >= 17)) || die "--sync-slots needs PostgreSQL 17 or later (the primary runs $major)"
  make_dir

  # One physical slot per standby DIR (a checksum of its path: a valid, unique slot name),
  # created with WAL reserved at once, so that nothing the standby needs is removed between
  # the backup and the standby's first connection.
  slot="pgseed_standby_$(printf '%s' "$dir" | cksum | cut -d' ' -f1)"
  q "$pconn" -c "SELECT pg_create_physical_replication_slot('$slot', true)
                 WHERE NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = '$slot')" >/dev/null ||
    die "could not create the physical slot $slot on the primary"
  echo "$slot" >"$dir/primary_slot_name"
  echo "$primary" >"$dir/primary_dir"

  coproc BACKUP { exec "$CLIENT_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 "$pconn" 2>&1; }
  # Own copies of the coprocess's pipes and pid: bash drops BACKUP[] and BACKUP_PID as soon
  # as psql exits, and we still read its last output after that.
  local to from backup_pid=$BACKUP_PID
  exec {to}>&"${BACKUP[1]}" {from}<&"${BACKUP[0]}"
  # fast checkpoint (true): the backup starts at once instead of at the next checkpoint.
  printf '%s\n' "SET client_min_messages = warning;" \
    "SELECT pg_backup_start('pgseed standby $slot', true);" >&"$to"
  lsn=
  while read -r line <&"$from"; do
    if [[ $line =~ ^[0-9A-F]+/[0-9A-F]+$ ]]; then lsn=$line; break; fi
    out+="$line "
  done
  [ -n "$lsn" ] || die "pg_backup_start failed on the primary: $out"

  # Everything but pg_wal/* and pg_replslot/* (the standby gets WAL by streaming and must not
  # inherit the primary's slots) and postmaster.pid/opts (they belong to the running primary).
  # tar exits 1 when a file changed while it was read: expected, replay repairs it.
  local st
  as_pg mkdir -m 0700 "$data"
  set +e
  as_pg tar -C "$primary/data" -cf - --exclude='./pg_wal/*' --exclude='./pg_replslot/*' \
    --exclude=./postmaster.pid --exclude=./postmaster.opts --ignore-failed-read \
    --warning=no-file-changed --warning=no-file-removed --warning=no-file-shrank . |
    as_pg tar -C "$data" -xf -
  st=("${PIPESTATUS[@]}")
  set -e
  ((st[0] <= 1 && st[1] == 0)) || die "copying $primary/data failed (tar exit ${st[*]})"

  # pg_backup_stop returns the backup_label (and tablespace_map) contents: they must be
  # written into the copy, not taken from the primary (which has none: non-exclusive mode).
  printf '%s\n' "SELECT * FROM pg_backup_stop(false) \gset" \
    "SELECT :'labelfile' \g '$dir/backup_label.out'" \
    "SELECT :'spcmapfile' \g '$dir/tablespace_map.out'" \
    '\echo backup-stopped' '\q' >&"$to"
  local stopped=0
  while read -r line <&"$from"; do
    if [ "$line" = backup-stopped ]; then stopped=1; break; fi
    out+="$line "
  done
  exec {to}>&- {from}<&-
  wait "$backup_pid" 2>/dev/null || true
  ((stopped)) || die "pg_backup_stop failed on the primary: $out"
  # psql ends each value with a newline of its own: $(...) drops it (and the value's own
  # final newline, put back by printf).
  printf '%s\n' "$(cat "$dir/backup_label.out")" >"$data/backup_label"
  if [ -n "$(cat "$dir/tablespace_map.out")" ]; then
    printf '%s\n' "$(cat "$dir/tablespace_map.out")" >"$data/tablespace_map"
  fi
  rm -f "$dir/backup_label.out" "$dir/tablespace_map.out"
  # The primary's synchronized_standby_slots (ALTER SYSTEM, copied with the data directory)
  # names slots of the primary: a promoted standby has none of them, and its logical
  # walsenders would wait for them for ever.
  as_pg sed -i '/^synchronized_standby_slots/d' "$data/postgresql.auto.conf"
  : >"$data/standby.signal"
  # dbname: PostgreSQL 17's slot synchronisation (sync_replication_slots) needs one.
  # hot_standby_feedback: the primary keeps rows the standby's queries (and logical slots on
  # the standby, 16+) still need. The primary's unix_socket_directories is overridden.
  cat >>"$data/postgresql.conf" <<EOF

# --- scripts/pg.sh standby of $primary ---
unix_socket_directories = '$dir'
primary_conninfo = 'host=127.0.0.1 port=$pport user=postgres dbname=postgres application_name=$slot'
primary_slot_name = '$slot'
hot_standby = on
hot_standby_feedback = on
EOF
  if ((sync_slots)); then
    # PostgreSQL 17's slot synchronisation: a slot worker copies the primary's failover
    # slots (through primary_conninfo's dbname and the physical slot above).
    echo "sync_replication_slots = on" >>"$data/postgresql.conf"
  fi
  chmod 0600 "$data/backup_label" "$data/standby.signal"
  if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$data/backup_label" "$data/standby.signal"; fi
  if [ -f "$data/tablespace_map" ] && [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$data/tablespace_map"; fi
  # Settings such as max_connections must be at least the primary's on a standby.
  if [ -z "${PG_EXTRA_OPTS+set}" ] && [ -f "$primary/extra_opts" ]; then cp "$primary/extra_opts" "$dir/extra_opts"; fi
  start_new
  if ((sync_slots)); then
    # Added to the primary's list: its logical walsenders then wait for this standby to
    # have received the WAL they decode, so that no consumer of a failover slot gets ahead
    # of the standby that would be promoted.
    local list
    list=$(q "$pconn" -c "SHOW synchronized_standby_slots")
    list=${list:+$list,}$slot
    q "$pconn" -c "ALTER SYSTEM SET synchronized_standby_slots = '$list'" -c "SELECT pg_reload_conf()" >/dev/null ||
      die "could not set synchronized_standby_slots on the primary"
  fi
  # With hot_standby_feedback, wait until the primary has the standby's first feedback (its
  # physical slot's xmin is set): before it, the primary vacuums as if the standby did not
  # exist, and a snapshot taken on the standby (a logical slot's, a copy's) may miss rows
  # the primary has already removed. The walreceiver sends feedback every
  # wal_receiver_status_interval, and at once on a configuration reload.
  local sconn
  sconn=$(cat "$dir/conninfo")
  if [ "$(q "$sconn" -c "SHOW hot_standby_feedback")" = on ]; then
    local i
    for ((i = 0; i < 300; i++)); do
      [ "$(q "$pconn" -c "SELECT xmin IS NOT NULL FROM pg_replication_slots WHERE slot_name = '$slot'")" = t ] && return 0
      q "$sconn" -c "SELECT pg_reload_conf()" >/dev/null 2>&1 || true
      sleep 0.2
    done
    die "the primary got no hot_standby_feedback from the standby in $dir within 60 s"
  fi
}

# Takes slot $2 out of synchronized_standby_slots on the primary $1 (a slot that no longer
# exists there would make its logical walsenders wait for ever).
unlist_standby_slot() {
  local pconn=$1 slot=$2 list rest
  list=$(q "$pconn" -c "SHOW synchronized_standby_slots" 2>/dev/null) || return 0
  case ",$list," in *",$slot,"*) ;; *) return 0 ;; esac
  rest=$(printf '%s\n' "$list" | tr ',' '\n' | grep -vx "$slot" | paste -sd, -) || true
  if [ -z "$rest" ]; then
    q "$pconn" -c "ALTER SYSTEM RESET synchronized_standby_slots" -c "SELECT pg_reload_conf()" >/dev/null
  else
    q "$pconn" -c "ALTER SYSTEM SET synchronized_standby_slots = '$rest'" -c "SELECT pg_reload_conf()" >/dev/null
  fi || echo "pg.sh: could not take $slot out of synchronized_standby_slots on the primary" >&2
}

# When DIR is a standby made by `standby`: drops its physical slot on the primary (if that
# still runs), so that the primary does not retain WAL for a standby that is gone.
drop_standby_slot() {
  [ -f "$dir/primary_slot_name" ] && [ -f "$dir/primary_dir" ] || return 0
  local slot pconn
  slot=$(cat "$dir/primary_slot_name")
  pconn=$(cat "$(cat "$dir/primary_dir")/conninfo" 2>/dev/null) || return 0
  "$CLIENT_BIN/pg_isready" -q -d "$pconn" || return 0
  unlist_standby_slot "$pconn" "$slot"
  [ "$(q "$pconn" -c "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$slot'" 2>/dev/null)" = 1 ] || return 0
  # WAIT: the primary's walsender may not have noticed yet that the standby stopped.
  timeout 60 "$CLIENT_BIN/psql" -X -q "$pconn replication=database" \
    -c "DROP_REPLICATION_SLOT $slot WAIT" >/dev/null 2>&1 || echo "pg.sh: could not drop slot $slot on the primary" >&2
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
      server_bin
      do_initdb
      start_new
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
      drop_standby_slot
      rm -rf "$dir"
    fi
    ;;
  standby)
    server_bin
    make_standby
    cat "$dir/conninfo"
    ;;
  promote)
    running || die "no server running in $dir"
    # -w: returns once the server accepts writes (pg_ctl waits for the end of recovery).
    as_pg "$PG_BIN/pg_ctl" promote -D "$data" -w -t 120 >/dev/null
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
    exec "$CLIENT_BIN/psql" "$(cat "$dir/conninfo")" "$@"
    ;;
  *)
    usage
    ;;
esac
