#!/usr/bin/env bash
# Measures `launch-tui backup` of an instance holding 10,000 tasks and 1 GiB of attachments (a
# mix: 40 % random bytes like photos and archives, 30 % base64 like exported documents, 30 %
# log-like text) against its baseline `tar -I zstd -cf` of the same data, paired and alternating
# in one run: pair 1 runs ours then the baseline, pair 2 the baseline then ours, and so on, so
# neither side always gets the warmer machine. Wall time and peak memory (RSS, /usr/bin/time) of
# every run, then the median of each side and their ratio. Then, once each: `launch-tui restore`
# and `tar czf`. Runs against its own pve-lab (real container, the fixture Vikunja on SQLite);
# the data is generated once into /var/tmp and everything is removed at the end.
#
#   sudo ./scripts/bench-backup.sh            (after `cargo build --workspace`; about 3 minutes)
#   BENCH_PAIRS=5          pairs of runs (default 5)
#   LAUNCH_PROFILE=release the optimized build (cargo build --workspace --release first)
#   BENCH_KEEP=1           leave the lab and data up; `sudo ./scripts/bench-backup.sh again`
#                          measures again on them, `... down` removes them
#   BENCH_PREFIX=plabb BENCH_SUBNET=10.77.9.0/24 override the lab's host-side names.
#   BENCH_WORK=/var/tmp/launch-bench-backup   where the lab, data and archives go (a second
#                          bench running at the same time needs its own)
#   CARGO_TARGET_DIR=DIR   the binaries from DIR/debug or DIR/release (e.g. an older build, kept
#                          aside, measured with `again` on the same lab)
set -euo pipefail

WORK=${BENCH_WORK:-/var/tmp/launch-bench-backup}
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
launch_cmd() {
    LAUNCH=(env PATH="$WORK/lab/bin:$PATH" LAUNCH_STATE_DIR="$WORK/state" LAUNCH_LOG_DIR="$WORK/log"
        LAUNCH_CACHE_DIR="$WORK/cache" NO_COLOR=1 "$(bin_dir)/launch-tui" --config "$WORK/config"
        --host "https://127.0.0.1:$LAB_PORT" --fingerprint "$(cat "$WORK/lab/fingerprint")"
        --token-file "$WORK/lab/token")
}
launch() { launch_cmd; "${LAUNCH[@]}" "$@"; }

# Runs a command under /usr/bin/time; leaves "SECONDS PEAK_MIB" in $WORK/NAME.time.
measure() {
    local name=$1
    shift
    /usr/bin/time -f '%e %M' -o "$WORK/$name.raw" "$@" >"$WORK/$name.out" 2>&1 \
        || { cat "$WORK/$name.out" >&2; die "failed: $*"; }
    awk '{ printf "%.2f %.0f", $1, $2 / 1024 }' "$WORK/$name.raw" >"$WORK/$name.time"
}

# Everything the lab needs to be measured again (`again`): written by setup, read by pairs.
save_env() {
    cat >"$WORK/env" <<EOF
LAB_PORT=$LAB_PORT
IP=$1
RAW=$2
EOF
}

# The lab, the instance with its data, and the same data on the host for the baselines.
setup() {
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
    save_env "$ip" "$(du -sb "$WORK/data" | cut -f1)"
}

