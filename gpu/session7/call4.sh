set -u
SKIP_HS=1 SKIP_GEN1=1 bash gpu/h14g/run.sh
