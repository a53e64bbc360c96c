#!/usr/bin/env bash
# Prints which top-level source folder includes which (project headers only), one edge a
# line, e.g. `src/pg -> src/model (3)`: 3 #include lines in files under src/pg/ name a header
# under src/model/. Subfolders count as their top folder (src/store/rocksdb is src/store);
# includes within one folder are left out. Usage: scripts/include-graph.sh [REPO_ROOT]
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"
grep -rEo --include='*.h' --include='*.cpp' '^#include ["<][a-z_]+/[^">]+[">]' src include |
  sed -E 's#^([a-z]+/[a-z_]+)/[^:]*:\#include ["<]([a-z_]+)/.*$#\1 \2#' |
  while read -r from to; do
    case "$to" in pgseed) to=include/pgseed ;; *) to=src/$to ;; esac
    [ -d "$to" ] && [ "$from" != "$to" ] && echo "$from -> $to"
  done | sort | uniq -c | awk '{print $2, $3, $4, "(" $1 ")"}'
