#!/bin/bash
# bench/failover.sh — the takeover time of a writer group, kill after kill
# (issue 16; docs/failover.md).  run.sh's `failover` phase and
# bench_smoke (smoke.sh, 2 kills) run it.
#
#   failover.sh ORDERBUS ORDERBUS_BENCH WORKDIR [--kills N] [--rate R]
#               [--clients N] [--json FILE]
#
# On 127.0.0.1: a local etcd, a writer group of two members (m1, m2:
# each the other's synchronous standby, sync_fallback async, ttl_s 2,
# sync_timeout_ms 500: the settings docs/failover.md's timings are
# measured with), a gateway following both, and `orderbus-bench retry`
# placing R orders/s, each retried with its Idempotency-Key until 201.
# N rounds: kill -9 the leader under that load; the standby takes over;
# the killed member is started again on its data directory, rejoins as
# the new leader's standby (its unacknowledged tail moved aside) and the
# next kill waits until the leader names it in /sync (it has everything
# acknowledged).
#
# Takeover time: from the kill to the first 201 the client got for an
# order committed after the killed member was dead (its created_ms, the
# writer's clock on this host), so by the new leader.  Also the longest
# time between two 201s the client saw around each kill.  At the end,
# both stores are verified (`orderbus verify`: sound, same identity and
# last seq) and exported (`orderbus export`), and compared with the
# client's log: every acknowledged key stored exactly once, none stored
# twice, nothing stored that the client did not send.  Any failure:
# exit 1 with the reason and no JSON.  No etcd: exit 77 (skipped).
set -uo pipefail

ob=$1 bench=$2 work=$3
shift 3
kills=10 rate=100 clients=16 json=
while [ $# -gt 0 ]; do
    case $1 in
    --kills) kills=$2; shift ;;
    --rate) rate=$2; shift ;;
    --clients) clients=$2; shift ;;
    --json) json=$2; shift ;;
    *) echo "failover.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
    shift
done
src=$(cd "$(dirname "$0")/.." && pwd)
etcd_bin=${ETCD:-/usr/bin/etcd}
if [ ! -x "$etcd_bin" ]; then
    echo "failover.sh: SKIP: no etcd at $etcd_bin (apt-get install etcd-server, or set ETCD)"
    exit 77
fi
# The group's settings (docs/failover.md): a lease of 2 s, the new
# leader waits 500 ms for its (dead) standby before it acknowledges
# alone, nodes hear every 100 ms and drop a silent link after 1 s
ttl_s=2 sync_timeout_ms=500 heartbeat_ms=100 link_timeout_ms=1000 ack_timeout_ms=2000

rm -rf "$work" && mkdir -p "$work" || exit 1
declare -A pid_of=()

