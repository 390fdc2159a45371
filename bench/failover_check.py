#!/usr/bin/python3
"""failover.sh's last step: the client's log against both members'
stores, and the takeover of each kill, into the phase's JSON.

    failover_check.py WORK LEADER KILLS RATE CLIENTS TTL_S SYNC_TIMEOUT_MS
                      HEARTBEAT_MS LINK_TIMEOUT_MS ACK_TIMEOUT_MS OUT

WORK holds what failover.sh left: orders.log (orderbus-bench retry's
log), kills.txt (one line per kill: its number, the member killed, and
the wall-clock ns of the kill, its death, its standby seen leading, a
201 seen from it, the killed member's restart and its naming in /sync),
m1/m2.csv (`orderbus export`), m1/m2.verify (`orderbus verify`) and
load.json (the load's result).  Any acknowledged order missing or stored
twice, an unacknowledged one stored twice, a stored one never sent, or
the stores disagreeing: exit 1 with the reason, and no OUT.  Standard
library only.
"""

import csv
import json
import math
import re
import sys

(work, leader, kills, rate, clients, ttl_s, sync_timeout_ms, heartbeat_ms,
 link_timeout_ms, ack_timeout_ms, out) = sys.argv[1:]

def fail(why):
    print(f"failover.sh: FAILED: {why}; no figure kept", file=sys.stderr)
    sys.exit(1)

orders = {}
for line in open(f"{work}/orders.log"):
    f = line.split()
    if len(f) != 9:
        fail(f"a bad line in the load's log: {line!r}")
    key = f[0]
    if key in orders:
        fail(f"the load logged {key} twice")
    orders[key] = dict(due=int(f[1]), first=int(f[2]), ack=int(f[3]), attempts=int(f[4]),
                       status=int(f[5]), seq=int(f[6]), created_ms=int(f[7]),
                       replayed=f[8] == "1")
acked = {k for k, o in orders.items() if o["ack"] > 0}

def stored(m):
    keys = {}
    with open(f"{work}/{m}.csv", newline="") as f:
        for row in csv.DictReader(f):
            keys[row["idempotency_key"]] = keys.get(row["idempotency_key"], 0) + 1
    return keys

def verified(m):
    text = open(f"{work}/{m}.verify").read()
    get = lambda what: (re.search(rf"^{what}:\s+(\S+)", text, re.M) or [None, None])[1]
    return {"identity": get("identity"), "last_seq": int(get("last seq") or -1)}

stores = {m: verified(m) for m in ("m1", "m2")}
if stores["m1"] != stores["m2"]:
    fail(f"the members' stores differ: {stores}")
history = {}
for m in ("m1", "m2"):
    keys = stored(m)
    h = {"stored": sum(keys.values()),
         "acked_missing": sum(1 for k in acked if keys.get(k, 0) == 0),
         "acked_doubled": sum(1 for k in acked if keys.get(k, 0) > 1),
         "unacked_doubled": sum(1 for k in orders if k not in acked and keys.get(k, 0) > 1),
         "unacked_stored": sum(1 for k in orders if k not in acked and keys.get(k, 0) == 1),
         "unsent": sum(1 for k in keys if k not in orders)}
    if h["acked_missing"] or h["acked_doubled"] or h["unacked_doubled"] or h["unsent"]:
        fail(f"{m}'s store against the client's log: {h['acked_missing']} acknowledged "
             f"orders missing, {h['acked_doubled']} stored twice, {h['unacked_doubled']} "
             f"unacknowledged stored twice, {h['unsent']} stored that the client never sent")
    history[m] = h
history = dict(history[leader], orders=len(orders), acked=len(acked),
               unacked=len(orders) - len(acked),
               replayed=sum(1 for k in acked if orders[k]["replayed"]),
               attempts=sum(o["attempts"] for o in orders.values()),
               checked_stores=["m1", "m2"])

