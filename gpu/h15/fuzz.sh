#!/usr/bin/env bash
# Issue 15's fuzzing bar on many cores: every fuzz target (docs/fuzzing.md) run by libFuzzer
# with N parallel jobs (-jobs=N -workers=N, one process per core, sharing the corpus folder),
# pinned with taskset, until it has made FUZZ_RUNS executions (each job makes FUZZ_RUNS / N)
# or its share of the time is spent. Writes a summary table (per target: executions, crashes,
# peak RSS, seconds, exec/s) to $OUT/fuzz/summary.md and the end of every job's log beside it.
#
#   bash gpu/h15/fuzz.sh                       # on the GPU machine (cores 4-15), ≤ 7 minutes
#   FUZZ_BIN=/work/targets/h15-fuzz/x86_64-unknown-linux-gnu/release FUZZ_CORES=0-1 \
#     FUZZ_SECONDS=60 FUZZ_RUNS=100000 OUT=/tmp/fz bash gpu/h15/fuzz.sh   # a local try
#
# Environment: FUZZ_CORES (4-15), FUZZ_SECONDS (390: wall budget of the campaigns, unpacking
# not included), FUZZ_RUNS (10000000 per target), FUZZ_WORK (/root/fuzz), FUZZ_BIN (a folder
# of unpacked binaries; default: unpack .gpu/fuzz/*.xz of this tree), OUT.
set -uo pipefail
R=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-/tmp/out}
O="$OUT/fuzz"
CORES=${FUZZ_CORES:-4-15}
BUDGET=${FUZZ_SECONDS:-390}
RUNS=${FUZZ_RUNS:-10000000}
W=${FUZZ_WORK:-/root/fuzz}
mkdir -p "$O" "$W"
T_START=$(date +%s)

