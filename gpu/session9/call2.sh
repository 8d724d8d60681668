# Call 2 (carry .gpu/g2 .gpu/data .gpu/bq): the GGUF's second third; the data to /root/data;
# eai-quant's binaries (.gpu/bq) kept in /root/bq for call 7.
set -u
R=$(pwd)
cp $R/.gpu/g2/part.ab /root/g/ && mkdir -p /root/data && tar xJf $R/.gpu/data/data.tar.xz -C /root/data && ls /root/data /root/g
mkdir -p /root/bq && cp $R/.gpu/bq/*.xz /root/bq/ && ls /root/bq