acks = sorted((o["ack"], o["created_ms"]) for o in orders.values() if o["ack"] > 0)
kill_lines = [l.split() for l in open(f"{work}/kills.txt")]
rounds = []
for i, (k, killed, *times) in enumerate(kill_lines):
    t_kill, t_dead, t_lead, t_ack, t_restart, t_named = (int(t) // 1000 for t in times)
    nxt = int(kill_lines[i + 1][2]) // 1000 if i + 1 < len(kill_lines) else None
    # the first 201 for an order the new leader committed (after the death)
    new = [a for a, c in acks if a > t_kill and c * 1000 >= t_dead]
    if not new:
        fail(f"kill {k}: no 201 for an order committed after the kill")
    first_new = new[0]
    # 201s between the kill and that one: the dead leader's acks in flight,
    # or the new leader's answers from its key index for orders committed before
    between = sum(1 for a, c in acks if t_kill < a < first_new)
    gap, prev = 0, None
    for a, _ in acks:
        if nxt is not None and a >= nxt:
            break   # the next kill's
        if prev is not None and a > t_kill:
            gap = max(gap, a - prev)
        prev = a
    rounds.append({"kill": int(k), "killed": killed,
                   "takeover_ms": (first_new - t_kill) / 1000,
                   "longest_201_gap_ms": gap / 1000,
                   "leading_seen_ms": (t_lead - t_kill) / 1000,
                   "dead_after_ms": (t_dead - t_kill) / 1000,
                   "other_201s_before_first": between,
                   "rejoined_s": (t_named - t_restart) / 1e6})
if len(rounds) != int(kills):
    fail(f"{len(rounds)} kills recorded of {kills}")

def summary(values):
    v = sorted(values)
    n = len(v)
    med = v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2
    return {"count": n, "min": v[0], "median": med,
            "p90": v[max(0, math.ceil(0.9 * n) - 1)], "max": v[-1]}

run = json.load(open(f"{work}/load.json"))
if run["result"].get("errors"):
    fail(f"{run['result']['errors']} orders never got their 201 (refused or given up)")
run["failover"] = {
    "kills": int(kills), "rate": float(rate), "clients": int(clients),
    "settings": {"leader/ttl_s": int(ttl_s), "writer/sync_timeout_ms": int(sync_timeout_ms),
                 "writer/sync_fallback": "async", "link/heartbeat_ms": int(heartbeat_ms),
                 "link/timeout_ms": int(link_timeout_ms),
                 "gateway/ack_timeout_ms": int(ack_timeout_ms)},
    "target_ms": 3000,
    "takeover_ms": summary([r["takeover_ms"] for r in rounds]),
    "longest_201_gap_ms": summary([r["longest_201_gap_ms"] for r in rounds]),
    "rejoined_s": summary([r["rejoined_s"] for r in rounds]),
    "rounds": rounds, "history": history, "stores": stores,
    "load_command": open(f"{work}/command.txt").read().strip(),
}
json.dump(run, open(out, "w"), indent=1)
t = run["failover"]["takeover_ms"]
g = run["failover"]["longest_201_gap_ms"]
print(f"failover.sh: {kills} kills (ttl_s {ttl_s}): takeover median {t['median']:.0f} ms, "
      f"p90 {t['p90']:.0f} ms, max {t['max']:.0f} ms (target < 3000 ms: "
      f"{'met' if t['max'] < 3000 else 'missed'} by the max); longest gap between 201s: "
      f"median {g['median']:.0f} ms, max {g['max']:.0f} ms; "
      f"{history['orders']} orders, {history['acked']} acknowledged, each stored once on "
      f"both members (last seq {stores[leader]['last_seq']})")
for r in rounds:
    print(f"  kill {r['kill']:2d} ({r['killed']}): takeover {r['takeover_ms']:7.0f} ms, "
          f"longest gap {r['longest_201_gap_ms']:7.0f} ms, rejoined in {r['rejoined_s']:.1f} s")
