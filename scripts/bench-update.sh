#!/usr/bin/env bash
# Benchmark: Launch's blue-green update against the naive update the community helper scripts
# do (stop the service, replace the binary, start it), paired and alternating in one run, under
# the same load, on the same data. Each pair takes two fresh instances of the fixture Vikunja
# v1.0.0 in real containers (pve-lab), each with 200 tasks, and updates one with
# `launch-tui update` and the other the naive way to v2.0.0 (a schema migration on start) while
# `launch-load` sends 4 workers of reads and writes through nginx; odd pairs run Launch first,
# even pairs the naive update first. That for N pairs with a connection per request, then N pairs
# with keep-alive connections (as browsers keep). Prints every run's requests, failed requests,
# transport errors, 5xx answers, writes held (503 + Retry-After), writes that waited, the longest
# write, the longest outage and the update time, then the median of each side per load.
#
#   sudo ./scripts/bench-update.sh               (uses scripts/try-local.sh; the lab is brought down after)
#   BENCH_PAIRS=3                                 pairs per load (default 3; about a minute a pair)
#   BENCH_LOADS="per-request keep-alive"          which loads (default both)
#   LAUNCH_PROFILE=release                        the optimized build
#   LAUNCH_TRY_DIR, LAUNCH_TRY_PORT, LAUNCH_TRY_RELEASE_PORT, LAUNCH_TRY_PREFIX, LAUNCH_TRY_SUBNET
#                                                 move the lab (see try-local.sh), to run beside another
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
TRY=${LAUNCH_TRY_DIR:-/var/lib/launch-try}
LAB_STATE=$TRY/lab
CONFIG=$TRY/config
BIN="$here/../target/${LAUNCH_PROFILE:-debug}" # LAUNCH_PROFILE=release: the optimized build
WORK=$(mktemp -d /var/tmp/bench-update.XXXXXX)
WATCH=5 # seconds launch-tui watches the new version after the switch (part of its update time)

say() { printf '==> %s\n' "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

launch() {
    PATH="$LAB_STATE/bin:$PATH" "$BIN/launch-tui" --config "$CONFIG" \
        --host "https://127.0.0.1:${LAUNCH_TRY_PORT:-8006}" --fingerprint "$(cat "$LAB_STATE/fingerprint")" \
        --token-file "$LAB_STATE/token" "$@"
}

field() { sed -n "s/^ *$2: *//p" "$CONFIG/instances/$1.yaml" | head -1 | tr -d "'\""; }

# A fresh instance of v1.0.0 named $1 (try-local.sh made the lab, the releases and the profile).
install() {
    cat >"$WORK/answers-$1.yaml" <<EOF
name: $1
public_url: http://$1.lab.example
admin_email: admin@lab.example
mcp: false
version: v1.0.0
EOF
    launch install vikunja --answers "$WORK/answers-$1.yaml" --yes >"$WORK/install-$1.out" 2>&1 ||
        { cat "$WORK/install-$1.out" >&2; die "installing $1 failed"; }
}

seed() {
    local ip=$1 i
    for i in $(seq 1 200); do
        curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/json' \
            --data "{\"title\":\"seed-$i\"}" "http://$ip/api/v1/tasks"
    done
}

# Load on $1 into $WORK/$2.json until stop_load $2. Two seconds of load before and after the
# update, so the update happens under load from start to end.
start_load() {
    local flags=()
    [ "$3" = keep-alive ] && flags=(--keep-alive)
    "$BIN/launch-load" --url "http://$1" --concurrency 4 --duration 240 --pause-ms 5 "${flags[@]}" \
        --stop-file "$WORK/$2.stop" >"$WORK/$2.json" 2>"$WORK/$2.log" &
    echo $! >"$WORK/$2.pid"
    sleep 2
}

stop_load() {
    sleep 2
    touch "$WORK/$1.stop"
    wait "$(cat "$WORK/$1.pid")" || true
}

elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }

# launch-tui update of instance $1 under load $3; the run's name is $2.
ours() {
    local ip t0
    ip=$(field "$1" ip)
    start_load "$ip" "$2" "$3"
    t0=$(date +%s.%N)
    launch update "$1" --watch "$WATCH" >"$WORK/$2.out" 2>&1 || {
        cat "$WORK/$2.out" >&2
        die "the update of $1 failed"
    }
    elapsed "$t0" >"$WORK/$2.secs"
    stop_load "$2"
}

# The naive update of instance $1 under load $3: stop, replace the binary, start, wait for v2.
naive() {
    local ip vmid t0
    ip=$(field "$1" ip)
    vmid=$(field "$1" vmid)
    start_load "$ip" "$2" "$3"
    t0=$(date +%s.%N)
    "$LAB_STATE/bin/pct" exec "$vmid" -- systemctl stop vikunja-api-blue.service
    "$LAB_STATE/bin/pct" push "$vmid" "$WORK/v2/vikunja-v2.0.0-linux-amd64" \
        /opt/vikunja/releases/v1.0.0/vikunja --perms 755
    "$LAB_STATE/bin/pct" exec "$vmid" -- systemctl start vikunja-api-blue.service
    local end=$((SECONDS + 60))
    until curl -fsS -m 2 "http://$ip/api/v1/info" 2>/dev/null | grep -q '"v2.0.0"'; do
        [ $SECONDS -lt $end ] || die "the naive update of $1 did not come back within 60 s"
        sleep 0.2
    done
    elapsed "$t0" >"$WORK/$2.secs"
    stop_load "$2"
}

