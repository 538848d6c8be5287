#!/usr/bin/env bash
# Runs the property tests of untrusted input (escaping filters parsed back by the real parsers,
# the answers resolver, the archive reader) with many more cases than CI does.
# Usage: scripts/fuzz.sh [CASES]   (default 20000)
set -euo pipefail
cd "$(dirname "$0")/.."
cases=${1:-20000}
echo "==> property tests with PROPTEST_CASES=$cases"
PROPTEST_CASES=$cases cargo test --release --test fuzz_input -- --test-threads=2
