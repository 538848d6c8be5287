#!/usr/bin/env bash
# Measures `launch-tui install` wall time with a cached template on this machine, against the
# product bar (10 minutes). Uses scripts/try-local.sh (pve-lab + the fixture release) and reads
# each install's own figure from its operation log ("finished ok=true in N ms").
#
#   sudo ./scripts/bench-install.sh [RUNS]     (default 3; the lab is brought down afterwards)
set -euo pipefail

main() {
    local runs=${1:-3} here logs=() total=0
    here="$(cd "$(dirname "$0")" && pwd)"
    [ "$(id -u)" -eq 0 ] || { echo "error: run as root (sudo $0)" >&2; exit 1; }
    "$here/try-local.sh" down >/dev/null 2>&1 || true
    # A first run warms the template cache and builds; it is not counted.
    echo "warm-up install (builds, template cache)..." >&2
    "$here/try-local.sh" >/dev/null
    printf '%-5s %10s\n' run seconds
    for i in $(seq 1 "$runs"); do
        "$here/try-local.sh" >/dev/null
        local log ms
        log=$(ls -t /var/log/launch/vikunja*/install-*.log | head -1)
        ms=$(sed -n 's/.*finished ok=true in \([0-9]*\) ms.*/\1/p' "$log")
        [ -n "$ms" ] || { echo "error: install $i did not finish (see $log)" >&2; exit 1; }
        printf '%-5s %10.1f\n' "$i" "$(awk -v m="$ms" 'BEGIN{print m/1000}')"
        total=$((total + ms))
    done
    printf 'mean  %10.1f   (bar: 600 s, the product requirement)\n' "$(awk -v t="$total" -v r="$runs" 'BEGIN{print t/r/1000}')"
    "$here/try-local.sh" down >/dev/null
}

main "$@"
