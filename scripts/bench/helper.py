# Helpers of scripts/bench.sh: the latency poller, percentiles, and the summary (table + JSON).
import json, os, sqlite3, statistics, sys, time

def poll(db, stop_file, out):
    """Records when each row of `lat` first becomes visible to a reader of the SQLite file."""
    while not os.path.exists(db):
        time.sleep(0.01)
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    seen, wm, maxid = {}, 0, 0  # wm: every id <= wm has been seen
    while not os.path.exists(stop_file):
        try:
            ids = con.execute("SELECT id FROM lat WHERE id > ?", (wm,)).fetchall()
        except sqlite3.OperationalError:  # table not created yet
            time.sleep(0.01)
            continue
        t = time.time()
        for (i,) in ids:
            if i not in seen:
                seen[i] = t
                maxid = max(maxid, i)
        while wm + 1 in seen:
            wm += 1
        time.sleep(0.001)
    with open(out, "w") as f:
        for i, t in seen.items():
            f.write(f"{i}\t{t:.6f}\n")

def cpusample(out, exe=None):
    """Appends, every 0.1 s until killed: time, busy, idle and iowait jiffies of all CPUs.
    With `exe`, also, every 0.02 s, for every thread of every process running that file
    (looked for every 0.1 s), the nanoseconds it has run on a CPU and waited on a run queue
    for one (/proc/PID/task/TID/schedstat), to OUT.threads: time, pid:tid, on-CPU ns,
    runnable-wait ns (which thread bound a run; the short period keeps the sampled span
    close to a phase of a fraction of a second)."""
    exe = os.path.realpath(exe) if exe else None
    threads = open(out + ".threads", "a", buffering=1) if exe else None
    pids, tick = [], 0
    with open(out, "a", buffering=1) as f:
        while True:
            now = time.time()
            if tick % 5 == 0:
                with open("/proc/stat") as st:
                    v = [int(x) for x in st.readline().split()[1:]]
                # user nice system idle iowait irq softirq steal (guest is inside user)
                idle, iowait = v[3], v[4]
                f.write(f"{now:.3f}\t{sum(v[:8]) - idle - iowait}\t{idle}\t{iowait}\n")
                if threads:
                    pids = []
                    for pid in (d for d in os.listdir("/proc") if d.isdigit()):
                        try:
                            if os.readlink(f"/proc/{pid}/exe") == exe:
                                pids.append(pid)
                        except OSError:  # not ours to read, or gone meanwhile
                            continue
            for pid in pids:
                try:
                    for tid in os.listdir(f"/proc/{pid}/task"):
                        with open(f"/proc/{pid}/task/{tid}/schedstat") as st:
                            on_cpu, waiting = st.read().split()[:2]
                        threads.write(f"{now:.3f}\t{pid}:{tid}\t{on_cpu}\t{waiting}\n")
                except OSError:  # gone meanwhile
                    continue
            tick += 1
            time.sleep(0.02)

def busy(samples, t0, t1):
    """The machine's CPU use between t0 and t1 (epoch s): busy and iowait fractions of all
    CPUs, from the samples nearest outside the window (a window under 0.2 s is widened);
    then, from SAMPLES.threads when there is one, the share of the same samples' span that
    the busiest pgseed thread was on a CPU or waiting for one (nan without thread samples)."""
    t0, t1 = float(t0), float(t1)
    rows = [tuple(float(x) for x in l.split("\t")) for l in open(samples) if l.count("\t") == 3]
    before = [r for r in rows if r[0] <= t0] or rows[:1]
    after = [r for r in rows if r[0] >= t1] or rows[-1:]
    a, b = before[-1], after[0]
    total = sum(b[1:]) - sum(a[1:])
    if total <= 0:
        print("nan nan nan")
        return
    print(f"{(b[1] - a[1]) / total:.3f} {(b[3] - a[3]) / total:.3f} {busiest_thread(samples + '.threads', t0, t1):.3f}")

