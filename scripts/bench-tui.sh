#!/usr/bin/env bash
# Measures the dashboard (`launch-tui tui`) in a real terminal (a tmux pane) with 20 instance
# records: the time to the first frame that shows all 20 rows (from the process's start; the
# checks fill in afterwards), key-to-redraw (a key sent with tmux until the frame that answers
# it is drawn, tmux's own latency included), CPU while the dashboard sits idle, and its
# resident memory. Frame times come from the binary's LAUNCH_TUI_FRAME_LOG hook.
#
#   ./scripts/bench-tui.sh [KEYS]      (default 50 key presses; after `cargo build -p launch-tui`)
#   sudo ./scripts/bench-tui.sh --during-update
#
# No lab is needed for the first: Proxmox VE is pointed at a closed loopback port, so every
# instance's checks end quickly with a connection failure (the dashboard's cost, not the
# network's, is measured). `--during-update` measures key-to-redraw while an update runs: a
# pve-lab with one fixture Vikunja v1.0.0 (scripts/try-local.sh, in a directory of its own), the
# dashboard in tmux, u/Enter/y to update it to v2.0.0 from the TUI, and a key every 100 ms until
# the update is done; each key's redraw is the first frame whose key count includes it (the
# frames the update's own events cause do not count). LAUNCH_TRY_PREFIX/LAUNCH_TRY_SUBNET choose
# the lab's names and subnet (default pbtu, 10.77.30.0/24).
# Targets (issue #14): first frame < 100 ms, key-to-redraw < 50 ms, idle CPU < 1 %, memory < 30 MB.
set -euo pipefail

KEYS="${1:-50}"
INSTANCES=20
IDLE_S=10

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
need_cmd() { command -v "$1" >/dev/null 2>&1 || die "need '$1' (command not found)"; }

# Prints p50/p95/max of the microsecond latencies on stdin, with a label.
stats() {
    python3 -c '
import sys
label = sys.argv[1]
v = sorted(int(x) / 1000 for x in sys.stdin.read().split())
if not v:
    sys.exit(f"no key was answered ({label})")
p = lambda q: v[min(len(v) - 1, int(len(v) * q))]
print(f"==> key-to-redraw {label} over {len(v)} keys: p50 {p(0.5):.1f} ms, p95 {p(0.95):.1f} ms, max {v[-1]:.1f} ms (tmux send-keys included)", file=sys.stderr)' "$1"
}

# The frame that answers key number N: the first one logged with keys>=N; prints its epoch us.
frame_for_key() {
    awk -v n="$2" '{ split($5, k, "="); if (k[1] == "keys" && k[2] + 0 >= n) { print $1; exit } }' "$1"
}

during_update() {
    [ "$(id -u)" -eq 0 ] || die "--during-update starts a lab with real containers: run it as root"
    need_cmd tmux
    need_cmd python3
    local bin
    # (here, try, sock: not local, the EXIT trap runs after this function has returned)
    here="$(cd "$(dirname "$0")" && pwd)"
    bin="${CARGO_TARGET_DIR:-$here/../target}/debug"
    try="$(mktemp -d /var/tmp/bench-tui.XXXXXX)"
    sock="bench-tui-up-$$"
    export LAUNCH_TRY_DIR="$try" LAUNCH_TRY_PORT="${LAUNCH_TRY_PORT:-18106}" \
        LAUNCH_TRY_RELEASE_PORT="${LAUNCH_TRY_RELEASE_PORT:-18181}" \
        LAUNCH_TRY_PREFIX="${LAUNCH_TRY_PREFIX:-pbtu}" LAUNCH_TRY_SUBNET="${LAUNCH_TRY_SUBNET:-10.77.30.0/24}" \
        LAUNCH_STATE_DIR="$try/state" LAUNCH_LOG_DIR="$try/log" LAUNCH_CACHE_DIR="$try/cache"
    trap 'tmux -L "$sock" kill-server >/dev/null 2>&1 || true; "$here/try-local.sh" down >/dev/null 2>&1 || true; rm -rf "$try"' EXIT
    say "a lab with one fixture Vikunja v1.0.0 (scripts/try-local.sh in $try)"
    "$here/try-local.sh" >"$try/try.log" 2>&1 || { cat "$try/try.log"; die "the lab did not come up"; }
    local frames="$try/frames.log"
    tmux -L "$sock" -f /dev/null new-session -d -s b -x 120 -y 40 \
        "env LANG=C.UTF-8 LAUNCH_TUI_FRAME_LOG=$frames PATH=$try/lab/bin:$bin:/usr/bin:/bin \
         LAUNCH_CONFIG=$try/config LAUNCH_STATE_DIR=$try/state LAUNCH_LOG_DIR=$try/log LAUNCH_CACHE_DIR=$try/cache \
         $bin/launch-tui tui; sleep 3600"
    wait_screen() {
        local i
        for i in $(seq 1 1200); do
            tmux -L "$sock" capture-pane -p -t b | grep -qF -- "$1" && return 0
            sleep 0.1
        done
        tmux -L "$sock" capture-pane -p -t b >&2
        die "'$1' did not appear on the screen"
    }
    wait_screen "healthy"
    tmux -L "$sock" send-keys -t b u
    wait_screen "> v2.0.0"
    tmux -L "$sock" send-keys -t b Enter
    wait_screen "Update vikunja from v1.0.0 to v2.0.0?"
    tmux -L "$sock" send-keys -t b y
    wait_screen "update vikunja  running"
    local keys k lat=() sent_us got
    # Keys so far (u, Enter, y); the next is key number keys+1.
    keys="$(tail -1 "$frames" | awk '{ split($5, k, "="); print k[2] }')"
    for k in $(seq 1 600); do
        tail -1 "$frames" | grep -q " running=1" || break
        keys=$((keys + 1))
        sent_us=$(($(date +%s%N) / 1000))
        # `?` opens the help over the operation screen, any key closes it: each one redraws.
        tmux -L "$sock" send-keys -t b '?'
        got=""
        for _ in $(seq 1 400); do
            got="$(frame_for_key "$frames" "$keys")"
            [ -n "$got" ] && break
            sleep 0.005
        done
        [ -n "$got" ] && lat+=($((got - sent_us)))
        sleep 0.1
    done
    tmux -L "$sock" capture-pane -p -t b | grep -q "update vikunja  done" \
        || { tmux -L "$sock" capture-pane -p -t b >&2; die "the update did not finish as done"; }
    say "the update ran to the end (v2.0.0) with ${#lat[@]} keys sent during it"
    printf '%s\n' "${lat[@]}" | stats "during an update"
}