newest() { find "$1" -maxdepth 1 -name "$2" -printf '%T@ %p\n' | sort -rn | head -1 | cut -d' ' -f2-; }
mib_of() { awk -v s="$1" 'BEGIN{printf "%.0f", s/1048576}'; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# One run of our backup: "SECONDS PEAK_MIB SIZE" in $WORK/NAME.time. Each archive but the
# first (kept for the restore) is removed after it is measured, so the runs do not fill the disk.
ours() {
    local name=$1 archive
    launch_cmd
    measure "$name" "${LAUNCH[@]}" backup vikunja
    archive=$(newest "$WORK/state/backups/vikunja" 'vikunja-*.tar.zst')
    printf ' %s\n' "$(stat -c %s "$archive")" >>"$WORK/$name.time"
    cp "$(newest "$WORK/log/vikunja" 'backup-*.log')" "$WORK/$name.phases"
    if [ -n "${FIRST_ARCHIVE:-}" ]; then rm -f "$archive"; else FIRST_ARCHIVE=$archive; fi
}

base() {
    local name=$1
    rm -f "$WORK/baseline.tar.zst"
    measure "$name" tar -C "$WORK" -I zstd -cf "$WORK/baseline.tar.zst" data
    printf ' %s\n' "$(stat -c %s "$WORK/baseline.tar.zst")" >>"$WORK/$name.time"
}

# The phases of a backup, from its log, on one line.
phases() {
    awk '
        / prepared in / { p = p sprintf("prepare %s ms, ", $(NF - 1)) }
        / streamed in / { p = p sprintf("stream+compress %s ms, ", $(NF - 1)) }
        / manifest put first, read back and verified in / { p = p sprintf("manifest+verify %s ms, ", $(NF - 1)) }
        / manifest put first in / { p = p sprintf("manifest %s ms, ", $(NF - 1)) }
        / read back and verified in / && !/manifest/ { p = p sprintf("verify %s ms, ", $(NF - 1)) }
        END { sub(/, $/, "", p); print p }' "$1"
}

pairs() {
    local n=${BENCH_PAIRS:-5} i load
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    rm -f "$WORK/pairs"
    say "measuring $n pairs, alternating (odd pairs: launch-tui first; even pairs: tar first)"
    for i in $(seq 1 "$n"); do
        if [ $((i % 2)) -eq 1 ]; then ours "ours$i"; base "base$i"; else base "base$i"; ours "ours$i"; fi
    done
    local tasks
    tasks=$(curl -fsS "http://$IP/api/v1/tasks" | grep -o '"id":' | wc -l)

    printf '\n%s tasks, %s attachments, %s MiB of data; %s cores; load %s before the setup, %s before the pairs; page cache warm (both sides read from it)\n' \
        "$tasks" "$FILES" "$(mib_of "$RAW")" "$(nproc)" "$LOAD_BEFORE" "$load"
    printf '%-5s %-9s %-18s %8s %9s %9s %7s   %s\n' pair order what seconds peak_MiB size_MiB ratio "phases of launch-tui backup (from its log)"
    local os om osz bs bm bsz order
    for i in $(seq 1 "$n"); do
        order=ours,tar
        [ $((i % 2)) -eq 1 ] || order=tar,ours
        read -r os om osz <"$WORK/ours$i.time" || true
        read -r bs bm bsz <"$WORK/base$i.time" || true
        printf '%-5s %-9s %-18s %8s %9s %9s %7.3f   %s\n' "$i" "$order" "launch-tui backup" "$os" "$om" \
            "$(mib_of "$osz")" "$(awk -v s="$osz" -v r="$RAW" 'BEGIN{print s/r}')" "$(phases "$WORK/ours$i.phases")"
        printf '%-5s %-9s %-18s %8s %9s %9s %7.3f\n' "$i" "$order" "tar -I zstd -cf" "$bs" "$bm" \
            "$(mib_of "$bsz")" "$(awk -v s="$bsz" -v r="$RAW" 'BEGIN{print s/r}')"
        echo "$os $om $bs $bm" >>"$WORK/pairs"
    done
    local mos mom mbs mbm
    mos=$(cut -d' ' -f1 "$WORK/pairs" | median)
    mom=$(cut -d' ' -f2 "$WORK/pairs" | median)
    mbs=$(cut -d' ' -f3 "$WORK/pairs" | median)
    mbm=$(cut -d' ' -f4 "$WORK/pairs" | median)
    printf '\nmedian of %s pairs: launch-tui backup %s s, %s MiB peak; tar -I zstd -cf %s s, %s MiB peak\n' \
        "$n" "$mos" "$mom" "$mbs" "$mbm"
    printf 'launch-tui / tar -I zstd: time %.2fx (pair by pair: %s), peak memory %.2fx\n' \
        "$(awk -v a="$mos" -v b="$mbs" 'BEGIN{print a/b}')" \
        "$(awk '{ printf "%s%.2f", (NR > 1 ? " " : ""), $1 / $3 }' "$WORK/pairs")" \
        "$(awk -v a="$mom" -v b="$mbm" 'BEGIN{print a/b}')"
    rm -f "$WORK/pairs" "$WORK/baseline.tar.zst"
}

# Once each, after the pairs: a restore of the first archive, and tar czf.
singles() {
    launch_cmd
    measure restore "${LAUNCH[@]}" restore vikunja "$FIRST_ARCHIVE"
    measure gz tar -C "$WORK" -czf "$WORK/baseline.tar.gz" data
    local s m
    printf '\nonce each:\n'
    read -r s m <"$WORK/restore.time" || true
    printf '  launch-tui restore (+ its safety backup): %s s, %s MiB peak\n' "$s" "$m"
    read -r s m <"$WORK/gz.time" || true
    printf '  tar czf: %s s, %s MiB peak, %s MiB\n' "$s" "$m" "$(mib_of "$(stat -c %s "$WORK/baseline.tar.gz")")"
    printf '\nrestore, step by step (from its log):\n'
    sed -n 's/.* done \([a-z-]*\) in \([0-9]*\) ms/  \1 \2 ms/p' "$WORK"/log/vikunja/restore-*.log
    rm -f "$WORK/baseline.tar.gz"
}

main() {
    [ "$(id -u)" -eq 0 ] || die "run as root (sudo $0)"
    for c in python3 /usr/bin/time zstd gzip curl awk base64; do need_cmd "$c"; done
    [ -x "$(bin_dir)/launch-tui" ] || die "build first: cargo build --workspace"
    LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
    case "${1:-}" in
        down)
            cleanup
            return
            ;;
        again)
            [ -f "$WORK/env" ] || die "nothing kept in $WORK: run with BENCH_KEEP=1 first"
            # shellcheck source=/dev/null
            . "$WORK/env"
            pairs
            rm -f "$FIRST_ARCHIVE"
            return
            ;;
        "") ;;
        *) die "usage: $0 [again|down]" ;;
    esac
    cleanup
    [ -n "${BENCH_KEEP:-}" ] || trap cleanup EXIT
    mkdir -p "$WORK"
    setup
    # shellcheck source=/dev/null
    . "$WORK/env"
    pairs
    singles
    if [ -n "${BENCH_KEEP:-}" ]; then
        say "kept: measure again with \`sudo $0 again\`, remove everything with \`sudo $0 down\`"
    fi
}

main "$@"
