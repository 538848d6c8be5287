#!/usr/bin/env bash
# Builds crates/fixture-app and packages the three Vikunja fixture releases Launch's tests install:
# v1.0.0, v2.0.0 (its migration changes the schema) and v3.0.0 (broken: /health answers 500).
# Usage: scripts/build-fixtures.sh OUTDIR   -> prints a `version sha256 file` table.
# The sha256 values change whenever the binary is rebuilt, so never pin them in the repo.
set -euo pipefail

err() {
    echo "build-fixtures: $*" >&2
    exit 1
}

need_cmd() {
    command -v "$1" >/dev/null 2>&1 || err "needs '$1' (not found in PATH)"
}

ensure() {
    "$@" || err "command failed: $*"
}

usage() {
    echo "usage: $0 OUTDIR" >&2
    echo "  builds fixture-app and writes vikunja-<version>-linux-<arch>-full.zip for v1.0.0, v2.0.0, v3.0.0 (broken) into OUTDIR" >&2
}

main() {
    if [ "$#" -ne 1 ] || [ -z "$1" ]; then
        usage
        exit 2
    fi
    local out_dir="$1"
    need_cmd cargo

    local repo
    repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    # The dev profile is enough: the fixture only has to behave, not to be fast.
    ensure cargo build --quiet --manifest-path "$repo/Cargo.toml" -p fixture-app
    local bin="${CARGO_TARGET_DIR:-$repo/target}/debug/fixture-app"
    [ -x "$bin" ] || err "built binary not found at $bin (is CARGO_TARGET_DIR set differently?)"

    ensure mkdir -p "$out_dir"
    printf '%-8s %-64s %s\n' version sha256 file
    local version line
    for version in v1.0.0 v2.0.0 v3.0.0; do
        if [ "$version" = v3.0.0 ]; then
            line="$(ensure "$bin" package --version "$version" --broken --out "$out_dir")"
        else
            line="$(ensure "$bin" package --version "$version" --out "$out_dir")"
        fi
        # `package` prints `<sha256>  <zip path>`.
        printf '%-8s %-64s %s\n' "$version" "${line%%  *}" "${line#*  }"
    done
}

main "$@"
