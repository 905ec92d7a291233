// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace kvbits {

namespace detail {

/// Tells the core this thread is busy-waiting (x86 `pause`, AArch64 `yield`), so a spin loop
/// yields pipeline resources and power instead of hammering the load port.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

/// Spins (cpu_relax) until done() or `budget` has passed. @return done().
template <class Done>
bool spin_until(Done&& done, std::chrono::nanoseconds budget) {
  constexpr int kChecksPerClockRead = 64;
  if (budget <= std::chrono::nanoseconds::zero()) return done();
  const auto deadline = std::chrono::steady_clock::now() + budget;
  for (;;) {
    for (int i = 0; i < kChecksPerClockRead; ++i) {
      if (done()) return true;
      cpu_relax();
    }
    if (std::chrono::steady_clock::now() >= deadline) return done();
  }
}

}  // namespace detail

/**
 * A fixed set of worker threads that runs the units of one parallel loop at a
 * time, for QuantizedKVCache::attend_parallel when the engine has no pool of
 * its own (any callable `parallel_for(count, unit)` will do).
 *
 * run(count, unit) calls unit(u) once for each u < count, on the workers and
 * the calling thread, and returns when all have returned. Units must not
 * throw. A pool runs one loop at a time: calls to run() from several threads
 * take turns.
 *
 * Waiting costs: a thread that finds nothing to do spins for up to
 * spin_budget() (100 microseconds by default) before it sleeps on a condition
 * variable. A decode step calls attention once per layer, back to back, and
 * waking a sleeping thread takes tens of microseconds on a virtual machine
 * (the idle CPU is halted), as long as a whole 32k-token attention call on
 * one head; spinning across that gap keeps both threads busy. An idle pool
 * sleeps after the budget, so it costs nothing between requests.
 */
class ThreadPool {
 public:
  /// How long a waiting thread spins before it sleeps, unless the constructor is told otherwise.
  static constexpr std::chrono::nanoseconds kDefaultSpinBudget = std::chrono::microseconds(100);

  /**
   * @param threads total threads of a loop, the caller included (>= 1).
   * @param spin_budget how long a waiting thread spins before it sleeps; zero sleeps at once.
   */
  explicit ThreadPool(std::size_t threads, std::chrono::nanoseconds spin_budget = kDefaultSpinBudget)
      : spin_budget_(std::max(spin_budget, std::chrono::nanoseconds::zero())) {
    const std::size_t workers = std::max<std::size_t>(threads, 1) - 1;
    workers_.reserve(workers);
    for (std::size_t i = 0; i < workers; ++i) workers_.emplace_back([this] { work(); });
  }

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  ~ThreadPool() {
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      stopping_.store(true, std::memory_order_release);
    }
    wake_.notify_all();
    for (std::thread& worker : workers_) worker.join();
  }

  /// @return the threads of a loop, the caller included.
  [[nodiscard]] std::size_t threads() const noexcept { return workers_.size() + 1; }

  /// @return how long a waiting thread spins before it sleeps.
  [[nodiscard]] std::chrono::nanoseconds spin_budget() const noexcept { return spin_budget_; }

  /**
   * Calls unit(u) for every u < count, spread over the workers and the calling
   * thread, and returns when every call has returned.
   */
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
      busy_.store(workers_.size(), std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    take_units(body, count);
    const auto workers_done = [this] { return busy_.load(std::memory_order_acquire) == 0; };
    if (!detail::spin_until(workers_done, spin_budget_)) {
      std::unique_lock<std::mutex> lock(mutex_);
      done_.wait(lock, workers_done);
    }
    const std::lock_guard<std::mutex> lock(mutex_);
    body_ = nullptr;
  }

  /// run(count, unit): the pool is itself a `parallel_for`.
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
      // Spin first; the loop itself is read under the mutex either way.
      detail::spin_until(
          [&] {
            return stopping_.load(std::memory_order_acquire) ||
                   generation_.load(std::memory_order_acquire) != seen;
          },
          spin_budget_);
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] {
          return stopping_.load(std::memory_order_relaxed) ||
                 generation_.load(std::memory_order_relaxed) != seen;
        });
        if (stopping_.load(std::memory_order_relaxed)) return;
        seen = generation_.load(std::memory_order_relaxed);
        body = body_;
        count = count_;
      }
      take_units(*body, count);
      if (busy_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        // Under the mutex, so a caller between its check and its wait cannot miss this.
        const std::lock_guard<std::mutex> lock(mutex_);
        done_.notify_one();
      }
    }
  }

  std::vector<std::thread> workers_;
  std::chrono::nanoseconds spin_budget_;  // how long a waiting thread spins before it sleeps
  std::mutex turn_;                       // one loop at a time
  std::mutex mutex_;                      // guards body_ and count_; wake_ and done_ wait on it
  std::condition_variable wake_;
  std::condition_variable done_;
  const std::function<void(std::size_t)>* body_ = nullptr;  // the running loop's unit
  std::size_t count_ = 0;                                   // its units
  std::atomic<std::size_t> busy_{0};                        // workers not yet done with it
  std::atomic<std::size_t> generation_{0};                  // loops started, written under mutex_
  std::atomic<bool> stopping_{false};                       // written under mutex_
  std::atomic<std::size_t> next_{0};                        // next unit to take
};

}  // namespace kvbits
