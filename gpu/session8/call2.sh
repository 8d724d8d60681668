# Call 2 (carry .gpu/g2 .gpu/data .gpu/sh8): the GGUF's second third; the data to /root/data.
set -u
R=$(pwd)
cp $R/.gpu/g2/part.ab /root/g/ && mkdir -p /root/data && tar xJf $R/.gpu/data/data.tar.xz -C /root/data && ls /root/data /root/g
