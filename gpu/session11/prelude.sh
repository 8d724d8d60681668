# Sourced by the session-11 call scripts (`. gpu/session11/prelude.sh NAME`, from the repo root on
# the device, after ../session9/call7.sh and call2.sh): joins the GGUF from its three parts when
# they are there (the third carried as .gpu/g3; a joined file already on a warm machine is kept),
# links it into eai's model cache, and sets R, S (the transformers script), O (/root/o/NAME, the
# output folder), G, D, B, the environment, the timer t and device.txt; the working folder is
# /root/w.
set -u
R=$(pwd); S=$R/crates/eai-model/scripts/hf_samples_compare.py
G=/root/g/SmolLM2-135M-Instruct.Q4_1.gguf; D=/root/data; B=/root/b
[ -f $R/.gpu/g3/part.ac ] && cp $R/.gpu/g3/part.ac /root/g/
if [ -f /root/g/part.aa ] && [ -f /root/g/part.ab ] && [ -f /root/g/part.ac ]; then
  cat /root/g/part.aa /root/g/part.ab /root/g/part.ac > $G && rm /root/g/part.a?
fi
sha256sum $G
mkdir -p /root/cache/models && ln -sf $G /root/cache/models/
O=/root/o/$1; mkdir -p $O /root/w && cd /root/w
export EAI_REQUIRE_GPU=1 EAI_CACHE=/root/cache
T0=$(date +%s); t() { echo "[t=$(( $(date +%s)-T0 ))s] $*"; }
nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit,clocks.max.sm --format=csv | tee $O/device.txt
