#!/usr/bin/python3
"""Turn a bench/run.sh run (results/*.json) into bench/RESULTS.md.

    report.py --results DIR --out RESULTS.md [--notes notes.md]

Tables put orderbus beside each peer with ratios; the targets of issue 4
are checked against the numbers with the margin by which each is met or
missed; gnuplot (if installed) draws the latency percentile curves into
DIR/latency-*.png.  Only the Python standard library is used.
"""

import argparse
import glob
import json
import math
import os
import shutil
import subprocess


def load(results):
    runs = {}
    for path in sorted(glob.glob(os.path.join(results, "*.json"))):
        name = os.path.basename(path)[:-5]
        if name == "meta":
            continue
        with open(path) as f:
            runs[name] = json.load(f)
    meta = {}
    if os.path.exists(os.path.join(results, "meta.json")):
        with open(os.path.join(results, "meta.json")) as f:
            meta = json.load(f)
    return runs, meta


# ---------------------------------------------------------------------
# Small accessors: every missing number is None and prints as "-"

def res(run, key, default=None):
    return run["result"].get(key, default) if run else default


def lat(run, key, which="latency"):
    if not run:
        return None
    h = run["result"].get(which) or {}
    return h.get(key) if h.get("count") else None


def thr(run):
    return res(run, "throughput_per_s")


def clients(run, key):
    return (res(run, "clients_detail") or {}).get(key)


def proc(run, name):
    for p in (run or {}).get("processes", []):
        if p["name"] == name:
            return p
    return None


def fmt(v, digits=None):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if digits is None:
        if abs(v) >= 100:
            digits = 0
        elif abs(v) >= 10:
            digits = 1
        elif abs(v) >= 1:
            digits = 2
        else:
            digits = 3
    return f"{v:,.{digits}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "-"
    r = a / b
    return f"{r:,.0f}x" if r >= 100 else f"{r:,.1f}x" if r >= 10 else f"{r:,.2f}x"


def load_desc(run):
    p = run["params"]
    if p.get("rate"):
        return f"open {p['rate']:,.0f}/s, {p['clients']} conn"
    return f"closed, {p['inflight']} in flight" + (
        f", {p['clients']} conn" if p["clients"] > 1 else "")


# ---------------------------------------------------------------------
# Sections

