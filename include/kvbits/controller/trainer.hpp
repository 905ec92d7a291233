// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "kvbits/controller/adam.hpp"
#include "kvbits/controller/backprop.hpp"
#include "kvbits/controller/dense_layer.hpp"
#include "kvbits/controller/head.hpp"
#include "kvbits/controller/loss.hpp"
#include "kvbits/controller/training_set.hpp"
#include "kvbits/core/error.hpp"
#include "kvbits/core/random.hpp"

namespace kvbits {

/// Settings of train().
template <class Net>
struct TrainingOptions {
  /// The loss; its cost defaults to bits / 16 per head.
  LossOptions<Net::kWidths> loss{1.0, 0.0, 0.0, bits_cost<typename Net::widths_type>()};
  AdamOptions adam{};            ///< the optimiser
  std::size_t batch_size = 64;   ///< samples per update, >= 1 (the last batch of an epoch may be smaller)
  std::size_t max_epochs = 100;  ///< passes over the training set, >= 1
  /// Stop after this many epochs without a lower validation loss; 0 = run every epoch.
  std::size_t patience = 10;
  std::uint64_t seed = 0;          ///< initial weights and batch order
  bool initialize_weights = true;  ///< start from seeded random weights (false: fine-tune the given ones)
  bool fit_normalization = true;   ///< set input_mean / input_std from the training set (false: keep them)
};

/// Loss terms and accuracy of a controller on a set of samples.
struct Evaluation {
  LossTerms loss{};                       ///< averaged over samples, summed over heads
  std::array<double, kHeads> accuracy{};  ///< share of samples whose argmax class is the target, per head
};

/// What the progress hook sees after each epoch.
struct EpochReport {
  std::size_t epoch = 0;    ///< 1-based
  LossTerms training{};     ///< mean over the epoch's samples, each taken before its batch's update
  Evaluation validation{};  ///< the whole validation set after the epoch
  bool improved = false;    ///< validation loss below every earlier epoch's: these weights are kept
};

/// The outcome of train().
struct TrainingResult {
  std::size_t epochs = 0;        ///< epochs run
  std::size_t best_epoch = 0;    ///< the epoch whose weights were kept (0: none improved on the start)
  Evaluation best_validation{};  ///< validation of the kept weights
};

namespace detail {

template <class Net>
void check_loss_options(const LossOptions<Net::kWidths>& loss) {
  for (const double weight : {loss.cross_entropy_weight, loss.lambda, loss.mu}) {
    require(std::isfinite(weight) && weight >= 0.0, Errc::invalid_argument,
            "loss weights (cross-entropy, lambda, mu) must be finite and >= 0");
  }
  for (const auto& head : loss.cost) {
    for (const double c : head) {
      require(std::isfinite(c), Errc::invalid_argument, "width costs must be finite");
    }
  }
}

/// `set`'s features normalised by `net`, [N][kInputs] in the Net's scalar type.
template <class Net>
std::vector<typename Net::Input> normalized_inputs(const Net& net, const TrainingSet<Net>& set) {
  using Scalar = typename Net::scalar_type;
  std::vector<typename Net::Input> out(set.size());
  for (std::size_t i = 0; i < out.size(); ++i) {
    const Eigen::Map<const Eigen::Matrix<float, static_cast<int>(Net::kInputs), 1>> raw(set.features.data() +
                                                                                        i * Net::kInputs);
    out[i] = net.normalize(raw.template cast<Scalar>());
  }
  return out;
}

template <class Net>
Evaluation evaluate_normalized(const Net& net, const std::vector<typename Net::Input>& inputs,
                               const TrainingSet<Net>& set, const LossOptions<Net::kWidths>& loss) {
  Evaluation result;
  if (inputs.empty()) return result;
  auto activations = std::make_unique<typename Net::Activations>();
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    std::get<0>(*activations) = inputs[i];
    const SampleLabels labels = labels_of(set, i);
    result.loss += sample_loss(net, *activations, labels, loss, nullptr, 1.0);
    const typename Net::Output out = Net::split(std::get<Net::kLayers>(*activations));
    result.accuracy[kKeyHead] += argmax(out.key) == labels.target[kKeyHead] ? 1.0 : 0.0;
    result.accuracy[kValueHead] += argmax(out.value) == labels.target[kValueHead] ? 1.0 : 0.0;
  }
  const double scale = 1.0 / static_cast<double>(inputs.size());
  result.loss *= scale;
  for (double& accuracy : result.accuracy) accuracy *= scale;
  return result;
}

}  // namespace detail

