set -u
bash gpu/h15/soak.sh
