#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests need
# (Dovecot, python3, curl) through scripts/setup-test-deps.sh, then every test.
# Extra arguments go to `cargo test` (e.g. `scripts/test.sh --test imap`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-test-deps.sh
cargo test --all-targets --no-fail-fast "$@"
