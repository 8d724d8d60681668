# Call 2 (carry .gpu/g2): the GGUF's second third.
set -u
cp $(pwd)/.gpu/g2/part.ab /root/g/ && ls -la /root/g
