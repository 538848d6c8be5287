#!/usr/bin/env bash
# Measures `launch-tui backup` and `restore` of an instance holding 10,000 tasks and 1 GiB of
# attachments (a mix: 40 % random bytes like photos and archives, 30 % base64 like exported
# documents, 30 % log-like text), wall time and peak memory, and in the same run `tar czf` and
# `tar -I zstd` of the same data as baselines. Runs against its own pve-lab (real container,
# the fixture Vikunja on SQLite); the data is generated once into /var/tmp and everything is
# removed at the end.
#
#   sudo ./scripts/bench-backup.sh            (after `cargo build --workspace`; about 2 minutes)
#   BENCH_PREFIX=plabb BENCH_SUBNET=10.77.9.0/24 override the lab's host-side names.
set -euo pipefail

WORK=/var/tmp/launch-bench-backup
PREFIX=${BENCH_PREFIX:-plabb}
SUBNET=${BENCH_SUBNET:-10.77.9.0/24}
MIB=16            # size of one attachment
FILES=64          # 64 x 16 MiB = 1 GiB
TASKS=10000

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
need_cmd() { command -v "$1" >/dev/null 2>&1 || die "need '$1' (command not found)"; }

# LAUNCH_PROFILE=release uses (and builds) the optimized binaries, as a release ships them.
bin_dir() { echo "${CARGO_TARGET_DIR:-$(cd "$(dirname "$0")/.." && pwd)/target}/${LAUNCH_PROFILE:-debug}"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cleanup() {
    set +e
    [ -f "$WORK/http.pid" ] && kill "$(cat "$WORK/http.pid")" 2>/dev/null
    [ -d "$WORK/lab" ] && "$(bin_dir)/pve-lab" --state "$WORK/lab" down >/dev/null 2>&1
    rm -rf "$WORK"
}

# The attachments, once: 40 % random, 30 % base64 text, 30 % log lines.
generate() {
    mkdir -p "$WORK/data/files"
    local i kind
    for i in $(seq 1 "$FILES"); do
        kind=$(( (i - 1) * 10 / FILES ))
        if [ "$kind" -lt 4 ]; then
            head -c $((MIB << 20)) /dev/urandom >"$WORK/data/files/$i"
        elif [ "$kind" -lt 7 ]; then
            head -c $((MIB * 3 << 18)) /dev/urandom | base64 -w 76 | head -c $((MIB << 20)) >"$WORK/data/files/$i"
        else
            awk -v n=$((MIB << 20)) -v seed="$i" 'BEGIN { srand(seed); s = 0
                while (s < n) { l = sprintf("2026-11-%02d %02d:%02d:%02d INFO request id=%08x path=/api/v1/tasks/%d status=%d ms=%d\n",
                    1 + int(rand()*28), int(rand()*24), int(rand()*60), int(rand()*60), int(rand()*4294967295),
                    int(rand()*10000), (rand() < 0.9 ? 200 : 404), int(rand()*900)); printf "%s", l; s += length(l) } }' \
                | head -c $((MIB << 20)) >"$WORK/data/files/$i"
        fi
    done
}

serve_releases() {
    mkdir -p "$WORK/releases"
    "$(bin_dir)/fixture-app" package --version v1.0.0 --out "$WORK/releases" >/dev/null
    RELEASE_PORT=$(free_port)
    python3 -m http.server --bind 127.0.0.1 --directory "$WORK/releases" "$RELEASE_PORT" \
        >"$WORK/http.log" 2>&1 &
    echo $! >"$WORK/http.pid"
    local zip=vikunja-v1.0.0-linux-amd64-full.zip sum
    sum=$(sha256sum "$WORK/releases/$zip" | cut -d' ' -f1)
    mkdir -p "$WORK/config/profiles"
    awk -v versions="  - version: v1.0.0
    channel: stable
    artifacts:
      amd64:
        url: http://127.0.0.1:$RELEASE_PORT/$zip
        sha256: $sum
        format: zip
        binary: vikunja-v1.0.0-linux-amd64
" '
        /^versions:/ { print "versions:"; printf "%s", versions; skip = 1; next }
        skip && /^[a-z]/ { skip = 0 }
        !skip { print }
    ' "$(cd "$(dirname "$0")/.." && pwd)/profiles/vikunja/profile.yaml" >"$WORK/config/profiles/vikunja.yaml"
}

# launch-tui pointed at this lab, as a plain command (so /usr/bin/time can run it).
launch() {
    env PATH="$WORK/lab/bin:$PATH" LAUNCH_STATE_DIR="$WORK/state" LAUNCH_LOG_DIR="$WORK/log" \
        LAUNCH_CACHE_DIR="$WORK/cache" NO_COLOR=1 "$(bin_dir)/launch-tui" --config "$WORK/config" \
        --host "https://127.0.0.1:$LAB_PORT" --fingerprint "$(cat "$WORK/lab/fingerprint")" \
        --token-file "$WORK/lab/token" "$@"
}

# Runs a command under /usr/bin/time; leaves "SECONDS PEAK_MIB" in $WORK/NAME.time.
measure() {
    local name=$1
    shift
    /usr/bin/time -f '%e %M' -o "$WORK/$name.raw" "$@" >"$WORK/$name.out" 2>&1 \
        || { cat "$WORK/$name.out" >&2; die "failed: $*"; }
    awk '{ printf "%.1f %.0f", $1, $2 / 1024 }' "$WORK/$name.raw" >"$WORK/$name.time"
}

