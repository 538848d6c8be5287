#!/bin/sh
# The one-line installer of launch-tui, for a Proxmox VE host (as root):
#
#   bash -c "$(curl -fsSL https://github.com/OWNER/REPO/releases/latest/download/install.sh)"
#
# It downloads the static launch-tui binary over HTTPS only, checks the minisign signature of
# SHA256SUMS against the public key below and the tarball against SHA256SUMS (both mandatory),
# installs it atomically as /usr/local/bin/launch-tui (keeping the previous one as
# launch-tui.previous), prints its version and starts it on the terminal.
#
# Settings (environment):
#   LAUNCH_VERSION=0.2.0     install this release instead of the newest (also: --version 0.2.0)
#   LAUNCH_NO_START=1        do not start launch-tui afterwards (also: --no-start)
#   LAUNCH_NOT_PVE=1         allow a host without Proxmox VE, e.g. plain Debian (also: --not-pve)
#   LAUNCH_DOWNLOAD_URL=URL  a mirror laid out like GitHub releases: URL/download/vV/FILE and
#                            URL/latest/download/FILE (HTTPS only)
#   LAUNCH_CA_FILE=FILE      also trust this CA certificate (a mirror with a private CA)
#   LAUNCH_INSTALL_DIR=DIR   install here instead of /usr/local/bin
#   LAUNCH_RELEASE_PUBKEY=K  a mirror that signs with its own minisign key (warned about)
#   LAUNCH_DOWNLOADER=curl|wget, LAUNCH_VERIFIER=minisign|openssl   choose the tools
#   LAUNCH_ARCH=x86_64       what `uname -m` would say (tests)
#
# POSIX sh (checked with shellcheck, run under dash). Everything is in functions and `main "$@"`
# is the last line, so a truncated download runs nothing.

# The release signing key (minisign). scripts/release.sh checks it matches the key it signs with.
RELEASE_PUBKEY='RWTioG0Pp/r7OfaAPSzVBl4wj4gMxx3t9YQqavl3+KccK2IccGU+SSUn'
# scripts/release.sh stamps these two into the copy it publishes.
DEFAULT_VERSION='latest'
DEFAULT_DOWNLOAD_URL='https://github.com/launch-tui/launch/releases'

ASSET_PREFIX='launch-tui'
TMP_DIR=''
STAGED=''

say() { printf 'launch-install: %s\n' "$*" >&2; }

# die MESSAGE [HELP]: exits 1, nothing installed.
die() {
    printf 'launch-install: error: %s\n' "$1" >&2
    if [ -n "${2:-}" ]; then
        printf '  help: %s\n' "$2" >&2
    fi
    printf 'launch-install: nothing was installed\n' >&2
    exit 1
}

need_cmd() {
    command -v "$1" >/dev/null 2>&1 || die "the command '$1' is needed but missing" "${2:-install it with apt-get install $1}"
}

# ensure CMD...: runs it, dies naming it when it fails.
ensure() {
    "$@" || die "command failed: $*"
}

cleanup() {
    if [ -n "$STAGED" ] && [ -e "$STAGED" ]; then
        rm -f "$STAGED"
    fi
    if [ -n "$TMP_DIR" ] && [ -d "$TMP_DIR" ]; then
        rm -rf "$TMP_DIR"
    fi
}

usage() {
    cat <<'EOF'
Installs launch-tui (run as root on a Proxmox VE host).

  install.sh [--version V] [--no-start] [--not-pve]

See the comment at the top of this script for every setting.
EOF
}

check_root() {
    if [ "$(id -u)" -ne 0 ]; then
        die "launch-tui must be installed as root (it goes to $INSTALL_DIR and manages containers)" \
            "run it again as root, e.g. with sudo"
    fi
}

check_pve() {
    if command -v pveversion >/dev/null 2>&1; then
        say "Proxmox VE: $(pveversion 2>/dev/null | head -n 1)"
        return
    fi
    if [ "$NOT_PVE" = 1 ]; then
        say "no Proxmox VE on this host (pveversion is missing); going on as asked (LAUNCH_NOT_PVE=1)"
        return
    fi
    die "this host does not run Proxmox VE (the command pveversion is missing)" \
        "run this on the Proxmox VE host; to install on plain Debian anyway (to manage a remote node with --host), set LAUNCH_NOT_PVE=1 or pass --not-pve"
}

