# Rewrites a GGUF's header for an all-F16 (1-D tensors F32) copy: same metadata and tensor
# names/shapes, new types and offsets. Writes header.bin and tensors.json (name, dims, type, offset).
import struct, sys, json
src, out_hdr, out_json = sys.argv[1], sys.argv[2], sys.argv[3]
f = open(src, 'rb'); b = f.read(16 << 20)
o = 0
def rd(fmt):
    global o
    v = struct.unpack_from('<' + fmt, b, o); o += struct.calcsize('<' + fmt); return v[0]
def rstr():
    global o
    n = rd('Q'); s = b[o:o + n]; o += n; return s
SZ = {0: 'B', 1: 'b', 2: 'H', 3: 'h', 4: 'I', 5: 'i', 6: 'f', 7: '?', 10: 'Q', 11: 'q', 12: 'd'}
def rval(t):
    if t == 8: return rstr()
    if t == 9:
        it = rd('I'); n = rd('Q')
        return [rval(it) for _ in range(n)]
    return rd(SZ[t])
assert b[:4] == b'GGUF'; o = 4
ver = rd('I'); nt = rd('Q'); nkv = rd('Q')
kv_start = o
align = 32; ft_pos = None
for _ in range(nkv):
    k = rstr(); t = rd('I'); vpos = o; v = rval(t)
    if k == b'general.alignment': align = v
    if k == b'general.file_type': ft_pos = (vpos, t)
kv_bytes = bytearray(b[kv_start:o])
if ft_pos and ft_pos[1] == 4:
    struct.pack_into('<I', kv_bytes, ft_pos[0] - kv_start, 1)  # MOSTLY_F16
tensors = []
for _ in range(nt):
    name = rstr(); nd = rd('I'); dims = [rd('Q') for _ in range(nd)]; ty = rd('I'); off = rd('Q')
    tensors.append((name.decode(), dims))
hdr = bytearray(b'GGUF' + struct.pack('<IQQ', ver, nt, nkv)) + kv_bytes
meta = []; off = 0
for name, dims in tensors:
    ty = 1 if len(dims) >= 2 else 0
    n = 1
    for d in dims: n *= d
    size = n * (2 if ty == 1 else 4)
    e = name.encode()
    hdr += struct.pack('<Q', len(e)) + e + struct.pack('<I', len(dims)) + b''.join(struct.pack('<Q', d) for d in dims) + struct.pack('<IQ', ty, off)
    meta.append({'name': name, 'dims': dims, 'type': ty, 'offset': off, 'size': size})
    off = (off + size + align - 1) // align * align
pad = (-len(hdr)) % align
hdr += b'\0' * pad
open(out_hdr, 'wb').write(hdr)
json.dump({'align': align, 'data_bytes': off, 'tensors': meta}, open(out_json, 'w'))
print('header', len(hdr), 'bytes;', nt, 'tensors;', nkv, 'kvs; data', off, 'bytes')
