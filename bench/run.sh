#!/bin/bash
# bench/run.sh — measure orderbus and its peers with the same tool, the
# same parameters and in the same run, then write bench/RESULTS.md.
#
#   bench/run.sh             full run (about 21 minutes on 2 cores, 8 of
#                            them the replica phase's 27 runs, under one
#                            the failover phase's 10 kills: failover.sh)
#   bench/run.sh --quick     shorter runs and fewer clients (about 10 min)
#
# Options:
#   --only LIST        comma-separated phases: disk,intake,replica,failover,
#                      http,e2e,fanout,connections (default: all)
#   --no-install       do not apt-get / npm install anything
#   --no-profile       do not record perf profiles
#   --build-dir DIR    (/tmp/orderbus-bench-build)
#   --work DIR         data and logs of the systems (/tmp/orderbus-bench-run)
#   --out DIR          where results/ and RESULTS.md go (this directory)
#
# Every system is started here, listens on 127.0.0.1 only, and is stopped
# (by pid) when its phase ends or the script exits.  Packages come from
# Debian (apt-get) and the npm registry only.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
quick=0
install=1
profile=1
only="disk,intake,replica,failover,http,e2e,fanout,connections"
build=/tmp/orderbus-bench-build
work=/tmp/orderbus-bench-run
out=$here
args="$*"

while [ $# -gt 0 ]; do
    case $1 in
    --quick) quick=1 ;;
    --only) only=$2; shift ;;
    --no-install) install=0 ;;
    --no-profile) profile=0 ;;
    --build-dir) build=$2; shift ;;
    --work) work=$2; shift ;;
    --out) out=$2; shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done

# Durations and sizes: the full run and the quick one use the same
# phases with smaller numbers.
if [ $quick = 1 ]; then
    dur=3; warm=1; fan_small=300; fan_big=600
    conn_tables=250; conn_pads=4; conn_kitchens=20; repl_rounds=3; fo_kills=10
else
    dur=10; warm=2; fan_small=1000; fan_big=2000
    conn_tables=2500; conn_pads=4; conn_kitchens=20; repl_rounds=3; fo_kills=10
fi

results=$out/results
ob=$build/orderbus
bench=$build/bench/orderbus-bench
floor_bin=$build/bench/orderbus-floor

log () { printf '\n=== %s\n' "$*" >&2; }
die () { echo "run.sh: $*" >&2; exit 1; }
has_phase () { [[ ",$only," == *",$1,"* ]]; }

# ---------------------------------------------------------------------
# Processes: started in the background, remembered by name, stopped by pid

. "$here/procs.sh"

