#!/usr/bin/env bash
# Installs what the integration tests need beyond the Rust toolchain:
#   - Dovecot 2.3 (imapd, pop3d, submissiond) as a real XOAUTH2 upstream; the tests
#     start private instances with their own config, so the system service must not run;
#   - python3 and curl (used by scripts and the demo), python3-yaml (tests/packaging.rs
#     parses the compose and Kubernetes examples); openssl (RSA test keys for
#     the jwt_bearer test);
#   - chromium and chromium-driver (the admin page's real-browser test,
#     tests/admin_browser.rs, drives headless Chromium through WebDriver);
#   - haproxy (the benchmark's reference relay; `cargo test --bin bench` checks
#     that it relays what the benchmark measures through it);
#   - the `vmail` system user that owns the test mailboxes.
#
# Idempotent and non-interactive (no stdin needed). Run as root, or as a user with
# sudo; nothing is installed when everything is present already.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

PACKAGES=(dovecot-imapd dovecot-pop3d dovecot-submissiond python3 python3-yaml curl openssl chromium chromium-driver haproxy)
POLICY=/usr/sbin/policy-rc.d
SCRIPT="$(readlink -f "${BASH_SOURCE[0]}")"

log() { printf 'setup-test-deps: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

missing_packages() {
    local p
    for p in "${PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            printf '%s\n' "$p"
        fi
    done
}

# Re-run the whole script as root through sudo when something needs doing and we
# are not root. $1 says what is missing, for the error message.
ensure_root() {
    [ "$(id -u)" -eq 0 ] && return 0
    if command -v sudo >/dev/null 2>&1; then
        log "not root: re-running with sudo -n to install $1"
        exec sudo -n env DEBIAN_FRONTEND=noninteractive bash "$SCRIPT" </dev/null
    fi
    die "must run as root (sudo is not available) to install $1"
}

install_packages() {
    local missing=("$@")
    command -v apt-get >/dev/null 2>&1 \
        || die "apt-get not found: install ${missing[*]} with your package manager"

    # Keep the packaged Dovecot from starting on ports 143/993/110/995/587: the
    # tests run private instances. Only remove the policy file if we created it.
    local created_policy=0
    if [ ! -e "$POLICY" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$POLICY"
        chmod 0755 "$POLICY"
        created_policy=1
        trap 'rm -f "$POLICY"' EXIT
    fi

    log "apt-get update"
    apt-get update -q </dev/null
    log "installing: ${missing[*]}"
    apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${missing[@]}" </dev/null

    if [ "$created_policy" -eq 1 ]; then
        rm -f "$POLICY"
        trap - EXIT
    fi
}

main() {
    local -a missing
    mapfile -t missing < <(missing_packages)
    local need_user=0
    getent passwd vmail >/dev/null 2>&1 || need_user=1

    if [ "${#missing[@]}" -eq 0 ] && [ "$need_user" -eq 0 ]; then
        log "everything is installed already"
        return 0
    fi
    local what="${missing[*]}"
    [ "$need_user" -eq 1 ] && what="${what:+$what and }the vmail user"
    ensure_root "$what"

    if [ "${#missing[@]}" -gt 0 ]; then
        install_packages "${missing[@]}"
    fi
    if ! getent passwd vmail >/dev/null 2>&1; then
        log "creating system user vmail"
        useradd --system --no-create-home --shell /usr/sbin/nologin vmail
    fi

    command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ] \
        || die "dovecot still not found after installation"
    log "done: $(/usr/sbin/dovecot --version 2>/dev/null || dovecot --version)"
}

main "$@"
