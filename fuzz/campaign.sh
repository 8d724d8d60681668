#!/usr/bin/env bash
# Runs the fuzz campaigns one at a time under nice -n 19 and prints one table row per target
# for docs/fuzzing.md. Usage: fuzz/campaign.sh [RUNS] [SECONDS] [targets...]
# (defaults: 10,000,000 runs, no time limit, every target). Build first: fuzz/build.sh
set -uo pipefail
cd "$(dirname "$0")"
RUNS=${1:-10000000}
SECS=${2:-0}
shift $(( $# > 2 ? 2 : $# ))
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(gguf safetensors arc hellaswag truthfulqa mmlu gsm8k replay runs)
T=${CARGO_TARGET_DIR:-target}/$(rustc -vV | sed -n 's/^host: //p')/release
mkdir -p logs
for t in "${TARGETS[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    log="logs/$t.log"
    start=$(date -u +%Y-%m-%dT%H:%MZ)
    nice -n 19 "$T/$t" "corpus/$t" "seeds/$t" -runs="$RUNS" -max_total_time="$SECS" \
        -max_len=65536 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        -artifact_prefix="artifacts/$t/" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")
    crashes=$(ls "artifacts/$t" | wc -l)
    secs=$(sed -n 's/.*Done \([0-9]*\) runs in \([0-9]*\) second.*/\2/p' "$log")
    echo "| \`$t\` | $start | $execs | $crashes (exit $rc) | $rss MB | ${secs:-?} s |"
done
