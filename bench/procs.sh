# procs.sh — processes for the bench scripts (run.sh, failover.sh), sourced
# by both: started in the background, remembered by name in pid_of, logged
# to $work/NAME.log, stopped by pid (never by name: other work shares this
# machine).  The sourcing script sets $work first; before sourcing, it may
# set log_append=1 (a name started again appends to its log, so offsets
# into it stay good) and stop_order=(NAME...) (stopped first, in this order,
# then the rest).
declare -A pid_of=()

start () {   # start NAME CMD...: logs to $work/NAME.log
    local name=$1; shift
    if [ "${log_append:-0}" = 1 ]; then
        "$@" >> "$work/$name.log" 2>&1 &
    else
        "$@" > "$work/$name.log" 2>&1 &
    fi
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
    for name in ${stop_order[@]+"${stop_order[@]}"} "${!pid_of[@]}"; do
        stop "$name"
    done
}
trap stop_all EXIT
trap 'exit 130' INT TERM
