#!/usr/bin/env bash
# Installs pgseed from BUILD_DIR into a temporary prefix, then builds and runs a consumer
# project against it with find_package(pgseed).
set -euo pipefail
build_dir=$1
src_dir=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build_dir" --prefix "$tmp/prefix" >/dev/null
cmake -S "$src_dir/consumer" -B "$tmp/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/build" -j2 >/dev/null
"$tmp/build/consumer"
test -x "$tmp/prefix/bin/pgseed"
# The systemd unit, pointing at the installed binary; the man page when help2man made it.
grep -q "^ExecStart=.*/bin/pgseed sync --follow" "$tmp/prefix/lib/systemd/system/pgseed@.service"
if [ -f "$build_dir/pgseed.1" ]; then
  test -f "$tmp/prefix/share/man/man1/pgseed.1"
fi
echo "install test: ok"