wait_port () {   # wait_port PORT NAME: until something listens (max 20 s)
    for _ in $(seq 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        kill -0 "${pid_of[$2]}" 2>/dev/null || break
        sleep 0.1
    done
    tail -20 "$work/$2.log" >&2
    die "$2 did not come up on port $1"
}

wait_healthy () {   # wait_healthy PORT NAME [CA]: /healthz answers 200 (max 20 s),
                    # over https trusting CA when it is given
    local url="http://127.0.0.1:$1/healthz" ca=()
    [ -n "${3:-}" ] && { url="https://127.0.0.1:$1/healthz"; ca=(--cacert "$3"); }
    for _ in $(seq 200); do
        [ "$(curl -s "${ca[@]}" -o /dev/null -w '%{http_code}' "$url")" = 200 ] \
            && return 0
        sleep 0.1
    done
    tail -20 "$work/$2.log" >&2
    die "$2 on port $1 never became healthy"
}

port () { "$bench" port; }

# ---------------------------------------------------------------------
# Running the bench: every run writes results/NAME.json and NAME.txt and
# its exact command line goes to results/commands.txt

run () {   # run NAME MODE LABEL ARGS...
    local name=$1 mode=$2 label=$3; shift 3
    local cmd=("$bench" "$mode" --label "$label" --duration "$dur" --warmup "$warm"
               --json "$results/$name.json" "$@")
    log "$name"
    printf '%s\n' "${cmd[*]}" | sed -e "s|$build/bench/||" -e "s|$results/|results/|" \
        >> "$results/commands.txt"
    if "${cmd[@]}" 2> "$results/$name.err" | tee "$results/$name.txt"; then
        rm -f "$results/$name.err"   #  progress only; kept when a run fails
    else
        echo "run.sh: $name failed (see results/$name.err)" >&2
        tail -5 "$results/$name.err" >&2
    fi
}

# profiled PROFILE PID MODE ARGS...: after a measured run, the same load
# again for a few seconds with perf recording PID's stacks (software clock:
# no hardware counters in this VM).  Kept apart from the measured run
# because perf's sampling slows a process with thousands of threads.
# Writes results/profile-PROFILE.txt (flat) and -callers.txt (call graphs).
profiled () {
    [ $profile = 1 ] || return 0
    local name=$1 pid=$2 mode=$3; shift 3
    local data=$work/perf-$name.data
    log "profile-$name (not measured)"
    "$bench" "$mode" --duration 5 --warmup 1 --quiet --json "$work/profiled.json" \
        --profile "$pid:$data" "$@" > /dev/null 2>&1
    [ -f "$data" ] || return 0
    perf report --stdio --no-children -g none --percent-limit 0.5 --pid "$pid" --percentage relative \
        --sort dso,symbol -i "$data" 2>/dev/null | grep -v '^$' \
        > "$results/profile-$name.txt"
    perf report --stdio --no-children -g caller,0.5,callee --percent-limit 2 --percentage relative \
        --pid "$pid" --sort symbol -i "$data" 2>/dev/null | grep -v '^$' | head -400 \
        > "$results/profile-$name-callers.txt"
    rm -f "$data"
}

# ---------------------------------------------------------------------
# Install and build

install_packages () {
    local want=(cmake gcc pkg-config curl libzmq3-dev libczmq-dev libmsgpack-dev
                liblmdb-dev libjansson-dev libcivetweb-dev libsodium-dev libjemalloc-dev
                libmicrohttpd-dev etcd-server
                nats-server libnats-dev redis-server libhiredis-dev
                python3-fastapi python3-uvicorn python3-databases python3-aiosqlite
                python3-websockets python3-uvloop python3-httptools
                gnuplot-nox linux-perf)
    local missing=()
    for p in "${want[@]}"; do
        dpkg -s "$p" > /dev/null 2>&1 || missing+=("$p")
    done
    # node and npm may come from another nodejs build: ask for the commands
    command -v node > /dev/null || missing+=(nodejs)
    command -v npm > /dev/null || missing+=(npm)
    if [ ${#missing[@]} -gt 0 ]; then
        log "apt-get install ${missing[*]}"
        [ "$(id -u)" = 0 ] || die "need root to install: ${missing[*]}"
        apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            "${missing[@]}" || die "apt-get install failed"
    fi
    # redis-server's package may start a system instance: we never use it
    if [ ! -d "$here/peers/socketio/node_modules" ]; then
        log "npm ci (socket.io peer)"
        (cd "$here/peers/socketio" && npm ci --no-audit --no-fund) || die "npm ci failed"
    fi
}

build_all () {
    log "build into $build"
    grep -q 'add_subdirectory(bench)' "$src/CMakeLists.txt" \
        || die "$src/CMakeLists.txt does not add_subdirectory(bench)"
    cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DORDERBUS_TESTS=OFF -DORDERBUS_BENCH=ON > "$work/cmake.log" 2>&1 \
        && cmake --build "$build" -j2 >> "$work/cmake.log" 2>&1 \
        || { tail -30 "$work/cmake.log" >&2; die "build failed"; }
}

# ---------------------------------------------------------------------
# The systems

ob_ports () {
    intake=$(port); events=$(port); sync=$(port)
    ob_links=(--intake "tcp://127.0.0.1:$intake" --events "tcp://127.0.0.1:$events"
              --sync "tcp://127.0.0.1:$sync")
}

start_writer () {
    rm -rf "$work/ob-data"
    ob_ports
    start writer "$ob" writer --data "$work/ob-data" \
        --menu "$src/config/demo-menu.json" "${ob_links[@]}"
    wait_port "$events" writer
}

# The site secret: gateways and edges check tokens minted from it, and the
# bench mints its pad and kitchen tokens from it (orderbus runs as it would
# in production, authentication included)
make_secret () {
    secret=$work/secret
    [ -f "$secret" ] || "$ob" token --secret-file "$secret" --create-secret \
        --staff kitchen > /dev/null 2>&1 || die "cannot create $secret"
    ob_auth=(--secret-file "$secret")
}

# CURVE keys for the runs with encrypted, authenticated node links: the
# writer's, a gateway named gw1 and the bench's own gateway identity
# (its commands' origin must be its certificate's name)
make_keys () {
    keys=$work/keys
    rm -rf "$keys"; mkdir -p "$keys/allow"
    local who
    for who in writer:writer gw1:gateway bench:gateway; do
        "$ob" keys new --name "${who%%:*}" --role "${who##*:}" --out "$keys" \
            > /dev/null || die "orderbus keys new ${who%%:*} failed"
    done
    cp "$keys/gw1.cert" "$keys/bench.cert" "$keys/allow/"
    curve_writer=(--cert "$keys/writer.cert_secret" --allow "$keys/allow")
    curve_client=(--writer-key "$keys/writer.cert")
}

start_writer_curve () {
    rm -rf "$work/ob-data"
    ob_ports
    start writer "$ob" writer --data "$work/ob-data" \
        --menu "$src/config/demo-menu.json" "${ob_links[@]}" "${curve_writer[@]}"
    wait_port "$events" writer
}

# The per-table limit (2 orders/s by default) is raised to its maximum:
# the bench spreads its orders over 1,000 tables, so at 2,000 orders/s a
# table places 2 a second, but the closed-loop runs go far faster.
start_gateway () {   # start_gateway NAME PORT
    start "$1" "$ob" gateway "${ob_links[@]}" --http-port "$2" --name "$1" \
        "${ob_auth[@]}" --table-rate 1000 --table-burst 10000
    wait_port "$2" "$1"
    wait_healthy "$2" "$1"
}

# Seats for the connections phase's 10,020 browsers (a thread each), all
# from this one address, and the default 64 threads for everything else.
start_edge () {   # start_edge PORT
    start edge "$ob" edge "${ob_links[@]}" --http-port "$1" --max-clients 10100 \
        --max-per-ip 10100 "${ob_auth[@]}"
    wait_port "$1" edge
    wait_healthy "$1" edge
}

start_redis () {
    rm -rf "$work/redis" && mkdir -p "$work/redis"
    redis_port=$(port)
    start redis redis-server "$here/peers/redis/redis.conf" --port "$redis_port" \
        --dir "$work/redis"
    wait_port "$redis_port" redis
}

start_nats () {
    rm -rf "$work/nats" && mkdir -p "$work/nats"
    nats_port=$(port)
    start nats nats-server -c "$here/peers/nats/nats.conf" -p "$nats_port" \
        -sd "$work/nats"
    wait_port "$nats_port" nats
}

start_seed002 () {
    rm -rf "$work/seed002" && mkdir -p "$work/seed002"
    seed_port=$(port)
    start seed002 env BISTRO_DB="$work/seed002/bistro92.db" /usr/bin/python3 -m uvicorn \
        app:app --app-dir "$here/peers/seed002" --host 127.0.0.1 --port "$seed_port" \
        --log-level warning --no-access-log
    wait_port "$seed_port" seed002
}

start_socketio () {   # needs redis
    sio_port=$(port)
    start socketio env PORT="$sio_port" REDIS_URL="redis://127.0.0.1:$redis_port" \
        node "$here/peers/socketio/server.js"
    wait_port "$sio_port" socketio
}

seed_body='{"table":"{table} {tag}","items":[{"name":"Burger","quantity":2},{"name":"French Onion Soup","quantity":1}]}'
sio_url () { echo "ws://127.0.0.1:$sio_port/socket.io/?EIO=4&transport=websocket"; }

# ---------------------------------------------------------------------
# Phases

phase_disk () {
    run disk-fsync disk disk --dir "$work"
}

phase_intake () {
    start_writer
    for n in 1 256 4096; do
        run "intake-orderbus-$n" intake orderbus --target orderbus "${ob_links[@]:0:4}" \
            --inflight $n --watch "writer:${pid_of[writer]}" --count-syncs
    done
    profiled intake-writer "${pid_of[writer]}" intake --target orderbus \
        "${ob_links[@]:0:4}" --inflight 4096
    stop writer
    start_writer_curve
    for n in 256 4096; do
        run "intake-curve-$n" intake orderbus+curve --target orderbus "${ob_links[@]:0:4}" \
            --origin bench --cert "$keys/bench.cert_secret" "${curve_client[@]}" \
            --inflight $n --watch "writer:${pid_of[writer]}"
    done
    stop writer
    start_redis
    for n in 1 256 4096; do
        run "intake-redis-$n" intake redis --target redis --redis "127.0.0.1:$redis_port" \
            --inflight $n --clients 8 --watch "redis:${pid_of[redis]}" --count-syncs
    done
    stop redis
    start_nats
    for n in 1 256 4096; do
        run "intake-nats-$n" intake nats --target nats --nats "nats://127.0.0.1:$nats_port" \
            --inflight $n --watch "nats:${pid_of[nats]}" --count-syncs
    done
    stop nats
}

# The intake measurement again (same tool, same sizes), against a lone
# writer, a writer with an asynchronous replica and one with a
# synchronous replica (writer/sync_replica), in interleaved rounds: for
# each round and size the three run back to back, each on a fresh data
# directory (writer and replica) under $work, the disk the intake phase
# uses, so machine noise hits them alike.  report.py takes the medians.
# Every run with a replica must end with the replica holding the
# writer's log to its last seq, or the phase stops the whole run: no
# figure from a replica that fell behind or fell over.
start_repl_writer () {   # start_repl_writer lone|async|sync
    local how=$1 dir=$work/repl-$1
    rm -rf "$dir" "$dir-replica"
    ob_ports
    local repl=()
    if [ "$how" != lone ]; then
        replicate=$(port)
        repl=(--replicate "tcp://127.0.0.1:$replicate")
        [ "$how" = sync ] && repl+=(--sync-replica r1)
    fi
    start writer "$ob" writer --data "$dir" --menu "$src/config/demo-menu.json" \
        "${ob_links[@]}" "${repl[@]}"
    wait_port "$events" writer
    [ "$how" = lone ] && return 0
    start replica "$ob" replica --data "$dir-replica" --replica-name r1 \
        --upstream "tcp://127.0.0.1:$replicate"
    # attached: the writer counts it among its replicas
    "$bench" stats "tcp://127.0.0.1:$sync" --caught-up 20 > /dev/null \
        || { tail -20 "$work/replica.log" >&2; die "replica r1 never attached"; }
}

# lag_sampler FILE: the writer's stats every 0.5 s, one JSON a line,
# until killed (the lone writer's too, so the three carry the same load)
lag_sampler () {
    while :; do
        "$bench" stats "tcp://127.0.0.1:$sync" >> "$1" 2> /dev/null
        sleep 0.5
    done
}

# repl_check NAME HOW: after the run, the replica catches up (30 s at
# most), then both stop and `orderbus verify` reads both stores: sound,
# the same identity, the same last seq.  Writes $work/NAME.end.json.
repl_check () {
    local name=$1 how=$2 dir=$work/repl-$2 t0
    t0=$(date +%s.%N)
    if [ "$how" != lone ] && ! "$bench" stats "tcp://127.0.0.1:$sync" --caught-up 30 \
        > "$work/$name.end.json"; then
        rm -f "$results/$name.json"
        tail -20 "$work/replica.log" >&2
        die "$name: the replica did not catch up with the writer (above); no figure kept"
    fi
    [ "$how" = lone ] && "$bench" stats "tcp://127.0.0.1:$sync" > "$work/$name.end.json"
    caught_s=$(echo "$(date +%s.%N) - $t0" | bc)
    stop replica; stop writer
    "$ob" verify --data "$dir" > "$work/$name.verify-writer" 2>&1 \
        || die "$name: orderbus verify of the writer's store failed: $(tail -3 "$work/$name.verify-writer")"
    [ "$how" = lone ] && { rm -rf "$dir"; return 0; }
    "$ob" verify --data "$dir-replica" > "$work/$name.verify-replica" 2>&1 \
        || die "$name: orderbus verify of the replica's store failed: $(tail -3 "$work/$name.verify-replica")"
    local w r
    w=$(grep -E '^(identity|last seq):' "$work/$name.verify-writer")
    r=$(grep -E '^(identity|last seq):' "$work/$name.verify-replica")
    [ -n "$w" ] && [ "$w" = "$r" ] || {
        rm -f "$results/$name.json"
        die "$name: the replica's store differs from the writer's: writer $(echo $w), replica $(echo $r)"
    }
    rm -rf "$dir" "$dir-replica"   # up to a GB or two each at full speed
}

# repl_annotate NAME HOW: add what the writer said (lag while loaded, at
# the end, the catch-up, its batches) and the stores' last seqs to the
# run's results/NAME.json, for report.py
repl_annotate () {
    [ -f "$results/$1.json" ] || return 0
    python3 - "$results/$1.json" "$2" "$work/$1.lag.jsonl" "$work/$1.end.json" \
        "$work/$1.verify-writer" "$work/$1.verify-replica" "$caught_s" <<'PY'
import json, os, re, sys
path, how, lag, end, vw, vr, caught = sys.argv[1:]
def samples(p):
    out = []
    for line in open(p) if os.path.exists(p) else []:
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out
def replica(s):
    r = ((s or {}).get("replication") or {}).get("replicas") or []
    return r[0] if r else {}
def last_seq(p):
    m = re.search(r"^last seq:\s+(\d+)", open(p).read(), re.M) if os.path.exists(p) else None
    return int(m.group(1)) if m else None
loaded = samples(lag)
end_stats = (samples(end) or [None])[-1] or {}
run = json.load(open(path))
run["replication"] = {
    "config": how,
    "samples": len(loaded),
    "max_lag_seqs": max((replica(s).get("lag_seqs", 0) for s in loaded), default=None),
    "max_lag_ms": max((replica(s).get("lag_ms", 0) for s in loaded), default=None),
    "last_lag_seqs": replica(loaded[-1]).get("lag_seqs") if loaded else None,
    "last_lag_ms": replica(loaded[-1]).get("lag_ms") if loaded else None,
    "caught_up_s": float(caught),
    "writer_batches": end_stats.get("batches"),
    "writer_commands": end_stats.get("commands"),
    "sync": ((end_stats.get("replication") or {}).get("sync")),
    "writer_last_seq": last_seq(vw),
    "replica_last_seq": last_seq(vr) if how != "lone" else None,
}
json.dump(run, open(path, "w"), indent=1)
PY
}

declare -A repl_label=([lone]="lone writer" [async]="async replica"
                       [sync]="sync replica")

phase_replica () {
    local round n how name sampler
    for round in $(seq "$repl_rounds"); do
        for n in 1 256 4096; do
            for how in lone async sync; do
                name=replica-$how-$n-r$round
                start_repl_writer "$how"
                local w=(--watch "writer:${pid_of[writer]}")
                [ "$how" != lone ] && w+=(--watch "replica:${pid_of[replica]}")
                rm -f "$work/$name.lag.jsonl"
                lag_sampler "$work/$name.lag.jsonl" &
                sampler=$!
                run "$name" intake "${repl_label[$how]}" --target orderbus "${ob_links[@]:0:4}" \
                    --inflight $n "${w[@]}" --count-syncs
                kill "$sampler"; wait "$sampler" 2> /dev/null
                repl_check "$name" "$how"
                repl_annotate "$name" "$how"
            done
        done
    done
}

# A writer group of two members through a local etcd, a gateway following
# both, and orders at 100/s each retried with its key until 201: the
# leader killed (-9) fo_kills times, the takeover timed each time, the
# killed member rejoining as standby (named in /sync) before the next
# kill; then both stores against the client's log (failover.sh says
# how).  A lost or doubled acknowledged order stops the whole run.  No
# etcd: the phase is skipped, and says so.
phase_failover () {
    local cmd=(bash "$here/failover.sh" "$ob" "$bench" "$work/failover" --kills "$fo_kills"
               --rate 100 --clients 16 --json "$results/failover.json")
    log "failover ($fo_kills kills)"
    printf '%s\n' "${cmd[*]}" | sed -e "s|$build/bench/||" -e "s|$build/||" \
        -e "s|$here/||" -e "s|$results/|results/|" -e "s|$work/|WORK/|" >> "$results/commands.txt"
    "${cmd[@]}" | tee "$results/failover.txt"
    case ${PIPESTATUS[0]} in
    0) ;;
    77) log "failover: SKIPPED: no etcd (/usr/bin/etcd: apt-get install etcd-server)"
        rm -f "$results/failover.txt" ;;
    *) rm -f "$results/failover.json"
       die "failover: the phase failed (above); no figure kept" ;;
    esac
}