# One row: the run's figures, also appended to $WORK/LOAD-SIDE.rows for the medians.
# Columns: requests failed transport 5xx held waited longest_write_ms outage_ms update_s
row() { # pair order side run-name load
    python3 - "$WORK/$4.json" "$WORK/$4.secs" "$WORK/$4.out" "$1" "$2" "$3" "$WORK/$5-$3.rows" <<'PY'
import json, re, sys
s = json.load(open(sys.argv[1]))
secs = open(sys.argv[2]).read().strip()
held_ms = "-"
try:
    m = re.search(r"writes held: (\d+) ms", open(sys.argv[3]).read())
    held_ms = m.group(1) if m else "-"
except FileNotFoundError:
    pass
c = s.get("by_class", {})
f = [s["sent"], s["failed"], s.get("transport_errors", 0), c.get("5xx", 0), s["held"],
     s.get("writes_waited", 0), s.get("max_write_ms", 0), s["longest_outage_ms"], secs]
side = {"ours": "launch-tui update", "naive": "stop, replace, start"}[sys.argv[6]]
print(f"{sys.argv[4]:>4} {sys.argv[5]:<10} {side:<21}" + "".join(f"{v:>10}" for v in f) + f"{held_ms:>10}")
with open(sys.argv[7], "a") as out:
    out.write(" ".join(str(v) for v in f) + "\n")
PY
}

header() {
    printf '%4s %-10s %-21s' pair order method
    printf '%10s' requests failed transport 5xx held waited max_wr_ms outage_ms update_s hold_ms
    echo
}

# The median of every column of LOAD-SIDE.rows, and ours / naive for the update time.
summary() {
    python3 - "$WORK/$1-ours.rows" "$WORK/$1-naive.rows" "$1" <<'PY'
import statistics, sys
def med(path):
    rows = [[float(v) for v in l.split()] for l in open(path) if l.strip()]
    return [statistics.median(col) for col in zip(*rows)], len(rows)
o, n = med(sys.argv[1])
b, _ = med(sys.argv[2])
fmt = lambda v: f"{v:>10.0f}" if v == int(v) else f"{v:>10.1f}"
print(f"median of {n} ({sys.argv[3]} load):")
print(f"     {'':<10} {'launch-tui update':<21}" + "".join(fmt(v) for v in o))
print(f"     {'':<10} {'stop, replace, start':<21}" + "".join(fmt(v) for v in b))
ratio = lambda a, c: f"{a / c:.2f}x" if c else "-"
print(f"ours / naive: failed {ratio(o[1], b[1])}, update time {ratio(o[8], b[8])}")
PY
}

main() {
    [ "$(id -u)" -eq 0 ] || die "run as root (sudo $0): the lab starts real containers"
    local pairs=${BENCH_PAIRS:-3} loads=${BENCH_LOADS:-per-request keep-alive}
    "$here/try-local.sh" down >/dev/null 2>&1 || true
    say "the lab, the fixture releases and a first instance (try-local.sh)"
    "$here/try-local.sh" >/dev/null
    rm -rf "$WORK/v2" && mkdir -p "$WORK/v2"
    unzip -q -o "$TRY/releases/vikunja-v2.0.0-linux-amd64-full.zip" -d "$WORK/v2"
    local load_before
    load_before=$(cut -d' ' -f1-3 /proc/loadavg)

    local load i a b
    for load in $loads; do
        for i in $(seq 1 "$pairs"); do
            a="o-${load%%-*}-$i" b="n-${load%%-*}-$i"
            say "$load load, pair $i of $pairs: fresh instances $a (launch-tui) and $b (naive)"
            install "$a"
            install "$b"
            seed "$(field "$a" ip)"
            seed "$(field "$b" ip)"
            if [ $((i % 2)) -eq 1 ]; then
                ours "$a" "$a" "$load"
                naive "$b" "$b" "$load"
            else
                naive "$b" "$b" "$load"
                ours "$a" "$a" "$load"
            fi
            grep -E "writes held|hold phases|switch:" "$WORK/$a.out" >"$WORK/$a.lines" || true
            # Both containers go before the next pair, so every pair starts on the same lab.
            launch --yes uninstall "$a" >/dev/null 2>&1 || say "could not uninstall $a"
            launch --yes uninstall "$b" >/dev/null 2>&1 || say "could not uninstall $b"
        done
    done

    echo
    printf 'Update v1.0.0 -> v2.0.0 under load (4 workers, one request in four a write, 200 tasks), %s pairs per load,\n' "$pairs"
    printf 'alternating (odd pairs: launch-tui first; even: naive first); %s cores; load before: %s; binaries: %s\n' \
        "$(nproc)" "$load_before" "${LAUNCH_PROFILE:-debug}"
    for load in $loads; do
        echo
        echo "$load load:"
        header
        for i in $(seq 1 "$pairs"); do
            a="o-${load%%-*}-$i" b="n-${load%%-*}-$i"
            if [ $((i % 2)) -eq 1 ]; then
                row "$i" "ours,naive" ours "$a" "$load"
                row "$i" "ours,naive" naive "$b" "$load"
            else
                row "$i" "naive,ours" naive "$b" "$load"
                row "$i" "naive,ours" ours "$a" "$load"
            fi
        done
        summary "$load"
        for i in $(seq 1 "$pairs"); do
            a="o-${load%%-*}-$i"
            printf '  pair %s, launch-tui: %s\n' "$i" "$(tr -s ' ' <"$WORK/$a.lines" | paste -sd';')"
        done
    done
    echo
    echo "held: writes answered 503 + Retry-After; waited: writes answered 2xx after more than 1 s; max_wr_ms: the longest write;"
    echo "outage_ms: the longest time every request failed; update_s: launch-tui's includes its ${WATCH} s health watch after the switch;"
    echo "hold_ms: how long launch-tui held writes at nginx (they waited, then went on to v2)"
    "$here/try-local.sh" down >/dev/null
    rm -rf "$WORK"
}

main "$@"
