# Per-role GPU time per decode step from `ncu --csv --metrics gpu__time_duration.sum` output.
# Steps start at an embed_* kernel; profile mode runs 1 step per (shape, scheme, variant), in
# the order given as argv[2:] labels.
import csv, sys, io
rows = []
txt = open(sys.argv[1]).read()
start = txt.find('"ID"')
for r in csv.DictReader(io.StringIO(txt[start:])):
    if r.get('Metric Name') != 'gpu__time_duration.sum':
        continue
    v = float(r['Metric Value'].replace(',', ''))
    unit = r['Metric Unit']
    us = v / 1e3 if unit in ('nsecond', 'ns') else v if unit in ('usecond', 'us') else v * 1e3
    rows.append((r['Kernel Name'], r['Grid Size'], r['Block Size'], us))
steps = []
for k in rows:
    if k[0].startswith('embed_'):
        steps.append([])
    if steps:
        steps[-1].append(k)
labels = sys.argv[2:]
UNF = ['norm1', 'qkv gemv', 'rope+kv', 'attention', 'o gemv', 'norm2', 'gate_up gemv', 'swiglu', 'down gemv']
FUS = ['qkv gemv+norm+rope+kv', 'attention', 'o gemv', 'gate_up gemv+norm+swiglu', 'down gemv']
print('%d kernels profiled, %d steps' % (len(rows), len(steps)))
for si, st in enumerate(steps):
    lab = labels[si] if si < len(labels) else '?'
    fused = any(k[0].startswith('dg_') for k in st)
    per, tail, names = (5, 2, FUS) if fused else (9, 3, UNF)
    L = (len(st) - 1 - tail) // per
    roles = {}
    def add(role, k):
        t = roles.setdefault(role, [0, 0.0, k[0], k[1]]); t[0] += 1; t[1] += k[3]
    add('embed', st[0])
    for i, k in enumerate(st[1:1 + per * L]):
        add(names[i % per], k)
    for k in st[1 + per * L:]:
        add('head: ' + k[0], k)
    tot = sum(k[3] for k in st)
    print('\n== step %d  %s  (%s, %d layers, %d kernels, %.1f us GPU time)' % (si, lab, 'fused' if fused else 'unfused', L, len(st), tot))
    for role, (n, us, kn, grid) in roles.items():
        print('  %-28s n=%3d  %8.1f us  %5.1f%%  avg %6.2f us  [%s grid %s]' % (role, n, us, 100 * us / tot, us / n, kn[:40], grid))