phase_http () {
    start_writer
    local gw1 gw2
    gw1=$(port); gw2=$(port)
    start_gateway gw1 "$gw1"
    local watch=(--watch "gateway:${pid_of[gw1]}" --watch "writer:${pid_of[writer]}"
                 "${ob_auth[@]}" --tables 1000)
    run http-orderbus-c1 http orderbus --url "http://127.0.0.1:$gw1" --clients 1 "${watch[@]}"
    run http-orderbus-c50 http orderbus --url "http://127.0.0.1:$gw1" --clients 50 \
        "${watch[@]}" --count-syncs
    profiled http-gateway "${pid_of[gw1]}" http --url "http://127.0.0.1:$gw1" \
        --clients 50 "${ob_auth[@]}" --tables 1000
    run http-orderbus-r100 http orderbus --url "http://127.0.0.1:$gw1" --rate 100 \
        --clients 10 "${watch[@]}"
    run http-orderbus-r2000 http orderbus --url "http://127.0.0.1:$gw1" --rate 2000 \
        --clients 50 "${watch[@]}"
    start_gateway gw2 "$gw2"
    run http-orderbus-2gw-c100 http orderbus --url "http://127.0.0.1:$gw1" \
        --url "http://127.0.0.1:$gw2" --clients 100 "${watch[@]}" \
        --watch "gateway2:${pid_of[gw2]}" --count-syncs
    stop gw2; stop gw1; stop writer
    start_writer_curve
    start "gw1" "$ob" gateway "${ob_links[@]}" --http-port "$gw1" --name gw1 \
        "${ob_auth[@]}" --table-rate 1000 --table-burst 10000 \
        --cert "$keys/gw1.cert_secret" "${curve_client[@]}"
    wait_port "$gw1" gw1
    wait_healthy "$gw1" gw1
    run http-curve-c50 http orderbus+curve --url "http://127.0.0.1:$gw1" --clients 50 \
        --watch "gateway:${pid_of[gw1]}" --watch "writer:${pid_of[writer]}" \
        "${ob_auth[@]}" --tables 1000
    stop gw1; stop writer
    # HTTPS: the same load through a gateway on TLS, with a pair from
    # `orderbus tls new` that the bench trusts alone (links plaintext)
    local tls=$work/tls
    rm -rf "$tls"; mkdir -p "$tls"
    "$ob" tls new --cert "$tls/tls.crt" --key "$tls/tls.key" 2> /dev/null \
        || die "orderbus tls new failed"
    start_writer
    start "gw1" "$ob" gateway "${ob_links[@]}" --http-port "$gw1" --name gw1 \
        "${ob_auth[@]}" --table-rate 1000 --table-burst 10000 \
        --tls-cert "$tls/tls.crt" --tls-key "$tls/tls.key"
    wait_port "$gw1" gw1
    wait_healthy "$gw1" gw1 "$tls/tls.crt"
    run http-tls-c50 http orderbus+tls --url "https://127.0.0.1:$gw1" --ca "$tls/tls.crt" \
        --clients 50 --watch "gateway:${pid_of[gw1]}" --watch "writer:${pid_of[writer]}" \
        "${ob_auth[@]}" --tables 1000
    stop gw1; stop writer

    # The floor: an HTTP server answering a fixed 201 and doing no other
    # work, civetweb as the gateway runs it and libmicrohttpd (epoll); then
    # each answering only when a second thread says so (the gateway's wait
    # for its ack)
    local floor server how
    for server in civetweb mhd; do
        for how in noop handoff; do
            floor=$(port)
            start floor "$floor_bin" --port "$floor" --server $server \
                $([ $how = handoff ] && echo --handoff)
            wait_port "$floor" floor
            run "http-$server-$how-c50" http "$server-$how" --url "http://127.0.0.1:$floor" \
                --clients 50 --tables 1000 --watch "$server:${pid_of[floor]}"
            stop floor
        done
    done

    start_seed002
    local sw=(--watch "seed002:${pid_of[seed002]}" --tables 1000)
    local s=(--url "http://127.0.0.1:$seed_port" --path /api/order --body "$seed_body")
    run http-seed002-c1 http seed002 "${s[@]}" --clients 1 "${sw[@]}"
    run http-seed002-c50 http seed002 "${s[@]}" --clients 50 "${sw[@]}" --count-syncs
    run http-seed002-r100 http seed002 "${s[@]}" --rate 100 --clients 10 "${sw[@]}"
    stop seed002
}

