#!/usr/bin/env python3
"""Figures of the soak (gpu/h15/soak.sh), standard library only.

Reads the per-second samples of the eai process (rss.csv), the study's folder (tasks.csv,
windows.json, journal.jsonl, trace.csv, samples/) and its log, and writes soak_summary.md
and soak.json to --out:

- RSS: first, after warm-up, last, peak (VmHWM); least-squares slope after warm-up (the end
  of the first repetition: the first run line in the journal), in MiB per minute, over the
  whole stretch and over its second half; the range (max - min) after warm-up.
- Trace memory: samples in the recorded trace x 16 bytes (a `Sample` in memory) against
  time: growth per minute; the trace file's size.
- Journal: bytes per run line (largest, mean), total; sample files' bytes.
- Windows: asked (schemes x repetitions x tasks) against the progress lines, task records,
  task records with a window and a finite positive energy, windows in windows.json, run lines
  in the journal; flagged task windows (gap, no data, overflow, device lost, sampler failure).
"""

import argparse
import csv
import json
import math
import os
import re
import sys


def slope(xs, ys):
    """Least-squares slope and intercept of ys against xs."""
    n = len(xs)
    if n < 2:
        return float("nan"), float("nan")
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    if sxx == 0:
        return float("nan"), float("nan")
    b = sxy / sxx
    return b, my - b * mx


