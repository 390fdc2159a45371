#!/usr/bin/env python3
"""disk_per_order.py — what one order costs on disk (docs/retention.md).

Starts a writer on a fresh data directory and a gateway in front of it,
places N orders the way a pad does (three lines, a modifier, a note on
some), moves each through accepted, preparing, ready and served the way a
kitchen does (each move a command with its own Idempotency-Key, each an
event), stops the writer and reads LMDB's own page counts per database
with mdb_stat.  Prints bytes per order in the log, the orders, the keys
and the rest, then the size of data.mdb and of a compacted copy
(mdb_copy -c).

    bench/disk_per_order.py BUILD/orderbus [N]      (N = 2000, a day)
"""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

BODY = ('{"table":"T%d","note":%s,"items":['
        '{"item_id":"burger","quantity":2,"modifiers":["cheese"]},'
        '{"item_id":"fries","quantity":1},'
        '{"item_id":"cola","quantity":2}]}')
STEPS = ["accepted", "preparing", "ready", "served"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(conn, path, key, body):
    conn.request("POST", path, body, {"Content-Type": "application/json",
                                      "Idempotency-Key": key})
    resp = conn.getresponse()
    data = resp.read()
    if resp.status not in (200, 201):
        sys.exit(f"{path}: {resp.status} {data[:200]!r}")
    return json.loads(data)


def wait_healthy(port):
    for _ in range(200):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit("gateway not healthy")


def mdb_stat(data):
    """{database: (entries, pages)} from mdb_stat -a (all named dbs)."""
    out = subprocess.run(["mdb_stat", "-a", data], check=True,
                         capture_output=True, text=True).stdout
    stats, name = {}, None
    for line in out.splitlines():
        m = re.match(r"Status of (\S+)", line)
        if m:
            name = m.group(1)
            stats[name] = [0, 0]
        m = re.match(r"\s+(Branch|Leaf|Overflow) pages: (\d+)", line)
        if m and name:
            stats[name][1] += int(m.group(2))
        m = re.match(r"\s+Entries: (\d+)", line)
        if m and name:
            stats[name][0] = int(m.group(1))
    return stats


def main():
    binary = sys.argv[1]
    orders = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    root = tempfile.mkdtemp(prefix="orderbus-disk-")
    data = os.path.join(root, "data")
    menu = os.path.join(os.path.dirname(__file__), "..", "config",
                        "demo-menu.json")
    ports = [free_port() for _ in range(4)]
    eps = [f"tcp://127.0.0.1:{p}" for p in ports[:3]]
    links = ["--intake", eps[0], "--events", eps[1], "--sync", eps[2]]
    log = open(os.path.join(root, "nodes.log"), "w")
    writer = subprocess.Popen([binary, "writer", "--data", data, "--menu",
                               menu] + links, stdout=log, stderr=log)
    gateway = subprocess.Popen(
        [binary, "gateway", "--http-port", str(ports[3]),
         "--insecure-no-auth", "--table-rate", "1000", "--table-burst",
         "10000", "--change-rate", "1000", "--change-burst", "10000"]
        + links, stdout=log, stderr=log)
    try:
        wait_healthy(ports[3])
        conn = http.client.HTTPConnection("127.0.0.1", ports[3])
        started = time.time()
        for n in range(orders):
            note = json.dumps("birthday, table by the window" if n % 4 == 0
                              else "")
            order = post(conn, "/api/v1/orders", f"pad-{n % 40}-{n:06d}",
                         BODY % (n % 40 + 1, note))
            for step, status in enumerate(STEPS):
                post(conn, f"/api/v1/orders/{order['id']}/status",
                     f"kitchen-{order['id']}-{step}",
                     json.dumps({"status": status}))
        elapsed = time.time() - started
    finally:
        gateway.send_signal(signal.SIGTERM)
        writer.send_signal(signal.SIGTERM)
        gateway.wait()
        writer.wait()

    stats = mdb_stat(data)
    page = os.sysconf("SC_PAGE_SIZE")
    print(f"{orders} orders, each placed and moved 4 times "
          f"({orders * 5} commands, {elapsed:.1f} s)")
    print(f"{'database':8} {'entries':>8} {'pages':>6} {'bytes/entry':>12} "
          f"{'bytes/order':>12}")
    total = 0
    for name in ["log", "orders", "keys", "kseq", "open", "carts", "meta",
                 "menu"]:
        entries, pages = stats.get(name, [0, 0])
        size = pages * page
        total += size
        per_entry = size / entries if entries else 0
        print(f"{name:8} {entries:8} {pages:6} {per_entry:12.0f} "
              f"{size / orders:12.0f}")
    print(f"{'all':8} {'':8} {'':6} {'':12} {total / orders:12.0f}")
    size = os.path.getsize(os.path.join(data, "data.mdb"))
    copy = os.path.join(root, "copy")
    os.mkdir(copy)
    subprocess.run(["mdb_copy", "-c", data, copy], check=True)
    compact = os.path.getsize(os.path.join(copy, "data.mdb"))
    print(f"data.mdb {size} bytes ({size / orders:.0f} per order); "
          f"mdb_copy -c {compact} bytes ({compact / orders:.0f} per order)")
    shutil.rmtree(root)


if __name__ == "__main__":
    main()