def busiest_thread(path, t0, t1):
    """The largest share of the phase [t0, t1] that any sampled thread was on a CPU or
    runnable, waiting for one (a thread that wanted a CPU all along bound the run, even when
    the other CPU's work kept it off one): its schedstat at its last sample up to t1 less
    that at its last sample up to t0 (or its first, for a thread that began in the phase),
    over the time between those samples. Nanoseconds, unlike stat's 10 ms ticks, which are
    too coarse for phases of a fraction of a second."""
    if not os.path.exists(path) or t1 <= t0:
        return float("nan")
    start, end = {}, {}
    for l in open(path):
        t, tid, on_cpu, waiting = l.split("\t")
        t, ns = float(t), int(on_cpu) + int(waiting)
        if t <= t0 or tid not in start:
            if t <= t1:
                start[tid] = (t, ns)
        if t <= t1:
            end[tid] = (t, ns)
    shares = [(end[k][1] - start[k][1]) / 1e9 / (end[k][0] - start[k][0])
              for k in start if end[k][0] - start[k][0] >= min(0.05, (t1 - t0) / 2)]
    return max(shares, default=float("nan"))

def latency(seen_file, commits_file):
    seen = dict(l.split("\t") for l in open(seen_file).read().split("\n") if l)
    lat, missing = [], 0
    first = last = None
    for line in open(commits_file):
        i, ct = line.split("\t")
        ct = float(ct)
        first = ct if first is None else min(first, ct)
        last = ct if last is None else max(last, ct)
        if i not in seen:
            missing += 1
            continue
        lat.append((float(seen[i]) - ct) * 1000.0)
    lat.sort()
    def pct(p):
        return lat[min(len(lat) - 1, int(round(p / 100.0 * (len(lat) - 1))))] if lat else float("nan")
    rate = (len(lat) + missing) / (last - first) if last and last > first else 0
    print(f"{pct(50):.3f} {pct(90):.3f} {pct(99):.3f} {lat[-1] if lat else float('nan'):.3f} "
          f"{len(lat)} {missing} {rate:.1f}")