phase_e2e () {
    start_writer
    local gw edge
    gw=$(port); edge=$(port)
    start_gateway gw1 "$gw"
    start_edge "$edge"
    local w=(--watch "gateway:${pid_of[gw1]}" --watch "edge:${pid_of[edge]}"
             --watch "writer:${pid_of[writer]}" "${ob_auth[@]}" --tables 1000)
    local o=(--url "http://127.0.0.1:$gw" --sub ws --sub-url "ws://127.0.0.1:$edge/ws")
    run e2e-orderbus-c1 e2e orderbus "${o[@]}" --clients 1 "${w[@]}"
    run e2e-orderbus-r2000 e2e orderbus "${o[@]}" --rate 2000 --clients 50 "${w[@]}"
    stop edge; stop gw1; stop writer

    start_seed002
    local s=(--url "http://127.0.0.1:$seed_port" --path /api/order --body "$seed_body"
             --sub ws --sub-url "ws://127.0.0.1:$seed_port/ws/orders"
             --watch "seed002:${pid_of[seed002]}" --tables 1000)
    run e2e-seed002-c1 e2e seed002 "${s[@]}" --clients 1
    run e2e-seed002-r50 e2e seed002 "${s[@]}" --rate 50 --clients 10
    stop seed002
}

# fanout_all N: N clients in one room, 100 events/s, every system
fanout_all () {
    local n=$1 edge
    local f=(fanout --kitchens "$n" --rate 100 --threads 2)
    start_writer
    edge=$(port)
    start_edge "$edge"
    run "fanout-orderbus-$n" "${f[0]}" orderbus "${f[@]:1}" --pub intake "${ob_links[@]:0:4}" \
        --sub ws --sub-url "ws://127.0.0.1:$edge/ws" "${ob_auth[@]}" \
        --watch "edge:${pid_of[edge]}" --watch "writer:${pid_of[writer]}"
    [ "$n" = "$fan_small" ] && profiled fanout-edge "${pid_of[edge]}" "${f[@]}" \
        --pub intake "${ob_links[@]:0:4}" --sub ws --sub-url "ws://127.0.0.1:$edge/ws" \
        "${ob_auth[@]}"
    stop edge; stop writer

    start_redis
    start_socketio
    run "fanout-socketio-$n" "${f[0]}" socketio "${f[@]:1}" --pub socketio \
        --pub-url "$(sio_url)" --sub socketio --sub-url "$(sio_url)" \
        --watch "socketio:${pid_of[socketio]}" --watch "redis:${pid_of[redis]}"
    stop socketio
    run "fanout-redis-$n" "${f[0]}" redis "${f[@]:1}" --pub redis \
        --pub-url "redis://127.0.0.1:$redis_port" --sub redis \
        --sub-url "redis://127.0.0.1:$redis_port" --watch "redis:${pid_of[redis]}"
    stop redis

    start_nats
    run "fanout-nats-$n" "${f[0]}" nats "${f[@]:1}" --pub nats \
        --pub-url "nats://127.0.0.1:$nats_port" --sub nats \
        --sub-url "nats://127.0.0.1:$nats_port" --watch "nats:${pid_of[nats]}"
    stop nats
}

