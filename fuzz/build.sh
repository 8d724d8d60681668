#!/usr/bin/env bash
# Builds the fuzz targets with libFuzzer's coverage instrumentation on the stable toolchain
# (see docs/fuzzing.md). Usage: fuzz/build.sh [cargo build args, e.g. --bin gguf --features planted-bug]
set -euo pipefail
cd "$(dirname "$0")"
export RUSTFLAGS="${RUSTFLAGS:-} -Cpasses=sancov-module \
 -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
 -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares \
 --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
# csv_core without compare tracing (see the wrapper). Cargo does not rebuild on a changed
# wrapper: after changing it, `cargo clean -p csv-core --release --target <host>` here.
export RUSTC_WRAPPER="$PWD/rustc-wrapper.sh"
# --target keeps RUSTFLAGS off build scripts and proc macros (they must not be instrumented).
exec cargo build --release --target "$(rustc -vV | sed -n 's/^host: //p')" "$@"