def read_csv(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--study", required=True)
    ap.add_argument("--rss", required=True)
    ap.add_argument("--gpu-mem")
    ap.add_argument("--log")
    ap.add_argument("--asked", type=int, required=True, help="task windows asked")
    ap.add_argument("--runs-asked", type=int, required=True, help="(scheme, repetition) runs asked")
    ap.add_argument("--exit-code", type=int, default=0)
    ap.add_argument("--stopped", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    d = a.study
    res = {"exit_code": a.exit_code, "stopped_by_guard": bool(a.stopped)}
    lines = []
    say = lines.append

    # ---- RSS of the eai process.
    rows = [r for r in read_csv(a.rss) if r.get("rss_kib")]
    names = sorted({r["name"] for r in rows})
    res["process_names"] = names
    t = [float(r["t_s"]) for r in rows]
    rss = [int(r["rss_kib"]) / 1024 for r in rows]  # MiB
    hwm = max((int(r["hwm_kib"] or 0) for r in rows), default=0) / 1024
    runs_seen = [int(r["journal_runs"] or 0) for r in rows]
    warm = next((i for i, k in enumerate(runs_seen) if k >= 1), None)
    say(f"# Soak: `eai study` RSS, trace memory, windows\n")
    say(f"Process sampled: {', '.join(names) or 'none'} ({len(rows)} samples, one a second).")
    if rows:
        say(f"Sampled for {t[-1]:.0f} s; RSS first {rss[0]:.1f} MiB, last {rss[-1]:.1f} MiB, "
            f"peak (VmHWM) {hwm:.1f} MiB.")
        res.update(duration_s=t[-1], rss_first_mib=rss[0], rss_last_mib=rss[-1], rss_peak_mib=hwm)
    if warm is not None and len(rows) - warm >= 10:
        xs, ys = [x / 60 for x in t[warm:]], rss[warm:]
        b, _ = slope(xs, ys)
        h = len(xs) // 2
        b2, _ = slope(xs[h:], ys[h:])
        rng = max(ys) - min(ys)
        say(f"Warm-up: until the first repetition was journaled, {t[warm]:.0f} s "
            f"(RSS then {rss[warm]:.1f} MiB).")
        say(f"**RSS slope after warm-up: {b:+.3f} MiB/min** (least squares over {len(xs)} "
            f"samples, {t[-1] - t[warm]:.0f} s); second half {b2:+.3f} MiB/min; "
            f"range after warm-up {rng:.1f} MiB (min {min(ys):.1f}, max {max(ys):.1f}).")
        res.update(warmup_end_s=t[warm], rss_after_warmup_mib=rss[warm],
                   rss_slope_mib_per_min=b, rss_slope_second_half_mib_per_min=b2,
                   rss_range_after_warmup_mib=rng, samples_after_warmup=len(xs))
    else:
        say("RSS slope: not enough samples after the first repetition.")
    # CPU time of eai (ticks of 1/100 s).
    ticks = [int(r["cpu_ticks"]) for r in rows if r.get("cpu_ticks")]
    if ticks and t[-1] > 0:
        res["eai_cpu_cores_mean"] = (ticks[-1] - ticks[0]) / 100 / max(t[-1] - t[0], 1e-9)
        say(f"eai's CPU use: {res['eai_cpu_cores_mean']:.2f} cores on average.")

    gm = read_csv(a.gpu_mem) if a.gpu_mem else []
    if gm:
        g = [float(r["gpu_mib"]) for r in gm]
        gt = [float(r["t_s"]) / 60 for r in gm]
        gw = [(x, y) for x, y in zip(gt, g) if warm is None or x * 60 >= t[warm]]
        gb = slope([x for x, _ in gw], [y for _, y in gw])[0] if len(gw) >= 3 else float("nan")
        say(f"GPU memory of the process: first {g[0]:.0f} MiB, last {g[-1]:.0f} MiB, max "
            f"{max(g):.0f} MiB; slope after warm-up {gb:+.2f} MiB/min ({len(g)} reads).")
        res.update(gpu_mib_first=g[0], gpu_mib_last=g[-1], gpu_mib_max=max(g),
                   gpu_slope_mib_per_min=gb)

    # ---- Trace memory.
    trace = os.path.join(d, "trace.csv")
    if os.path.exists(trace):
        times = []
        with open(trace, newline="") as f:
            for r in csv.DictReader(f):
                times.append(float(r["t_s"]))
        times.sort()
        span = (times[-1] - times[0]) if len(times) > 1 else 0
        per_min = len(times) * 16 / (span / 60) if span > 0 else float("nan")
        size = os.path.getsize(trace)
        say(f"Trace: {len(times)} samples over {span:.0f} s = {len(times) * 16 / 1024:.0f} KiB "
            f"in memory (16 B a sample), growing {per_min / 1024:.1f} KiB/min (linear: the "
            f"sampler keeps a bounded 2-h history); trace.csv {size / 1e6:.1f} MB.")
        res.update(trace_samples=len(times), trace_span_s=span,
                   trace_memory_bytes=len(times) * 16, trace_growth_bytes_per_min=per_min,
                   trace_csv_bytes=size)
    else:
        say("Trace: no trace.csv (the study did not finish writing its folder).")

    # ---- Journal.
    jp = os.path.join(d, "journal.jsonl")
    run_lines = []
    if os.path.exists(jp):
        with open(jp) as f:
            for line in f:
                if line.startswith('{"entry":"run"'):
                    run_lines.append(line)
        jl = [len(x.encode()) for x in run_lines]
        size = os.path.getsize(jp)
        if jl:
            per_task = [len(x.encode()) / max(1, len(json.loads(x).get("tasks", []))) for x in run_lines]
            inline = sum(1 for x in run_lines if '"records":[' in x)
            say(f"Journal: {size / 1024:.0f} KiB, {len(jl)} run lines, largest {max(jl) / 1024:.1f} "
                f"KiB, mean {sum(jl) / len(jl) / 1024:.1f} KiB ({max(per_task) / 1024:.1f} KiB per "
                f"task at most); run lines holding per-sample records: {inline}.")
            res.update(journal_bytes=size, journal_run_lines=len(jl), journal_line_max_bytes=max(jl),
                       journal_line_mean_bytes=sum(jl) / len(jl),
                       journal_bytes_per_task_max=max(per_task))
    sd = os.path.join(d, "samples")
    if os.path.isdir(sd):
        nb = nf = 0
        for root, _, files in os.walk(sd):
            for fn in files:
                nf += 1
                nb += os.path.getsize(os.path.join(root, fn))
        say(f"Sample files: {nf} files, {nb / 1e6:.1f} MB (on disk, not in memory).")
        res.update(sample_files=nf, sample_bytes=nb)

    # ---- Windows: asked against recorded.
    progress = 0
    if a.log and os.path.exists(a.log):
        with open(a.log, errors="replace") as f:
            progress = sum(1 for line in f if re.match(r"eai study: \[\d+/\d+\]", line))
    tasks = read_csv(os.path.join(d, "tasks.csv"))
    with_energy = [r for r in tasks if r.get("window") and r.get("energy_j")
                   and math.isfinite(float(r["energy_j"])) and float(r["energy_j"]) > 0]
    windows = []
    wp = os.path.join(d, "windows.json")
    if os.path.exists(wp):
        with open(wp) as f:
            windows = json.load(f)
    ids = {w.get("id") for w in windows}
    task_ids = [int(r["window"]) for r in tasks if r.get("window")]
    missing = [i for i in task_ids if i not in ids]
    bad = {"gap", "no_data", "overflow", "device_lost", "sampler_failed"}
    flagged = {}
    for w in windows:
        if w.get("id") not in set(task_ids):
            continue
        for dev in w.get("devices", []):
            for fl in dev.get("flags", []):
                name = fl.get("flag", "?") if isinstance(fl, dict) else str(fl)
                flagged.setdefault(name, 0)
                flagged[name] += 1
    journal_tasks = sum(len(json.loads(x).get("tasks", [])) for x in run_lines)
    lost = a.asked - len(with_energy)
    say("")
    say("| windows | count |")
    say("|---|---:|")
    say(f"| asked (schemes x repetitions x tasks) | {a.asked} |")
    say(f"| progress lines `[k/n]` in the log | {progress} |")
    say(f"| task records (tasks.csv) | {len(tasks)} |")
    say(f"| ... with a window and a finite energy > 0 | {len(with_energy)} |")
    say(f"| ... whose window is in windows.json | {len(task_ids) - len(missing)} |")
    say(f"| task records in the journal ({len(run_lines)} of {a.runs_asked} runs) | {journal_tasks} |")
    say(f"| **lost** (asked - recorded with energy) | **{lost}** |")
    say("")
    say("Flags on the task windows (count of windows x devices): "
        + (", ".join(f"{k} {v}" for k, v in sorted(flagged.items())) or "none")
        + f"; of them lost-data flags ({', '.join(sorted(bad))}): "
        + str(sum(v for k, v in flagged.items() if k in bad)) + ".")
    if tasks:
        starts = [float(r["start_s"]) for r in tasks]
        ends = [float(r["start_s"]) + float(r["window_s"]) for r in tasks]
        span = max(ends) - min(starts)
        busy = sum(float(r["window_s"]) for r in tasks)
        say(f"Windows span {span:.0f} s ({span / 60:.2f} min) from the first window's start to "
            f"the last one's end; inside windows {100 * busy / span:.1f} % of it "
            f"(back to back: the rest is scoring and journaling between windows).")
        res.update(windows_span_s=span, windows_busy_fraction=busy / span)
    res.update(windows_asked=a.asked, progress_lines=progress, task_records=len(tasks),
               task_records_with_energy=len(with_energy), windows_missing=len(missing),
               journal_task_records=journal_tasks, lost=lost, flags=flagged)
    say(f"\neai exit code {a.exit_code}" + (" (stopped by the soak's time guard)" if a.stopped else ""))

    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "soak_summary.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(a.out, "soak.json"), "w") as f:
        json.dump(res, f, indent=1, sort_keys=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
