// Throughput probe: the 1-bit mma (xor + popc) against the int8 one, on this GPU
// (bench/binary_cuda's target depends on it; see docs/cuda.md). Each warp runs chains of
// independent mmas on register operands; prints tera-operations per second (one multiply-add
// = 2 operations, one bit = one multiply-add). The A operand changes every iteration
// (`varying`): with constant operands the compiler may hoist the work of an mma that the
// hardware does not run natively, and the probe then reports a rate no kernel can reach.
// Standalone: nvcc -arch=sm_90 -O3 b1_mma_probe.cu -o probe && ./probe; then
// cuobjdump -sass probe shows the BMMA instructions each form becomes.
#include <cstdio>

#include <cuda_runtime.h>

constexpr int kChains = 4;
constexpr int kIterations = 4096;

// The three mmas timed, each on 4 registers of A, 2 of B and 4 accumulators.
struct XorPopc {
  static __device__ void mma(int (&c)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
    asm volatile(
        "mma.sync.aligned.m16n8k256.row.col.s32.b1.b1.s32.xor.popc {%0,%1,%2,%3}, "
        "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  }
};
// The and form: on sm_90 the xor form above is not one instruction (see docs/cuda.md).
struct AndPopc {
  static __device__ void mma(int (&c)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
    asm volatile(
        "mma.sync.aligned.m16n8k256.row.col.s32.b1.b1.s32.and.popc {%0,%1,%2,%3}, "
        "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  }
};
struct Int8 {
  static __device__ void mma(int (&c)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
    asm volatile(
        "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, "
        "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  }
};

template <typename Mma, bool varying>
__global__ void chains(int* out) {
  unsigned a[4] = {threadIdx.x, threadIdx.x * 3u, threadIdx.x * 5u, threadIdx.x * 7u};
  const unsigned b[2] = {threadIdx.x * 11u, threadIdx.x * 13u};
  int c[kChains][4] = {};
  for (int i = 0; i < kIterations; ++i) {
    if (varying) a[0] += 0x9e3779b9u;
#pragma unroll
    for (int k = 0; k < kChains; ++k) Mma::mma(c[k], a, b);
  }
  int sum = 0;
  for (int k = 0; k < kChains; ++k) sum += c[k][0] + c[k][1] + c[k][2] + c[k][3];
  out[blockIdx.x * blockDim.x + threadIdx.x] = sum;
}

template <typename K>
void measure(const char* name, K kernel, double k_depth) {
  int sms = 0;
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  const int blocks = sms * 8, threads = 128;
  int* out = nullptr;
  cudaMalloc(&out, sizeof(int) * blocks * threads);
  kernel<<<blocks, threads>>>(out);
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  cudaEventRecord(start);
  kernel<<<blocks, threads>>>(out);
  cudaEventRecord(stop);
  cudaEventSynchronize(stop);
  float ms = 0;
  cudaEventElapsedTime(&ms, start, stop);
  const double mmas = double(blocks) * (threads / 32) * kIterations * kChains;
  const double ops = mmas * 16 * 8 * k_depth * 2;
  std::printf("{\"probe\": \"%s\", \"ms\": %.3f, \"tops\": %.1f, \"error\": \"%s\"}\n", name, ms,
              ops / ms / 1e9, cudaGetErrorString(cudaGetLastError()));
  cudaFree(out);
}

int main() {
  measure("b1_xor_popc_m16n8k256 constant operands", chains<XorPopc, false>, 256);
  measure("b1_xor_popc_m16n8k256 varying operands", chains<XorPopc, true>, 256);
  measure("b1_and_popc_m16n8k256 varying operands", chains<AndPopc, true>, 256);
  measure("s8_m16n8k32 constant operands", chains<Int8, false>, 32);
  measure("s8_m16n8k32 varying operands", chains<Int8, true>, 32);
}