phase_fanout () {
    fanout_all "$fan_small"
    fanout_all "$fan_big"
    # seed 002 broadcasts from Python, one send at a time: measured once,
    # at the smaller size, through its own HTTP intake
    start_seed002
    run "fanout-seed002-$fan_small" fanout seed002 --kitchens "$fan_small" --rate 100 \
        --threads 2 --pub http --url "http://127.0.0.1:$seed_port" --path /api/order \
        --body "$seed_body" --clients 10 --sub ws \
        --sub-url "ws://127.0.0.1:$seed_port/ws/orders" --watch "seed002:${pid_of[seed002]}"
    stop seed002
}

phase_connections () {
    local c=(fanout --tables "$conn_tables" --pads "$conn_pads" --kitchens "$conn_kitchens"
             --rate 500 --threads 2 --connect-rate 2000)
    local edge
    start_writer
    edge=$(port)
    start_edge "$edge"
    run connections-orderbus "${c[0]}" orderbus "${c[@]:1}" --pub intake \
        "${ob_links[@]:0:4}" --sub ws --sub-url "ws://127.0.0.1:$edge/ws" "${ob_auth[@]}" \
        --watch "edge:${pid_of[edge]}" --watch "writer:${pid_of[writer]}"
    profiled connections-edge "${pid_of[edge]}" "${c[@]}" --pub intake \
        "${ob_links[@]:0:4}" --sub ws --sub-url "ws://127.0.0.1:$edge/ws" "${ob_auth[@]}"
    stop edge; stop writer

    start_redis
    start_socketio
    run connections-socketio "${c[0]}" socketio "${c[@]:1}" --pub socketio \
        --pub-url "$(sio_url)" --sub socketio --sub-url "$(sio_url)" \
        --watch "socketio:${pid_of[socketio]}" --watch "redis:${pid_of[redis]}"
    stop socketio; stop redis
}

