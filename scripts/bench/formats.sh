# The source's CPU per row for text vs binary transfer formats (issue 16, "lower the
# source's cost"), sourced by scripts/bench.sh after scripts/bench/matrix.sh (its data
# generators and src_ticks). Measures the server only, with PostgreSQL's own clients:
#   copy    `COPY t TO STDOUT` vs `COPY t TO STDOUT (FORMAT binary)` of the copy cases'
#           tables (psql, output to /dev/null), interleaved, $repeat times
#   stream  the same WAL range (1000-row insert transactions and random-key updates) drained
#           by two pg_recvlogical slots created at the same point, pgoutput proto 1 with
#           binary 'false' and binary 'true' (the walsender's output functions: text vs send)
# Records matrix rows "format_copy_CASE/text|binary" and "format_stream/text|binary".

formats() {
  local c t n r fmt t0 t1 tables endpos
  for c in narrow wide numts toast; do
    "mc_$c" >"$work/mc-tables"
    mapfile -t tables <"$work/mc-tables"
    q "$SRC" -c "VACUUM (FREEZE, ANALYZE)"
    n=$(qv "$SRC" -c "SELECT count(*) FROM ${tables[0]}")
    qv "$SRC" -c "COPY ${tables[0]} TO STDOUT" >/dev/null   # warm the cache
    for ((r = 1; r <= repeat; r++)); do
      say "formats copy $c $r/$repeat"
      for fmt in text binary; do
        local opt=""
        [ $fmt = binary ] && opt=" (FORMAT binary)"
        t0=$(src_ticks)
        timed psql -X -q -A -t -v ON_ERROR_STOP=1 "$SRC" -c "COPY ${tables[0]} TO STDOUT$opt" >/dev/null
        t1=$(src_ticks)
        mx_record "format_copy_$c" "$fmt" "$n" "$t0" "$t1"
      done
    done
    q "$SRC" -c "DROP TABLE ${tables[*]}"
  done

  ms_setup_formats
  for ((r = 1; r <= repeat; r++)); do
    qv "$SRC" -c "SELECT pg_create_logical_replication_slot('fmt_text', 'pgoutput')" \
      -c "SELECT pg_create_logical_replication_slot('fmt_binary', 'pgoutput')" >/dev/null
    wl_insert; local ni=$N
    wl_update; N=$((N + ni))
    endpos=$(qv "$SRC" -c "SELECT pg_current_wal_insert_lsn()")
    wait_flushed "$endpos"
    say "formats stream $r/$repeat: $N changes"
    for fmt in text binary; do
      local b=false
      [ $fmt = binary ] && b=true
      t0=$(src_ticks)
      timed pg_recvlogical -d "$SRC" --slot "fmt_$fmt" --start -o proto_version=1 \
        -o publication_names=fmt_pub -o binary=$b --endpos="$endpos" -f /dev/null
      t1=$(src_ticks)
      mx_record format_stream "$fmt" "$N" "$t0" "$t1"
      drop_slot "$SRC" "fmt_$fmt"
    done
  done
}

# The stream cases' insert and update tables, published alone.
ms_setup_formats() {
  q "$SRC" -c "CREATE TABLE ms_ins (id bigint PRIMARY KEY, at timestamptz NOT NULL, v int, t text)" \
    -c "CREATE TABLE ms_upd (id bigint PRIMARY KEY, v int NOT NULL, at timestamptz, pad text)" \
    -c "INSERT INTO ms_upd SELECT g, g % 1000, now(), md5(g::text) FROM generate_series(1, $rows) g" \
    -c "CREATE PUBLICATION fmt_pub FOR TABLE ms_ins, ms_upd"
  ms_procedures
}
