// A block of memory that a graph reuses for the results of later runs once every image it
// lent out of it has been let go of.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>

namespace cnngraph::detail {

// Lent images hold the block through a deleter that counts them back in with a release
// decrement; is_free() reads the count with acquire. So the graph's next writes into the
// block happen after the last reads of every thread that held one of its images, which
// shared_ptr::use_count() (a relaxed read) does not promise. The block itself lives as long
// as the graph or any lent image, whichever is longer.
class LentBlock {
 public:
  LentBlock() = default;
  explicit LentBlock(std::shared_ptr<std::byte[]> block)
      : block_(std::move(block)), lent_(std::make_shared<std::atomic<std::size_t>>(0)) {}

  explicit operator bool() const { return block_ != nullptr; }
  std::byte* get() const { return block_.get(); }
  bool is_free() const { return lent_->load(std::memory_order_acquire) == 0; }

  // Storage for an image at `at` (inside the block) that counts as lent until its last
  // copy is gone.
  std::shared_ptr<std::byte[]> lend(std::byte* at) const {
    lent_->fetch_add(1, std::memory_order_relaxed);
    return std::shared_ptr<std::byte[]>(at, [block = block_, lent = lent_](std::byte*) {
      lent->fetch_sub(1, std::memory_order_release);
    });
  }

 private:
  std::shared_ptr<std::byte[]> block_;
  std::shared_ptr<std::atomic<std::size_t>> lent_;
};

}  // namespace cnngraph::detail