main() {
    [ "$(id -u)" -eq 0 ] || die "run as root (sudo $0)"
    for c in python3 /usr/bin/time zstd gzip curl awk base64; do need_cmd "$c"; done
    [ -x "$(bin_dir)/launch-tui" ] || die "build first: cargo build --workspace"
    cleanup
    trap cleanup EXIT
    mkdir -p "$WORK"

    say "generating $FILES x $MIB MiB of attachments in $WORK/data (once)"
    generate
    serve_releases
    say "starting pve-lab ($PREFIX, $SUBNET)"
    LAB_PORT=$(free_port)
    "$(bin_dir)/pve-lab" up --state "$WORK/lab" --port "$LAB_PORT" --prefix "$PREFIX" \
        --subnet "$SUBNET" --yes --auth-fail-delay-ms 0 >/dev/null
    cat >"$WORK/answers.yaml" <<EOF
public_url: http://tasks.lab.example
admin_email: admin@lab.example
mcp: false
version: v1.0.0
disk_gib: 8
max_upload_mib: 64
EOF
    say "installing the fixture Vikunja"
    launch install vikunja --answers "$WORK/answers.yaml" --yes >/dev/null 2>&1 \
        || die "install failed (see $WORK/log)"
    local ip vmid db=/var/lib/vikunja/blue/vikunja.db
    ip=$(sed -n 's/^  ip: //p' "$WORK/config/instances/vikunja.yaml")
    vmid=$(sed -n 's/^  vmid: //p' "$WORK/config/instances/vikunja.yaml")

    say "seeding $TASKS tasks (SQL) and uploading $FILES attachments through nginx"
    "$WORK/lab/bin/pct" exec "$vmid" -- runuser -u vikunja -- sqlite3 "$db" \
        "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < $TASKS)
         INSERT INTO tasks (id, title, created) SELECT x, 'task number ' || x || ': ' || hex(randomblob(16)), '2026-11-27T12:00:00Z' FROM n;"
    local i
    for i in $(seq 1 "$FILES"); do
        curl -fsS -o /dev/null -X PUT --data-binary "@$WORK/data/files/$i" \
            "http://$ip/api/v1/tasks/$i/attachments?name=file-$i" || die "upload $i failed"
    done
    "$WORK/lab/bin/pct" pull "$vmid" "$db" "$WORK/data/vikunja.db"
    local raw
    raw=$(du -sb "$WORK/data" | cut -f1)

    say "measuring"
    LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
    local l=(env PATH="$WORK/lab/bin:$PATH" LAUNCH_STATE_DIR="$WORK/state" LAUNCH_LOG_DIR="$WORK/log"
        LAUNCH_CACHE_DIR="$WORK/cache" NO_COLOR=1 "$(bin_dir)/launch-tui" --config "$WORK/config"
        --host "https://127.0.0.1:$LAB_PORT" --fingerprint "$(cat "$WORK/lab/fingerprint")"
        --token-file "$WORK/lab/token")
    # Three backups (the machine may be shared: the spread shows it), then a restore of the
    # first, then the baselines once each.
    local archive n
    for n in 1 2 3; do
        measure "backup$n" "${l[@]}" backup vikunja
    done
    archive=$(ls "$WORK"/state/backups/vikunja/vikunja-*.tar.zst | head -1)
    measure restore "${l[@]}" restore vikunja "$archive"
    measure gz tar -C "$WORK" -czf "$WORK/baseline.tar.gz" data
    measure zs tar -C "$WORK" -I zstd -cf "$WORK/baseline.tar.zst" data
    local b1 b2 b3 r gz zs
    b1=$(cat "$WORK/backup1.time") b2=$(cat "$WORK/backup2.time") b3=$(cat "$WORK/backup3.time")
    r=$(cat "$WORK/restore.time") gz=$(cat "$WORK/gz.time") zs=$(cat "$WORK/zs.time")
    local asize gsize zsize
    asize=$(stat -c %s "$archive")
    gsize=$(stat -c %s "$WORK/baseline.tar.gz")
    zsize=$(stat -c %s "$WORK/baseline.tar.zst")
    local tasks
    tasks=$(curl -fsS "http://$ip/api/v1/tasks" | grep -o '"id":' | wc -l)

    printf '\n%s tasks, %s attachments, %.0f MiB of data (%s cores; load before: %s)\n' "$tasks" "$FILES" \
        "$(awk -v b="$raw" 'BEGIN{print b/1048576}')" "$(nproc)" "$LOAD"
    printf '%-36s %9s %10s %10s %7s\n' what seconds peak_MiB size_MiB ratio
    row() { # name "secs peak" size
        printf '%-36s %9s %10s %10.0f %7.3f\n' "$1" "${2% *}" "${2#* }" \
            "$(awk -v s="$3" 'BEGIN{print s/1048576}')" "$(awk -v s="$3" -v r="$raw" 'BEGIN{print s/r}')"
    }
    row "launch-tui backup #1 (zstd, verified)" "$b1" "$asize"
    row "launch-tui backup #2" "$b2" "$asize"
    row "launch-tui backup #3" "$b3" "$asize"
    row "launch-tui restore (+ safety backup)" "$r" "$asize"
    row "baseline: tar czf" "$gz" "$gsize"
    row "baseline: tar -I zstd -cf" "$zs" "$zsize"
    printf '\nbackup #1, phase by phase (from its log):\n'
    sed -n 's/.*info: \(.* in [0-9]* ms\)$/  \1/p' "$(ls "$WORK"/log/vikunja/backup-*.log | head -1)"
    printf '\nrestore, step by step (from its log):\n'
    sed -n 's/.* done \([a-z-]*\) in \([0-9]*\) ms/  \1 \2 ms/p' "$WORK"/log/vikunja/restore-*.log
}

main "$@"
