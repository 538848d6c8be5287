#!/usr/bin/env bash
# Builds the static release binary (as scripts/release.sh does) and prints its figures: size,
# what `ldd` says, and how long `launch-tui --version` takes (mean and min of N runs).
#
#   ./scripts/bench-binary.sh [RUNS]             # build, then measure (default 50 runs)
#   BINARY=path ./scripts/bench-binary.sh        # measure a binary already built
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=x86_64-unknown-linux-gnu
RUNS=${1:-50}

die() { printf 'error: %s\n' "$*" >&2; exit 1; }

build() {
    local t0 t1
    t0=$(date +%s)
    (cd "$ROOT" && RUSTFLAGS="-C target-feature=+crt-static" \
        cargo build --release --locked -p launch-tui --target "$TARGET" --quiet)
    t1=$(date +%s)
    printf 'build (release, fat LTO, static): %d s\n' "$((t1 - t0))"
}

main() {
    local bin=${BINARY:-}
    if [ -z "$bin" ]; then
        build
        bin=${CARGO_TARGET_DIR:-$ROOT/target}/$TARGET/release/launch-tui
    fi
    [ -x "$bin" ] || die "$bin is not an executable"
    local bytes
    bytes=$(stat -c %s "$bin")
    printf 'binary: %s\n' "$bin"
    printf 'size: %d bytes (%s MB)\n' "$bytes" "$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1e6 }')"
    printf 'ldd: %s\n' "$(ldd "$bin" 2>&1 | tr '\n' ' ')"
    printf 'file: %s\n' "$(file -b "$bin" 2>/dev/null || echo '?')"
    printf 'version: %s\n' "$("$bin" --version)"
    local i t0 t1 ns total=0 min=0
    for ((i = 0; i < RUNS; i++)); do
        t0=$(date +%s%N)
        "$bin" --version >/dev/null
        t1=$(date +%s%N)
        ns=$((t1 - t0))
        total=$((total + ns))
        if [ "$min" -eq 0 ] || [ "$ns" -lt "$min" ]; then min=$ns; fi
    done
    printf -- '--version: mean %s ms, min %s ms over %d runs\n' \
        "$(awk -v n="$total" -v r="$RUNS" 'BEGIN { printf "%.2f", n / r / 1e6 }')" \
        "$(awk -v n="$min" 'BEGIN { printf "%.2f", n / 1e6 }')" "$RUNS"
}

main "$@"
