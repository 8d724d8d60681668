#!/usr/bin/env python3
"""Bars summary of gpu/h16q/run.sh: the quantize/dequantize table of `cuda_bench --quant-only`
(today's kernels against the session-7 variants, same interleaved rounds) and the GEMM bars of
`cuda_bench --gemm-only`. Usage: summary.py QUANT_MD GEMM_MD."""
import re
import sys


def rows(path):
    try:
        text = open(path, encoding="utf-8").read()
    except OSError as e:
        print(f"(no {path}: {e})")
        return []
    out = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 6 and cells[0].split(" ")[0] in ("quantize", "dequantize", "traffic"):
            try:
                out.append((cells[0], float(cells[4]), cells[5]))
            except ValueError:
                pass
    return out


def main():
    quant_md, gemm_md = sys.argv[1], sys.argv[2]
    groups = {}
    probes = []
    for label, ratio, spread in rows(quant_md):
        if label.startswith("traffic"):
            probes.append(f"{label}: {ratio:.3f} ({spread})")
            continue
        if "2 passes" in label or "allocated once" in label:
            continue
        m = re.match(r"(.*?) \[(.*?)\]((?: from | → ).*)", label)
        base, variant = (m.group(1) + m.group(3), m.group(2)) if m else (label, "today")
        groups.setdefault(base, []).append((variant, ratio, spread))
    print("== quantize / dequantize: ratio to copy (median of 5 rounds; spread), today vs variants ==")
    met_all = True
    for base, vs in groups.items():
        bar = 0.85 if "Q8_0" in base and base.startswith("quantize") else 0.90
        best = max(vs, key=lambda v: v[1])
        met = best[1] >= bar
        met_all &= met
        parts = ", ".join(f"{v}: {r:.3f} ({s})" for v, r, s in vs)
        print(f"{'MET ' if met else 'NOT '} bar {bar:.2f} | {base} | best {best[0]} {best[1]:.3f} | {parts}")
    if not groups:
        print("quantization bars: NO quantize/dequantize rows found (the bench did not run)")
    else:
        print(f"quantization bars (best variant per row): {'all met' if met_all else 'NOT all met'}")
    print("== traffic probes (no arithmetic; strided and [blocked] patterns) ==")
    for p in probes:
        print(p)
    print("== INT8 GEMM with dequantize ==")
    try:
        text = open(gemm_md, encoding="utf-8").read()
        bars = text.split("## Bars", 1)[1] if "## Bars" in text else "(no Bars section)"
        print(bars.strip())
    except OSError as e:
        print(f"(no {gemm_md}: {e})")


if __name__ == "__main__":
    main()
