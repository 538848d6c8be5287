#!/usr/bin/env bash
# Builds a release into dist/: the static x86_64 launch-tui in a tarball, install.sh stamped
# with this version, the release base URL and the public key, SHA256SUMS over both, and
# SHA256SUMS.minisig (minisign, with the trusted comment "launch-tui VERSION" that install.sh
# and self-update read). Upload dist/* as the assets of the GitHub release vVERSION.
#
#   LAUNCH_SIGNING_KEY=/path/minisign.key scripts/release.sh
#   scripts/release.sh --binary FILE --version V --key K --pubkey P --out DIR   (tests)
#
# Options: --binary FILE (skip the build, package FILE), --version V (default Cargo.toml's),
# --key FILE (minisign secret key, or LAUNCH_SIGNING_KEY; must be unencrypted or the password
# comes on stdin), --pubkey FILE (default keys/launch-release.pub: what install.sh and the
# binary embed), --base-url URL (or LAUNCH_RELEASE_BASE_URL), --out DIR (default dist).
set -euo pipefail

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
need_cmd() { command -v "$1" >/dev/null 2>&1 || die "need '$1' (apt-get install $2)"; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=x86_64-unknown-linux-gnu
ASSET=launch-tui-x86_64-linux.tar.gz

# The static build: glibc with +crt-static (musl's target is not installed on the build
# machines). --target keeps build scripts and proc macros dynamic, as they must be.
build_static() {
    need_cmd cargo cargo
    say "building the static release binary (fat LTO: several minutes)"
    (cd "$ROOT" && RUSTFLAGS="-C target-feature=+crt-static" \
        cargo build --release --locked -p launch-tui --target "$TARGET" --quiet)
    local bin=${CARGO_TARGET_DIR:-$ROOT/target}/$TARGET/release/launch-tui
    check_static "$bin"
    echo "$bin"
}

# glibc's ldd says "statically linked" for a static PIE (what rustc builds with +crt-static:
# static, and still loaded at a random address) and "not a dynamic executable" for a non-PIE one.
check_static() {
    case "$(ldd "$1" 2>&1)" in
        *"statically linked"* | *"not a dynamic executable"*) ;;
        *) die "$1 is dynamically linked: $(ldd "$1" 2>&1 | tr '\n' ' ')" ;;
    esac
}

cargo_version() {
    sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -n 1
}

main() {
    local binary="" version="" key=${LAUNCH_SIGNING_KEY:-} pubkey=$ROOT/keys/launch-release.pub
    local base=${LAUNCH_RELEASE_BASE_URL:-} out=$ROOT/dist
    while [ $# -gt 0 ]; do
        case "$1" in
            --binary) binary=$2; shift ;;
            --version) version=$2; shift ;;
            --key) key=$2; shift ;;
            --pubkey) pubkey=$2; shift ;;
            --base-url) base=$2; shift ;;
            --out) out=$2; shift ;;
            *) die "unknown argument: $1 (see the top of $0)" ;;
        esac
        shift
    done
    need_cmd minisign minisign
    need_cmd sha256sum coreutils
    [ -n "$key" ] || die "no signing key: set LAUNCH_SIGNING_KEY=FILE or pass --key FILE"
    [ -r "$key" ] || die "cannot read the signing key $key"
    [ -r "$pubkey" ] || die "cannot read the public key $pubkey"
    version=${version:-$(cargo_version)}
    version=${version#v}
    [[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.+-]*)?$ ]] \
        || die "not a release version: $version"
    if [ -n "$base" ] && [[ "$base" != https://* ]]; then
        die "the release base URL must be https://: $base"
    fi
    [ -n "$binary" ] || binary=$(build_static)
    [ -x "$binary" ] || die "$binary is not an executable file"
    if [ "$(head -c 4 "$binary")" = $'\x7fELF' ]; then
        check_static "$binary"
    fi
    local says
    says=$("$binary" --version)
    [ "$says" = "launch-tui $version" ] || die "$binary says '$says', the release is $version"

    local pub
    pub=$(sed -n 2p "$pubkey")
    [[ "$pub" =~ ^[A-Za-z0-9+/=]+$ ]] || die "$pubkey is not a minisign public key file"

    rm -rf "$out"
    mkdir -p "$out/stage"
    install -m 0755 "$binary" "$out/stage/launch-tui"
    tar --owner=0 --group=0 --numeric-owner -C "$out/stage" -czf "$out/$ASSET" launch-tui
    rm -rf "$out/stage"

    # install.sh pinned to this release (the one on .../latest/download/ is then the newest).
    local script
    script=$(sed \
        -e "s|^RELEASE_PUBKEY='.*'$|RELEASE_PUBKEY='$pub'|" \
        -e "s|^DEFAULT_VERSION='.*'$|DEFAULT_VERSION='$version'|" \
        "$ROOT/install.sh")
    if [ -n "$base" ]; then
        script=$(printf '%s\n' "$script" | sed -e "s|^DEFAULT_DOWNLOAD_URL='.*'$|DEFAULT_DOWNLOAD_URL='$base'|")
    fi
    printf '%s\n' "$script" >"$out/install.sh"
    chmod 0755 "$out/install.sh"
    grep -q "^RELEASE_PUBKEY='$pub'$" "$out/install.sh" || die "could not stamp the key into install.sh"

    (cd "$out" && sha256sum "$ASSET" install.sh >SHA256SUMS)
    minisign -S -s "$key" -m "$out/SHA256SUMS" -x "$out/SHA256SUMS.minisig" \
        -t "launch-tui $version" >/dev/null
    # The key that signed must be the key that is embedded.
    minisign -V -q -p "$pubkey" -m "$out/SHA256SUMS" -x "$out/SHA256SUMS.minisig" >/dev/null \
        || die "the signature does not verify with $pubkey: the signing key is not the embedded one"
    say "dist for launch-tui $version in $out:"
    (cd "$out" && ls -l) >&2
}

main "$@"
