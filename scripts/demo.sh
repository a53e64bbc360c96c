#!/usr/bin/env bash
# The pgseed demo: a throwaway PostgreSQL with a sample shop database, a SQLite replica of
# it made by `pgseed sync`, a few changes on the source and an incremental re-sync.
#
#   scripts/demo.sh [--no-build]
#
# Everything lives in /tmp/pgseed-demo (PGSEED_DEMO_DIR): pg/ is the server (left running
# at the end), replica.db the store. A second run starts over from scratch.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD

demo=${PGSEED_DEMO_DIR:-/tmp/pgseed-demo}
pgdir=$demo/pg
store=$demo/replica.db
pgseed=${PGSEED_BIN:-$repo/build/pgseed}

if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
show() { printf '$ %s\n' "$*"; }  # the command a user would type
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }

step "Setup (scripts/setup.sh $*)"
scripts/setup.sh "$@"

step "Throwaway PostgreSQL 15 in $pgdir"
scripts/pg.sh stop "$pgdir"  # a previous demo's server, if any
rm -f "$store" "$store-wal" "$store-shm" "$store-journal"
mkdir -p "$demo"
source=$(scripts/pg.sh start "$pgdir")
echo "source: $source"

psql_src() { psql -X -q -v ON_ERROR_STOP=1 "$source" "$@"; }

step "Loading scripts/sample_schema.sql (about 570k rows)"
t0=$(now)
psql_src -f scripts/sample_schema.sql
echo "loaded in $(since "$t0")"
show "CREATE PUBLICATION demo FOR ALL TABLES"
psql_src -c "CREATE PUBLICATION demo FOR ALL TABLES"
psql_src -c "SELECT schemaname || '.' || tablename AS published_table FROM pg_publication_tables
             WHERE pubname = 'demo' ORDER BY 1"

step "Initial sync: slot + exported snapshot, parallel COPY, then stream to the present"
show "pgseed sync --source '$source' --store $store --publication demo"
t0=$(now)
"$pgseed" sync --source "$source" --store "$store" --publication demo
echo "initial sync took $(since "$t0")"
ls -lh "$store"

# sq [sqlite3 options] SQL: runs SQL on the replica.
sq() { sqlite3 -bail "${@:1:$#-1}" "$store" "${@: -1}"; }
sql_literal() { local s=${1//\'/\'\'}; printf "'%s'" "$s"; }
sql_ident() { local s=${1//\"/\"\"}; printf '"%s"' "$s"; }
# The SQLite name of a source table, from pgseed's table catalog (_pgseed_tables; public
# tables keep their bare name, others are "schema.table").
sq_table() {
  local name
  name=$(sq "SELECT sqlite_name FROM _pgseed_tables
             WHERE schema_name = $(sql_literal "$1") AND table_name = $(sql_literal "$2")" 2>/dev/null) ||
    name=$(sq "SELECT name FROM sqlite_master WHERE type = 'table'
               AND name IN ($(sql_literal "$1.$2"), $(sql_literal "$2")) ORDER BY length(name) DESC LIMIT 1")
  [ -n "$name" ] || { echo "demo.sh: no SQLite table for $1.$2 in $store" >&2; return 1; }
  sql_ident "$name"
}

step "The replica is a plain SQLite file"
show "sqlite3 $store .tables"
sq .tables
customers=$(sq_table public customers)
orders=$(sq_table public orders)
items=$(sq_table public order_items)
products=$(sq_table public products)
views=$(sq_table analytics "Page Views")
daily=$(sq_table analytics daily_totals)
zoo=$(sq_table public type_zoo)

count_all() {
  local t
  for t in "$customers" "$products" "$orders" "$items" "$views" "$daily" "$zoo"; do
    printf '  %-32s %8s rows\n' "$t" "$(sq "SELECT count(*) FROM $t")"
  done
}
count_all

top5_sql="SELECT c.name, count(*) AS orders, printf('%.2f', sum(o.total)) AS total
FROM $orders o JOIN $customers c ON c.id = o.customer_id
WHERE o.status <> 'cancelled'
GROUP BY c.id, c.name ORDER BY sum(o.total) DESC, c.id LIMIT 5;"
echo
echo "Top 5 customers by order total, in SQLite:"
show "sqlite3 -header -column $store \"$top5_sql\""
sq -header -column "$top5_sql"
echo "... and the same on the source:"
psql_src -c "SELECT c.name, count(*) AS orders, sum(o.total) AS total
             FROM orders o JOIN customers c ON c.id = o.customer_id
             WHERE o.status <> 'cancelled'
             GROUP BY c.id, c.name ORDER BY sum(o.total) DESC, c.id LIMIT 5"

step "Changes on the source"
changes="
BEGIN;
INSERT INTO customers (id, name, email, country, created_at, credit_limit)
  VALUES (20001, 'New Customer', 'new@example.com', 'DE', now(), 1000);
INSERT INTO orders (id, customer_id, status, ordered_at, total)
  VALUES (200001, 20001, 'paid', now(), 2500000.00);
INSERT INTO order_items VALUES (200001, 1, 42, 10, 250000.00);
COMMIT;
UPDATE orders SET status = 'shipped', note = 'left the warehouse' WHERE id BETWEEN 1001 AND 1100 AND status = 'paid';
UPDATE products SET price = price * 1.10 WHERE id <= 10;
UPDATE analytics.\"Page Views\" SET \"durationMs\" = NULL WHERE id = 7;
DELETE FROM orders WHERE id IN (2, 3, 4);  -- their order_items go too (ON DELETE CASCADE)
DELETE FROM analytics.daily_totals WHERE country = 'SE';
"
echo "$changes" | sed '/^$/d'
psql_src -c "$changes"

step "Incremental sync: resumes from the stored LSN, applies only the changes"
show "pgseed sync --source '$source' --store $store --publication demo"
t0=$(now)
"$pgseed" sync --source "$source" --store "$store" --publication demo
echo "incremental sync took $(since "$t0")"
count_all
echo
show "sqlite3 $store 'SELECT id, status, total FROM $orders WHERE id IN (1, 2, 1003, 200001) ORDER BY id'"
sq -header -column "SELECT id, status, total FROM $orders WHERE id IN (1, 2, 1003, 200001) ORDER BY id"
echo
echo "Top 5 again (the new customer's big order shows up):"
sq -header -column "$top5_sql"

step "pgseed dump: rows in PostgreSQL's text form"
show "pgseed dump --store $store --table public.orders --format csv | head -3"
"$pgseed" dump --store "$store" --table public.orders --format csv | head -3 || true
show "psql -c \"COPY (SELECT * FROM orders ORDER BY id) TO STDOUT (FORMAT csv)\" | head -3"
psql_src -c "COPY (SELECT * FROM orders ORDER BY id) TO STDOUT (FORMAT csv)" | head -3 || true

step "Done"
cat <<EOF
The source is still running:   psql "$source"
The replica:                   sqlite3 $store
Sync again after changes:      $pgseed sync --source "$source" --store $store --publication demo
Stop the server (removes it):  scripts/pg.sh stop $pgdir
EOF
