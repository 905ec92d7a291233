// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace kvbits {

/**
 * A fixed set of worker threads that runs the units of one parallel loop at a
 * time, for QuantizedKVCache::attend_parallel when the engine has no pool of
 * its own (any callable `parallel_for(count, unit)` will do).
 *
 * run(count, unit) calls unit(u) once for each u < count, on the workers and
 * the calling thread, and returns when all have returned. Units must not
 * throw. A pool runs one loop at a time: calls to run() from several threads
 * take turns. Waiting workers sleep on a condition variable, so an idle pool
 * costs nothing; a loop costs one wake-up per worker (a few microseconds),
 * which is why attention splits only long contexts or many heads over threads.
 */
class ThreadPool {
 public:
  /// @param threads total threads of a loop, the caller included (>= 1).
  explicit ThreadPool(std::size_t threads) {
    const std::size_t workers = std::max<std::size_t>(threads, 1) - 1;
    workers_.reserve(workers);
    for (std::size_t i = 0; i < workers; ++i) workers_.emplace_back([this] { work(); });
  }

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  ~ThreadPool() {
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (std::thread& worker : workers_) worker.join();
  }

  /// @return threads that run a loop, the caller included.
  [[nodiscard]] std::size_t threads() const noexcept { return workers_.size() + 1; }

  /// Calls unit(u) for every u < count across the pool; returns when all are done.
  template <class Unit>
  void run(std::size_t count, Unit&& unit) {
    if (count == 0) return;
    if (workers_.empty() || count == 1) {
      for (std::size_t u = 0; u < count; ++u) unit(u);
      return;
    }
    const std::lock_guard<std::mutex> turn(turn_);
    const std::function<void(std::size_t)> body = std::ref(unit);
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      body_ = &body;
      count_ = count;
      next_.store(0, std::memory_order_relaxed);
      busy_ = workers_.size();
      ++generation_;
    }
    wake_.notify_all();
    take_units(body, count);
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return busy_ == 0; });
    body_ = nullptr;
  }

  /// run(), so that a pool is itself a parallel_for.
  template <class Unit>
  void operator()(std::size_t count, Unit&& unit) {
    run(count, std::forward<Unit>(unit));
  }

 private:
  void take_units(const std::function<void(std::size_t)>& body, std::size_t count) {
    for (std::size_t u = next_.fetch_add(1, std::memory_order_relaxed); u < count;
         u = next_.fetch_add(1, std::memory_order_relaxed)) {
      body(u);
    }
  }

  void work() {
    std::size_t seen = 0;
    for (;;) {
      const std::function<void(std::size_t)>* body = nullptr;
      std::size_t count = 0;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
        if (stopping_) return;
        seen = generation_;
        body = body_;
        count = count_;
      }
      take_units(*body, count);
      {
        const std::lock_guard<std::mutex> lock(mutex_);
        --busy_;
      }
      done_.notify_one();
    }
  }

  std::vector<std::thread> workers_;
  std::mutex turn_;   // one loop at a time
  std::mutex mutex_;  // guards everything below but next_
  std::condition_variable wake_;
  std::condition_variable done_;
  const std::function<void(std::size_t)>* body_ = nullptr;  // the running loop's unit
  std::size_t count_ = 0;                                   // its units
  std::size_t busy_ = 0;                                    // workers not yet done with it
  std::size_t generation_ = 0;                              // loops started
  bool stopping_ = false;
  std::atomic<std::size_t> next_{0};  // next unit to take
};

}  // namespace kvbits
