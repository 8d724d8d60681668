"""Per-kernel summary of an `ncu --csv --metrics gpu__time_duration.sum,dram__bytes_read.sum,...`
log of `gpu_bench --only profile` (one decode step per model; a step starts at its embedding
kernel): for each step, each kernel's launches, mean time, DRAM bytes read and read bandwidth,
and the step's kernel-time total. Usage: python3 ncu_summary.py ncu.csv"""
import collections
import csv
import sys

rows = [r for r in csv.reader(open(sys.argv[1])) if r]
hdr = next(r for r in rows if r[0] == "ID")
kern = collections.OrderedDict()
for r in rows:
    if len(r) != len(hdr) or r[0] == "ID":
        continue
    d = dict(zip(hdr, r))
    e = kern.setdefault(d["ID"], {"name": d["Kernel Name"]})
    v = float(d["Metric Value"].replace(",", ""))
    scale = {"ns": 1e-3, "nsecond": 1e-3, "us": 1.0, "usecond": 1.0, "ms": 1e3, "msecond": 1e3,
             "byte": 1.0, "Kbyte": 1e3, "Mbyte": 1e6, "Gbyte": 1e9}.get(d["Metric Unit"], 1.0)
    e[d["Metric Name"]] = v * scale
steps, cur = [], None
for e in kern.values():
    if e["name"].startswith("embed_"):
        cur = collections.OrderedDict()
        steps.append(cur)
    if cur is None:
        continue
    s = cur.setdefault(e["name"], [0, 0.0, 0.0])
    s[0] += 1
    s[1] += e.get("gpu__time_duration.sum", 0.0)
    s[2] += e.get("dram__bytes_read.sum", 0.0)
for i, st in enumerate(steps):
    print(f"step {i}: kernel | launches | mean us | mean MB read | GB/s")
    tot = 0.0
    for name, (n, us, b) in st.items():
        tot += us
        print(f"  {name:<22} {n:3d} {us / n:9.2f} {b / n / 1e6:9.2f} {b / us / 1e3 if us else 0:8.0f}")
    print(f"  total kernel time {tot:.1f} us")