# Prints the release target for this machine's architecture.
target_for_arch() {
    arch=${LAUNCH_ARCH:-$(uname -m)}
    case "$arch" in
        x86_64 | amd64) echo x86_64-linux ;;
        *) die "unsupported architecture: $arch (launch-tui is released for x86_64 only)" \
            "build it from source on this machine: cargo build --release (see README.md)" ;;
    esac
}

pick_downloader() {
    case "${LAUNCH_DOWNLOADER:-}" in
        curl | wget) need_cmd "$LAUNCH_DOWNLOADER"; echo "$LAUNCH_DOWNLOADER"; return ;;
        '') ;;
        *) die "LAUNCH_DOWNLOADER=$LAUNCH_DOWNLOADER is not a downloader this script knows" "use curl or wget" ;;
    esac
    if command -v curl >/dev/null 2>&1; then
        echo curl
    elif command -v wget >/dev/null 2>&1; then
        echo wget
    else
        die "neither curl nor wget is installed" "apt-get install curl"
    fi
}

pick_verifier() {
    case "${LAUNCH_VERIFIER:-}" in
        minisign | openssl) need_cmd "$LAUNCH_VERIFIER"; echo "$LAUNCH_VERIFIER"; return ;;
        '') ;;
        *) die "LAUNCH_VERIFIER=$LAUNCH_VERIFIER is not a verifier this script knows" "use minisign or openssl" ;;
    esac
    if command -v minisign >/dev/null 2>&1; then
        echo minisign
    elif command -v openssl >/dev/null 2>&1; then
        # Every Proxmox VE host has openssl, and so has any Debian with ca-certificates.
        echo openssl
    else
        die "cannot check the release signature: neither minisign nor openssl is installed" \
            "apt-get install openssl (or minisign), then run this again"
    fi
}

# download URL FILE: HTTPS only, TLS 1.2 or newer, failing on any HTTP error.
download() {
    case "$1" in
        https://*) ;;
        *) die "refusing to download over anything but HTTPS: $1" "set LAUNCH_DOWNLOAD_URL to an https:// address" ;;
    esac
    if [ "$DOWNLOADER" = curl ]; then
        if [ -n "${LAUNCH_CA_FILE:-}" ]; then
            curl --proto '=https' --proto-redir '=https' --tlsv1.2 -fsSL --retry 2 \
                --cacert "$LAUNCH_CA_FILE" -o "$2" "$1"
        else
            curl --proto '=https' --proto-redir '=https' --tlsv1.2 -fsSL --retry 2 -o "$2" "$1"
        fi
    else
        if [ -n "${LAUNCH_CA_FILE:-}" ]; then
            wget --https-only --secure-protocol=TLSv1_2 -q --ca-certificate="$LAUNCH_CA_FILE" -O "$2" "$1"
        else
            wget --https-only --secure-protocol=TLSv1_2 -q -O "$2" "$1"
        fi
    fi || die "download failed: $1" \
        "check the network and the version (LAUNCH_VERSION=$VERSION); the release may not exist"
}

hex_of() { od -An -tx1 | tr -d ' \n'; }

# verify_openssl FILE SIGFILE: a minisign signature (and its trusted comment) checked with
# openssl's Ed25519, for hosts without minisign. The format is minisign's documented one:
# base64("Ed"|"ED" || key id || signature), "ED" signing the BLAKE2b-512 of the file.
verify_openssl() {
    d=$TMP_DIR/sig
    mkdir -p "$d"
    printf '%s' "$PUBKEY" | base64 -d >"$d/pk.bin" 2>/dev/null
    if [ "$(wc -c <"$d/pk.bin")" -ne 42 ] || [ "$(head -c 2 "$d/pk.bin")" != Ed ]; then
        die "the release public key is not a minisign Ed25519 key: $PUBKEY"
    fi
    sed -n 2p "$2" | base64 -d >"$d/sig.bin" 2>/dev/null
    sed -n 4p "$2" | base64 -d >"$d/global.sig" 2>/dev/null
    if [ "$(wc -c <"$d/sig.bin")" -ne 74 ] || [ "$(wc -c <"$d/global.sig")" -ne 64 ]; then
        die "the signature file $SUMS.minisig is malformed" "the download may be damaged; try again"
    fi
    key_id=$(head -c 10 "$d/pk.bin" | tail -c 8 | hex_of)
    sig_key_id=$(head -c 10 "$d/sig.bin" | tail -c 8 | hex_of)
    [ "$key_id" = "$sig_key_id" ] \
        || die "$SUMS is signed with another key ($sig_key_id), not Launch's release key ($key_id)"
    # An Ed25519 public key as DER: the SubjectPublicKeyInfo header, then the 32 key bytes.
    { printf '\060\052\060\005\006\003\053\145\160\003\041\000'; tail -c 32 "$d/pk.bin"; } >"$d/pk.der"
    tail -c 64 "$d/sig.bin" >"$d/file.sig"
    case "$(head -c 2 "$d/sig.bin")" in
        Ed) cp "$1" "$d/file.msg" ;;
        ED) openssl dgst -blake2b512 -binary "$1" >"$d/file.msg" || die "openssl cannot compute BLAKE2b-512" ;;
        *) die "the signature of $SUMS uses an unknown algorithm" ;;
    esac
    openssl pkeyutl -verify -pubin -inkey "$d/pk.der" -keyform DER -rawin \
        -in "$d/file.msg" -sigfile "$d/file.sig" >/dev/null 2>&1 \
        || die "bad signature: $SUMS is not signed by Launch's release key" \
            "do not use this download; if you use a mirror, check it (LAUNCH_DOWNLOAD_URL)"
    { cat "$d/file.sig"; printf '%s' "$(trusted_comment "$2")"; } >"$d/global.msg"
    openssl pkeyutl -verify -pubin -inkey "$d/pk.der" -keyform DER -rawin \
        -in "$d/global.msg" -sigfile "$d/global.sig" >/dev/null 2>&1 \
        || die "bad signature: the trusted comment of $SUMS.minisig was altered"
}

