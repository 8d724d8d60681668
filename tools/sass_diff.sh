#!/bin/bash
# tools/sass_diff.sh — prove that a kernel refactor compiles to the same machine code.
#
# Compiles eai-quant's kernel module (the .cu files in the order src/cuda/kernels.rs joins them)
# with NVRTC under the crate's own options, assembles the PTX with ptxas for one SM, splits the
# SASS per kernel, normalizes it (hex constants and addresses become X), and compares every
# kernel, plus its registers/spills/stack from `ptxas -v`, between a base commit and the working
# tree. No GPU needed.
#
# Usage: tools/sass_diff.sh [BASE_REV] [ARCH]     (defaults: dc8b43d, 90)
#   exit 0: every kernel identical in SASS and resources; 1: some differ (listed); 2: setup error.
# Env: MODULE=wgmma (the Hopper wgmma module instead of the main one; give ARCH 90a), NVRTC_LIB (dir of libnvrtc.so.13), PTXAS, CUOBJDUMP, CRATE (default crates/eai-quant),
#      KEEP=dir (keep the per-kernel SASS and logs there), REGNORM=1 (also rename registers
#      R12 -> R, to tell register-allocation-only differences from real ones).
set -euo pipefail
BASE=${1:-dc8b43d}
SM=${2:-90}
NVRTC_LIB=${NVRTC_LIB:-/tmp/nvrtc/x/nvidia/cu13/lib}
PTXAS=${PTXAS:-/tmp/nvcc/x/nvidia/cu13/bin/ptxas}
CUOBJDUMP=${CUOBJDUMP:-/tmp/cuobj/x/nvidia/cu13/bin/cuobjdump}
CRATE=${CRATE:-crates/eai-quant}
MODULE=${MODULE:-main}
case $MODULE in main) FN=source ;; wgmma) FN=wgmma_source ;; *) echo "MODULE is main or wgmma" >&2; exit 2 ;; esac
ROOT=$(git rev-parse --show-toplevel)
cd "$ROOT"
for f in "$NVRTC_LIB/libnvrtc.so.13" "$PTXAS" "$CUOBJDUMP"; do
  [ -e "$f" ] || { echo "missing $f (see docs/gpu-testing.md)" >&2; exit 2; }
done
export LD_LIBRARY_PATH="$NVRTC_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"  # libnvrtc-builtins
W=${KEEP:-$(mktemp -d)}
mkdir -p "$W"