# ---------------------------------------------------------------------
# Machine and versions, for the report

write_meta () {
    local commit dirty
    # ORDERBUS_COMMIT names the commit when the tree is an export without .git
    commit=${ORDERBUS_COMMIT:-$(git -C "$src" rev-parse HEAD 2>/dev/null || echo unknown)}
    dirty=$(git -C "$src" status --porcelain 2>/dev/null | grep -v ' bench/' | grep -c . || true)
    python3 - "$results/meta.json" <<EOF
import json, os, platform, subprocess, sys, time
def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True,
                              timeout=20).stdout.strip()
    except Exception:
        return ""
meta = {
  "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
  "command": "bench/run.sh $args".strip(),
  "quick": $quick, "duration_s": $dur, "warmup_s": $warm,
  "commit": "$commit", "uncommitted_files": int("$dirty" or 0),
  "cpu": sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip(),
  "cores": os.cpu_count(),
  "memory": sh("free -h | awk '/Mem:/{print \$2}'"),
  "kernel": platform.release(),
  "os": sh(". /etc/os-release && echo \$PRETTY_NAME"),
  "disk": sh("df -h $work | tail -1 | awk '{print \$1\" (\"\$2\")\"}'"),
  "filesystem": sh("findmnt -no FSTYPE -T $work || stat -f -c %T $work"),
  "load_before": sh("cat /proc/loadavg"),
  "versions": {
    "redis": sh("redis-server --version | cut -d' ' -f3"),
    "nats-server": sh("nats-server --version"),
    "libnats": sh("pkg-config --modversion libnats"),
    "hiredis": sh("pkg-config --modversion hiredis"),
    "python": sh("/usr/bin/python3 --version"),
    "fastapi/uvicorn/databases/aiosqlite": sh("/usr/bin/python3 -c 'import fastapi,uvicorn,databases,aiosqlite,sqlite3;print(fastapi.__version__,uvicorn.__version__,databases.__version__,aiosqlite.__version__,\"sqlite\",sqlite3.sqlite_version)'"),
    "node": sh("node --version"),
    "socket.io": sh("node -p \"require('$here/peers/socketio/node_modules/socket.io/package.json').version\""),
    "@socket.io/redis-adapter": sh("node -p \"require('$here/peers/socketio/node_modules/@socket.io/redis-adapter/package.json').version\""),
    "libzmq": sh("pkg-config --modversion libzmq"),
    "czmq": sh("pkg-config --modversion libczmq"),
    "lmdb": sh("pkg-config --modversion lmdb"),
    "civetweb": sh("dpkg-query -W -f='\${Version}' libcivetweb-dev"),
    "orderbus": sh("$ob --version"),
  },
}
json.dump(meta, open(sys.argv[1], "w"), indent=1)
EOF
}

# ---------------------------------------------------------------------

mkdir -p "$work" || die "cannot create $work"
[ $install = 1 ] && install_packages
build_all
[ -x "$bench" ] || die "no $bench after the build"
rm -f "$work/secret"
make_secret
make_keys
ulimit -n "$(ulimit -Hn)" 2>/dev/null
mkdir -p "$results"
rm -f "$results"/*.json "$results"/*.txt "$results"/*.err "$results"/*.png "$results"/*.dat
: > "$results/commands.txt"
write_meta
started=$(date +%s)
for phase in disk intake replica failover http e2e fanout connections; do
    has_phase "$phase" && "phase_$phase"
done
log "measured in $(( $(date +%s) - started )) s; writing the report"
python3 "$here/report.py" --results "$results" --notes "$here/notes.md" \
    --out "$out/RESULTS.md" || die "report failed"
rm -f "$results"/*.dat   # the plots' data, drawn into results/*.png
log "wrote $out/RESULTS.md"