def summarize(tsv, out):
    meta, groups = {}, {}
    for line in open(tsv):
        sec, subj, metric, val = line.rstrip("\n").split("\t")
        if sec == "meta":
            meta[metric] = val
            continue
        groups.setdefault((sec, subj, metric), []).append(float(val))
    def st(sec, subj, metric):
        v = groups.get((sec, subj, metric))
        if not v:
            return None
        return {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v), "values": v}
    def med(sec, subj, metric):
        s = st(sec, subj, metric)
        return s["median"] if s else None
    res = {"meta": meta, "results": {}}
    for (sec, subj, metric) in groups:
        res["results"].setdefault(sec, {}).setdefault(subj, {})[metric] = st(sec, subj, metric)

    ratios, targets = {}, []
    def ratio(a, b):
        return a / b if a and b else None
    raw = med("copy", "raw_copy", "rows_per_s")
    for s, goal in (("pgseed_sqlite", 0.75), ("pgseed_rocksdb", 0.9)):
        r = ratio(med("copy", s, "rows_per_s"), raw)
        ratios[f"copy_{s}_vs_raw"] = r
        ratios[f"copy_{s}_whole_command_vs_raw"] = ratio(med("copy", s, "rows_per_s_whole_command"), raw)
        if r is not None:
            targets.append({"target": f"copy into {s[7:]} >= {goal} x raw COPY", "value": round(r, 3),
                            "met": r >= goal})
        pc = med("copy", "pgcopydb", "rows_per_s")
        mine = med("copy", s, "rows_per_s")
        if pc and mine:
            ratios[f"copy_{s}_vs_pgcopydb"] = mine / pc
            targets.append({"target": f"copy into {s[7:]} ahead of pgcopydb", "value": round(mine / pc, 3),
                            "met": mine > pc})
    recv = med("stream", "pg_recvlogical", "changes_per_s")
    for s in ("pgseed_sqlite", "pgseed_rocksdb"):
        r = ratio(med("stream", s, "changes_per_s"), recv)
        ratios[f"stream_{s}_vs_recvlogical"] = r
        ratios[f"stream_{s}_whole_command_vs_recvlogical"] = ratio(med("stream", s, "changes_per_s_whole_command"), recv)
        if r is not None:
            targets.append({"target": f"stream apply into {s[7:]} >= 0.9 x pg_recvlogical", "value": round(r, 3),
                            "met": r >= 0.9})
    rss = [(k, max(v)) for k, v in groups.items() if k[2] == "rss_mb" and k[1].startswith("pgseed")]
    if rss:
        worst = max(rss, key=lambda x: x[1])
        res["peak_rss_mb_max"] = {"value": worst[1], "run": f"{worst[0][0]}/{worst[0][1]}"}
        targets.append({"target": "peak RSS < 100 MB in every run", "value": worst[1],
                        "worst_run": f"{worst[0][0]}/{worst[0][1]}", "met": worst[1] < 100})
    for kind in ("sqlite", "rocksdb"):
        m = med("migrations", f"pgseed_{kind}", "txn_per_s")
        if m is not None:
            targets.append({"target": f"migration-heavy catch-up into {kind} >= 500 txn/s", "value": m, "met": m >= 500})
    p99 = med("latency", "pgseed_sqlite_follow", "p99_ms")
    if p99 is not None:
        targets.append({"target": "--follow lag p99 < 100 ms at ~1k txn/s", "value": p99, "met": p99 < 100})
    # --busy-cpu: one CPU is another process's; the CPU-bound reasons count the others.
    busy_cpus = 1 if meta.get("busy_cpu") else 0
    matrix_rows = matrix(groups, med, ratios, targets, int(meta.get("cpus", 0) or 0) - busy_cpus, busy_cpus)
    res["matrix"] = matrix_rows
    res["ratios"] = ratios
    res["targets"] = targets
    with open(out, "w") as f:
        json.dump(res, f, indent=2)
        f.write("\n")

    # The short table.
    def fmt(x, unit=""):
        if x is None:
            return "-"
        if abs(x) >= 1000:
            return f"{x:,.0f}{unit}"
        return f"{x:.3g}{unit}" if abs(x) < 10 else f"{x:.1f}{unit}"
    def line(label, sec, subj, metric, extra=""):
        s = st(sec, subj, metric)
        if not s:
            return
        print(f"  {label:<38} {fmt(s['median']):>12}  [{fmt(s['min'])} .. {fmt(s['max'])}]{extra}")
    print(f"pgseed benchmark: {meta.get('rows')} rows, repeat {meta.get('repeat')}, "
          f"{meta.get('cpus')} CPUs ({meta.get('cpu_model')}), {meta.get('pg_version')}, "
          f"load average {meta.get('loadavg_start')} at start, {meta.get('loadavg_end')} at end")
    if any(k[0] == "copy" for k in groups):
        print(f"copy ({meta.get('copy_rows')} rows, {float(meta.get('copy_mb', 0)):.0f} MB COPY text)  median [min .. max]")
        line("raw COPY rows/s", "copy", "raw_copy", "rows_per_s")
        line("raw COPY MB/s", "copy", "raw_copy", "mb_per_s")
        for s in ("pgseed_sqlite", "pgseed_rocksdb"):
            r = ratios.get(f"copy_{s}_vs_raw")
            line(f"{s} copy phase rows/s", "copy", s, "rows_per_s", f"  = {r:.2f} x raw" if r else "")
            line(f"{s} copy phase MB/s", "copy", s, "mb_per_s")
            line(f"{s} whole command s", "copy", s, "wall_s")
            line(f"{s} peak RSS MB", "copy", s, "rss_mb")
            line(f"{s} CPU s (user+sys)", "copy", s, "cpu_s")
        line("pgcopydb copy table-data rows/s", "copy", "pgcopydb", "rows_per_s",
             f"  = {ratio(med('copy', 'pgcopydb', 'rows_per_s'), raw):.2f} x raw" if raw and med('copy', 'pgcopydb', 'rows_per_s') else "")
        if meta.get("pgcopydb") == "missing":
            print("  pgcopydb: not installed, skipped")
    if any(k[0] == "stream" for k in groups):
        print(f"stream ({meta.get('stream_changes')} changes/run in {meta.get('stream_txns')} transactions)")
        line("pg_recvlogical changes/s", "stream", "pg_recvlogical", "changes_per_s")
        line("pg_recvlogical CPU s (user+sys)", "stream", "pg_recvlogical", "cpu_s")
        for s in ("pgseed_sqlite", "pgseed_rocksdb"):
            r = ratios.get(f"stream_{s}_vs_recvlogical")
            line(f"{s} apply changes/s", "stream", s, "changes_per_s", f"  = {r:.2f} x recvlogical" if r else "")
            line(f"{s} whole command changes/s", "stream", s, "changes_per_s_whole_command")
            line(f"{s} peak RSS MB", "stream", s, "rss_mb")
            line(f"{s} CPU s (user+sys)", "stream", s, "cpu_s")
    if any(k[0] == "memory" for k in groups):
        print("memory")
        for (sec, subj, metric) in sorted(groups):
            if sec == "memory" and metric in ("rss_mb", "rows_per_s", "changes_per_s", "cpu_s"):
                line(f"{subj} {metric}", sec, subj, metric)
    if any(k[0] == "migrations" for k in groups):
        print(f"migrations (catch-up of {meta.get('migration_txns')} create/insert/drop transactions, "
              f"{meta.get('migration_tables')} published tables)")
        for s in ("pgseed_sqlite", "pgseed_rocksdb"):
            line(f"{s} transactions/s", "migrations", s, "txn_per_s")
    if any(k[0] == "latency" for k in groups):
        print("latency (--follow, SQLite, commit on source -> visible to a reader)")
        for m in ("p50_ms", "p90_ms", "p99_ms", "max_ms", "txn_per_s", "rss_mb", "cpu_s"):
            line(m, "latency", "pgseed_sqlite_follow", m)
    if matrix_rows:
        print_matrix(matrix_rows, meta)
    print("targets")
    for t in targets:
        print(f"  {'MET    ' if t['met'] else 'NOT MET'} {t['target']}: {t['value']}"
              + (f" ({t['reason'].split(':')[0]})" if t.get("reason") else ""))

