// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "kvbits/core/decision.hpp"
#include "kvbits/core/error.hpp"
#include "kvbits/policy/decision_context.hpp"
#include "learn/tool_controller.hpp"

namespace kvbits::learn {

/// The controller's inputs at every decision of one document: [layer][position][age index].
class DecisionLog {
 public:
  using Inputs = std::array<float, kControllerInputs>;

  /// @param layers, positions the document's shape.
  DecisionLog(std::size_t layers, std::size_t positions)
      : positions_(positions), inputs_(layers * positions * kDecisionAges.size()), seen_(inputs_.size(), 0) {}

  /// Records the inputs of the decision about (layer, position) at `age` (one of kDecisionAges).
  void record(std::size_t layer, std::size_t position, std::size_t age, const Inputs& inputs) {
    const std::size_t i = index(layer, position, age);
    inputs_[i] = inputs;
    seen_[i] = 1;
  }

  /**
   * @return the inputs the controller saw deciding (layer, position) at `age`.
   * @throw Error(invalid_argument) when the cache made no such decision (a sink, or a token
   *        that never reached the age).
   */
  [[nodiscard]] const Inputs& at(std::size_t layer, std::size_t position, std::size_t age) const {
    const std::size_t i = index(layer, position, age);
    if (seen_[i] == 0) {
      throw Error(Errc::invalid_argument, "no decision about layer " + std::to_string(layer) + ", position " +
                                              std::to_string(position) + " at age " + std::to_string(age));
    }
    return inputs_[i];
  }

 private:
  [[nodiscard]] std::size_t index(std::size_t layer, std::size_t position, std::size_t age) const {
    std::size_t a = 0;
    while (a < kDecisionAges.size() && kDecisionAges[a] != age) ++a;
    const std::size_t i = (layer * positions_ + position) * kDecisionAges.size() + a;
    if (a == kDecisionAges.size() || position >= positions_ || i >= inputs_.size()) {
      throw Error(Errc::invalid_argument, "decision log: layer " + std::to_string(layer) + ", position " +
                                              std::to_string(position) + " or age " + std::to_string(age) +
                                              " out of range");
    }
    return i;
  }

  std::size_t positions_;
  std::vector<Inputs> inputs_;       // [layers][positions][ages] controller inputs
  std::vector<unsigned char> seen_;  // [layers][positions][ages] 1 once recorded
};

/**
 * A policy that keeps every token at 32/32 and writes down what a learned policy would have
 * seen: it is consulted by a QuantizedKVCache at the same moments as ToolLearnedPolicy (same
 * decision ages, same window and sinks, attention statistics on), and builds the controller's
 * inputs from the cache's own DecisionContext with the same ControllerInputVector. So the
 * features of a training sample are, by construction, the quantity the policy reads at run time
 * (the one difference: the attention statistics here come from FP32 attention, at run time from
 * attention over the quantised cache).
 */
class DecisionRecorder {
 public:
  /// @param log receives the inputs of every decision; must outlive the recorder.
  explicit DecisionRecorder(DecisionLog& log) : log_(&log) {}

  /// Records the decision's inputs and keeps the token as it is.
  BitDecision decide(const DecisionContext& context) {
    DecisionLog::Inputs raw{};
    inputs_.extract(context, raw);
    log_->record(context.token.layer, context.token.position, context.age, raw);
    return context.current;
  }

  /// @return the learned policy's decision ages.
  [[nodiscard]] std::span<const std::size_t> decision_ages() const noexcept { return kDecisionAges; }

  /// @return true: the controller reads attention statistics.
  [[nodiscard]] static constexpr bool wants_attention_stats() noexcept {
    return ControllerInputVector::kReadsAttentionStats;
  }

 private:
  DecisionLog* log_;                // where the inputs go
  ControllerInputVector inputs_{};  // the policy's own input builder
};

}  // namespace kvbits::learn
