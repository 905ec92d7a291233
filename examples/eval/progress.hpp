// SPDX-License-Identifier: MIT
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <string>

#include <unistd.h>

namespace kvbits::eval {

/**
 * A one-line progress report with elapsed time and ETA, rewritten in place on stderr, and only
 * when stderr is a terminal: logs and pipes get nothing. The ETA assumes the remaining work
 * runs at the average rate so far.
 */
class Progress {
 public:
  /// @param total the units of work (e.g. positions) of the whole run
  explicit Progress(std::size_t total) : total_(total), enabled_(isatty(fileno(stderr)) == 1) {}

  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  ~Progress() { finish(); }

  /**
   * Records that `units` more are done and redraws the line.
   * @param stage what is running now, e.g. "story 3/176"
   */
  void advance(std::size_t units, const std::string& stage) {
    done_ += units;
    if (!enabled_) return;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double eta = done_ == 0 || done_ >= total_
                           ? 0.0
                           : elapsed * static_cast<double>(total_ - done_) / static_cast<double>(done_);
    std::fprintf(stderr, "\r%s, %.0f%%, %.0f s elapsed, ETA %.0f s   ", stage.c_str(),
                 total_ == 0 ? 100.0 : 100.0 * static_cast<double>(done_) / static_cast<double>(total_),
                 elapsed, eta);
    std::fflush(stderr);
    drawn_ = true;
  }

  /// Ends the line, if one was drawn.
  void finish() {
    if (drawn_) std::fprintf(stderr, "\n");
    drawn_ = false;
  }

 private:
  std::size_t total_;
  std::size_t done_ = 0;
  bool enabled_;        // stderr is a terminal
  bool drawn_ = false;  // a line is on screen and not yet ended
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace kvbits::eval