/**
 * Sets `net`'s input normalisation to the per-feature mean and population
 * standard deviation of `set` (computed in double); a feature whose deviation
 * is 0 or too small for a float keeps std 1.
 * @throws Error(invalid_argument) for an invalid or empty set.
 */
template <class Net>
void fit_normalization(Net& net, const TrainingSet<Net>& set) {
  set.validate("training set");
  detail::require(!set.empty(), Errc::invalid_argument, "cannot fit normalisation to an empty training set");
  using Scalar = typename Net::scalar_type;
  const std::size_t n = set.size();
  for (std::size_t f = 0; f < Net::kInputs; ++f) {
    double sum = 0.0;
    for (std::size_t i = 0; i < n; ++i) sum += set.features[i * Net::kInputs + f];
    const double mean = sum / static_cast<double>(n);
    double squares = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      const double d = set.features[i * Net::kInputs + f] - mean;
      squares += d * d;
    }
    const double deviation = std::sqrt(squares / static_cast<double>(n));
    const auto index = static_cast<Eigen::Index>(f);
    net.input_mean()[index] = static_cast<Scalar>(mean);
    const bool usable = deviation >= static_cast<double>(std::numeric_limits<float>::min());
    net.input_std()[index] = usable ? static_cast<Scalar>(deviation) : Scalar{1};
  }
}

/**
 * Seeded random weights: hidden layers He-uniform (U(-sqrt(6 / fan_in), +)),
 * the output layer Glorot-uniform (U(-sqrt(6 / (fan_in + fan_out)), +)),
 * biases 0. Integer draws and exact scalings only: the same weights everywhere.
 */
template <class Net>
void initialize_weights(Net& net, std::uint64_t seed) {
  detail::SplitMix64 random(seed);
  std::size_t layer = 0;
  detail::for_each_tensor(
      [&](auto& tensor) {
        using Tensor = std::remove_reference_t<decltype(tensor)>;
        using Scalar = typename Tensor::Scalar;
        if constexpr (Tensor::ColsAtCompileTime == 1) {
          tensor.setZero();  // the bias, which follows its layer's weight
          ++layer;
        } else {
          const auto fan_in = static_cast<double>(Tensor::ColsAtCompileTime);
          const auto fan_out = static_cast<double>(Tensor::RowsAtCompileTime);
          const double limit =
              layer + 1 < Net::kLayers ? std::sqrt(6.0 / fan_in) : std::sqrt(6.0 / (fan_in + fan_out));
          for (Eigen::Index i = 0; i < tensor.size(); ++i) {
            tensor.data()[i] = static_cast<Scalar>(limit * random.symmetric());
          }
        }
      },
      net.layers());
}

/**
 * @return the loss terms and per-head accuracy of `net` on `set`.
 * @throws Error(invalid_argument) for an invalid set or loss options.
 */
template <class Net>
Evaluation evaluate(const Net& net, const TrainingSet<Net>& set, const LossOptions<Net::kWidths>& loss) {
  set.validate("evaluation set");
  detail::check_loss_options<Net>(loss);
  return detail::evaluate_normalized(net, detail::normalized_inputs(net, set), set, loss);
}

/**
 * Trains `net` with Adam on mini-batches of `training`, stopping early on `validation`:
 *  1. unless turned off, fits the normalisation to `training` and draws seeded initial weights;
 *  2. each epoch visits the training samples in a seeded random order (Fisher-Yates with
 *     SplitMix64), in batches of batch_size, one Adam step per batch on the batch's mean
 *     loss (loss.hpp);
 *  3. after each epoch evaluates the whole validation set and calls `on_epoch`; the weights of
 *     the epoch with the lowest validation loss so far are kept;
 *  4. stops after max_epochs, or after `patience` epochs without a new lowest validation loss,
 *     and leaves `net` with the kept weights.
 * Deterministic: with the same inputs, options and build, the weights are bit-identical.
 *
 * @param net the controller; trained in place (unchanged when this throws).
 * @param training, validation labelled samples; both non-empty.
 * @param options loss, optimiser, batches, epochs, seed.
 * @param on_epoch called after every epoch (may be empty).
 * @return epochs run, the kept epoch and its validation.
 * @throws Error(invalid_argument) for invalid sets or options, before anything changes.
 */
