#!/usr/bin/env bash
# Runs every test of Launch on a fresh Debian 12 machine, as root: installs what the tests need
# from Debian's packages, checks formatting and lints, then runs the whole workspace's tests
# (unit tests, the real binary's CLI tests, the Proxmox VE client against a local HTTPS server,
# pve-lab with real systemd-nspawn containers, and the end-to-end scenarios).
set -euo pipefail

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

need_root() {
    [ "$(id -u)" -eq 0 ] || die "the tests start real containers and need root: run 'sudo $0'"
}

install_packages() {
    local pkgs=(debootstrap systemd-container nftables iproute2 e2fsprogs zstd util-linux
        nginx-light libnginx-mod-http-lua postgresql mariadb-server sqlite3 tmux curl ca-certificates unzip
        shellcheck minisign wget openssl dnsmasq-base pebble apt-utils gnupg dpkg)
    local missing=()
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        say "installing: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        # Packages whose postinst would start a service are installed with services held back:
        # the tests start their own private servers.
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        rm -f /usr/sbin/policy-rc.d
    fi
    command -v cargo >/dev/null || die "cargo is missing: install Rust (https://rustup.rs) and run again"
    rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy || true
}

main() {
    need_root
    cd "$(dirname "$0")/.."
    [ -f ../shared/pve-api/apidata.json ] || die "../shared/pve-api/apidata.json is missing: the Proxmox VE API schema must sit beside the checkout (see README)"
    install_packages
    say "cargo fmt --check"
    cargo fmt --all -- --check
    say "cargo clippy"
    cargo clippy --workspace --all-targets --quiet -- -D warnings
    say "cargo build --workspace"
    # The end-to-end tests drive the workspace's other binaries (pve-lab, fixture-app).
    cargo build --workspace --quiet
    say "cargo test"
    # Container tests share one machine's network and template cache: one test binary at a
    # time (cargo's default) and few threads inside each.
    cargo test --workspace --no-fail-fast -- --test-threads=2
}

main "$@"