# $1: label, $2: rev or "" for the working tree
build() {
  local label=$1 rev=$2
  local src=$W/$label.cu
  local rs
  if [ -n "$rev" ]; then rs=$(git show "$rev:$CRATE/src/cuda/kernels.rs"); else rs=$(cat "$CRATE/src/cuda/kernels.rs"); fi
  : > "$src"
  local first=1
  # the files of `source()` (the main module) or, MODULE=wgmma, of `wgmma_source()` (the
  # sm_90a module: run with ARCH 90a)
  for f in $(sed -n "/fn $FN()/,/^}/p" <<<"$rs" | grep -o 'kernels/[^"]*'); do
    [ $first = 1 ] || printf '\n' >> "$src"   # the Rust side joins with "\n"
    first=0
    if [ -n "$rev" ]; then git show "$rev:$CRATE/$f" >> "$src"; else cat "$CRATE/$f" >> "$src"; fi
  done
  python3 - "$src" "$W/$label.ptx" "$SM" "$NVRTC_LIB" <<'PY'
import ctypes, sys
src, out, sm, libdir = sys.argv[1:]
lib = ctypes.CDLL(libdir + '/libnvrtc.so.13')
prog = ctypes.c_void_p()
# the options cudarc builds from kernels.rs::options()
opts = [b'--ftz=false', b'--prec-sqrt=true', b'--prec-div=true', b'--fmad=false',
        f'--gpu-architecture=compute_{sm}'.encode(), b'--std=c++17']
assert lib.nvrtcCreateProgram(ctypes.byref(prog), open(src, 'rb').read(), b'eai_quant.cu', 0, None, None) == 0
rc = lib.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
n = ctypes.c_size_t()
lib.nvrtcGetProgramLogSize(prog, ctypes.byref(n)); log = ctypes.create_string_buffer(n.value)
lib.nvrtcGetProgramLog(prog, log)
if rc != 0:
    sys.exit('NVRTC failed:\n' + log.value.decode())
lib.nvrtcGetPTXSize(prog, ctypes.byref(n)); ptx = ctypes.create_string_buffer(n.value)
lib.nvrtcGetPTX(prog, ptx)
open(out, 'wb').write(ptx.value)
PY
  "$PTXAS" -arch=sm_$SM -v "$W/$label.ptx" -o "$W/$label.cubin" 2> "$W/$label.ptxas.log"
  rm -rf "$W/$label.sass"; mkdir -p "$W/$label.sass"
  "$CUOBJDUMP" -sass "$W/$label.cubin" | python3 -c '
import sys, re, os
out, regnorm = sys.argv[1], sys.argv[2] == "1"
cur, buf = None, []
def flush():
    if cur: open(os.path.join(out, cur), "w").write("\n".join(buf) + "\n")
for line in sys.stdin:
    m = re.match(r"\s*Function : (\S+)", line)
    if m:
        flush(); cur, buf = m.group(1), []; continue
    m = re.match(r"\s*/\*[0-9a-f]{4,}\*/\s*(.*?)\s*;?\s*(/\*.*)?$", line)
    if m and cur:
        s = re.sub(r"0x[0-9a-f]+", "X", m.group(1))
        if regnorm:
            s = re.sub(r"\bU?R\d+\b", "R", re.sub(r"\bU?P\d\b", "P", s))
        buf.append(s)
flush()
' "$W/$label.sass" "${REGNORM:-0}"
  # per-kernel resources: "name regs spill_stores spill_loads stack barriers,smem,cmem"
  python3 - "$W/$label.ptxas.log" > "$W/$label.res" <<'PY'
import re, sys
cur = None; st = {}
for line in open(sys.argv[1]):
    m = re.search(r"Compiling entry function '(\S+)'", line)
    if m: cur = m.group(1); continue
    m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", line)
    if m and cur: st[cur] = list(m.groups()); continue
    m = re.search(r"Used (\d+) registers(.*)", line)
    if m and cur:
        s = st.get(cur, ['?'] * 3)
        # the rest of the line: barriers, smem, cmem
        print(cur, m.group(1), s[1], s[2], s[0], m.group(2).strip().replace(" ", "_")); cur = None
PY
}

BASE_SHA=$(git rev-parse --verify "$BASE^{commit}")
# the base build is reused when KEEP names a folder that already holds it (same commit and SM)
if [ "$(cat "$W/base.key" 2>/dev/null)" != "$BASE_SHA sm_$SM ${REGNORM:-0} $MODULE" ]; then
  build base "$BASE_SHA"
  echo "$BASE_SHA sm_$SM ${REGNORM:-0} $MODULE" > "$W/base.key"
fi
build tree ""

python3 - "$W" <<'PY'
import os, sys
w = sys.argv[1]
def res(label):
    return {l.split()[0]: l.split()[1:] for l in open(f"{w}/{label}.res")}
rb, rt = res("base"), res("tree")
kb, kt = set(os.listdir(f"{w}/base.sass")), set(os.listdir(f"{w}/tree.sass"))
same, diff = [], []
for k in sorted(kb | kt):
    if k not in kt: diff.append((k, "missing in tree")); continue
    if k not in kb: diff.append((k, "new in tree")); continue
    a = open(f"{w}/base.sass/{k}").read(); b = open(f"{w}/tree.sass/{k}").read()
    why = []
    if a != b:
        la, lb = a.splitlines(), b.splitlines()
        why.append(f"SASS {len(la)} -> {len(lb)} instructions"
                   + ("" if sorted(la) != sorted(lb) else ", same multiset (scheduling only)"))
    if rb.get(k) != rt.get(k):
        why.append(f"regs/spill_st/spill_ld/stack/other {rb.get(k)} -> {rt.get(k)}")
    (diff.append((k, "; ".join(why))) if why else same.append(k))
print(f"{len(same)} kernels identical (normalized SASS and ptxas resources), {len(diff)} differ")
for k, why in diff: print(f"  DIFF {k}: {why}")
sys.exit(1 if diff else 0)
PY
