#!/bin/bash
. /work/llamacpp/venv/bin/activate
CU=/work/llamacpp/x/nvidia/cu13
SRC=/work/llamacpp/llama_cpp_python-0.3.36/vendor/llama.cpp
COMMON="-DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF -DGGML_NATIVE=OFF -DCMAKE_BUILD_TYPE=Release -DGGML_OPENMP=OFF -DLLAMA_OPENSSL=OFF -DGGML_CCACHE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DCMAKE_SKIP_BUILD_RPATH=ON"
LDF="-static-libstdc++ -static-libgcc"
start=$(date +%s); echo "START cuda $(date -u)"
cmake -S $SRC -B build -G Ninja $COMMON -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90-real -DCMAKE_CUDA_COMPILER=$CU/bin/nvcc -DCUDAToolkit_ROOT=$CU -DGGML_CUDA_NCCL=OFF "-DCMAKE_EXE_LINKER_FLAGS=$LDF" || exit 1
nice -n 19 ninja -C build -j2 llama-bench llama-quantize
rc=$?
end=$(date +%s); echo "END cuda $(date -u) rc=$rc elapsed=$((end-start))s"
[ $rc = 0 ] || exit $rc
start=$(date +%s); echo "START cpu $(date -u)"
cmake -S $SRC -B build-cpu -G Ninja $COMMON -DGGML_CUDA=OFF "-DCMAKE_EXE_LINKER_FLAGS=$LDF" || exit 1
nice -n 19 ninja -C build-cpu -j2 llama-quantize
rc=$?
end=$(date +%s); echo "END cpu $(date -u) rc=$rc elapsed=$((end-start))s"
