#!/usr/bin/env bash
# Runs every cargo-fuzz target under fuzz/ for SECONDS each (default 20): the IMAP,
# POP3 and SMTP machines (downstream pre-auth parsers and state machines, upstream
# response readers) and the SASL decoders. Exits non-zero when a target finds a crash
# (the input is kept in fuzz/artifacts/TARGET/); prints "SKIP: ..." and exits 0 when
# this toolchain cannot build fuzz targets.
#
# Installs cargo-fuzz when missing. On a stable toolchain the build uses
# RUSTC_BOOTSTRAP=1 (cargo-fuzz needs -Z flags). Two targets run at a time (one per
# core). Environment:
#   FUZZ_SANITIZER  address, none, ... (default none: the crate has no unsafe code,
#                   and an uninstrumented build is several times faster to compile)
#   FUZZ_PROFILE    release or dev (default dev: compiles faster; debug assertions on)
#   FUZZ_JOBS       targets run at once (default: number of cores, at most 2)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-20}"
sanitizer="${FUZZ_SANITIZER:-none}"
profile="${FUZZ_PROFILE:-dev}"
jobs="${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}"
[ "$jobs" -gt 2 ] && jobs=2
start=$(date +%s)

skip() {
    echo "SKIP: fuzzing: $*"
    exit 0
}

case "$(uname -s)-$(uname -m)" in
Linux-x86_64 | Linux-aarch64 | Darwin-x86_64 | Darwin-arm64) ;;
*) skip "libFuzzer is not supported on $(uname -s)-$(uname -m)" ;;
esac
command -v c++ >/dev/null || command -v clang++ >/dev/null ||
    skip "no C++ compiler (libFuzzer is built from source)"

# -Z flags need a nightly compiler, or RUSTC_BOOTSTRAP=1 on a stable one.
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'fn main() {}' >"$probe/probe.rs"
probe_flags=(-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-inline-8bit-counters)
[ "$sanitizer" != none ] && probe_flags+=("-Zsanitizer=$sanitizer")
if ! rustc "${probe_flags[@]}" -o "$probe/probe" "$probe/probe.rs" 2>/dev/null; then
    export RUSTC_BOOTSTRAP=1
    if ! err=$(rustc "${probe_flags[@]}" -o "$probe/probe" "$probe/probe.rs" 2>&1); then
        skip "$(rustc -V) cannot build instrumented code: $(echo "$err" | head -n 1)"
    fi
    echo "fuzz: stable toolchain, building with RUSTC_BOOTSTRAP=1"
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked || skip "cargo install cargo-fuzz failed"
fi

build_args=(--sanitizer "$sanitizer")
out_dir=release
if [ "$profile" = dev ]; then
    build_args+=(--dev)
    out_dir=debug
    # Line tables are enough for libFuzzer's stack traces, and link much faster.
    export CARGO_PROFILE_DEV_DEBUG=line-tables-only
fi
cd fuzz
echo "fuzz: building ($profile, sanitizer $sanitizer)"
cargo fuzz build "${build_args[@]}"
built=$(date +%s)
bin_dir="target/$(rustc -vV | sed -n 's/^host: //p')/$out_dir"

targets=$(cargo fuzz list)
dict_for() {
    case "$1" in
    imap_*) echo "-dict=$PWD/dict/imap.dict" ;;
    pop3_*) echo "-dict=$PWD/dict/pop3.dict" ;;
    smtp_*) echo "-dict=$PWD/dict/smtp.dict" ;;
    sasl*) echo "-dict=$PWD/dict/sasl.dict" ;;
    esac
}

logs=$(mktemp -d)
trap 'rm -rf "$probe" "$logs"' EXIT
run_one() {
    local t=$1
    mkdir -p "corpus/$t" "artifacts/$t"
    # The binaries directly: `cargo fuzz run` would hold the build lock while running.
    # shellcheck disable=SC2046
    if "$bin_dir/$t" -artifact_prefix="artifacts/$t/" -max_total_time="$secs" \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 $(dict_for "$t") \
        "corpus/$t" >"$logs/$t.log" 2>&1; then
        echo "fuzz: $t ok ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "$logs/$t.log" |
            grep -o '[0-9]*$' || echo '?') runs)"
    else
        echo "fuzz: $t FAILED; its output:"
        tail -n 60 "$logs/$t.log"
        return 1
    fi
}

failed=()
running=()
for t in $targets; do
    run_one "$t" &
    running+=("$!:$t")
    if [ "${#running[@]}" -ge "$jobs" ]; then
        entry=${running[0]}
        running=("${running[@]:1}")
        wait "${entry%%:*}" || failed+=("${entry#*:}")
    fi
done
for entry in "${running[@]}"; do
    wait "${entry%%:*}" || failed+=("${entry#*:}")
done

end=$(date +%s)
echo "fuzz: build $((built - start)) s, runs $((end - built)) s"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz: crashes in: ${failed[*]} (inputs in fuzz/artifacts/)"
    exit 1
fi
