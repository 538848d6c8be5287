#!/usr/bin/env bash
# Measures the dashboard (`launch-tui tui`) in a real terminal (a tmux pane) with 20 instance
# records: the time to the first frame that shows all 20 rows (from the process's start; the
# checks fill in afterwards), key-to-redraw (a key sent with tmux until the frame that answers
# it is drawn, tmux's own latency included), CPU while the dashboard sits idle, and its
# resident memory. Frame times come from the binary's LAUNCH_TUI_FRAME_LOG hook.
#
#   ./scripts/bench-tui.sh [KEYS]      (default 50 key presses; after `cargo build -p launch-tui`)
#
# No lab is needed: Proxmox VE is pointed at a closed loopback port, so every instance's checks
# end quickly with a connection failure (the dashboard's cost, not the network's, is measured).
# Targets (issue #14): first frame < 100 ms, key-to-redraw < 50 ms, idle CPU < 1 %, memory < 30 MB.
set -euo pipefail

KEYS="${1:-50}"
INSTANCES=20
IDLE_S=10

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
need_cmd() { command -v "$1" >/dev/null 2>&1 || die "need '$1' (command not found)"; }

main() {
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

    local lat=() before sent_us got
    for k in $(seq 1 "$KEYS"); do
        before="$(wc -l < "$frames")"
        sent_us=$(($(date +%s%N) / 1000))
        if [ $((k % 2)) = 0 ]; then tmux -L "$sock" send-keys -t b k; else tmux -L "$sock" send-keys -t b j; fi
        for _ in $(seq 1 400); do
            [ "$(wc -l < "$frames")" -gt "$before" ] && break
            sleep 0.005
        done
        got="$(sed -n "$((before + 1))p" "$frames" | awk '{print $1}')"
        [ -n "$got" ] && lat+=($((got - sent_us)))
    done
    printf '%s\n' "${lat[@]}" | python3 -c '
import sys
v = sorted(int(x) / 1000 for x in sys.stdin.read().split())
print(f"==> key-to-redraw over {len(v)} keys: median {v[len(v)//2]:.1f} ms, p95 {v[int(len(v)*0.95)-1]:.1f} ms, max {v[-1]:.1f} ms (tmux send-keys included)", file=sys.stderr)'

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
