// A one-line progress bar on stderr. (Debian 12 packages no C++ progress-bar library.)
// On a terminal it redraws one line with carriage returns; otherwise (a log file, a pipe, CI)
// it prints a plain line at most every few seconds and at the end, so logs stay readable.
// Both show the elapsed time and an estimate of the time left.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <iostream>
#include <string>
#include <utility>

namespace examples {

// "m:ss", or "h:mm:ss" from an hour; "?" for a negative or non-finite time.
inline std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const long total = std::lround(seconds);
  char text[32];
  if (total >= 3600) {
    std::snprintf(text, sizeof text, "%ld:%02ld:%02ld", total / 3600, total / 60 % 60, total % 60);
  } else {
    std::snprintf(text, sizeof text, "%ld:%02ld", total / 60, total % 60);
  }
  return text;
}

// The time left at the rate so far; negative (unknown) before anything is done.
inline double estimate_seconds_left(long done, long total, double elapsed_seconds) {
  if (done <= 0 || elapsed_seconds < 0) return -1.0;
  if (done >= total) return 0.0;
  return elapsed_seconds * static_cast<double>(total - done) / static_cast<double>(done);
}

// One report, without line ending or carriage return. terminal:
// "epoch 1 [#######.......] 300/937 loss 0.41  elapsed 0:12, left 0:25"; otherwise
// "epoch 1: 300/937 (32%) loss 0.41  elapsed 0:12, left 0:25".
inline std::string format_progress(const std::string& title, long done, long total,
                                   double elapsed_seconds, const std::string& suffix,
                                   bool terminal) {
  std::string text = title;
  if (terminal) {
    const int width = 30;
    const int filled = total > 0 ? static_cast<int>(width * std::min(done, total) / total) : width;
    std::string bar(filled, '#');
    bar.resize(width, '.');
    text += " [" + bar + "] ";
  } else {
    text += ": ";
  }
  text += std::to_string(done) + "/" + std::to_string(total);
  if (!terminal) {
    const long percent = total > 0 ? 100 * std::min(done, total) / total : 100;
    text += " (" + std::to_string(percent) + "%)";
  }
  if (!suffix.empty()) text += " " + suffix;
  text += "  elapsed " + format_duration(elapsed_seconds) + ", left " +
          format_duration(estimate_seconds_left(done, total, elapsed_seconds));
  return text;
}

class ProgressBar {
 public:
  using Clock = std::function<double()>;  // seconds, from any origin

  // Writes to stderr, as a terminal bar when stderr is one.
  ProgressBar(std::string title, long total)
      : ProgressBar(std::move(title), total, std::cerr, isatty(fileno(stderr)) != 0,
                    steady_seconds) {}
  // For tests: any stream, either mode, any clock.
  ProgressBar(std::string title, long total, std::ostream& out, bool terminal, Clock clock,
              double plain_interval_seconds = 5.0)
      : title_(std::move(title)),
        total_(total),
        out_(out),
        terminal_(terminal),
        clock_(std::move(clock)),
        interval_(plain_interval_seconds),
        start_(clock_()),
        last_line_(start_) {}

  // done: items finished; suffix: extra text such as "1234 img/s".
  void update(long done, const std::string& suffix) {
    const double now = clock_();
    const bool finished = done >= total_;
    if (terminal_) {
      out_ << "\r" << format_progress(title_, done, total_, now - start_, suffix, true)
           << (finished ? "\n" : "") << std::flush;
    } else if (finished || now - last_line_ >= interval_) {
      out_ << format_progress(title_, done, total_, now - start_, suffix, false) << "\n"
           << std::flush;
      last_line_ = now;
    }
  }

 private:
  static double steady_seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  std::string title_;
  long total_;
  std::ostream& out_;
  bool terminal_;
  Clock clock_;
  double interval_, start_, last_line_;
};

}  // namespace examples
