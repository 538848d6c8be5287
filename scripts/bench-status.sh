#!/usr/bin/env bash
# Measures `launch-tui status` on this machine against its targets: five instances of the
# fixture Vikunja in real containers (pve-lab, installed with scripts/try-local.sh), then the
# wall time of `status vikunja` and of `status --all` over RUNS runs each (min and mean), and
# the cost of one `pct exec` (what every in-container check pays) for context. Targets: 1 s for
# one instance, 3 s for five; the product's bar is 10 s.
#
#   sudo ./scripts/bench-status.sh [RUNS]     (default 5; after `cargo build --workspace`;
#                                             the lab is brought down afterwards)
#   BENCH_PREFIX=plabs BENCH_SUBNET=10.77.9.0/24 set the lab's host-side names and subnet;
#   BENCH_KEEP=1 keeps the lab (remove it with `LAUNCH_TRY_DIR=... scripts/try-local.sh down`).
set -euo pipefail

INSTANCES=5

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
need_cmd() { command -v "$1" >/dev/null 2>&1 || die "need '$1' (command not found)"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

bin_dir() { echo "${CARGO_TARGET_DIR:-$(cd "$(dirname "$0")/.." && pwd)/target}/debug"; }

launch() {
    PATH="$LAUNCH_TRY_DIR/lab/bin:$PATH" "$(bin_dir)/launch-tui" --config "$LAUNCH_TRY_DIR/config" \
        --host "https://127.0.0.1:$LAUNCH_TRY_PORT" \
        --fingerprint "$(cat "$LAUNCH_TRY_DIR/lab/fingerprint")" \
        --token-file "$LAUNCH_TRY_DIR/lab/token" "$@"
}

cleanup() {
    [ "${BENCH_KEEP:-}" = 1 ] && return
    "$here/try-local.sh" down >/dev/null 2>&1 || true
    rm -rf "$LAUNCH_TRY_DIR"
}

now_ms() { date +%s%3N; }

# Runs "$@" RUNS times; prints "min mean" in milliseconds. Every run must succeed (exit 0),
# or the figure would time an error path.
measure() {
    local runs=$1 i t0 t1 ms min='' sum=0
    shift
    for i in $(seq 1 "$runs"); do
        t0=$(now_ms)
        "$@" >"$LAUNCH_TRY_DIR/last.out" 2>&1 || { cat "$LAUNCH_TRY_DIR/last.out" >&2; die "\`$*\` failed"; }
        t1=$(now_ms)
        ms=$((t1 - t0))
        sum=$((sum + ms))
        if [ -z "$min" ] || [ "$ms" -lt "$min" ]; then min=$ms; fi
    done
    echo "$min $((sum / runs))"
}

row() {
    local what=$1 min=$2 mean=$3 target=$4 verdict=met
    [ "$mean" -le "$target" ] || verdict=MISSED
    printf '%-34s %8s %9s %10s   %s\n' "$what" "$min" "$mean" "$target" "$verdict"
}

main() {
    local runs=${1:-5}
    here="$(cd "$(dirname "$0")" && pwd)"
    [ "$(id -u)" -eq 0 ] || die "run as root (sudo $0): the lab starts real containers"
    need_cmd python3
    [ -x "$(bin_dir)/launch-tui" ] || die "build first: cargo build --workspace"
    export LAUNCH_TRY_DIR=${LAUNCH_TRY_DIR:-/var/tmp/launch-bench-status}
    export LAUNCH_TRY_PREFIX=${BENCH_PREFIX:-plabs}
    export LAUNCH_TRY_SUBNET=${BENCH_SUBNET:-10.77.9.0/24}
    export LAUNCH_TRY_PORT LAUNCH_TRY_RELEASE_PORT
    LAUNCH_TRY_PORT=$(free_port)
    LAUNCH_TRY_RELEASE_PORT=$(free_port)
    # Its own state and logs, so backups or journals of other instances on this machine do not
    # show up in (or slow down) these figures.
    export LAUNCH_STATE_DIR=$LAUNCH_TRY_DIR/state LAUNCH_LOG_DIR=$LAUNCH_TRY_DIR/log
    "$here/try-local.sh" down >/dev/null 2>&1 || true
    mkdir -p "$LAUNCH_TRY_DIR"
    trap cleanup EXIT
    local i
    for i in $(seq 1 "$INSTANCES"); do
        say "installing instance $i of $INSTANCES"
        "$here/try-local.sh" >"$LAUNCH_TRY_DIR/install-$i.log" 2>&1 ||
            { tail -30 "$LAUNCH_TRY_DIR/install-$i.log" >&2; die "install $i failed"; }
    done
    local n
    n=$(launch list --json | python3 -c 'import json,sys; print(len(json.loads(sys.stdin.readline())["instances"]))')
    [ "$n" -eq "$INSTANCES" ] || die "expected $INSTANCES instances, found $n"
    # Warm-up (page cache, the API daemon's first requests); not counted.
    launch status --all >/dev/null

    local vmid one all pct
    vmid=$(sed -n 's/^ *vmid: *//p' "$LAUNCH_TRY_DIR/config/instances/vikunja.yaml" | head -1)
    read -r -a one <<<"$(measure "$runs" launch status vikunja)"
    read -r -a all <<<"$(measure "$runs" launch status --all)"
    read -r -a pct <<<"$(measure "$runs" "$LAUNCH_TRY_DIR/lab/bin/pct" exec "$vmid" -- true)"

    echo
    echo "launch-tui status, $runs runs each, wall time in ms ($(nproc) cores, pve-lab)"
    printf '%-34s %8s %9s %10s\n' what min mean target
    row "status vikunja (1 instance)" "${one[0]}" "${one[1]}" 1000
    row "status --all ($INSTANCES instances)" "${all[0]}" "${all[1]}" 3000
    printf '%-34s %8s %9s\n' "pct exec $vmid -- true (one call)" "${pct[0]}" "${pct[1]}"
    echo "(the product's bar is 10000 ms; each instance runs its in-container checks in parallel, one pct exec each)"
}

main "$@"