def matrix(groups, med, ratios, targets, cpus, busy_cpus=0):
    """The workload matrix (issue 16): one row per case and runner, medians, and the ratio
    of each store's rows/s to the limit's (raw COPY / pg_recvlogical) of the same run."""
    cases = []
    for (sec, subj, metric) in groups:
        if sec == "matrix" and "/" in subj and subj.split("/")[0] not in cases:
            cases.append(subj.split("/")[0])
    order = ["copy_narrow", "copy_wide", "copy_numts", "copy_toast", "copy_many", "stream_insert",
             "stream_update", "stream_delete", "stream_onerow", "stream_bigtxn", "stream_keyless",
             "stream_migrations", "format_copy_narrow", "format_copy_wide", "format_copy_numts",
             "format_copy_toast", "format_stream"]
    cases.sort(key=lambda c: order.index(c) if c in order else len(order))
    rows = []
    for c in cases:
        # A format case compares binary with text (the source's CPU); the others pgseed
        # with the limit.
        runners = ("text", "binary") if c.startswith("format_") else ("limit", "sqlite", "rocksdb")
        base = runners[0]
        lim = med("matrix", f"{c}/{base}", "rows_per_s")
        lim_src = med("matrix", f"{c}/{base}", "src_cpu_s_per_mrow")
        for who in runners:
            subj = f"{c}/{who}"
            rps = med("matrix", subj, "rows_per_s")
            if rps is None:
                continue
            row = {"case": c, "runner": who, "rows_per_s": rps,
                   "rows_per_s_whole_command": med("matrix", subj, "rows_per_s_whole_command"),
                   "ratio_to_limit": rps / lim if lim and who != base else None,
                   "cpu_s": med("matrix", subj, "cpu_s"), "rss_mb": med("matrix", subj, "rss_mb"),
                   "src_cpu_s": med("matrix", subj, "src_cpu_s"),
                   "src_cpu_s_per_mrow": med("matrix", subj, "src_cpu_s_per_mrow"),
                   "cpu_s_per_mrow": med("matrix", subj, "cpu_s_per_mrow"),
                   "machine_busy": med("matrix", subj, "machine_busy"),
                   "machine_iowait": med("matrix", subj, "machine_iowait"),
                   "busiest_thread": med("matrix", subj, "busiest_thread"),
                   "rows_s": med("matrix", subj, "rows_s"), "rows": med("matrix", subj, "rows"),
                   "n": len(groups.get(("matrix", subj, "rows_per_s"), []))}
            s = row["src_cpu_s_per_mrow"]
            row["src_cpu_ratio_to_limit"] = s / lim_src if s is not None and lim_src and who != base else None
            rows.append(row)
            if who == base or base != "limit":
                continue
            r = row["ratio_to_limit"]
            ratios[f"matrix_{c}_{who}_vs_limit"] = r
            goal = goal_of(c)
            if r is not None:
                t = {"target": f"{c} into {who} >= {goal} x limit", "value": round(r, 3), "met": r >= goal}
                if not t["met"]:
                    t["reason"] = row["reason"] = why_slower(row, next(x for x in rows if x["case"] == c and x["runner"] == base), cpus, goal, busy_cpus)
                targets.append(t)
            if row["rss_mb"] is not None and row["rss_mb"] >= 100:
                targets.append({"target": f"{c} into {who}: peak RSS < 100 MB", "value": row["rss_mb"], "met": False})
    return rows

