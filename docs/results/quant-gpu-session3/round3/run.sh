#!/bin/bash
# Session 3, round 3 GPU run of eai-quant: (1) ncu --set full on one launch of each kernel under
# study (cuda_bench --profile), (2) the bench table (destinations fresh for kernels and copy,
# trim variants, round-2-context rows, traffic probes), (3) tests with quant_lean_trim on.
set -u
cd "$(dirname "$0")"
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
LP=""
for lib in libnvrtc.so libcublasLt.so libcublas.so; do
  if ! ldconfig -p | grep -q "$lib"; then
    p=$(find /usr/local /opt /usr/lib -name "$lib*" 2>/dev/null | grep -v stub | head -1)
    [ -n "$p" ] && LP="$(dirname "$p"):$LP"
  fi
done
export LD_LIBRARY_PATH="$LP${LD_LIBRARY_PATH:-}"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,power.draw,power.limit,temperature.gpu --format=csv
export EAI_REQUIRE_GPU=1
date
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
timeout ${NCU_T:-60} $NCU --clock-control none --set full -k "regex:^(quant_rows|dequant_|probe_)" --csv --page raw \
  ./cuda_bench --profile > "$OUT/ncu_raw.csv" 2> "$OUT/ncu.log"; echo "ncu rc=$?"; date
tail -3 "$OUT/ncu.log"
python3 - "$OUT/ncu_raw.csv" <<'PY' | tee "$OUT/ncu_summary.txt"
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
i = next(k for k, r in enumerate(rows) if r and r[0] == "ID")
hdr = rows[i]; data = [r for r in rows[i + 2:] if len(r) == len(hdr)]
want = ["Kernel Name", "gpu__time_duration.sum", "dram__bytes_read.sum", "dram__bytes_write.sum",
        "gpu__dram_throughput.avg.pct_of_peak_sustained_elapsed", "dram__throughput.avg.pct_of_peak_sustained_elapsed",
        "sm__throughput.avg.pct_of_peak_sustained_elapsed", "sm__inst_issued.avg.pct_of_peak_sustained_active",
        "smsp__issue_active.avg.pct_of_peak_sustained_active", "sm__warps_active.avg.pct_of_peak_sustained_active",
        "launch__registers_per_thread", "launch__grid_size", "launch__occupancy_limit_registers",
        "lts__t_sectors_srcunit_tex_op_read.sum", "lts__t_sectors_srcunit_tex_op_write.sum",
        "smsp__inst_executed.sum", "sm__pipe_alu_cycles_active.avg.pct_of_peak_sustained_active",
        "sm__pipe_fma_cycles_active.avg.pct_of_peak_sustained_active", "sm__inst_executed_pipe_lsu.avg.pct_of_peak_sustained_active"]
def num(x):
    try: return float(x.replace(",", ""))
    except Exception: return 0.0
for d in data:
    rec = dict(zip(hdr, d))
    print("==", rec.get("Kernel Name"), "grid", rec.get("launch__grid_size"), "block", rec.get("launch__block_size"))
    for w in want[1:]:
        if w in rec: print("  ", w, rec[w])
    for pre, suf in (("smsp__average_warps_issue_stalled_", "_per_issue_active.ratio"), ("smsp__pcsamp_warps_issue_stalled_", "")):
        cols = [h for h in hdr if h.startswith(pre) and h.endswith(suf) and "not_issued" not in h]
        top = sorted(((num(rec[h]), h[len(pre):len(h) - len(suf) if suf else None]) for h in cols), reverse=True)[:8]
        print("   stalls", pre, ", ".join(f"{n}={v:.2f}" for v, n in top))
PY
gzip -9 "$OUT/ncu_raw.csv"
date
timeout ${BENCH_T:-45} ./cuda_bench --out "$OUT/bench.md" --quant-only --no-energy --no-sizes > "$OUT/bench.log" 2>&1
echo "bench rc=$?"; date
grep -E "^\| (quantize|dequantize|device|traffic)|^Ratio" "$OUT/bench.md" | cut -c1-190
export EAI_QUANT_TUNING="quant_lean_trim=true"
timeout $(( ${BUDGET:-143} - SECONDS > 12 ? 12 : 3 )) ./cuda_quant --test-threads=1 --nocapture every_tuning errors_match 2>&1 | tee "$OUT/tests_trim_a.log" | grep -E "test result|FAILED|panicked|elements|^test " | tail -6
REM=$((${BUDGET:-143} - SECONDS)); [ $REM -lt 5 ] && REM=5; echo "test budget $REM s"
timeout $REM ./cuda_quant --test-threads=1 --nocapture quantize_matches_cpu 2>&1 | tee "$OUT/tests_trim_b.log" | grep -E "test result|FAILED|panicked|elements|^test " | tail -6
date
nvidia-smi --query-gpu=clocks.sm,power.draw,temperature.gpu --format=csv