template <class Net>
TrainingResult train(Net& net, const TrainingSet<Net>& training, const TrainingSet<Net>& validation,
                     const TrainingOptions<Net>& options,
                     const std::function<void(const EpochReport&)>& on_epoch = {}) {
  training.validate("training set");
  validation.validate("validation set");
  detail::require(!training.empty(), Errc::invalid_argument, "the training set is empty");
  detail::require(!validation.empty(), Errc::invalid_argument,
                  "the validation set is empty; split_training_set() holds back part of the training set");
  detail::require(options.batch_size >= 1, Errc::invalid_argument, "batch size must be >= 1");
  detail::require(options.max_epochs >= 1, Errc::invalid_argument, "max epochs must be >= 1");
  detail::check_loss_options<Net>(options.loss);
  options.adam.validate();

  // Heap copies: a large Mlp and its optimiser state would crowd the stack.
  auto work = std::make_unique<Net>(net);
  if (options.fit_normalization) fit_normalization(*work, training);
  if (options.initialize_weights) initialize_weights(*work, options.seed);
  auto best = std::make_unique<Net>(*work);
  auto gradient = std::make_unique<typename Net::Layers>();
  auto activations = std::make_unique<typename Net::Activations>();
  auto adam = std::make_unique<Adam<typename Net::Layers>>(options.adam);

  const std::vector<typename Net::Input> train_inputs = detail::normalized_inputs(*work, training);
  const std::vector<typename Net::Input> validation_inputs = detail::normalized_inputs(*work, validation);
  const std::size_t n = training.size();
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  // Batch order draws from a stream of its own, so it does not depend on how many weights were drawn.
  detail::SplitMix64 random(options.seed ^ 0x6b76626974732d62ULL);

  TrainingResult result;
  result.best_validation = detail::evaluate_normalized(*work, validation_inputs, validation, options.loss);
  std::size_t since_best = 0;
  for (std::size_t epoch = 1; epoch <= options.max_epochs; ++epoch) {
    for (std::size_t i = n - 1; i > 0; --i) std::swap(order[i], order[random.below(i + 1)]);
    LossTerms epoch_terms;
    for (std::size_t start = 0; start < n; start += options.batch_size) {
      const std::size_t end = std::min(n, start + options.batch_size);
      const double scale = 1.0 / static_cast<double>(end - start);
      detail::for_each_tensor([](auto& tensor) { tensor.setZero(); }, *gradient);
      for (std::size_t k = start; k < end; ++k) {
        std::get<0>(*activations) = train_inputs[order[k]];
        epoch_terms += detail::sample_loss(*work, *activations, detail::labels_of(training, order[k]),
                                           options.loss, gradient.get(), scale);
      }
      adam->step(work->layers(), *gradient);
    }
    epoch_terms *= 1.0 / static_cast<double>(n);

    EpochReport report;
    report.epoch = epoch;
    report.training = epoch_terms;
    report.validation = detail::evaluate_normalized(*work, validation_inputs, validation, options.loss);
    // A NaN loss never compares below the best, so a diverged run keeps its last good weights.
    report.improved = report.validation.loss.total < result.best_validation.loss.total ||
                      (result.best_epoch == 0 && !std::isfinite(result.best_validation.loss.total) &&
                       std::isfinite(report.validation.loss.total));
    result.epochs = epoch;
    if (report.improved) {
      *best = *work;
      result.best_epoch = epoch;
      result.best_validation = report.validation;
      since_best = 0;
    } else {
      ++since_best;
    }
    if (on_epoch) on_epoch(report);
    if (options.patience != 0 && since_best >= options.patience) break;
  }
  net = *best;
  return result;
}

}  // namespace kvbits