# Cores: "4-15" or "0,2,4-7".
N=0
for part in ${CORES//,/ }; do
    if [[ $part == *-* ]]; then N=$((N + ${part#*-} - ${part%-*} + 1)); else N=$((N + 1)); fi
done

if [ -z "${FUZZ_BIN:-}" ]; then
    FUZZ_BIN="$W/bin"
    mkdir -p "$FUZZ_BIN"
    for f in "$R"/.gpu/fuzz/*.xz; do
        b=$(basename "$f" .xz)
        xz -dc "$f" > "$FUZZ_BIN/$b" && chmod +x "$FUZZ_BIN/$b"
    done
fi
ls -la "$FUZZ_BIN" > "$O/binaries.txt"

# Single-core executions per second of each target, measured on the development machine
# (2026-12-06, nice -n 19, 60 s each from the seeds; docs/fuzzing.md): they only size each
# target's share of the time. Cheapest first, so that time a target does not need passes to
# the slower ones.
RATES="runs:0 truthfulqa:0 arc:0 hellaswag:0 replay:0 gsm8k:0 mmlu:0 safetensors:0 gguf:0"
[ -f "$R/gpu/h15/fuzz_rates.txt" ] && RATES=$(cat "$R/gpu/h15/fuzz_rates.txt")
TARGETS=() COST=()
for kv in $RATES; do
    t=${kv%%:*} r=${kv#*:}
    [ -x "$FUZZ_BIN/$t" ] || { echo "missing binary $FUZZ_BIN/$t" | tee -a "$O/errors.txt"; continue; }
    TARGETS+=("$t")
    # Core-seconds for FUZZ_RUNS executions (unknown rate: 1000 exec/s assumed).
    [ "${r:-0}" -gt 0 ] 2>/dev/null || r=1000
    COST+=($(( RUNS / r + 1 )))
done

PER_JOB=$(( (RUNS + N - 1) / N ))
echo "cores $CORES ($N jobs per target), budget ${BUDGET} s, ${RUNS} executions per target ($PER_JOB per job)" | tee "$O/plan.txt"
{
    echo "| target | executions | crashes | peak RSS (MB, max over jobs) | seconds | exec/s | corpus |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
} > "$O/summary.md"
DEADLINE=$(( $(date +%s) + BUDGET ))
for i in "${!TARGETS[@]}"; do
    t=${TARGETS[$i]}
    left=$(( DEADLINE - $(date +%s) ))
    rest=0
    for j in $(seq "$i" $(( ${#TARGETS[@]} - 1 ))); do rest=$(( rest + COST[j] )); done
    # This target's share of the time left, in proportion to its cost (at least 10 s).
    share=$(( left * COST[i] / rest ))
    [ "$share" -lt 10 ] && share=10
    d="$W/run/$t"
    rm -rf "$d" && mkdir -p "$d/corpus" "$d/artifacts"
    echo "$(date -u +%H:%M:%S) $t: up to ${share} s" | tee -a "$O/plan.txt"
    t0=$(date +%s.%N)
    (cd "$d" && timeout -k 5 $(( share + 60 )) taskset -c "$CORES" "$FUZZ_BIN/$t" \
        -jobs="$N" -workers="$N" corpus "$R/fuzz/seeds/$t" \
        -runs="$PER_JOB" -max_total_time="$share" -max_len=65536 -rss_limit_mb=2048 \
        -timeout=10 -print_final_stats=1 -artifact_prefix="$d/artifacts/" > parent.log 2>&1)
    rc=$?
    t1=$(date +%s.%N)
    mkdir -p "$O/$t"
    # The jobs' logs can reach megabytes (a line per new feature): their last lines (the
    # final statistics, a crash's report) come back.
    for l in "$d"/*.log; do [ -f "$l" ] && tail -n 60 "$l" > "$O/$t/$(basename "$l").tail"; done
    execs=$(cat "$d"/fuzz-*.log 2>/dev/null | sed -n 's/^stat::number_of_executed_units: *//p' | awk '{ s += $1 } END { print s + 0 }')
    rss=$(cat "$d"/fuzz-*.log 2>/dev/null | sed -n 's/^stat::peak_rss_mb: *//p' | awk '$1 > m { m = $1 } END { print m + 0 }')
    jobs_done=$(cat "$d"/fuzz-*.log 2>/dev/null | grep -c '^stat::number_of_executed_units')
    crashes=$(find "$d/artifacts" -type f | wc -l)
    cp "$d"/artifacts/* "$O/$t/" 2>/dev/null
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", b - a }')
    rate=$(awk -v e="$execs" -v s="$secs" 'BEGIN { printf "%.0f", (s > 0 ? e / s : 0) }')
    corpus=$(find "$d/corpus" -type f | wc -l)
    echo "| \`$t\` | $execs | $crashes | $rss | $secs | $rate | $corpus |" >> "$O/summary.md"
    echo "  $t: rc $rc, $jobs_done/$N jobs reported, $execs executions, $crashes crashes, peak RSS $rss MB, $secs s" | tee -a "$O/plan.txt"
done
# The planted bug (docs/fuzzing.md): the GGUF target built with `--features planted-bug` must
# stop with a crash (an out-of-bounds table index) within 30 s on one core.
if [ -x "$FUZZ_BIN/gguf-planted" ]; then
    d="$W/run/gguf-planted"
    rm -rf "$d" && mkdir -p "$d/corpus" "$d/artifacts"
    first=${CORES%%[-,]*}
    (cd "$d" && timeout -k 5 60 taskset -c "$first" "$FUZZ_BIN/gguf-planted" corpus "$R/fuzz/seeds/gguf" \
        -max_total_time=30 -max_len=65536 -print_final_stats=1 -artifact_prefix="$d/artifacts/" > log 2>&1)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$d/log")
    found=$(find "$d/artifacts" -name 'crash-*' | wc -l)
    why=$(grep -m1 -o "index out of bounds[^']*" "$d/log")
    mkdir -p "$O/gguf-planted" && tail -n 60 "$d/log" > "$O/gguf-planted/log.tail"
    cp "$d"/artifacts/* "$O/gguf-planted/" 2>/dev/null
    echo "planted bug: $found crash input(s) after ${execs:-?} executions ($why)" | tee -a "$O/plan.txt" "$O/summary.md"
fi
echo "fuzz.sh total $(( $(date +%s) - T_START )) s" | tee -a "$O/plan.txt"
cat "$O/summary.md"
