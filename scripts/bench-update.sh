#!/usr/bin/env bash
# Benchmark: Launch's blue-green update against the naive update the community helper scripts
# do (stop the service, replace the binary, start it), in one run, under the same load, on the
# same data: two instances of the fixture Vikunja v1.0.0 in real containers (pve-lab), each
# with 200 tasks, each updated to v2.0.0 (a schema migration on start) while `launch-load`
# sends 4 workers of reads and writes through nginx. Prints requests, failed requests, writes
# held (503 + Retry-After), the longest outage and the longest request of each.
#
#   sudo ./scripts/bench-update.sh        (uses scripts/try-local.sh; the lab is brought down after)
#   sudo LOAD_FLAGS=--keep-alive ./scripts/bench-update.sh   (persistent connections, as browsers)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
TRY=/var/lib/launch-try
LAB_STATE=$TRY/lab
CONFIG=$TRY/config
BIN="$here/../target/${LAUNCH_PROFILE:-debug}"   # LAUNCH_PROFILE=release: the optimized build
WORK=$(mktemp -d /var/tmp/bench-update.XXXXXX)

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

launch() {
    PATH="$LAB_STATE/bin:$PATH" "$BIN/launch-tui" --config "$CONFIG" \
        --host "https://127.0.0.1:8006" --fingerprint "$(cat "$LAB_STATE/fingerprint")" \
        --token-file "$LAB_STATE/token" "$@"
}

field() { sed -n "s/^ *$2: *//p" "$CONFIG/instances/$1.yaml" | head -1 | tr -d "'\""; }

seed() {
    local ip=$1 i
    for i in $(seq 1 200); do
        curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/json' \
            --data "{\"title\":\"seed-$i\"}" "http://$ip/api/v1/tasks"
    done
}

start_load() {
    # shellcheck disable=SC2086 # LOAD_FLAGS holds flags, split on purpose
    "$BIN/launch-load" --url "http://$1" --concurrency 4 --duration 240 --pause-ms 5 ${LOAD_FLAGS:-} \
        --stop-file "$WORK/$2.stop" >"$WORK/$2.json" 2>"$WORK/$2.log" &
    echo $! >"$WORK/$2.pid"
    sleep 2
}

stop_load() {
    sleep 2
    touch "$WORK/$1.stop"
    wait "$(cat "$WORK/$1.pid")" || true
}

row() {
    python3 - "$WORK/$2.json" "$1" "$3" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]:<34} {s['sent']:>8} {s['failed']:>7} {s.get('transport_errors', 0):>9} {s['held']:>6} {s['longest_outage_ms']:>11} {s['max_latency_ms']:>12} {sys.argv[3]:>9}")
PY
}

main() {
    [ "$(id -u)" -eq 0 ] || die "run as root (sudo $0): the lab starts real containers"
    "$here/try-local.sh" down >/dev/null 2>&1 || true
    say "two fresh instances of v1.0.0 (ours: vikunja, naive: vikunja-2)"
    "$here/try-local.sh" >/dev/null
    "$here/try-local.sh" >/dev/null
    local ip1 ip2 vmid2
    ip1=$(field vikunja ip); ip2=$(field vikunja-2 ip); vmid2=$(field vikunja-2 vmid)
    seed "$ip1"; seed "$ip2"

    say "Launch: update vikunja v1.0.0 → v2.0.0 under load"
    start_load "$ip1" ours
    local t0 t1
    t0=$(date +%s.%N)
    launch update vikunja --watch 5 >"$WORK/ours.out" 2>&1 || { cat "$WORK/ours.out"; die "the update failed"; }
    t1=$(date +%s.%N)
    stop_load ours
    local ours_s; ours_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')

    say "naive (helper scripts): stop, replace the binary, start, under load"
    rm -rf "$WORK/v2" && mkdir -p "$WORK/v2"
    unzip -q -o "$TRY/releases/vikunja-v2.0.0-linux-amd64-full.zip" -d "$WORK/v2"
    start_load "$ip2" naive
    t0=$(date +%s.%N)
    "$LAB_STATE/bin/pct" exec "$vmid2" -- systemctl stop vikunja-api-blue.service
    "$LAB_STATE/bin/pct" push "$vmid2" "$WORK/v2/vikunja-v2.0.0-linux-amd64" \
        /opt/vikunja/releases/v1.0.0/vikunja --perms 755
    "$LAB_STATE/bin/pct" exec "$vmid2" -- systemctl start vikunja-api-blue.service
    local end=$((SECONDS + 60))
    until curl -fsS -m 2 "http://$ip2/api/v1/info" 2>/dev/null | grep -q '"v2.0.0"'; do
        [ $SECONDS -lt $end ] || die "the naive update did not come back within 60 s"
        sleep 0.2
    done
    t1=$(date +%s.%N)
    stop_load naive
    local naive_s; naive_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')

    echo
    printf '%-34s %8s %7s %9s %6s %11s %12s %9s\n' method requests failed transport held outage_ms max_latency_ms update_s
    row "launch-tui update (blue-green)" ours "$ours_s"
    row "stop, replace, start (naive)" naive "$naive_s"
    echo
    grep -E "writes held|switch:" "$WORK/ours.out" || true
    echo "(held: writes answered 503 with Retry-After during the write hold; outage: the longest time every request failed)"
    "$here/try-local.sh" down >/dev/null
    rm -rf "$WORK"
}

main "$@"
