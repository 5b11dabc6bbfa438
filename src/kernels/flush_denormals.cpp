// FlushDenormalsOnAllThreads: FTZ/DAZ over the calling thread's OpenMP pool.
#include "kernels/flush_denormals.hpp"

#include <omp.h>

namespace cnngraph::detail {

#if defined(__SSE__)
namespace {
constexpr unsigned kFlushBits = 0x8040;  // flush-to-zero | denormals-are-zero
}

FlushDenormalsOnAllThreads::FlushDenormalsOnAllThreads()
    : saved_(static_cast<std::size_t>(omp_get_max_threads()), 0u) {
#pragma omp parallel num_threads(static_cast <int>(saved_.size()))
  {
    const auto thread = static_cast<std::size_t>(omp_get_thread_num());
    const unsigned current = _mm_getcsr();
    if (thread < saved_.size()) saved_[thread] = current;
    _mm_setcsr(current | kFlushBits);
  }
}

FlushDenormalsOnAllThreads::~FlushDenormalsOnAllThreads() {
#pragma omp parallel num_threads(static_cast <int>(saved_.size()))
  {
    const auto thread = static_cast<std::size_t>(omp_get_thread_num());
    if (thread < saved_.size()) _mm_setcsr(saved_[thread]);
  }
}
#else
FlushDenormalsOnAllThreads::FlushDenormalsOnAllThreads() = default;
FlushDenormalsOnAllThreads::~FlushDenormalsOnAllThreads() = default;
#endif

}  // namespace cnngraph::detail
