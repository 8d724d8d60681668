#!/usr/bin/env bash
# GPU soak (issue 15): at least 8 minutes of back-to-back study windows on one GPU, sampling
# the eai process's RSS every second; prints the RSS slope (first minute excluded), the trace's
# growth, and checks that no window was lost.
#
#   EAI_BIN=target/release/eai bash gpu/h15b/soak.sh            # built with --features cuda
#
# Environment: EAI_BIN (required), MODEL (GGUF or smollm2; default smollm2), CUDA (ordinal, 0),
# SCHEME (fp16), MINUTES (9), OUT (soak-out). Needs: bash, awk, python3 (JSON checks).
# Output: $OUT/rss.csv (t_s,rss_kib), $OUT/study/ (the study's folder), $OUT/summary.txt.
set -euo pipefail
EAI_BIN=${EAI_BIN:?set EAI_BIN to an eai binary built with --features cuda}
MODEL=${MODEL:-smollm2}
CUDA=${CUDA:-0}
SCHEME=${SCHEME:-fp16}
MINUTES=${MINUTES:-9}
OUT=${OUT:-soak-out}
TASKS=(--task arc_easy:40 --task hellaswag:40)
rm -rf "$OUT" && mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt" || true

# 1. Calibrate: one repetition, to size the soak.
t0=$(date +%s.%N)
"$EAI_BIN" study --model "$MODEL" --cuda "$CUDA" --schemes "$SCHEME" "${TASKS[@]}" \
    --repeats 1 --warmup 5 --baseline 0 --out "$OUT/calib" >/dev/null 2>"$OUT/calib.log"
t1=$(date +%s.%N)
per=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
repeats=$(awk -v p="$per" -v m="$MINUTES" 'BEGIN { r = int(m * 60 / (p > 1 ? p - 0.5 : 0.5)) + 1; print (r < 4 ? 4 : r) }')
echo "one repetition took ${per} s (model load included): soaking with --repeats $repeats" | tee "$OUT/summary.txt"

# 2. The soak: one long study, RSS sampled each second.
"$EAI_BIN" study --model "$MODEL" --cuda "$CUDA" --schemes "$SCHEME" "${TASKS[@]}" \
    --repeats "$repeats" --warmup 5 --baseline 0 --out "$OUT/study" >"$OUT/study.stdout" 2>"$OUT/study.log" &
pid=$!
echo "t_s,rss_kib" > "$OUT/rss.csv"
start=$(date +%s.%N)
while kill -0 "$pid" 2>/dev/null; do
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
    now=$(date +%s.%N)
    [ -n "$rss" ] && echo "$(awk -v a="$start" -v b="$now" 'BEGIN { printf "%.1f", b - a }'),$rss" >> "$OUT/rss.csv"
    sleep 1
done
wait "$pid" && rc=0 || rc=$?
echo "study exit code: $rc" | tee -a "$OUT/summary.txt"

# 3. Figures: RSS slope by least squares after the first minute, peak, trace growth, windows.
awk -F, 'NR > 1 && $1 >= 60 { n++; sx += $1; sy += $2; sxx += $1 * $1; sxy += $1 * $2 }
         NR > 1 { if ($2 > peak) peak = $2; last = $1; if (first == "") first = $2 }
         END {
           if (n < 2) { print "too few samples after the first minute"; exit }
           slope = (n * sxy - sx * sy) / (n * sxx - sx * sx)          # KiB per second
           printf "duration %.0f s, RSS first %.1f MiB, peak %.1f MiB\n", last, first / 1024, peak / 1024
           printf "RSS slope after 60 s: %.3f MiB/h (%.1f KiB/min) over %d samples\n", slope * 3600 / 1024, slope * 60, n
         }' "$OUT/rss.csv" | tee -a "$OUT/summary.txt"
python3 - "$OUT/study" "$repeats" <<'PY' | tee -a "$OUT/summary.txt"
import csv, json, os, sys
d, repeats = sys.argv[1], int(sys.argv[2])
tasks = list(csv.DictReader(open(os.path.join(d, "tasks.csv"))))
windows = json.load(open(os.path.join(d, "windows.json")))
want = repeats * 2
with_energy = [t for t in tasks if t.get("energy_j") not in (None, "", "NaN")]
print(f"task records {len(tasks)} of {want}; with energy {len(with_energy)}; windows {len(windows)}")
for name in ("trace.csv", "trace.json"):
    p = os.path.join(d, name)
    if os.path.exists(p):
        print(f"{name}: {os.path.getsize(p) / 2**20:.1f} MiB")
print("NO LOST WINDOW" if len(tasks) == want and len(with_energy) == want else "WINDOWS LOST")
PY
echo "files: $OUT/rss.csv $OUT/summary.txt $OUT/study/"
