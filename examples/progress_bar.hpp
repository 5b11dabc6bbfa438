// A one-line terminal progress bar. (Debian 12 packages no C++ progress-bar library, and
// this is twenty lines.)
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

namespace examples {

class ProgressBar {
 public:
  ProgressBar(std::string title, long total) : title_(std::move(title)), total_(total) {}

  // done: items finished; suffix: extra text such as "1234 img/s".
  void update(long done, const std::string& suffix) const {
    const int width = 30;
    const int filled = total_ > 0 ? static_cast<int>(width * done / total_) : width;
    std::string bar(filled, '#');
    bar.resize(width, '.');
    std::fprintf(stderr, "\r%s [%s] %ld/%ld %s", title_.c_str(), bar.c_str(), done, total_,
                 suffix.c_str());
    if (done >= total_) std::fputc('\n', stderr);
    std::fflush(stderr);
  }

 private:
  std::string title_;
  long total_;
};

}  // namespace examples
