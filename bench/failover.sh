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
# m1 and m2 start again: their logs grow, wait_log's offsets stay good
log_append=1 stop_order=(load gateway m1 m2 etcd)
. "$(dirname "$0")/procs.sh"

die () {
    echo "failover.sh: FAILED: $*" >&2
    for log in "$work"/*.log; do
        echo "--- $log (last lines)" >&2
        tail -8 "$log" >&2
    done
    exit 1
}

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
python3 "$(dirname "$0")/failover_check.py" "$work" "$leader" "$kills" "$rate" \
    "$clients" "$ttl_s" "$sync_timeout_ms" "$heartbeat_ms" "$link_timeout_ms" "$ack_timeout_ms" "${json:-$work/failover.json}"
