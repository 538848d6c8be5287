#!/usr/bin/env bash
# Try Launch on a plain Debian 12 machine, no Proxmox VE needed: builds the workspace, brings
# up pve-lab (a local Proxmox VE stand-in with real systemd-nspawn containers), serves the
# fixture Vikunja release over loopback (upstream downloads are not reachable from the test
# machines; on a real host the profile downloads the real release the same way), and installs
# the Vikunja profile into a real container with launch-tui. Prints the URL to open.
#
#   sudo ./scripts/try-local.sh          # install (again: a new instance each run)
#   sudo ./scripts/try-local.sh down     # stop the lab, remove its containers and records
#
# LAUNCH_TRY_DIR, LAUNCH_TRY_PORT, LAUNCH_TRY_RELEASE_PORT, LAUNCH_TRY_PREFIX and
# LAUNCH_TRY_SUBNET move it elsewhere, so a benchmark can run beside another lab.
set -euo pipefail

TRY=${LAUNCH_TRY_DIR:-/var/lib/launch-try}
LAB_STATE=$TRY/lab
CONFIG=$TRY/config
RELEASES=$TRY/releases
PORT=${LAUNCH_TRY_PORT:-8006}
RELEASE_PORT=${LAUNCH_TRY_RELEASE_PORT:-18080}

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
need_cmd() { command -v "$1" >/dev/null 2>&1 || die "need '$1' (command not found)"; }

# LAUNCH_PROFILE=release uses (and builds) the optimized binaries, as a release ships them.
bin_dir() { echo "${CARGO_TARGET_DIR:-$(cd "$(dirname "$0")/.." && pwd)/target}/${LAUNCH_PROFILE:-debug}"; }

build() {
    need_cmd cargo
    say "building launch-tui, pve-lab and the fixture app"
    if [ "${LAUNCH_PROFILE:-debug}" = release ]; then
        (cd "$(dirname "$0")/.." && cargo build --workspace --release --quiet)
    else
        (cd "$(dirname "$0")/.." && cargo build --workspace --quiet)
    fi
}

serve_releases() {
    mkdir -p "$RELEASES"
    for v in v1.0.0 v2.0.0; do
        "$(bin_dir)/fixture-app" package --version "$v" --out "$RELEASES" >/dev/null
    done
    "$(bin_dir)/fixture-app" package --version v3.0.0 --broken --out "$RELEASES" >/dev/null
    if [ -f "$TRY/http.pid" ] && kill -0 "$(cat "$TRY/http.pid")" 2>/dev/null; then
        return
    fi
    need_cmd python3
    if (exec 3<>"/dev/tcp/127.0.0.1/$RELEASE_PORT") 2>/dev/null; then
        die "port $RELEASE_PORT on 127.0.0.1 is taken by another program: stop it, or set RELEASE_PORT in $0"
    fi
    say "serving the fixture releases on http://127.0.0.1:$RELEASE_PORT/"
    python3 -m http.server --bind 127.0.0.1 --directory "$RELEASES" "$RELEASE_PORT" \
        >"$TRY/http.log" 2>&1 &
    echo $! >"$TRY/http.pid"
}

# The built-in Vikunja profile with its releases pointed at the fixture server.
write_profile() {
    mkdir -p "$CONFIG/profiles"
    local src versions=""
    src="$(cd "$(dirname "$0")/.." && pwd)/profiles/vikunja/profile.yaml"
    for v in v1.0.0 v2.0.0 v3.0.0; do
        local zip="vikunja-$v-linux-amd64-full.zip" sum channel=stable
        sum=$(sha256sum "$RELEASES/$zip" | cut -d' ' -f1)
        [ "$v" = v3.0.0 ] && channel=unstable   # the broken build, for update tests
        versions+="  - version: $v
    channel: $channel
    artifacts:
      amd64:
        url: http://127.0.0.1:$RELEASE_PORT/$zip
        sha256: $sum
        format: zip
        binary: vikunja-$v-linux-amd64
"
    done
    awk -v versions="$versions" '
        /^versions:/ { print "versions:"; printf "%s", versions; skip = 1; next }
        skip && /^[a-z]/ { skip = 0 }
        !skip { print }
    ' "$src" >"$CONFIG/profiles/vikunja.yaml"
}

lab_up() {
    if "$(bin_dir)/pve-lab" --state "$LAB_STATE" status 2>/dev/null | grep -q "^daemon: running"; then
        return
    fi
    say "starting pve-lab (the first run builds a Debian 12 template with debootstrap: about a minute)"
    "$(bin_dir)/pve-lab" up --state "$LAB_STATE" --port "$PORT" --yes \
        --prefix "${LAUNCH_TRY_PREFIX:-plab0}" --subnet "${LAUNCH_TRY_SUBNET:-10.77.0.0/24}" >/dev/null
}

# Saves the lab as launch-tui's connection (`launch-tui connect`), so no command needs
# connection flags, and writes $TRY/env: with it loaded, every command printed works as printed.
connect_lab() {
    PATH="$LAB_STATE/bin:$PATH" "$(bin_dir)/launch-tui" --config "$CONFIG" connect \
        --host "https://127.0.0.1:$PORT" --token-file "$LAB_STATE/token" \
        --fingerprint "$(cat "$LAB_STATE/fingerprint")" >/dev/null
    # The lab's pct stands in for the node's; target/debug holds launch-tui.
    cat >"$TRY/env" <<EOF
export PATH="$LAB_STATE/bin:$(bin_dir):\$PATH"
export LAUNCH_CONFIG="$CONFIG"
EOF
}

install_vikunja() {
    local n=1 name=vikunja
    while [ -f "$CONFIG/instances/$name.yaml" ]; do n=$((n + 1)); name="vikunja-$n"; done
    cat >"$TRY/answers-$name.yaml" <<EOF
name: $name
public_url: http://$name.lab.example
admin_email: admin@lab.example
mcp: false
version: v1.0.0
EOF
    say "installing $name into a new container"
    # shellcheck source=/dev/null
    (. "$TRY/env" && launch-tui install vikunja --answers "$TRY/answers-$name.yaml" --yes)
    cat <<EOF

Open the address above from this machine (the container sits on the lab's bridge).
Manage it: load the lab's settings into your shell once (the lab's pct on PATH, launch-tui's
config with the saved connection), then every command works as printed, no flags needed:
  . $TRY/env
  launch-tui status $name
  launch-tui list
Stop everything: sudo $0 down
EOF
}

down() {
    if [ -f "$TRY/http.pid" ]; then
        kill "$(cat "$TRY/http.pid")" 2>/dev/null || true
        rm -f "$TRY/http.pid"
    fi
    "$(bin_dir)/pve-lab" --state "$LAB_STATE" down
    # A fresh start next time: the lab's containers and the instance records go together.
    rm -rf "$LAB_STATE" "$CONFIG/instances" "$CONFIG/connection.yaml" "$TRY/env"
}

main() {
    [ "$(id -u)" -eq 0 ] || die "the lab starts real containers and needs root: run 'sudo $0'"
    mkdir -p "$TRY"
    case "${1:-}" in
        down) down ;;
        "") build; serve_releases; write_profile; lab_up; connect_lab; install_vikunja ;;
        *) die "usage: $0 [down]" ;;
    esac
}

main "$@"
