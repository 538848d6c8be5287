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
        shellcheck minisign wget openssl dnsmasq-base pebble apt-utils gnupg dpkg postgresql-server-dev-15)
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

# pgvector for the lab: Debian 12 has no pgvector package (real hosts take PGDG's), so the tests
# build Debian 13's pgvector 0.8.0 source against Debian 12's PostgreSQL 15. The tests never
# download anything themselves, so its source tarball is fetched here once and kept between runs.
PGVECTOR_TARBALL=/var/cache/launch-tests/pgvector_0.8.0.orig.tar.gz
PGVECTOR_URL=http://deb.debian.org/debian/pool/main/p/pgvector/pgvector_0.8.0.orig.tar.gz
# From trixie's signed Sources index.
PGVECTOR_SHA256=867a2c328d4928a5a9d6f052cd3bc78c7d60228a9b914ad32aa3db88e9de27b0

fetch_pgvector_source() {
    if [ -f "$PGVECTOR_TARBALL" ] && sha256sum -c --status <<<"$PGVECTOR_SHA256  $PGVECTOR_TARBALL"; then
        return 0
    fi
    say "downloading $PGVECTOR_URL"
    mkdir -p "$(dirname "$PGVECTOR_TARBALL")"
    local part="$PGVECTOR_TARBALL.part"
    curl -fsSL --retry 3 -o "$part" "$PGVECTOR_URL" || die "could not download $PGVECTOR_URL"
    sha256sum -c --status <<<"$PGVECTOR_SHA256  $part" || {
        rm -f "$part"
        die "$PGVECTOR_URL does not have sha256 $PGVECTOR_SHA256: not using it (try again later, or check the mirror)"
    }
    mv "$part" "$PGVECTOR_TARBALL"
}

main() {
    need_root
    cd "$(dirname "$0")/.."
    [ -f ../shared/pve-api/apidata.json ] || die "../shared/pve-api/apidata.json is missing: the Proxmox VE API schema must sit beside the checkout (see README)"
    install_packages
    fetch_pgvector_source
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