main() {
    if [ "${1:-}" = "--during-update" ]; then
        during_update
        return
    fi
    need_cmd tmux
    need_cmd python3
    local here bin
    # (not local: the EXIT trap runs after main has returned)
    here="$(cd "$(dirname "$0")" && pwd)"
    bin="${CARGO_TARGET_DIR:-$here/../target}/debug/launch-tui"
    [ -x "$bin" ] || die "$bin is missing: cargo build -p launch-tui"
    work="$(mktemp -d)"
    sock="bench-tui-$$"
    frames="$work/frames.log"
    trap 'tmux -L "$sock" kill-server >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
    mkdir -p "$work/config/instances" "$work/state" "$work/log"
    for i in $(seq 1 "$INSTANCES"); do
        cat > "$work/config/instances/app$i.yaml" <<YAML
name: app$i
profile: vikunja
app_version: v0.24.6
container:
  node: pve
  vmid: $((100 + i))
  hostname: app$i
  ip: 10.99.0.$i
  storage: local-lvm
active_slot: blue
releases: [v0.24.6]
settings:
  public_url: https://app$i.example.com
secrets: {}
created: 2026-12-04T09:00:00Z
updated: 2026-12-04T09:00:00Z
YAML
        chmod 600 "$work/config/instances/app$i.yaml"
    done
    local launched_us
    launched_us=$(($(date +%s%N) / 1000))
    tmux -L "$sock" -f /dev/null new-session -d -s b -x 120 -y 40 \
        "env LANG=C.UTF-8 LAUNCH_TUI_FRAME_LOG=$frames LAUNCH_STATE_DIR=$work/state LAUNCH_LOG_DIR=$work/log \
         $bin --config $work/config --host https://127.0.0.1:9 --insecure tui; sleep 3600"
    local pid
    for _ in $(seq 1 100); do
        pid="$(pgrep -n -f "^$bin --config $work/config" || true)"
        [ -n "$pid" ] && break
        sleep 0.05
    done
    [ -n "$pid" ] || die "launch-tui did not start"
    for _ in $(seq 1 100); do
        grep -q "rows=$INSTANCES " "$frames" 2>/dev/null && break
        sleep 0.05
    done
    local line first_us in_run_us
    line="$(awk -v n="rows=$INSTANCES" '$3 == n {print; exit}' "$frames")"
    [ -n "$line" ] || die "no frame with $INSTANCES rows: $(cat "$frames")"
    first_us="$(echo "$line" | awk '{print $1}')"
    in_run_us="$(echo "$line" | awk '{print $2}')"
    # Two bounds: from the start of the TUI inside the process (its terminal set-up included),
    # and from before tmux was asked to start it (tmux, the shell and exec included).
    say "first frame with $INSTANCES instances: $((in_run_us / 1000)).$(( (in_run_us % 1000) / 100 )) ms into the TUI, $(( (first_us - launched_us) / 1000 )) ms from the tmux command"
    local start_us=$launched_us
    for _ in $(seq 1 100); do
        grep -q "checked=$INSTANCES" "$frames" && break
        sleep 0.1
    done
    say "all $INSTANCES rows checked: $(( ($(awk -v n="checked=$INSTANCES" '$4 == n {print $1; exit}' "$frames") - start_us) / 1000 )) ms"

    local lat=() sent_us got
    for k in $(seq 1 "$KEYS"); do
        sent_us=$(($(date +%s%N) / 1000))
        if [ $((k % 2)) = 0 ]; then tmux -L "$sock" send-keys -t b k; else tmux -L "$sock" send-keys -t b j; fi
        got=""
        for _ in $(seq 1 400); do
            got="$(frame_for_key "$frames" "$k")"
            [ -n "$got" ] && break
            sleep 0.005
        done
        [ -n "$got" ] && lat+=($((got - sent_us)))
    done
    printf '%s\n' "${lat[@]}" | stats "on the idle dashboard"

    local t0 t1 ticks
    ticks="$(getconf CLK_TCK)"
    t0="$(awk '{print $14 + $15}' "/proc/$pid/stat")"
    sleep "$IDLE_S"
    t1="$(awk '{print $14 + $15}' "/proc/$pid/stat")"
    python3 -c "print(f'==> idle CPU over ${IDLE_S} s: {($t1 - $t0) / $ticks / $IDLE_S * 100:.2f} %')" >&2
    say "memory: $(awk '/^VmRSS/ {printf "%.1f MB", $2 / 1024}' "/proc/$pid/status") resident (VmHWM $(awk '/^VmHWM/ {printf "%.1f MB", $2 / 1024}' "/proc/$pid/status"))"
    tmux -L "$sock" send-keys -t b q
}

main "$@"
