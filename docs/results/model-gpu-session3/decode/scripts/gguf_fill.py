# Writes header.bin + random tensor data (F16 normal·0.02 for matrices, F32 ones for norms).
import json, sys, numpy as np
hdr, meta, out = sys.argv[1], sys.argv[2], sys.argv[3]
m = json.load(open(meta)); rng = np.random.default_rng(7)
with open(out, 'wb') as f:
    h = open(hdr, 'rb').read(); f.write(h); base = len(h); pos = 0
    for t in m['tensors']:
        assert t['offset'] >= pos
        f.write(b'\0' * (t['offset'] - pos)); pos = t['offset']
        n = t['size'] // (2 if t['type'] == 1 else 4)
        a = (rng.standard_normal(n, dtype=np.float32) * 0.02).astype(np.float16) if t['type'] == 1 else np.ones(n, np.float32)
        f.write(a.tobytes()); pos += t['size']
    f.write(b'\0' * (m['data_bytes'] - pos))
print('wrote', out)