def pct(x, missing="–"):
    """A fraction as a percentage; `missing` for none or NaN."""
    return f"{x:.0%}" if x is not None and x == x else missing

def goal_of(case):
    """Issue 16's target for a case, as a ratio to its limit: copy 0.9, stream 1.0."""
    return 0.9 if case.startswith("copy") else 1.0

def why_slower(row, lim, cpus, goal, busy_cpus=0):
    """The measured reason a pgseed run fell short of its limit (ratio below `goal`).
    CPU cost: pgseed's CPU and the source's per row (whole commands: everything the run
    cost) bound its rate on the machine's `cpus` CPUs at cpus / cost, even if the work
    spread perfectly over them; when that bound is below the goal, or the CPUs were
    saturated during the timed phase, the cost is the reason. Otherwise: disk waits
    (iowait); one thread (pgseed's busiest thread was on a CPU or waiting for one most of the
    time: the run was bound by
    it); or waits of another kind (commits, round trips)."""
    busy, iow = row.get("machine_busy"), row.get("machine_iowait")
    if busy is None or busy != busy:
        return "no CPU samples"
    def cost(r):
        a, b = r.get("cpu_s_per_mrow"), r.get("src_cpu_s_per_mrow")
        return (a, b, a + b) if a is not None and b is not None else None
    mine, theirs = cost(row), cost(lim)
    costs, bound = "", None
    if mine and theirs and theirs[2] > 0:
        costs = (f"CPU-s per M rows: pgseed {mine[0]:.3g} + source {mine[1]:.3g} = {mine[2]:.3g}, "
                 f"limit's client {theirs[0]:.3g} + source {theirs[1]:.3g} = {theirs[2]:.3g} "
                 f"({mine[2] / theirs[2]:.1f}x)")
    if mine and mine[2] > 0 and cpus and lim.get("rows_per_s"):
        bound = cpus * 1e6 / mine[2] / lim["rows_per_s"]
    at_most = (f"at these costs {cpus} CPU{'s allow' if cpus > 1 else ' allows'} at most {bound:.2f}x the limit"
               if bound is not None else "")
    if bound is not None and busy_cpus:  # one CPU is another process's, whose share the scheduler decides
        at_most += f" ({cpus + busy_cpus} CPUs: {bound * (cpus + busy_cpus) / cpus:.2f}x; the run shared them with the busy process)"
    if (bound is not None and bound < goal) or busy >= 0.85:
        return f"CPU cost: {at_most} (CPUs {busy:.0%} busy during the phase); {costs}"
    if iow >= 0.15:
        return f"disk: {iow:.0%} of CPU time waiting on I/O during the phase (busy {busy:.0%}); {at_most}; {costs}"
    one = row.get("busiest_thread")
    sampled = one is not None and one == one
    if sampled and one >= 0.85:
        return (f"one thread: pgseed's busiest thread was on a CPU or waiting for one {one:.0%} of the phase, while the "
                f"CPUs were {busy:.0%} busy (iowait {iow:.0%}): the run waited on that thread, not on the "
                f"machine; {at_most}; {costs}")
    threads = (f" and no pgseed thread was on a CPU or waiting for one more than {one:.0%} of the phase"
               if sampled else "")
    # A copy's phase less the rows' own time (its copy summary): connections, catalog, the
    # store's set-up and final commit, which no CPU figure shows.
    outside = ""
    rows_s, rps, n = row.get("rows_s"), row.get("rows_per_s"), row.get("rows")
    if rows_s and rps and n:
        phase = n / rps
        outside = (f"; of the phase's {phase:.3f} s, {max(phase - rows_s, 0):.3f} s "
                   f"({max(phase - rows_s, 0) / phase:.0%}) were outside the rows' copy (connections, "
                   f"catalog, the store's set-up and final commit), and the rows alone ran at "
                   f"{n / rows_s / lim['rows_per_s']:.2f}x the limit" if lim.get('rows_per_s') else "")
    return (f"waits: {at_most}, yet the CPUs were only {busy:.0%} busy (iowait {iow:.0%}){threads}: pgseed "
            f"or the server waited (commits, round trips{'' if sampled else ', one busy thread'}){outside}; {costs}")