die () {
    echo "failover.sh: FAILED: $*" >&2
    for log in "$work"/*.log; do
        echo "--- $log (last lines)" >&2
        tail -8 "$log" >&2
    done
    exit 1
}

start () {   # start NAME CMD...: appends to $work/NAME.log
    local name=$1; shift
    "$@" >> "$work/$name.log" 2>&1 &
    pid_of[$name]=$!
}

stop () {   # stop NAME [SIG]: the signal (TERM), SIGKILL after 15 s
    local name=$1 pid=${pid_of[$1]:-}
    [ -n "$pid" ] || return 0
    kill "-${2:-TERM}" "$pid" 2>/dev/null
    for _ in $(seq 150); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    unset "pid_of[$name]"
}

stop_all () {
    local name
    for name in load gateway m1 m2 etcd; do
        stop "$name"
    done
}
trap stop_all EXIT
trap 'exit 130' INT TERM

now_ns () { date +%s%N; }
size () { stat -c %s "$work/$1.log" 2>/dev/null || echo 0; }

wait_log () {   # wait_log NAME TEXT FROM SECONDS: TEXT in NAME's log past byte FROM
    local end=$(( $(date +%s) + $4 ))
    while [ "$(date +%s)" -le "$end" ]; do
        tail -c "+$(( $3 + 1 ))" "$work/$1.log" 2>/dev/null | grep -qF -- "$2" && return 0
        sleep 0.05
    done
    return 1
}

wait_http () {   # wait_http URL SECONDS: 200
    for _ in $(seq $(( $2 * 10 ))); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$1")" = 200 ] && return 0
        sleep 0.1
    done
    return 1
}

# a 201 in the load's log for an order committed at or after MS
wait_ack_after () {   # wait_ack_after MS SECONDS
    local end=$(( $(date +%s) + $2 ))
    while [ "$(date +%s)" -le "$end" ]; do
        awk -v t="$1" '$4 > 0 && $8 >= t { found = 1; exit } END { exit !found }' \
            "$work/orders.log" && return 0
        sleep 0.05
    done
    return 1
}

port () { "$bench" port; }

# ---------------------------------------------------------------------
# etcd, the two members, the gateway

etcd_port=$(port) && etcd_peer=$(port) || die "no free port"
etcd_url=http://127.0.0.1:$etcd_port
start etcd "$etcd_bin" --name bench --data-dir "$work/etcd" \
    --listen-client-urls "$etcd_url" --advertise-client-urls "$etcd_url" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-cluster "bench=http://127.0.0.1:$etcd_peer" --log-level warn
wait_http "$etcd_url/health" 20 || die "etcd did not come up"

declare -A intake events sync repl
for m in m1 m2; do
    intake[$m]=tcp://127.0.0.1:$(port) events[$m]=tcp://127.0.0.1:$(port)
    sync[$m]=tcp://127.0.0.1:$(port) repl[$m]=tcp://127.0.0.1:$(port)
done
other () { [ "$1" = m1 ] && echo m2 || echo m1; }

start_member () {   # start_member NAME: on its data dir, the other its standby
    local m=$1 o
    o=$(other "$1")
    start "$m" "$ob" writer --data "$work/$m-data" --menu "$src/config/demo-menu.json" \
        --intake "${intake[$m]}" --events "${events[$m]}" --sync "${sync[$m]}" \
        --replicate "${repl[$m]}" --sync-replica "$o" \
        --sync-timeout-ms "$sync_timeout_ms" --sync-fallback async \
        --heartbeat-ms "$heartbeat_ms" --link-timeout-ms "$link_timeout_ms" \
        --leader-etcd "$etcd_url" --leader-group bench --leader-name "$m" \
        --leader-peers "${repl[$o]}" --leader-ttl-s "$ttl_s"
}

start_member m1
wait_log m1 "member m1: leading" 0 20 || die "m1 did not lead"
start_member m2
wait_log m1 "/sync names m2" 0 30 || die "m1 did not name m2 in /sync"

"$ob" token --secret-file "$work/secret" --create-secret --staff kitchen > /dev/null 2>&1 \
    || die "cannot create $work/secret"
gw=$(port) || die "no free port"
start gateway "$ob" gateway --intake "${intake[m1]},${intake[m2]}" \
    --events "${events[m1]},${events[m2]}" --sync "${sync[m1]},${sync[m2]}" \
    --http-port "$gw" --name gw1 --secret-file "$work/secret" \
    --table-rate 1000 --table-burst 10000 --heartbeat-ms "$heartbeat_ms" \
    --link-timeout-ms "$link_timeout_ms" --ack-timeout-ms "$ack_timeout_ms"
wait_http "http://127.0.0.1:$gw/healthz" 20 || die "the gateway never became healthy"

# ---------------------------------------------------------------------
# The load, and the kills

load_cmd=("$bench" retry --label "writer group" --url "http://127.0.0.1:$gw"
          --rate "$rate" --clients "$clients" --secret-file "$work/secret" --tables 100
          --duration 86400 --retry-for 60 --timeout 5000 --log "$work/orders.log"
          --json "$work/load.json")
echo "${load_cmd[*]}" | sed -e "s|$(dirname "$bench")/||" -e "s|$work/|WORK/|g" \
    > "$work/command.txt"
start load "${load_cmd[@]}"
sleep 2
awk '$4 > 0 { n++ } END { exit n < 10 }' "$work/orders.log" \
    || die "the load got fewer than 10 201s in its first 2 s"

leader=m1 standby=m2
: > "$work/kills.txt"
for k in $(seq "$kills"); do
    from=$(size "$standby")
    t_kill=$(now_ns)
    kill -9 "${pid_of[$leader]}"
    wait "${pid_of[$leader]}" 2>/dev/null
    t_dead=$(now_ns)
    unset "pid_of[$leader]"
    wait_log "$standby" "member $standby: leading" "$from" 20 \
        || die "kill $k: $standby did not lead within 20 s of the kill of $leader"
    t_lead=$(now_ns)
    wait_ack_after $(( t_dead / 1000000 )) 20 \
        || die "kill $k: no order committed by $standby was acknowledged within 20 s"
    t_ack=$(now_ns)
    # The killed member back, on its data dir: it follows the new leader
    from=$(size "$standby")
    t_restart=$(now_ns)
    start_member "$leader"
    wait_log "$standby" "/sync names $leader" "$from" 120 \
        || die "kill $k: $standby never named $leader in /sync (not caught up in 120 s)"
    t_named=$(now_ns)
    echo "$k $leader $t_kill $t_dead $t_lead $t_ack $t_restart $t_named" >> "$work/kills.txt"
    printf 'failover.sh: kill %d: %s killed; %s leads (seen %d ms after the kill); %s named in /sync %.1f s after its restart\n' \
        "$k" "$leader" "$standby" $(( (t_lead - t_kill) / 1000000 )) "$leader" \
        "$(echo "($t_named - $t_restart) / 1000000000" | bc -l)"
    leader=$standby standby=$(other "$standby")
    sleep 1   # both members up, the load steady, before the next kill
done

# Every order begun gets its 201 (or its --retry-for runs out) first
stop load TERM
[ -s "$work/load.json" ] || die "the load did not finish (no $work/load.json)"
stop gateway
stop "$standby"
stop "$leader"
stop etcd

# ---------------------------------------------------------------------
# The stores against the client's log

for m in m1 m2; do
    "$ob" verify --data "$work/$m-data" > "$work/$m.verify" 2>&1 \
        || die "orderbus verify of $m's store: $(tail -3 "$work/$m.verify")"
    "$ob" export --data "$work/$m-data" --output "$work/$m.csv" 2> "$work/$m.export.err" \
        || die "orderbus export of $m's store: $(cat "$work/$m.export.err")"
done
python3 - "$work" "$leader" "$kills" "$rate" "$clients" "$ttl_s" "$sync_timeout_ms" \
    "$heartbeat_ms" "$link_timeout_ms" "$ack_timeout_ms" "${json:-$work/failover.json}" <<'PY'
import csv, json, math, re, sys
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
        if prev is not None and a > t_kill and (nxt is None or prev < nxt):
            gap = max(gap, a - prev)
        prev = a
        if a > first_new and (nxt is None or a >= nxt):
            break
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
PY
