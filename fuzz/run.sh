#!/usr/bin/env bash
# Runs each fuzz target for a bounded time, one after the other, and prints how many inputs each one executed.
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]      (default: 60 seconds, every target)
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`). New interesting inputs are
# kept in fuzz/corpus/<target>; fuzz/seeds/<target> (committed) is read as well. A crash leaves its input in
# fuzz/artifacts/<target>/ and makes the script exit 1 once every target has run; see docs/fuzzing.md for turning
# it into a regression test. FUZZ_SANITIZER (default: address) is passed to `cargo fuzz --sanitizer`.
set -euo pipefail

fuzz_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
all_targets=(ciphertext audit_query seed import_unwrap)

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]   (targets: ${all_targets[*]})" >&2
    exit 2
fi
shift $(($# > 0 ? 1 : 0))
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=("${all_targets[@]}")
fi
for target in "${targets[@]}"; do
    if ! [[ " ${all_targets[*]} " == *" $target "* ]]; then
        echo "unknown target '$target' (targets: ${all_targets[*]})" >&2
        exit 2
    fi
done

cd "$fuzz_dir/.."
mkdir -p "$fuzz_dir/logs"
summary=()
failed=0
for target in "${targets[@]}"; do
    corpus="$fuzz_dir/corpus/$target"
    mkdir -p "$corpus"
    corpora=("$corpus")
    if [ -d "$fuzz_dir/seeds/$target" ]; then
        corpora+=("$fuzz_dir/seeds/$target")
    fi
    log="$fuzz_dir/logs/$target.log"
    echo "== $target: ${seconds}s, log in $log"
    # Debug assertions (-a) turn integer overflow into a panic the fuzzer reports. A per-input timeout well
    # above the slowest legitimate input (an RSA-2048 decryption) reports hangs instead of waiting for them.
    status=0
    cargo +nightly fuzz run --fuzz-dir "$fuzz_dir" --sanitizer "${FUZZ_SANITIZER:-address}" -a "$target" "${corpora[@]}" -- \
        -max_total_time="$seconds" -timeout=30 -print_final_stats=1 >"$log" 2>&1 || status=$?
    executions="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1 || true)"
    if [ "$status" -eq 0 ]; then
        result="no crash"
    else
        failed=1
        artifact="$(grep -o 'Test unit written to .*' "$log" | sed 's/Test unit written to //' | tail -n 1 || true)"
        result="FAILED (exit $status)${artifact:+, input in $artifact}"
        tail -n 40 "$log" >&2
    fi
    summary+=("$(printf '%-14s %12s executions  %s' "$target" "${executions:-?}" "$result")")
done

echo
echo "== fuzzing summary (${seconds}s per target)"
printf '%s\n' "${summary[@]}"
exit "$failed"