trusted_comment() {
    line=$(sed -n 3p "$1")
    case "$line" in
        'trusted comment: '*) printf '%s' "${line#trusted comment: }" ;;
        *) die "the signature file $SUMS.minisig has no trusted comment" ;;
    esac
}

# Checks the signature of SHA256SUMS; prints the release's version from the signed comment
# ("launch-tui 0.2.0").
verify_signature() {
    if [ "$VERIFIER" = minisign ]; then
        minisign -Vm "$1" -x "$2" -P "$PUBKEY" -q >/dev/null 2>&1 \
            || die "bad signature: $SUMS is not signed by Launch's release key" \
                "do not use this download; if you use a mirror, check it (LAUNCH_DOWNLOAD_URL)"
    else
        verify_openssl "$1" "$2"
    fi
    comment=$(trusted_comment "$2") || exit 1
    rest=${comment#launch-tui }
    signed_version=${rest%% *}
    if [ "$rest" = "$comment" ] || [ -z "$signed_version" ]; then
        die "the signed comment of $SUMS does not name a launch-tui release: $comment"
    fi
    printf '%s' "$signed_version"
}

# check_sum FILE NAME: FILE's SHA-256 must be the one SHA256SUMS lists for NAME.
check_sum() {
    expected=$(awk -v f="$2" '$2 == f || $2 == "*" f { print $1; exit }' "$TMP_DIR/$SUMS")
    [ -n "$expected" ] || die "$SUMS lists no checksum for $2"
    if command -v sha256sum >/dev/null 2>&1; then
        actual=$(sha256sum "$1" | cut -d ' ' -f 1)
    else
        actual=$(openssl dgst -sha256 -r "$1" | cut -d ' ' -f 1)
    fi
    [ "$actual" = "$expected" ] || die "checksum mismatch for $2 (expected $expected, got $actual): the download is damaged or truncated" \
        "try again; if it persists, the mirror serves a wrong file"
}

# Stages the verified binary next to its destination, then renames it into place (atomic on
# the same filesystem), keeping the previous binary as launch-tui.previous.
install_binary() {
    mkdir -p "$INSTALL_DIR" || die "cannot create $INSTALL_DIR"
    STAGED="$INSTALL_DIR/.launch-tui.new.$$"
    ensure cp "$1" "$STAGED"
    ensure chmod 0755 "$STAGED"
    staged_version=$("$STAGED" --version 2>/dev/null) \
        || die "the downloaded launch-tui does not run on this machine" "report this with the output of: uname -a; ldd --version"
    [ "$staged_version" = "launch-tui $2" ] \
        || die "the downloaded binary says '$staged_version', the signed release is $2"
    dest="$INSTALL_DIR/launch-tui"
    if [ -f "$dest" ]; then
        ensure cp -p "$dest" "$INSTALL_DIR/.launch-tui.previous.$$"
        ensure mv -f "$INSTALL_DIR/.launch-tui.previous.$$" "$INSTALL_DIR/launch-tui.previous"
    fi
    ensure mv -f "$STAGED" "$dest"
    STAGED=''
}

start_launch() {
    if [ "$NO_START" = 1 ]; then
        return
    fi
    # With `curl ... | sh` stdin is the script; the terminal is still /dev/tty.
    if ! (: </dev/tty) 2>/dev/null; then
        say "no terminal: run 'launch-tui' to start the install wizard"
        return
    fi
    say "starting launch-tui"
    exec "$INSTALL_DIR/launch-tui" </dev/tty >/dev/tty 2>&1
}

main() {
    VERSION=${LAUNCH_VERSION:-$DEFAULT_VERSION}
    NO_START=${LAUNCH_NO_START:-0}
    NOT_PVE=${LAUNCH_NOT_PVE:-0}
    while [ $# -gt 0 ]; do
        case "$1" in
            --version) [ $# -ge 2 ] || die "--version needs a value, e.g. --version 0.2.0"; VERSION=$2; shift ;;
            --no-start) NO_START=1 ;;
            --not-pve) NOT_PVE=1 ;;
            -h | --help) usage; return 0 ;;
            *) die "unknown argument: $1" "see --help" ;;
        esac
        shift
    done
    VERSION=${VERSION#v}
    case "$VERSION" in
        latest | [0-9]*.[0-9]*.[0-9]*) ;;
        *) die "not a release version: $VERSION" "give one like 0.2.0 (LAUNCH_VERSION or --version)" ;;
    esac
    case "$VERSION" in
        *[!0-9A-Za-z.+-]*) die "not a release version: $VERSION" "give one like 0.2.0" ;;
    esac
    INSTALL_DIR=${LAUNCH_INSTALL_DIR:-/usr/local/bin}
    BASE=${LAUNCH_DOWNLOAD_URL:-$DEFAULT_DOWNLOAD_URL}
    BASE=${BASE%/}
    PUBKEY=${LAUNCH_RELEASE_PUBKEY:-$RELEASE_PUBKEY}
    if [ "$PUBKEY" != "$RELEASE_PUBKEY" ]; then
        say "warning: checking signatures with another key than Launch's (LAUNCH_RELEASE_PUBKEY)"
    fi
    if [ -n "${LAUNCH_CA_FILE:-}" ] && [ ! -r "$LAUNCH_CA_FILE" ]; then
        die "LAUNCH_CA_FILE=$LAUNCH_CA_FILE cannot be read"
    fi
    SUMS=SHA256SUMS

    check_root
    check_pve
    target=$(target_for_arch) || exit 1
    DOWNLOADER=$(pick_downloader) || exit 1
    VERIFIER=$(pick_verifier) || exit 1
    need_cmd tar
    need_cmd mktemp

    TMP_DIR=$(mktemp -d) || die "cannot create a temporary directory"
    trap cleanup EXIT
    trap 'exit 130' INT TERM

    if [ "$VERSION" = latest ]; then
        url="$BASE/latest/download"
    else
        url="$BASE/download/v$VERSION"
    fi
    asset="$ASSET_PREFIX-$target.tar.gz"
    say "downloading launch-tui ($VERSION) from $url"
    download "$url/$SUMS" "$TMP_DIR/$SUMS"
    download "$url/$SUMS.minisig" "$TMP_DIR/$SUMS.minisig"
    download "$url/$asset" "$TMP_DIR/$asset"

    release=$(verify_signature "$TMP_DIR/$SUMS" "$TMP_DIR/$SUMS.minisig") || exit 1
    if [ "$VERSION" != latest ] && [ "$release" != "$VERSION" ]; then
        die "asked for $VERSION but the signed release is $release" "the mirror serves the wrong release"
    fi
    say "signature ok ($VERIFIER): launch-tui $release"
    check_sum "$TMP_DIR/$asset" "$asset"
    say "checksum ok: $asset"

    mkdir "$TMP_DIR/unpack" || die "cannot create $TMP_DIR/unpack"
    tar -xzf "$TMP_DIR/$asset" -C "$TMP_DIR/unpack" launch-tui \
        || die "cannot unpack $asset (no launch-tui inside?)"
    install_binary "$TMP_DIR/unpack/launch-tui" "$release"
    say "installed $("$INSTALL_DIR/launch-tui" --version) as $INSTALL_DIR/launch-tui"
    if [ -f "$INSTALL_DIR/launch-tui.previous" ]; then
        say "the previous binary is kept as $INSTALL_DIR/launch-tui.previous (launch-tui self-update --rollback)"
    fi
    cleanup
    start_launch
}

main "$@"
