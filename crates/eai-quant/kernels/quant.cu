// Quantization kernels (filled in once the CPU arithmetic contract is fixed).