def machine(meta):
    rows = [("Date", meta.get("date")), ("Command", f"`{meta.get('command')}`"),
            ("Commit", f"{meta.get('commit', '?')[:12]}"
             + (f" + {meta['uncommitted_files']} uncommitted files outside bench/"
                if meta.get("uncommitted_files") else "")),
            ("CPU", f"{meta.get('cpu')} x {meta.get('cores')} (shared VM)"),
            ("Memory", meta.get("memory")), ("OS / kernel",
                                            f"{meta.get('os')} / {meta.get('kernel')}"),
            ("Disk (data dirs)", f"{meta.get('disk')} {meta.get('filesystem')}"),
            ("Load average before", meta.get("load_before")),
            ("Measured window", f"{meta.get('duration_s')} s per run after "
                                f"{meta.get('warmup_s')} s warmup")]
    out = ["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    versions = meta.get("versions", {})
    if versions:
        out += ["", "Versions: " + "; ".join(f"{k} {v}" for k, v in versions.items() if v)]
    return "\n".join(out)


def table(runs, names, base=None, delivery=False, ratio_of="thr"):
    """One row per run; ratio column against the run named base."""
    head = ["run", "system", "load", "ok/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms",
            "max ms", "errors", "backlog"]
    if delivery:
        head = ["run", "system", "load", "clients", "deliveries/s", "p50 ms", "p90 ms",
                "p99 ms", "p99.9 ms", "max ms", "missing", "errors"]
    head.append("others' CPU %")
    if base:
        head.append("orderbus vs this")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    b = runs.get(base) if base else None
    for name in names:
        r = runs.get(name)
        if not r:
            continue
        w = "delivery" if delivery else "latency"
        if delivery:
            want = r["params"].get("kitchens", 0) + r["params"].get("tables", 0) * r["params"].get("pads", 0)
            row = [name, r["label"], f"{r['params']['rate']:,.0f} events/s"
                   if r["params"].get("rate") else load_desc(r),
                   f"{fmt(clients(r, 'connected'), 0)} / {want:,}",
                   fmt(clients(r, "deliveries_per_s"), 0)]
        else:
            row = [name, r["label"], load_desc(r), fmt(thr(r), 0)]
        row += [fmt(lat(r, k, w)) for k in ("p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms")]
        if delivery:
            row += [fmt(clients(r, "missing"), 0), fmt(res(r, "errors"), 0)]
            if clients(r, "missing") or res(r, "backlog"):
                row[1] += " (overloaded)"
        else:
            row += [fmt(res(r, "errors"), 0), fmt(res(r, "backlog"), 0)]
            if res(r, "backlog"):
                row[1] += " (overloaded)"
        row.append(fmt((r.get("machine") or {}).get("others_pct"), 0))
        if base:
            if name == base:
                row.append("")
            elif delivery:
                row.append(ratio(clients(b, "deliveries_per_s"), clients(r, "deliveries_per_s")))
            elif ratio_of == "p50":
                row.append(ratio(lat(r, "p50_ms"), lat(b, "p50_ms")) + " faster p50")
            else:
                row.append(ratio(thr(b), thr(r)))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def memory_table(runs):
    head = ["run", "process", "RSS idle MB", "RSS connected MB", "RSS peak under load MB",
            "CPU %", "threads", "syncs/s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in runs.items():
        if name.startswith("replica-"):
            continue   # the replica section's table has their CPU and syncs
        for p in r.get("processes", []):
            mb = lambda k: fmt(p[k] / 1024, 1) if p.get(k, -1) >= 0 else "-"
            lines.append("| " + " | ".join([
                name, p["name"], mb("rss_idle_kb"), mb("rss_conn_kb"), mb("rss_load_kb"),
                fmt(p.get("cpu_pct"), 0), fmt(p.get("threads"), 0),
                fmt(p.get("syncs_per_s"), 0) if "syncs_per_s" in p else "-"]) + " |")
    return "\n".join(lines)


def best(runs, prefix, key=thr):
    cands = [(key(r), n) for n, r in runs.items() if n.startswith(prefix) and key(r) is not None]
    return max(cands) if cands else (None, None)


def durability(runs):
    disk = thr(runs.get("disk-fsync"))
    rows = []

    def syncs(prefix, procname):
        out = []
        for n, r in runs.items():
            p = proc(r, procname) if n.startswith(prefix) else None
            if p and "syncs_per_s" in p and thr(r):
                per = thr(r) / p["syncs_per_s"] if p["syncs_per_s"] > 0 else None
                out.append(f"{n}: {fmt(thr(r), 0)} acks/s, {fmt(p['syncs_per_s'], 0)} syncs/s"
                           + (f" ({fmt(per, 1)} acks per sync)" if per else " (no sync at all)"))
        return "; ".join(out) or "not measured"

    rows.append(("orderbus (LMDB)", "yes", "mdb_txn_commit = fdatasync of the data file + "
                 "O_DSYNC meta page write, before any ack or event is published",
                 syncs("intake-orderbus", "writer")))
    rows.append(("seed 002 (SQLite WAL)", "yes", "synchronous=FULL (checked at startup): "
                 "the WAL is fsynced at every COMMIT, before the 201",
                 syncs("http-seed002", "seed002")))
    rows.append(("Redis 7.0 XADD", "yes", "appendonly yes + appendfsync always: the AOF "
                 "is fdatasynced before the replies of each event-loop turn are written",
                 syncs("intake-redis", "redis")))
    rows.append(("NATS JetStream 2.9.10", "**no**", "file store pwrite()s each message and "
                 "acks; no per-ack fsync (sync_interval/always only exist from 2.10); "
                 "lost acked messages on power loss or kernel crash",
                 syncs("intake-nats", "nats")))
    rows.append(("Socket.IO + Redis adapter (seed 004)", "**nothing stored**",
                 "events exist only in flight (Redis Pub/Sub); no replay", "-"))
    rows.append(("Redis PUBLISH, core NATS (fan-out only)", "**nothing stored**",
                 "fire-and-forget delivery to connected subscribers", "-"))
    lines = ["| system | acked write synced to disk? | how | measured (perf count of "
             "fsync+fdatasync in the server) |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    if disk:
        lines += ["", f"The disk itself: one 4 KiB pwrite + fdatasync at a time reaches "
                      f"**{fmt(disk, 0)} syncs/s** (p50 "
                      f"{fmt(lat(runs.get('disk-fsync'), 'p50_ms'))} ms), run `disk-fsync`."]
    return "\n".join(lines)


# ---------------------------------------------------------------------
# Targets

def status(ok):
    return "**met**" if ok else "**missed**"


def others(run):
    o = (run or {}).get("machine", {}).get("others_pct")
    return f" (others' CPU {o:.0f}%)" if o is not None else ""


def security_cost(runs):
    """CURVE on the node links, and HTTPS on a gateway, against the same load
    in plaintext, same run."""
    pairs = [("intake-orderbus-256", "intake-curve-256"),
             ("intake-orderbus-4096", "intake-curve-4096"),
             ("http-orderbus-c50", "http-curve-c50"),
             ("http-orderbus-c50", "http-tls-c50")]
    rows = [(plain, curve) for plain, curve in pairs if plain in runs and curve in runs]
    if not rows:
        return ("No CURVE or TLS runs in this run (`bench/run.sh --only intake,http` "
                "makes them).")
    out = ["| load | plaintext ok/s | secured ok/s | secured / plaintext | plaintext p50 / p99 ms "
           "| secured p50 / p99 ms |", "|---|---|---|---|---|---|"]
    for plain, curve in rows:
        a, b = runs[plain], runs[curve]
        out.append(f"| {plain} vs {curve} | {fmt(thr(a), 0)} | {fmt(thr(b), 0)} | "
                   f"{ratio(thr(b), thr(a))} | {fmt(lat(a, 'p50_ms'))} / {fmt(lat(a, 'p99_ms'))} "
                   f"| {fmt(lat(b, 'p50_ms'))} / {fmt(lat(b, 'p99_ms'))} |")
    return "\n".join(out)


def targets(runs):
    rows = []
    disk = thr(runs.get("disk-fsync"))

    # Durable intake
    v, n = best(runs, "intake-orderbus")
    r = runs.get(n)
    w = proc(r, "writer")
    per = (v / w["syncs_per_s"]) if v and w and w.get("syncs_per_s") else None
    errs = res(r, "errors")
    rows.append(("Durable intake >= 100,000 committed orders/s (group commit, every ack synced)",
                 f"{fmt(v, 0)}/s ({n}), {fmt(errs, 0)} errors; {fmt(per, 0)} orders per "
                 f"fsync; {ratio(v, disk)} the disk's one-at-a-time fsync rate{others(r)}",
                 status(v is not None and v >= 100000 and not errs),
                 f"{fmt(100 * (v / 100000 - 1), 0)}%" if v else "-"))

    # HTTP ratio
    ob, obn = best(runs, "http-orderbus")
    sd, sdn = best(runs, "http-seed002")
    rows.append((">= 100x seed 002's durable order rate over HTTP, same run",
                 f"orderbus {fmt(ob, 0)}/s ({obn}) vs seed 002 {fmt(sd, 0)}/s ({sdn}) = "
                 f"{ratio(ob, sd)}",
                 status(ob and sd and ob >= 100 * sd),
                 f"{ratio(ob, sd)} of 100x" if ob and sd else "-"))

    c1 = runs.get("http-orderbus-c1")
    p50, p99 = lat(c1, "p50_ms"), lat(c1, "p99_ms")
    rows.append(("201 latency with one client: p50 < 1 ms, p99 < 2 ms",
                 f"p50 {fmt(p50)} ms, p99 {fmt(p99)} ms{others(c1)}",
                 status(p50 is not None and p50 < 1 and p99 < 2),
                 f"p50 {ratio(p50, 1)} / p99 {ratio(p99, 2)} the target" if p50 else "-"))

    r2 = runs.get("http-orderbus-r2000")
    p99 = lat(r2, "p99_ms")
    ok = p99 is not None and p99 < 5 and not res(r2, "errors") and not res(r2, "backlog")
    rows.append(("p99 < 5 ms at 2,000 orders/s offered through one gateway",
                 f"p99 {fmt(p99)} ms, throughput {fmt(thr(r2), 0)}/s, backlog "
                 f"{fmt(res(r2, 'backlog'), 0)}, errors {fmt(res(r2, 'errors'), 0)}{others(r2)}",
                 status(ok), f"{ratio(p99, 5)} the target" if p99 else "-"))

    e2 = runs.get("e2e-orderbus-r2000")
    p99 = lat(e2, "p99_ms", "delivery")
    ok = p99 is not None and p99 < 5 and not clients(e2, "missing") and not res(e2, "backlog")
    rows.append(("Pad-to-kitchen p99 < 5 ms at 2,000 orders/s",
                 f"p99 {fmt(p99)} ms (201 p99 {fmt(lat(e2, 'p99_ms'))} ms), "
                 f"{fmt(clients(e2, 'missing'), 0)} missing, backlog {fmt(res(e2, 'backlog'), 0)}{others(e2)}",
                 status(ok), f"{ratio(p99, 5)} the target" if p99 else "-"))

    cn = runs.get("connections-orderbus")
    if cn:
        want = cn["params"]["kitchens"] + cn["params"]["tables"] * cn["params"]["pads"]
        got = clients(cn, "connected") or 0
        p99 = lat(cn, "p99_ms", "delivery")
        e = proc(cn, "edge")
        per = ((e["rss_conn_kb"] - e["rss_idle_kb"]) / got) if e and got else None
        ok = got >= 10000 and p99 is not None and p99 < 50 and not clients(cn, "missing")
        rows.append((f"One edge holds 10,000 WebSockets ({want:,} asked: "
                     f"{cn['params']['tables']:,} tables x {cn['params']['pads']} pads + "
                     f"{cn['params']['kitchens']} kitchens) at 500 orders/s, p99 < 50 ms",
                     f"{got:,} connected, {fmt(clients(cn, 'failed'), 0)} not served "
                     f"({fmt(clients(cn, 'not_tried'), 0)} of them not tried after the "
                     f"connect deadline); "
                     f"delivery p99 {fmt(p99)} ms; {fmt(per, 1)} KiB RSS per connection; "
                     f"{fmt(clients(cn, 'extra'), 0)} deliveries to pads of other tables",
                     status(ok), f"{100 * got / 10000:.0f}% of the clients"))

    fb = [n for n in runs if n.startswith("fanout-orderbus-")]
    if fb:
        n = max(fb, key=lambda x: int(x.rsplit("-", 1)[1]))
        size = n.rsplit("-", 1)[1]
        r = runs[n]
        sio = runs.get(f"fanout-socketio-{size}")
        p99 = lat(r, "p99_ms", "delivery")
        d, ds = clients(r, "deliveries_per_s"), clients(sio, "deliveries_per_s")
        got = clients(r, "connected") or 0
        ok = (got >= int(size) and p99 is not None and p99 < 100 and d and ds and d > ds
              and int(size) >= 2000)
        rows.append((f"Broadcast: 2,000 clients in one room at 100 events/s, p99 < 100 ms, "
                     f"more deliveries/s than Socket.IO",
                     f"{got:,} of {size} connected; {fmt(d, 0)} deliveries/s vs Socket.IO "
                     f"{fmt(ds, 0)}/s ({ratio(d, ds)}); p99 {fmt(p99)} ms (Socket.IO "
                     f"{fmt(lat(sio, 'p99_ms', 'delivery'))} ms)",
                     status(ok), f"{ratio(d, 200000)} of 200,000/s" if d else "-"))
    rows.append(("Memory: RSS of each node at idle and under each load",
                 "see the memory table", "**reported**", ""))
    lines = ["| target | measured | status | where it stands |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


def headline(runs):
    out = []
    ob, obn = best(runs, "http-orderbus")
    sd, sdn = best(runs, "http-seed002")
    if ob and sd:
        out.append(f"- **HTTP, durable orders/s:** orderbus {fmt(ob, 0)}/s vs seed 002 "
                   f"(FastAPI+SQLite) {fmt(sd, 0)}/s: **{ratio(ob, sd)}**.")
    c1, s1 = runs.get("http-orderbus-c1"), runs.get("http-seed002-c1")
    if c1 and s1:
        out.append(f"- **HTTP, one client, 201 p50:** orderbus {fmt(lat(c1, 'p50_ms'))} ms "
                   f"vs seed 002 {fmt(lat(s1, 'p50_ms'))} ms.")
    v, n = best(runs, "intake-orderbus")
    rv, _ = best(runs, "intake-redis")
    nv, _ = best(runs, "intake-nats")
    disk = thr(runs.get("disk-fsync"))
    if v:
        out.append(f"- **Durable intake:** orderbus writer {fmt(v, 0)} orders/s "
                   f"({ratio(v, disk)} the disk's fsync rate); Redis XADD (appendfsync always) "
                   f"{fmt(rv, 0)}/s (orderbus {ratio(v, rv)}); NATS JetStream {fmt(nv, 0)}/s "
                   f"(not synced per ack; orderbus {ratio(v, nv)}).")
    rs, rl, rr = replica_goal(runs)
    if rs and rl:
        out.append(f"- **Intake with a synchronous replica:** {fmt(rs, 0)} orders/s against "
                   f"the lone writer's {fmt(rl, 0)}/s in the same rounds: **{fmt(rr, 2)}x** "
                   f"(goal 0.5x).")
    fo = (runs.get("failover") or {}).get("failover")
    if fo:
        t = fo["takeover_ms"]
        out.append(f"- **Failover:** the standby takes over in {fmt(t['median'], 0)} ms "
                   f"(median; p90 {fmt(t['p90'], 0)}, max {fmt(t['max'], 0)} ms over "
                   f"{t['count']} kills, ttl_s {fo['settings']['leader/ttl_s']}; target "
                   f"< {fo['target_ms']} ms), no acknowledged order lost or doubled.")
    for size in sorted({n.rsplit("-", 1)[1] for n in runs if n.startswith("fanout-orderbus-")},
                       key=int):
        r, s = runs.get(f"fanout-orderbus-{size}"), runs.get(f"fanout-socketio-{size}")
        if r and s:
            out.append(f"- **Broadcast, {size} clients x 100 events/s:** orderbus "
                       f"{fmt(clients(r, 'deliveries_per_s'), 0)} deliveries/s (p99 "
                       f"{fmt(lat(r, 'p99_ms', 'delivery'))} ms, {fmt(clients(r, 'connected'), 0)} "
                       f"connected) vs Socket.IO {fmt(clients(s, 'deliveries_per_s'), 0)}/s (p99 "
                       f"{fmt(lat(s, 'p99_ms', 'delivery'))} ms): "
                       f"**{ratio(clients(r, 'deliveries_per_s'), clients(s, 'deliveries_per_s'))}**.")
    return "\n".join(out)


# ---------------------------------------------------------------------
# Replication (issue 16): intake beside a lone writer, interleaved rounds

REPL_HOWS = [("lone", "lone writer"), ("async", "async replica"),
             ("sync", "sync replica")]


def median(values):
    v = sorted(x for x in values if x is not None)
    if not v:
        return None
    m = len(v) // 2
    return v[m] if len(v) % 2 else (v[m - 1] + v[m]) / 2


def replica_runs(runs):
    """{(how, inflight): [run, ...]} of the replica phase's runs."""
    out = {}
    for name, r in runs.items():
        parts = name.split("-")
        if len(parts) == 4 and parts[0] == "replica" and parts[3].startswith("r"):
            out.setdefault((parts[1], int(parts[2])), []).append(r)
    return out


def repl(run, key):
    return (run.get("replication") or {}).get(key)


def per_batch(run):
    b, c = repl(run, "writer_batches"), repl(run, "writer_commands")
    return c / b if b and c is not None else None


def replica_goal(runs):
    """(sync best median, lone best median, ratio) over the sizes, or Nones."""
    groups = replica_runs(runs)
    best_of = lambda how: max((median(thr(r) for r in rs) or 0
                               for (h, _), rs in groups.items() if h == how), default=None)
    s, l = best_of("sync"), best_of("lone")
    return s, l, (s / l if s and l else None)


def replica_section(runs):
    groups = replica_runs(runs)
    if not groups:
        return ("No replica runs in this run (`bench/run.sh --only replica` makes "
                "them).")
    head = ["in flight", "writer", "rounds", "orders/s median (min-max)", "vs lone",
            "p50 ms", "p99 ms", "p99.9 ms", "orders per batch", "writer CPU %",
            "replica CPU %", "writer syncs/s", "replica syncs/s",
            "lag while loaded: max / last (seqs; ms)", "caught up after s",
            "last seq writer = replica", "errors", "others' CPU % median"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n in sorted({n for _, n in groups}):
        lone = median(thr(r) for r in groups.get(("lone", n), []))
        for how, label in REPL_HOWS:
            rs = groups.get((how, n), [])
            if not rs:
                continue
            t = [thr(r) for r in rs if thr(r) is not None]
            med = median(t)
            pm = lambda name, key: median((proc(r, name) or {}).get(key) for r in rs)
            lag = "-"
            if how != "lone":
                lag = (f"{fmt(max((repl(r, 'max_lag_seqs') or 0) for r in rs), 0)} / "
                       f"{fmt(median(repl(r, 'last_lag_seqs') for r in rs), 0)}; "
                       f"{fmt(max((repl(r, 'max_lag_ms') or 0) for r in rs), 0)} / "
                       f"{fmt(median(repl(r, 'last_lag_ms') for r in rs), 0)}")
            same = "-"
            if how != "lone":
                eq = [repl(r, "writer_last_seq") is not None
                      and repl(r, "writer_last_seq") == repl(r, "replica_last_seq") for r in rs]
                same = (f"yes, {len(rs)} of {len(rs)}" if all(eq)
                        else f"**NO** in {eq.count(False)} of {len(rs)}")
            lines.append("| " + " | ".join([
                str(n), label, str(len(rs)),
                f"{fmt(med, 0)} ({fmt(min(t), 0)}-{fmt(max(t), 0)})" if t else "-",
                "" if how == "lone" else ratio(med, lone),
                fmt(median(lat(r, "p50_ms") for r in rs)),
                fmt(median(lat(r, "p99_ms") for r in rs)),
                fmt(median(lat(r, "p999_ms") for r in rs)),
                fmt(median(per_batch(r) for r in rs), 0),
                fmt(pm("writer", "cpu_pct"), 0),
                fmt(pm("replica", "cpu_pct"), 0) if how != "lone" else "-",
                fmt(pm("writer", "syncs_per_s"), 0),
                fmt(pm("replica", "syncs_per_s"), 0) if how != "lone" else "-",
                lag,
                fmt(median(repl(r, "caught_up_s") for r in rs), 1) if how != "lone" else "-",
                same,
                fmt(sum(res(r, "errors") or 0 for r in rs), 0),
                fmt(median((r.get("machine") or {}).get("others_pct") for r in rs), 0)]) + " |")
    s, l, r = replica_goal(runs)
    each = []
    for n in sorted({n for _, n in groups}):
        sm = median(thr(x) for x in groups.get(("sync", n), []))
        lm = median(thr(x) for x in groups.get(("lone", n), []))
        if sm and lm:
            each.append(f"{n} in flight {fmt(sm / lm, 2)}x")
    goal = (f"**Goal (issue 16): a writer with a synchronous replica takes at least half "
            f"the lone writer's orders/s.** Best median over the sizes: sync "
            f"{fmt(s, 0)}/s against lone {fmt(l, 0)}/s = **{fmt(r, 2)}x**: "
            f"{status(r is not None and r >= 0.5)}. At each size, sync / lone: "
            f"{', '.join(each) or '-'} (a closed loop: with N in flight, what the "
            f"replica adds to an ack's latency divides orders/s; notes section 9).")
    return "\n".join(lines) + "\n\n" + goal


# ---------------------------------------------------------------------
# Failover (issue 16): the takeover time across kills of the leader

def failover_section(runs):
    fo = (runs.get("failover") or {}).get("failover")
    if not fo:
        return ("No failover run in this run (`bench/run.sh --only failover` makes one; "
                "it needs etcd: Debian's etcd-server).")
    st, t, g, j = fo["settings"], fo["takeover_ms"], fo["longest_201_gap_ms"], fo["rejoined_s"]
    h = fo["history"]
    head = ["", "kills", "median", "p90", "max", "min"]
    row = lambda name, s, d: ("| " + " | ".join([name, str(s["count"]), fmt(s["median"], d),
                                                 fmt(s["p90"], d), fmt(s["max"], d),
                                                 fmt(s["min"], d)]) + " |")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
             row("**takeover**: kill -9 of the leader -> first 201 the new leader "
                 "acknowledged (ms)", t, 0),
             row("longest time between two 201s the client saw, around the kill (ms)", g, 0),
             row("the killed member back: restart -> named in `/sync` again (s)", j, 1)]
    met = t["max"] < fo["target_ms"]
    per = ", ".join(fmt(r["takeover_ms"], 0) for r in fo["rounds"])
    return "\n".join(lines) + "\n\n" + (
        f"**Target (issue 16): the standby takes over in under {fo['target_ms'] / 1000:g} s.** "
        f"With `leader/ttl_s` = **{st['leader/ttl_s']}** (and `writer/sync_timeout_ms` "
        f"{st['writer/sync_timeout_ms']}, `sync_fallback` {st['writer/sync_fallback']}, "
        f"`link/heartbeat_ms` {st['link/heartbeat_ms']}, `link/timeout_ms` "
        f"{st['link/timeout_ms']}): median {fmt(t['median'], 0)} ms, p90 {fmt(t['p90'], 0)} ms, "
        f"max {fmt(t['max'], 0)} ms over {t['count']} kills: "
        f"{status(met)}{'' if met else ' (by the max)'}. Each kill, in ms: {per}. "
        f"The load: {fmt(fo['rate'], 0)} orders/s over {fo['clients']} clients, each order "
        f"retried with its key until 201: {h['orders']} orders, {h['acked']} acknowledged "
        f"({h['replayed']} answered as replays), {h['attempts']} POSTs; both members' stores "
        f"(`orderbus export`) hold every acknowledged order exactly once, none twice, none "
        f"the client did not send, and end at the same seq "
        f"({fo['stores'][next(iter(fo['stores']))]['last_seq']}).")


# ---------------------------------------------------------------------
# Plots

PLOTS = [
    ("latency-http", "HTTP 201 latency, one client and 50 clients", "latency",
     ["http-orderbus-c1", "http-seed002-c1", "http-orderbus-c50", "http-seed002-c50"]),
    ("latency-e2e", "Pad-to-kitchen latency (HTTP POST to WebSocket delivery)", "delivery",
     ["e2e-orderbus-c1", "e2e-seed002-c1", "e2e-orderbus-r2000", "e2e-seed002-r50"]),
    ("latency-intake", "Durable intake: ack latency", "latency",
     ["intake-orderbus-1", "intake-redis-1", "intake-nats-1",
      "intake-orderbus-4096", "intake-redis-4096", "intake-nats-4096"]),
    ("latency-fanout", "Broadcast delivery latency (largest size)", "delivery", None),
]


def plot(runs, results):
    if not shutil.which("gnuplot"):
        return []
    made = []
    for name, title, which, members in PLOTS:
        if members is None:
            sizes = sorted({n.rsplit("-", 1)[1] for n in runs if n.startswith("fanout-")}, key=int)
            members = [n for n in runs if sizes and n.startswith("fanout-")
                       and n.endswith("-" + sizes[-1])]
        members = [m for m in members if m in runs and (runs[m]["result"].get(which) or {}).get("count")]
        if not members:
            continue
        cmds = []
        for m in members:
            dat = os.path.join(results, f"{name}-{m}.dat")
            with open(dat, "w") as f:
                for p, ms in runs[m]["result"][which]["curve"]:
                    x = 5.5 if p >= 100 else (0 if p <= 0 else -math.log10(1 - p / 100))
                    f.write(f"{x} {max(ms, 0.001)}\n")
            cmds.append(f"'{dat}' using 1:2 with linespoints title '{m}'")
        png = os.path.join(results, f"{name}.png")
        script = f"""
set terminal pngcairo size 900,580 noenhanced
set output '{png}'
set title '{title}'
set logscale y
set ylabel 'latency (ms)'
set xlabel 'percentile'
set xtics ('0%%' 0, '90%%' 1, '99%%' 2, '99.9%%' 3, '99.99%%' 4, '99.999%%' 5, 'max' 5.5)
set grid
set key below
plot {', '.join(cmds)}
"""
        try:
            subprocess.run(["gnuplot"], input=script, text=True, check=True,
                           capture_output=True)
            made.append((name, title))
        except (subprocess.CalledProcessError, OSError) as e:
            print(f"report.py: gnuplot failed for {name}: {getattr(e, 'stderr', e)}")
            if os.path.exists(png):
                os.unlink(png)
    return made


# ---------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--notes")
    a = ap.parse_args()
    runs, meta = load(a.results)
    pngs = plot(runs, a.results)
    rel = os.path.relpath(a.results, os.path.dirname(os.path.abspath(a.out)))
    names = lambda prefix: [n for n in runs if n.startswith(prefix)]
    doc = ["# orderbus benchmark results", "",
           "Generated by `bench/run.sh` (which calls `bench/report.py`); do not edit by hand: "
           "the analysis comes from `bench/notes.md`. Every number below was measured in one "
           "run on the machine described here, with the same tool (`orderbus-bench`) and the "
           "same parameters for orderbus and its peers. The machine is a shared 2-core VM: "
           "compare ratios within this run rather than absolute numbers across runs.", "",
           "## Headline", "", headline(runs), "",
           "## Machine", "", machine(meta), "",
           "## Targets (issue 4)", "", targets(runs), "",
           "## Durability: like for like", "", durability(runs), "",
           "## Durable intake (no HTTP)", "",
           "Commands straight into each system's durable log, closed loop with N in flight. "
           "orderbus: `bus_cmd_t` frames on the writer's PULL socket, acks on `A/<origin>/`. "
           "Redis: `XADD` over 8 pipelined connections. NATS: JetStream publish with "
           "`Nats-Msg-Id` (libnats).", "",
           table(runs, names("disk-") + names("intake-")), "",
           "## Intake with a replica (issue 16)", "",
           "The intake measurement above (same tool, same sizes) against a lone writer, a "
           "writer with an asynchronous replica and one with a synchronous replica "
           "(`writer/sync_replica`: an order is acknowledged once the replica confirmed "
           "it durable), in interleaved rounds (for each round and size the three back "
           "to back, each on fresh data directories); medians over the rounds. The "
           "replica runs on the same host and disk as the writer (notes: what that "
           "means). Lag is the writer's `writer.replication` sampled every 0.5 s while "
           "loaded; after each run the replica must catch up and `orderbus verify` must "
           "find both stores sound with the same identity and last seq, or run.sh stops.",
           "", replica_section(runs), "",
           "## Failover: takeover time (issue 16)", "",
           "`bench/failover.sh`: a writer group of two members on this host (each the "
           "other's synchronous standby) with a local etcd, a gateway following both, and "
           "`orderbus-bench retry` placing orders at a constant rate, each retried with its "
           "Idempotency-Key until 201. The leader is killed (`kill -9`) under that load, "
           "again and again; before each next kill the killed member is back as the new "
           "leader's standby, named in `/sync`. Takeover: from the kill to the first 201 "
           "for an order committed after the killed member was dead (so by the new "
           "leader; the order's `created_ms`). What it is made of: docs/failover.md.",
           "", failover_section(runs), "",
           "## HTTP orders", "",
           "`POST /api/v1/orders` with an `Idempotency-Key` (orderbus) and `POST /api/order` "
           "(seed 002), over keep-alive connections; ok = 201. `civetweb-*` and "
           "`mhd-*` are not peers but the floor under orderbus: `orderbus-floor`, an "
           "HTTP server answering a fixed 201 with no other work: civetweb set up as "
           "the gateway sets it up (a thread per connection), or libmicrohttpd in "
           "epoll mode (one thread); `handoff`: each request is answered only when a "
           "second thread says so, as a gateway answers when the writer's ack "
           "arrives.", "",
           table(runs, names("http-"), base="http-orderbus-c50"), "",
           "## The cost of CURVE and TLS", "",
           "The same loads with every ZeroMQ link between nodes on CURVE (`link/cert`, "
           "docs/security.md): the bench as a gateway straight into the writer "
           "(`intake-curve-*`), and pads through a gateway whose links to the writer are "
           "CURVE (`http-curve-c50`); and pads over HTTPS to a gateway on TLS "
           "(`http-tls-c50`: `tls/cert` from `orderbus tls new`, TLS 1.3, keep-alive "
           "connections, so the handshakes are paid once per client; links plaintext).", "",
           security_cost(runs), "",
           "## Pad to kitchen (e2e)", "",
           "Time from the intended send of the POST to the order's arrival on a kitchen "
           "WebSocket (orderbus: gateway -> writer -> edge `/ws`; seed 002: `/ws/orders`).", "",
           table(runs, names("e2e-"), delivery=True), "",
           "## Broadcast fan-out", "",
           "All clients in one room (kitchen screens), events published at 100/s. orderbus: "
           "commands into the writer, events through one edge over WebSocket. Socket.IO: "
           "`add-item` emitted by a publisher socket, broadcast through the Redis adapter. "
           "Redis `PUBLISH` and core NATS deliver over their own TCP protocols (no "
           "WebSocket, no JSON framing by the server). \"orderbus vs this\" compares "
           "deliveries/s. \"missing\" counts events a connected client should have had "
           "and did not get by the end of the drain (2 s after the window); the latency "
           "percentiles are over delivered events only, so a run marked overloaded "
           "understates its tail.", ""]
    for size in sorted({n.rsplit("-", 1)[1] for n in runs if n.startswith("fanout-")}, key=int):
        doc += [f"### {size} clients", "",
                table(runs, [n for n in runs if n.startswith("fanout-") and n.endswith("-" + size)],
                      base=f"fanout-orderbus-{size}", delivery=True), ""]
    if names("connections-"):
        doc += ["## Connections: pads and kitchens on one edge", "",
                "Pads spread over tables (each needs only its own table's orders) plus kitchen "
                "screens (every order), orders at 500/s. \"missing\" counts orders a connected "
                "client should have got and did not.", "",
                table(runs, names("connections-"), delivery=True), ""]
        extra = [(n, clients(runs[n], "extra")) for n in names("connections-")]
        doc += ["Deliveries to pads of other tables (a pad got an order it did not need): "
                + ", ".join(f"{n} {fmt(v, 0)}" for n, v in extra), ""]
    doc += ["## Memory and CPU of every process", "",
            "RSS from `/proc/PID/status` before the clients connect (idle), after they "
            "connect, and the peak under load; CPU over the measured window (100% = one "
            "core); syncs = fsync+fdatasync calls per second counted by `perf stat` on the "
            "syscall tracepoints. `bench` is the load generator itself. The \"others' CPU "
            "%\" column of the tables above is what processes outside the run (other "
            "people's work on this shared machine) used during the window, from "
            "`/proc/stat` minus the processes listed here.", "",
            memory_table(runs), ""]
    if pngs:
        doc += ["## Latency percentile plots", ""]
        doc += [f"![{t}]({rel}/{n}.png)" for n, t in pngs]
        doc += [""]
    if a.notes and os.path.exists(a.notes):
        with open(a.notes) as f:
            doc += [f.read().strip(), ""]
    profiles = sorted(p for p in glob.glob(os.path.join(a.results, "profile-*.txt"))
                      if not p.endswith("-callers.txt"))
    if profiles:
        doc += ["## Profiles", "",
                "Sampled with `perf record -F 499 -g -e cpu-clock` during the run named in "
                "the file name (flat profile; `-callers.txt` beside it has the call "
                "graphs). The top entries:", ""]
        for path in profiles:
            with open(path) as f:
                top = [line.rstrip() for line in f if "%" in line and not line.startswith("#")][:12]
            doc += [f"`{rel}/{os.path.basename(path)}`:", "", "```"] + top + ["```", ""]
    cmds = os.path.join(a.results, "commands.txt")
    if os.path.exists(cmds):
        with open(cmds) as f:
            doc += ["## Exact commands", "",
                    "Each run, in order (ports are picked free at run time; `run.sh` starts "
                    "the systems, see its `start_*` functions for their command lines):", "",
                    "```", f.read().strip(), "```", ""]
    with open(a.out, "w") as f:
        f.write("\n".join(doc))


if __name__ == "__main__":
    main()
