#!/usr/bin/env bash
# The one-line installer for a Proxmox VE host:
#   bash -c "$(curl -fsSL https://.../install.sh)"
# Not yet: releases are not published. This stub only says so. Everything is in functions and
# `main "$@"` is the last line, so a truncated download runs nothing.
set -u

say() { printf 'launch: %s\n' "$*" >&2; }

main() {
    say "the installer is not available yet: releases of launch-tui are not published."
    say "build from source instead: cargo build --release (see README.md)."
    return 1
}

main "$@"
