#!/usr/bin/env bash
# Installs what pgseed needs on Debian 12 and builds it into build/.
#
#   scripts/setup.sh              install missing packages, configure, build
#   scripts/setup.sh --no-build   install missing packages only
#
# Idempotent: packages already installed are not asked for again (dpkg-query), so a
# second run costs only the incremental build. Installing needs root.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

build=1
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    -h|--help) sed -n '2,8s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

say() { printf 'setup: %s\n' "$*"; }

# Required packages. clang + libclang-rt-14-dev: the libFuzzer targets.
# iproute2: `ss`, used by scripts/pg.sh to find a free port.
# nats-server + libnats-dev: the fan-out through NATS JetStream (src/nats; the tests start
# their own nats-server).
# libsystemd-dev: sd_notify for the systemd unit; help2man: the man page (the build
# works without either: no notifications, no man page).
required=(
  build-essential cmake pkg-config
  libpq-dev libsqlite3-dev sqlite3 librocksdb-dev libcli11-dev
  libnats-dev nats-server
  libsystemd-dev help2man
  libgtest-dev googletest
  postgresql-15 postgresql-client-15
  clang libclang-rt-14-dev
  time iproute2 locales
)
# Optional: the peer the benchmarks compare against.
optional=(pgcopydb)

installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }

missing=()
for p in "${required[@]}"; do installed "$p" || missing+=("$p"); done
missing_opt=()
for p in "${optional[@]}"; do installed "$p" || missing_opt+=("$p"); done

apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

if ((${#missing[@]} > 0)) || ((${#missing_opt[@]} > 0)); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: packages missing (${missing[*]} ${missing_opt[*]}); run as root to install them" >&2
    ((${#missing[@]} == 0)) || exit 1
  fi
fi

if ((${#missing[@]} > 0)); then
  # The postgresql-15 package would create and start a "main" cluster on port 5432.
  # We only ever run throwaway clusters (scripts/pg.sh), so tell postgresql-common not to
  # (its createcluster.conf includes this directory).
  mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/pgseed.conf

  say "installing: ${missing[*]}"
  apt-get update -q >/dev/null
  apt_install "${missing[@]}" >/dev/null
  updated=1
else
  say "required packages already installed"
fi

if ((${#missing_opt[@]} > 0)) && [ "$(id -u)" -eq 0 ]; then
  # Only ask the network when the package lists are fresh anyway or name the package:
  # on a mirror without pgcopydb, repeated runs must not run apt-get update each time.
  if [ -n "${updated:-}" ] || apt-cache show "${missing_opt[@]}" >/dev/null 2>&1; then
    if apt_install "${missing_opt[@]}" >/dev/null 2>&1; then
      say "installed: ${missing_opt[*]}"
    else
      say "optional packages unavailable, skipped: ${missing_opt[*]}"
    fi
  else
    say "optional packages unavailable, skipped: ${missing_opt[*]}"
  fi
fi

# The German locale a test's server answers in (lc_messages): pgseed must classify the
# server's errors by SQLSTATE, never by their text. Made once; without it that test skips.
if [ "$(id -u)" -eq 0 ] && ! locale -a 2>/dev/null | grep -qix 'de_DE\.utf-\{0,1\}8'; then
  if localedef -i de_DE -f UTF-8 de_DE.UTF-8 >/dev/null 2>&1; then
    say "made locale de_DE.UTF-8"
  else
    say "could not make locale de_DE.UTF-8 (the translated-server test will skip)"
  fi
fi

# A cluster that an earlier install created and started is of no use to us: stop it so it
# holds no port and no memory. (Its data stays; `pg_dropcluster` removes it.)
if command -v pg_lsclusters >/dev/null && [ "$(id -u)" -eq 0 ]; then
  pg_lsclusters -h 2>/dev/null | while read -r ver name _port status _rest; do
    if [ "$status" = online ]; then
      say "stopping Debian cluster $ver/$name (not needed)"
      pg_ctlcluster "$ver" "$name" stop || true
    fi
  done
fi

if ((build == 0)); then
  say "build skipped (--no-build)"
  exit 0
fi

say "configuring build/ (RelWithDebInfo)"
log=$(mktemp)
if ! cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$log" 2>&1; then
  cat "$log" >&2
  rm -f "$log"
  echo "setup.sh: cmake configure failed" >&2
  exit 1
fi
rm -f "$log"

say "building (cmake --build build -j2)"
cmake --build build -j2
say "build done (build/pgseed, build/tests/)"