def print_matrix(rows, meta):
    def f(x, nd=2):
        if x is None:
            return "-"
        return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.{nd}f}"
    print("matrix (medians; limit = raw COPY TO STDOUT / pg_recvlogical of the same rows, same run;"
          " format_*: binary against text)")
    print(f"  {'case':<18} {'runner':<8} {'rows/s':>10} {'x limit':>8} {'CPU s':>7} "
          f"{'src CPU s/Mrow':>14} {'src x lim':>9} {'RSS MB':>7} {'busy':>5} {'thread':>6}")
    for r in rows:
        print(f"  {r['case']:<18} {r['runner']:<8} {f(r['rows_per_s']):>10} {f(r['ratio_to_limit']):>8} "
              f"{f(r['cpu_s']):>7} {f(r['src_cpu_s_per_mrow']):>14} {f(r['src_cpu_ratio_to_limit']):>9} "
              f"{f(r['rss_mb'], 1):>7} {pct(r.get('machine_busy'), '-'):>5} {pct(r.get('busiest_thread'), '-'):>6}")
    print("  (busy: the machine's CPUs busy during the timed phase, /proc/stat; thread: the share of the phase")
    print("   pgseed's busiest thread was on a CPU or waiting for one, /proc/PID/task/TID/schedstat)")
    for r in rows:
        if r.get("reason"):
            print(f"  why {r['case']} into {r['runner']} is below its target: {r['reason']}")
    for k in sorted(meta):
        if k.startswith("case_"):
            print(f"  {k[5:]}: {meta[k]}")

def markdown(results_json):
    """The matrix of a results file (--out) as a Markdown table, with the reasons, for
    BENCHMARKS.md: python3 scripts/bench/helper.py markdown bench-results.json"""
    res = json.load(open(results_json))
    meta = res.get("meta", {})
    busy_cpus = 1 if meta.get("busy_cpu") else 0
    cpus = int(meta.get("cpus", 0) or 0) - busy_cpus
    rows = res.get("matrix", [])
    for r in rows:  # the reasons by the current rule, also for files written before it
        goal = goal_of(r["case"])
        if r["runner"] in ("sqlite", "rocksdb") and r.get("ratio_to_limit") is not None:
            lim = next(x for x in rows if x["case"] == r["case"] and x["runner"] == "limit")
            r["reason"] = why_slower(r, lim, cpus, goal, busy_cpus) if r["ratio_to_limit"] < goal else None
    def f(x, nd=2):
        if x is None or x != x:
            return "–"
        return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.{nd}f}"
    print("| case | runner | rows/s | × limit | CPU-s | source CPU-s / M rows (× limit's) | peak RSS MB | CPUs busy | busiest pgseed thread |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = r.get("ratio_to_limit")
        src = f(r.get("src_cpu_s_per_mrow")) + (f" ({f(r['src_cpu_ratio_to_limit'])})" if r.get("src_cpu_ratio_to_limit") else "")
        print(f"| {r['case']} | {r['runner']} | {f(r['rows_per_s'])} | {('**' + f(ratio) + '**') if ratio else '–'} | "
              f"{f(r.get('cpu_s'))} | {src} | {f(r.get('rss_mb'), 1)} | {pct(r.get('machine_busy'))} | {pct(r.get('busiest_thread'))} |")
    print()
    for r in rows:
        if r.get("reason"):
            print(f"- {r['case']} into {r['runner']}: {r['reason']}")

if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "poll":
        poll(*sys.argv[2:5])
    elif cmd == "latency":
        latency(*sys.argv[2:4])
    elif cmd == "cpusample":
        cpusample(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
    elif cmd == "busy":
        busy(*sys.argv[2:5])
    elif cmd == "markdown":
        markdown(sys.argv[2])
    elif cmd == "summarize":
        summarize(*sys.argv[2:4])
