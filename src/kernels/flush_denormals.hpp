// Scoped flush-to-zero / denormals-are-zero for the calling thread (x86 MXCSR), restored on
// exit. Optimizer moments decay towards values below FLT_MIN as training converges; each
// denormal operand costs a microcode assist (~100 cycles), which made Adam three times
// slower by the second epoch. Values that small are far below epsilon, so zero is exact
// enough for them.
#pragma once

#include <vector>

#if defined(__SSE__)
#include <xmmintrin.h>
#endif

namespace cnngraph::detail {

class FlushDenormals {
 public:
#if defined(__SSE__)
  FlushDenormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | kFlushToZero | kDenormalsAreZero); }
  ~FlushDenormals() { _mm_setcsr(saved_); }

 private:
  static constexpr unsigned kFlushToZero = 0x8000, kDenormalsAreZero = 0x0040;
  unsigned saved_;
#else
  FlushDenormals() = default;
#endif
  FlushDenormals(const FlushDenormals&) = delete;
  FlushDenormals& operator=(const FlushDenormals&) = delete;
};

// The same for a graph run: on the calling thread and on every thread of its OpenMP pool
// (which oneDNN's primitives and our loops share); each thread's setting is put back at the
// end of the scope. GraphOptions::flush_denormals turns it on.
class FlushDenormalsOnAllThreads {
 public:
  FlushDenormalsOnAllThreads();
  ~FlushDenormalsOnAllThreads();
  FlushDenormalsOnAllThreads(const FlushDenormalsOnAllThreads&) = delete;
  FlushDenormalsOnAllThreads& operator=(const FlushDenormalsOnAllThreads&) = delete;

 private:
  std::vector<unsigned> saved_;  // per OpenMP thread number
};

}  // namespace cnngraph::detail
