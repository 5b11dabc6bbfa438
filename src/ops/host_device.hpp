// CNNGRAPH_HOST_DEVICE marks the formulas that the CPU backends and the CUDA kernels (compiled
// by nvcc) share.
#pragma once

#if defined(__CUDACC__)
#define CNNGRAPH_HOST_DEVICE __host__ __device__
#else
#define CNNGRAPH_HOST_DEVICE
#endif
