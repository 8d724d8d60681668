set -u
R=$(pwd)
cp $R/.gpu/g2/part.ab /root/g/ && cat /root/g/part.aa /root/g/part.ab > /root/g/SmolLM2-135M-Instruct.Q4_1.gguf && rm /root/g/part.a?
sha256sum /root/g/SmolLM2-135M-Instruct.Q4_1.gguf | tee $OUT/sha.txt
mkdir -p /root/data && tar xJf $R/.gpu/data/data.tar.xz -C /root/data && ls /root/data
# issue 15's soak (>= 8 min of eai study --cuda 0 windows) in the same call (the fuzz campaign of
# session 6's plan is done: docs/fuzzing.md).
if [ "${SOAK:-1}" = 1 ]; then
  mkdir -p $OUT/soak && OUT=$OUT/soak SOAK_FUZZ=0 bash gpu/h15/soak.sh > $OUT/soak/soak.out 2>&1
  tail -40 $OUT/soak/soak.out
  tar cJf $OUT/soak.tar.xz -C $OUT soak && rm -rf $OUT/soak
fi
