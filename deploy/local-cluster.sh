#!/usr/bin/env bash
# A three-node O11y cluster of local processes on 127.0.0.1, for trying clustering out.
#
#   deploy/local-cluster.sh start    start nodes 1-3 (node 1 bootstraps, 2 and 3 --join it),
#                                    then wait until all three are voters
#   deploy/local-cluster.sh stop     SIGTERM every node (graceful: checkpoints the engines)
#   deploy/local-cluster.sh status   which processes run, and the cluster's own view
#   deploy/local-cluster.sh restart  stop, then start (data is kept)
#
# Node i listens for HTTP on 127.0.0.1:$((HTTP_BASE + i - 1)) (default 9091-9093) and for
# node-to-node gRPC on 127.0.0.1:$((CLUSTER_BASE + i - 1)) (default 9191-9193), and for OTLP
# on 127.0.0.1:$((OTLP_GRPC_BASE + i - 1)) (gRPC, default 4317-4319) and
# 127.0.0.1:$((OTLP_HTTP_BASE + i - 1)) (HTTP, default 4417-4419; OTLP/HTTP is also served on
# the node's HTTP port).
# Environment:
#   O11Y_BIN           the o11y binary (default: o11y on PATH, else target/release/o11y,
#                      else target/debug/o11y of this checkout)
#   O11Y_CLUSTER_DIR   data, pid files and logs (default ./o11y-cluster):
#                      node-N/ (data), run/node-N.pid, logs/node-N.log
#   O11Y_HTTP_BASE     first HTTP port (default 9091)
#   O11Y_CLUSTER_BASE  first node-to-node port (default 9191)
#   O11Y_OTLP_GRPC_BASE, O11Y_OTLP_HTTP_BASE  first OTLP ports (default 4317, 4417)
#   O11Y_START_TIMEOUT seconds to wait for the cluster to form (default 60)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
dir="${O11Y_CLUSTER_DIR:-$PWD/o11y-cluster}"
http_base="${O11Y_HTTP_BASE:-9091}"
cluster_base="${O11Y_CLUSTER_BASE:-9191}"
otlp_grpc_base="${O11Y_OTLP_GRPC_BASE:-4317}"
otlp_http_base="${O11Y_OTLP_HTTP_BASE:-4417}"
start_timeout="${O11Y_START_TIMEOUT:-60}"
nodes=(1 2 3)

find_bin() {
    if [[ -n "${O11Y_BIN:-}" ]]; then
        echo "$O11Y_BIN"
    elif command -v o11y >/dev/null 2>&1; then
        command -v o11y
    elif [[ -x "$root/target/release/o11y" ]]; then
        echo "$root/target/release/o11y"
    elif [[ -x "$root/target/debug/o11y" ]]; then
        echo "$root/target/debug/o11y"
    else
        echo "local-cluster: no o11y binary; build one (cargo build --release -p o11y-server) or set O11Y_BIN" >&2
        exit 1
    fi
}

http_addr() { echo "127.0.0.1:$((http_base + $1 - 1))"; }
cluster_addr() { echo "127.0.0.1:$((cluster_base + $1 - 1))"; }
pid_file() { echo "$dir/run/node-$1.pid"; }

# The pid of node $1 when it runs (an o11y process), else nothing.
running_pid() {
    local f pid
    f="$(pid_file "$1")"
    [[ -f "$f" ]] || return 0
    pid="$(cat "$f")"
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q o11y; then
        echo "$pid"
    fi
}

start_node() {
    local i="$1" bin="$2" pid
    pid="$(running_pid "$i")"
    if [[ -n "$pid" ]]; then
        echo "node $i already runs (pid $pid)"
        return
    fi
    local args=(serve --node-id "$i" --data-dir "$dir/node-$i"
        --http-listen "$(http_addr "$i")"
        --cluster-listen "$(cluster_addr "$i")" --cluster-advertise "$(cluster_addr "$i")"
        --otlp-grpc-listen "127.0.0.1:$((otlp_grpc_base + i - 1))"
        --otlp-http-listen "127.0.0.1:$((otlp_http_base + i - 1))")
    if [[ "$i" != 1 ]]; then
        # Any member will do; listing all of them lets a node restart while node 1 is down.
        local join="http://$(http_addr 1)"
        for j in "${nodes[@]}"; do
            [[ "$j" == 1 || "$j" == "$i" ]] || join="$join,http://$(http_addr "$j")"
        done
        args+=(--join "$join")
    fi
    nohup "$bin" "${args[@]}" >>"$dir/logs/node-$i.log" 2>&1 &
    echo $! >"$(pid_file "$i")"
    echo "node $i started (pid $!): http://$(http_addr "$i"), cluster $(cluster_addr "$i"), log $dir/logs/node-$i.log"
}

# True when node $2 reports three voters, each of which answers and knows a leader.
formed() {
    local out
    out="$("$1" cluster status --server "http://$(http_addr "$2")" --timeout 2s -o json 2>/dev/null)" || return 1
    [[ "$(grep -c '"voter": true' <<<"$out")" == 3 ]] &&
        ! grep -q '"status": null' <<<"$out" &&
        ! grep -q '"leader": null' <<<"$out"
}

start() {
    local bin
    bin="$(find_bin)"
    mkdir -p "$dir/run" "$dir/logs"
    for i in "${nodes[@]}"; do
        start_node "$i" "$bin"
    done
    local deadline=$((SECONDS + start_timeout))
    while true; do
        for i in "${nodes[@]}"; do
            if [[ -z "$(running_pid "$i")" ]]; then
                echo "node $i exited; see $dir/logs/node-$i.log:" >&2
                tail -n 20 "$dir/logs/node-$i.log" >&2
                exit 1
            fi
        done
        if formed "$bin" 1; then
            break
        fi
        if ((SECONDS >= deadline)); then
            echo "the cluster did not form within ${start_timeout}s; see $dir/logs" >&2
            exit 1
        fi
        sleep 0.5
    done
    "$bin" cluster status --server "http://$(http_addr 1)"
    echo "remote_write to any of: $(for i in "${nodes[@]}"; do printf 'http://%s/api/v1/write ' "$(http_addr "$i")"; done)"
}

stop() {
    local pid
    for i in "${nodes[@]}"; do
        pid="$(running_pid "$i")"
        if [[ -z "$pid" ]]; then
            rm -f "$(pid_file "$i")"
            continue
        fi
        kill -TERM "$pid"
        local deadline=$((SECONDS + 30))
        while kill -0 "$pid" 2>/dev/null; do
            if ((SECONDS >= deadline)); then
                echo "node $i (pid $pid) did not stop within 30s; sending SIGKILL" >&2
                kill -KILL "$pid" 2>/dev/null || true
                break
            fi
            sleep 0.2
        done
        rm -f "$(pid_file "$i")"
        echo "node $i stopped"
    done
}

status() {
    local bin pid any=""
    bin="$(find_bin)"
    for i in "${nodes[@]}"; do
        pid="$(running_pid "$i")"
        if [[ -n "$pid" ]]; then
            echo "node $i: running (pid $pid), http://$(http_addr "$i")"
            any="${any:-$i}"
        else
            echo "node $i: not running"
        fi
    done
    if [[ -n "$any" ]]; then
        "$bin" cluster status --server "http://$(http_addr "$any")" --timeout 5s
    else
        return 1
    fi
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
restart)
    stop
    start
    ;;
*)
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
