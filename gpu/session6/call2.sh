set -u
R=$(pwd)
cp $R/.gpu/g2/part.ab /root/g/ && cat /root/g/part.aa /root/g/part.ab > /root/g/SmolLM2-135M-Instruct.Q4_1.gguf && rm /root/g/part.a?
sha256sum /root/g/SmolLM2-135M-Instruct.Q4_1.gguf | tee $OUT/sha.txt
mkdir -p /root/data && tar xJf $R/.gpu/data/data.tar.xz -C /root/data && ls /root/data
