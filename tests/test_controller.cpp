// SPDX-License-Identifier: MIT
// The learned controller: Mlp inference, loss and gradients, training, weight
// files, and LearnedPolicy inside the cache.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

#include "support/bit_decision_text.hpp"
#include "support/cache_test_data.hpp"
#include "support/fuzz_corpus.hpp"
#include "support/require_error.hpp"

#include "kvbits/cache/quantized_kv_cache.hpp"
#include "kvbits/controller/backprop.hpp"
#include "kvbits/controller/checksum.hpp"
#include "kvbits/controller/head.hpp"
#include "kvbits/controller/inputs.hpp"
#include "kvbits/controller/loss.hpp"
#include "kvbits/controller/mlp.hpp"
#include "kvbits/controller/trainer.hpp"
#include "kvbits/controller/training_set.hpp"
#include "kvbits/controller/weight_file.hpp"
#include "kvbits/controller/width_list.hpp"
#include "kvbits/core/random.hpp"
#include "kvbits/features/age_feature.hpp"
#include "kvbits/features/attention_variance_feature.hpp"
#include "kvbits/features/confidence_feature.hpp"
#include "kvbits/features/entropy_feature.hpp"
#include "kvbits/features/feature_set.hpp"
#include "kvbits/features/layer_feature.hpp"
#include "kvbits/features/position_feature.hpp"
#include "kvbits/features/received_mass_feature.hpp"
#include "kvbits/policy/budget_policy.hpp"
#include "kvbits/policy/learned_policy.hpp"

namespace {

using kvbits::AgeFeature;
using kvbits::BitDecision;
using kvbits::CacheOptions;
using kvbits::DecisionContext;
using kvbits::Errc;
using kvbits::FeatureSet;
using kvbits::Hidden;
using kvbits::kHeads;
using kvbits::kKeyHead;
using kvbits::kValueHead;
using kvbits::Mlp;
using kvbits::QuantizedKVCache;
using kvbits::TokenInfo;
using kvbits::TrainingSet;
using kvbits::WidthList;
using kvbits::test::random_vector;
using kvbits::test::require_error;

// Tolerances, each named for what it bounds.
// Float forward pass vs a double loop: a few float roundings per multiply-add over <= 16 terms.
constexpr double kForwardTolerance = 1e-5;
// Central differences of a double loss with step kGradientStep: truncation error ~ h^2 * f''' and
// rounding error ~ 1e-16 / h, both far below 1e-7 relative for these O(1) losses.
constexpr double kGradientStep = 1e-6;
constexpr double kGradientRelative = 1e-6;
constexpr double kGradientAbsolute = 1e-8;
// Training on a noise-free synthetic problem: what a 16-unit network reaches in a few dozen epochs.
constexpr double kSyntheticAccuracy = 0.95;

using Widths4 = WidthList<2, 4, 8, 16>;
using Widths7 = WidthList<2, 3, 4, 5, 6, 8, 16>;

/// Every parameter of `net`, and its normalisation when asked, drawn uniformly in [-scale, scale).
template <class Net>
void fill_random(Net& net, std::uint64_t seed, double scale = 1.0, bool normalization = false) {
  kvbits::detail::SplitMix64 random(seed);
  using Scalar = typename Net::scalar_type;
  kvbits::detail::for_each_tensor(
      [&](auto& tensor) {
        for (Eigen::Index i = 0; i < tensor.size(); ++i) {
          tensor.data()[i] = static_cast<Scalar>(scale * random.symmetric());
        }
      },
      net.layers());
  if (normalization) {
    for (Eigen::Index i = 0; i < net.input_mean().size(); ++i) {
      net.input_mean()[i] = static_cast<Scalar>(random.symmetric());
      net.input_std()[i] = static_cast<Scalar>(0.5 + 0.5 * (random.symmetric() + 1.0));
    }
  }
}

/// The forward pass as plain loops in double: normalise, dense + ReLU layers, dense output.
template <class Net>
std::vector<double> naive_forward(const Net& net, const std::vector<double>& features) {
  std::vector<double> x(features.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const auto k = static_cast<Eigen::Index>(i);
    x[i] = (features[i] - static_cast<double>(net.input_mean()[k])) / static_cast<double>(net.input_std()[k]);
  }
  std::size_t tensor_index = 0;
  std::vector<double> next;
  kvbits::detail::for_each_tensor(
      [&](const auto& tensor) {
        const bool weight = tensor_index++ % 2 == 0;  // each layer's weight, then its bias
        if (weight) {
          next.assign(static_cast<std::size_t>(tensor.rows()), 0.0);
          for (Eigen::Index r = 0; r < tensor.rows(); ++r) {
            for (Eigen::Index c = 0; c < tensor.cols(); ++c) {
              next[static_cast<std::size_t>(r)] +=
                  static_cast<double>(tensor(r, c)) * x[static_cast<std::size_t>(c)];
            }
          }
          return;
        }
        for (Eigen::Index r = 0; r < tensor.rows(); ++r) next[static_cast<std::size_t>(r)] += tensor(r, 0);
        const bool last = tensor_index == 2 * Net::kLayers;
        if (!last) {
          for (double& v : next) v = std::max(v, 0.0);  // ReLU on every layer but the output
        }
        x = next;
      },
      net.layers());
  return x;
}

std::size_t naive_argmax(const std::vector<double>& v, std::size_t begin, std::size_t end) {
  std::size_t best = begin;
  for (std::size_t i = begin; i < end; ++i) {
    if (v[i] > v[best]) best = i;
  }
  return best - begin;
}

/// A random training set for `Net`: features in [-2, 2), random targets and damage.
template <class Net>
TrainingSet<Net> random_set(std::size_t n, std::uint64_t seed) {
  kvbits::detail::SplitMix64 random(seed);
  TrainingSet<Net> set;
  for (std::size_t i = 0; i < n; ++i) {
    std::array<float, Net::kInputs> x{};
    for (float& v : x) v = static_cast<float>(2.0 * random.symmetric());
    std::array<std::array<float, Net::kWidths>, kHeads> damage{};
    for (auto& head : damage) {
      for (float& v : head) v = static_cast<float>(random.symmetric() + 1.0);
    }
    set.add(x, static_cast<std::uint32_t>(random.below(Net::kWidths)),
            static_cast<std::uint32_t>(random.below(Net::kWidths)), damage[0], damage[1]);
  }
  return set;
}

/// Mean batch loss of `net` over `set` (features taken as already normalised).
template <class Net>
double batch_loss(const Net& net, const TrainingSet<Net>& set,
                  const kvbits::LossOptions<Net::kWidths>& options, typename Net::Layers* gradient) {
  auto activations = std::make_unique<typename Net::Activations>();
  double total = 0.0;
  const double scale = 1.0 / static_cast<double>(set.size());
  for (std::size_t i = 0; i < set.size(); ++i) {
    for (std::size_t f = 0; f < Net::kInputs; ++f) {
      std::get<0>(*activations)[static_cast<Eigen::Index>(f)] = set.features[i * Net::kInputs + f];
    }
    total += kvbits::detail::sample_loss(net, *activations, kvbits::detail::labels_of(set, i), options,
                                         gradient, scale)
                 .total;
  }
  return total * scale;
}

/// Checks every parameter's analytic gradient against a central difference.
template <class Net>
void check_gradients(Net net, const TrainingSet<Net>& set, const kvbits::LossOptions<Net::kWidths>& options) {
  auto analytic = std::make_unique<typename Net::Layers>();
  batch_loss(net, set, options, analytic.get());
  std::size_t tensor = 0, checked = 0;
  double largest = 0.0;
  std::vector<double*> parameters;
  std::vector<double> gradients;
  kvbits::detail::for_each_tensor(
      [&](auto& p, const auto& g) {
        for (Eigen::Index i = 0; i < p.size(); ++i) {
          parameters.push_back(p.data() + i);
          gradients.push_back(g.data()[i]);
        }
        ++tensor;
      },
      net.layers(), *analytic);
  REQUIRE(tensor == 2 * Net::kLayers);
  REQUIRE(parameters.size() == Net::kParameterCount);
  for (std::size_t k = 0; k < parameters.size(); ++k) {
    double& p = *parameters[k];
    const double saved = p;
    p = saved + kGradientStep;
    const double up = batch_loss(net, set, options, nullptr);
    p = saved - kGradientStep;
    const double down = batch_loss(net, set, options, nullptr);
    p = saved;
    const double numeric = (up - down) / (2.0 * kGradientStep);
    INFO("parameter " << k << " analytic " << gradients[k] << " numeric " << numeric);
    REQUIRE(std::abs(gradients[k] - numeric) <= kGradientAbsolute + kGradientRelative * std::abs(numeric));
    largest = std::max(largest, std::abs(numeric));
    ++checked;
  }
  CHECK(checked == Net::kParameterCount);
  CHECK(largest > 1e-3);  // the check compared real gradients, not zeros
}

/// Recomputes the header's payload size and checksum, so a test can reach the checks behind them.
void reseal(std::vector<std::byte>& bytes) {
  const std::uint64_t size = bytes.size() - kvbits::kWeightFileHeaderBytes;
  const std::uint64_t checksum =
      kvbits::detail::fnv1a64(std::span<const std::byte>(bytes).subspan(kvbits::kWeightFileHeaderBytes));
  for (std::size_t i = 0; i < 8; ++i) {
    bytes[kvbits::kWeightFilePayloadSizeOffset + i] = static_cast<std::byte>((size >> (8 * i)) & 0xffU);
    bytes[kvbits::kWeightFileChecksumOffset + i] = static_cast<std::byte>((checksum >> (8 * i)) & 0xffU);
  }
}

void write_u32(std::vector<std::byte>& bytes, std::size_t offset, std::uint32_t v) {
  for (std::size_t i = 0; i < 4; ++i) bytes[offset + i] = static_cast<std::byte>((v >> (8 * i)) & 0xffU);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Shapes and inference

TEST_CASE("Mlp sizes are compile-time constants", "[controller][mlp]") {
  using Net = Mlp<7, Hidden<32, 16>, Widths4>;
  STATIC_REQUIRE(Net::kInputs == 7);
  STATIC_REQUIRE(Net::kWidths == 4);
  STATIC_REQUIRE(Net::kOutputs == 8);
  STATIC_REQUIRE(Net::kLayers == 3);
  STATIC_REQUIRE(Net::kSizes == std::array<std::size_t, 4>{7, 32, 16, 8});
  STATIC_REQUIRE(Net::kParameterCount == 32 * 8 + 16 * 33 + 8 * 17);
  STATIC_REQUIRE(Widths7::index_of(5) == 3);
  STATIC_REQUIRE(Widths7::index_of(7) == Widths7::size);
  // A linear controller has one layer.
  STATIC_REQUIRE(Mlp<2, Hidden<>, Widths4>::kLayers == 1);
  // Unsupported widths, unordered widths and a misspelled Mlp are static_assert errors with
  // advice (width_list.hpp, mlp.hpp); they cannot be instantiated here.
}

TEMPLATE_TEST_CASE("Mlp forward equals a naive loop implementation", "[controller][mlp]",
                   (Mlp<3, Hidden<>, WidthList<2, 4>>), (Mlp<5, Hidden<8>, Widths4>),
                   (Mlp<7, Hidden<16, 8>, Widths7>), (Mlp<1, Hidden<1, 3>, Widths4>),
                   (Mlp<4, Hidden<5, 6, 7>, WidthList<4, 8, 16, 32>>)) {
  using Net = TestType;
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    Net net;
    fill_random(net, seed, 1.0, true);
    kvbits::detail::SplitMix64 random(seed + 100);
    for (int sample = 0; sample < 20; ++sample) {
      typename Net::Input x;
      std::vector<double> features(Net::kInputs);
      for (std::size_t i = 0; i < Net::kInputs; ++i) {
        x[static_cast<Eigen::Index>(i)] = static_cast<float>(3.0 * random.symmetric());
        features[i] = x[static_cast<Eigen::Index>(i)];
      }
      const std::vector<double> expected = naive_forward(net, features);
      REQUIRE(expected.size() == Net::kOutputs);
      const typename Net::Output out = net.forward(x);
      for (std::size_t b = 0; b < Net::kWidths; ++b) {
        const auto k = static_cast<Eigen::Index>(b);
        INFO("seed " << seed << " sample " << sample << " class " << b << " key " << out.key[k]
                     << " expected " << expected[b] << " value " << out.value[k] << " expected "
                     << expected[Net::kWidths + b]);
        CHECK(std::abs(out.key[k] - expected[b]) <= kForwardTolerance * (1.0 + std::abs(expected[b])));
        CHECK(std::abs(out.value[k] - expected[Net::kWidths + b]) <=
              kForwardTolerance * (1.0 + std::abs(expected[Net::kWidths + b])));
      }
      const BitDecision predicted = net.predict(x);
      const auto& widths = Net::widths_type::kValues;
      CHECK(predicted.key_bits == widths[naive_argmax(expected, 0, Net::kWidths)]);
      CHECK(predicted.value_bits == widths[naive_argmax(expected, Net::kWidths, Net::kOutputs)]);
    }
  }
}

TEST_CASE("A default Mlp is zero with identity normalisation, and == compares every parameter",
          "[controller][mlp]") {
  using Net = Mlp<3, Hidden<4>, Widths4>;
  Net a;
  CHECK(a.input_mean() == Net::Input::Zero());
  CHECK(a.input_std() == Net::Input::Ones());
  CHECK(a.forward(Net::Input::Constant(5.0f)).key == Net::HeadVector::Zero());
  Net b = a;
  CHECK(a == b);
  std::get<1>(b.layers()).bias[3] = 1e-30f;
  CHECK_FALSE(a == b);
  b = a;
  b.input_std()[2] = 2.0f;
  CHECK_FALSE(a == b);
}

TEST_CASE("Head rules: softmax, argmax and the cumulative quantile", "[controller][mlp]") {
  Eigen::Vector4f probabilities(0.1f, 0.2f, 0.3f, 0.4f);
  CHECK(kvbits::detail::quantile_class(probabilities, 0.05) == 0);
  CHECK(kvbits::detail::quantile_class(probabilities, 0.25) == 1);
  CHECK(kvbits::detail::quantile_class(probabilities, 0.35) == 2);
  CHECK(kvbits::detail::quantile_class(probabilities, 0.65) == 3);
  CHECK(kvbits::detail::quantile_class(probabilities, 1.0) == 3);
  CHECK(kvbits::detail::argmax(Eigen::Vector4f(1.0f, 3.0f, 3.0f, -1.0f)) == 1);  // first on ties
  const Eigen::Vector4f p = kvbits::detail::softmax(Eigen::Vector4f(1000.0f, 1000.0f, 0.0f, -1000.0f));
  CHECK(p[0] == Approx(0.5f));
  CHECK(p[1] == Approx(0.5f));
  CHECK(p[3] < 1e-30f);
  CHECK(p.allFinite());
}

// ---------------------------------------------------------------------------------------------
// Loss and gradients

TEST_CASE("Loss terms equal their definitions", "[controller][loss]") {
  using Net = Mlp<2, Hidden<3>, Widths4, double>;
  kvbits::LossOptions<4> options{0.5, 0.7, 1.3, kvbits::bits_cost<Widths4>()};
  options.cost[kValueHead] = {0.0, 1.0, 4.0, 9.0};
  const Net::HeadVector logits(0.3, -1.2, 2.0, 0.5);
  const std::array<float, 4> damage{3.0f, 1.0f, 0.5f, 0.0f};
  Net::HeadVector gradient;
  const kvbits::LossTerms terms =
      kvbits::detail::head_loss(logits, 2, options.cost[kValueHead], damage.data(), options, &gradient, 1.0);
  double z = 0.0;
  for (int b = 0; b < 4; ++b) z += std::exp(logits[b]);
  double ce = -std::log(std::exp(logits[2]) / z), cost = 0.0, dmg = 0.0;
  for (int b = 0; b < 4; ++b) {
    const double p = std::exp(logits[b]) / z;
    cost += p * options.cost[kValueHead][static_cast<std::size_t>(b)];
    dmg += p * damage[static_cast<std::size_t>(b)];
  }
  CHECK(terms.cross_entropy == Approx(ce).epsilon(1e-12));
  CHECK(terms.expected_cost == Approx(cost).epsilon(1e-12));
  CHECK(terms.expected_damage == Approx(dmg).epsilon(1e-12));
  CHECK(terms.total == Approx(0.5 * ce + 0.7 * cost + 1.3 * dmg).epsilon(1e-12));
  // The logit gradient sums to zero: softmax is shift invariant.
  CHECK(std::abs(gradient.sum()) < 1e-12);
  // Without damage rows the damage term is zero.
  CHECK(kvbits::detail::head_loss(logits, 2, options.cost[kValueHead], nullptr, options,
                                  static_cast<Net::HeadVector*>(nullptr), 1.0)
            .expected_damage == 0.0);
}

TEMPLATE_TEST_CASE("Loss gradients equal central finite differences for every parameter",
                   "[controller][loss]", (Mlp<4, Hidden<6, 5>, Widths4, double>),
                   (Mlp<3, Hidden<>, WidthList<2, 3, 4>, double>), (Mlp<2, Hidden<7>, Widths7, double>)) {
  using Net = TestType;
  Net net;
  fill_random(net, 11, 0.8);
  const TrainingSet<Net> set = random_set<Net>(6, 12);
  kvbits::LossOptions<Net::kWidths> options{1.0, 0.0, 0.0, kvbits::bits_cost<typename Net::widths_type>()};
  options.cost[kValueHead][0] = 0.25;  // the heads' costs differ
  SECTION("cross-entropy alone") { check_gradients(net, set, options); }
  SECTION("expected cost alone") {
    options.cross_entropy_weight = 0.0;
    options.lambda = 1.0;
    check_gradients(net, set, options);
  }
  SECTION("expected damage alone") {
    options.cross_entropy_weight = 0.0;
    options.mu = 1.0;
    check_gradients(net, set, options);
  }
  SECTION("all three terms") {
    options.cross_entropy_weight = 0.8;
    options.lambda = 0.7;
    options.mu = 1.3;
    check_gradients(net, set, options);
  }
}

// ---------------------------------------------------------------------------------------------
// Training

namespace {

using SmallNet = Mlp<3, Hidden<16>, Widths4>;

/// Targets as a known function of the features: key class by x0's quarter of [-1, 1), value class
/// 3 when x1 + x2 > 0 else 1; damage 1 below the target width and 0 from it on. Documents of 10.
TrainingSet<SmallNet> synthetic_set(std::size_t n, std::uint64_t seed) {
  kvbits::detail::SplitMix64 random(seed);
  TrainingSet<SmallNet> set;
  for (std::size_t i = 0; i < n; ++i) {
    std::array<float, 3> x{};
    for (float& v : x) v = static_cast<float>(random.symmetric());
    const auto key = static_cast<std::uint32_t>(std::min(3.0f, std::floor((x[0] + 1.0f) * 2.0f)));
    const std::uint32_t value = x[1] + x[2] > 0.0f ? 3 : 1;
    std::array<float, 4> key_damage{}, value_damage{};
    for (std::uint32_t b = 0; b < 4; ++b) {
      key_damage[b] = b < key ? 1.0f : 0.0f;
      value_damage[b] = b < value ? 1.0f : 0.0f;
    }
    set.add(x, key, value, key_damage, value_damage, static_cast<std::uint32_t>(i / 10));
  }
  return set;
}

kvbits::TrainingOptions<SmallNet> synthetic_options() {
  kvbits::TrainingOptions<SmallNet> options;
  options.adam.learning_rate = 1e-2;
  options.batch_size = 32;
  options.max_epochs = 40;
  options.patience = 8;
  options.seed = 7;
  return options;
}

}  // namespace

TEST_CASE("Training is deterministic under a fixed seed", "[controller][train]") {
  const auto sides = kvbits::split_training_set(synthetic_set(400, 1), 0.25, 3);
  const auto& training = sides.first;
  const auto& validation = sides.second;
  auto options = synthetic_options();
  options.max_epochs = 6;
  std::vector<double> first_losses, second_losses;
  SmallNet first, second;
  kvbits::train(first, training, validation, options,
                [&](const kvbits::EpochReport& r) { first_losses.push_back(r.training.total); });
  kvbits::train(second, training, validation, options,
                [&](const kvbits::EpochReport& r) { second_losses.push_back(r.training.total); });
  CHECK(first == second);
  CHECK(first_losses == second_losses);
  CHECK(first_losses.size() == 6);

  SmallNet other;
  options.seed = 8;
  kvbits::train(other, training, validation, options);
  CHECK_FALSE(other == first);
}

TEST_CASE("Training learns a known function of the features", "[controller][train]") {
  const auto sides = kvbits::split_training_set(synthetic_set(1500, 2), 0.2, 4);
  const auto& training = sides.first;
  const auto& validation = sides.second;
  SmallNet net;
  std::size_t reports = 0;
  const kvbits::TrainingResult result =
      kvbits::train(net, training, validation, synthetic_options(), [&](const kvbits::EpochReport& r) {
        ++reports;
        CHECK(r.epoch == reports);
        // The reported total is the weighted sum of the three reported terms.
        CHECK(r.training.total == Approx(r.training.cross_entropy));
        CHECK(r.validation.loss.total == Approx(r.validation.loss.cross_entropy));
      });
  CHECK(reports == result.epochs);
  const kvbits::Evaluation after = kvbits::evaluate(net, validation, synthetic_options().loss);
  INFO("key accuracy " << after.accuracy[kKeyHead] << " value accuracy " << after.accuracy[kValueHead]);
  CHECK(after.accuracy[kKeyHead] >= kSyntheticAccuracy);
  CHECK(after.accuracy[kValueHead] >= kSyntheticAccuracy);
  // The kept weights are those of the best epoch.
  CHECK(after.loss.total == result.best_validation.loss.total);
  // Normalisation was fitted: features uniform in [-1, 1) have std ~ 1/sqrt(3).
  CHECK(net.input_std()[0] == Approx(1.0 / std::sqrt(3.0)).epsilon(0.05));
}

TEST_CASE("A larger lambda lowers the expected cost, a larger mu the expected damage",
          "[controller][train]") {
  const auto sides = kvbits::split_training_set(synthetic_set(600, 5), 0.25, 6);
  const auto& training = sides.first;
  const auto& validation = sides.second;
  auto options = synthetic_options();
  options.max_epochs = 25;
  const auto trained = [&](double lambda, double mu, double cross_entropy) {
    auto o = options;
    o.loss.lambda = lambda;
    o.loss.mu = mu;
    o.loss.cross_entropy_weight = cross_entropy;
    SmallNet net;
    kvbits::train(net, training, validation, o);
    return kvbits::evaluate(net, validation, o.loss).loss;
  };
  const kvbits::LossTerms plain = trained(0.0, 0.0, 1.0);
  const kvbits::LossTerms cheap = trained(4.0, 0.0, 1.0);
  INFO("expected cost " << plain.expected_cost << " -> " << cheap.expected_cost);
  CHECK(cheap.expected_cost < plain.expected_cost - 0.05);
  // Damage alone, against a cost pull: a larger mu buys back safety.
  const kvbits::LossTerms careless = trained(1.0, 0.1, 0.0);
  const kvbits::LossTerms careful = trained(1.0, 10.0, 0.0);
  INFO("expected damage " << careless.expected_damage << " -> " << careful.expected_damage);
  CHECK(careful.expected_damage < careless.expected_damage - 0.05);
}

TEST_CASE("Early stopping keeps the best epoch and stops after the patience", "[controller][train]") {
  // Random labels: nothing to learn, so a large network soon overfits and the validation loss rises.
  using Net = Mlp<3, Hidden<32, 32>, Widths4>;
  const auto sides = kvbits::split_training_set(random_set<Net>(300, 9), 0.3, 10);
  const auto& training = sides.first;
  const auto& validation = sides.second;
  kvbits::TrainingOptions<Net> options;
  options.adam.learning_rate = 3e-2;
  options.batch_size = 16;
  options.max_epochs = 60;
  options.patience = 3;
  std::vector<kvbits::EpochReport> reports;
  Net net;
  const kvbits::TrainingResult result = kvbits::train(
      net, training, validation, options, [&](const kvbits::EpochReport& r) { reports.push_back(r); });
  REQUIRE(result.epochs == reports.size());
  CHECK(result.epochs < options.max_epochs);
  // Improvements strictly lower the loss; it stopped at the first epoch that made `patience`
  // epochs in a row without one.
  std::size_t since = 0, stop = 0;
  double best = std::numeric_limits<double>::infinity();
  for (const kvbits::EpochReport& r : reports) {
    INFO("epoch " << r.epoch << " validation loss " << r.validation.loss.total << " best " << best);
    if (r.improved) {
      CHECK(r.validation.loss.total < best);
      best = r.validation.loss.total;
      since = 0;
    } else {
      CHECK_FALSE(r.validation.loss.total < best);
      if (++since == options.patience && stop == 0) stop = r.epoch;
    }
  }
  CHECK(stop == result.epochs);
  CHECK(result.best_validation.loss.total == best);
  CHECK(kvbits::evaluate(net, validation, options.loss).loss.total == best);
  CHECK(reports.at(result.best_epoch - 1).improved);
}

TEST_CASE("Training rejects bad sets and options before changing the network", "[controller][train]") {
  auto set = synthetic_set(40, 1);
  const auto sides = kvbits::split_training_set(set, 0.25, 1);
  const auto& training = sides.first;
  const auto& validation = sides.second;
  SmallNet net;
  fill_random(net, 3);
  const SmallNet before = net;
  auto options = synthetic_options();

  auto bad = training;
  bad.heads[kValueHead].target[5] = 4;
  require_error([&] { kvbits::train(net, bad, validation, options); }, Errc::invalid_argument,
                "value target of sample 5 is class 4");
  bad = training;
  bad.features[7] = std::numeric_limits<float>::quiet_NaN();
  require_error([&] { kvbits::train(net, bad, validation, options); }, Errc::invalid_argument,
                "feature 1 of sample 2 is not finite");
  bad = training;
  bad.heads[kKeyHead].damage.pop_back();
  require_error([&] { kvbits::train(net, bad, validation, options); }, Errc::invalid_argument,
                "key damage holds");
  bad = training;
  bad.heads[kKeyHead].damage[0] = -1.0f;
  require_error([&] { kvbits::train(net, bad, validation, options); }, Errc::invalid_argument,
                "finite and >= 0");
  require_error([&] { kvbits::train(net, training, TrainingSet<SmallNet>{}, options); },
                Errc::invalid_argument, "validation set is empty");
  options.batch_size = 0;
  require_error([&] { kvbits::train(net, training, validation, options); }, Errc::invalid_argument,
                "batch size");
  options = synthetic_options();
  options.loss.lambda = -1.0;
  require_error([&] { kvbits::train(net, training, validation, options); }, Errc::invalid_argument,
                "loss weights");
  options = synthetic_options();
  options.adam.beta1 = 1.0;
  require_error([&] { kvbits::train(net, training, validation, options); }, Errc::invalid_argument, "beta1");
  CHECK(net == before);
}

TEST_CASE("split_training_set keeps documents whole and is seeded", "[controller][train]") {
  const TrainingSet<SmallNet> set = synthetic_set(200, 3);  // 20 documents of 10
  const auto sides = kvbits::split_training_set(set, 0.25, 5);
  const auto& training = sides.first;
  const auto& validation = sides.second;
  CHECK(training.size() + validation.size() == set.size());
  CHECK(validation.size() == 50);  // ceil(0.25 * 20) = 5 documents
  for (const std::uint32_t group : validation.groups) {
    CHECK(std::find(training.groups.begin(), training.groups.end(), group) == training.groups.end());
  }
  const auto again = kvbits::split_training_set(set, 0.25, 5);
  CHECK(again.second.groups == validation.groups);
  CHECK(again.second.features == validation.features);
  const auto other = kvbits::split_training_set(set, 0.25, 6);
  CHECK(other.second.groups != validation.groups);
  // Without groups, samples are split one by one.
  TrainingSet<SmallNet> loose = set;
  loose.groups.clear();
  CHECK(kvbits::split_training_set(loose, 0.1, 1).second.size() == 20);
  require_error([&] { (void)kvbits::split_training_set(set, 1.0, 1); }, Errc::invalid_argument, "(0, 1)");
}

// ---------------------------------------------------------------------------------------------
// Weight files

namespace {

using FileNet = Mlp<3, Hidden<5, 4>, Widths4>;
constexpr std::array<std::string_view, 3> kFileNames = {"log_age", "received_mass", "entropy"};
constexpr kvbits::TrainingMetadata kFileTraining{0.25, 2.0, 0.01};

FileNet file_net() {
  FileNet net;
  fill_random(net, 21, 1.0, true);
  return net;
}

std::vector<std::byte> valid_file() { return kvbits::encode_weights(file_net(), kFileNames, kFileTraining); }

struct Failure {
  Errc code;
  std::string message;
};

template <class Net = FileNet>
Failure decode_failure(
    const std::vector<std::byte>& bytes,
    std::span<const std::string_view> names = std::span<const std::string_view>(kFileNames)) {
  try {
    (void)kvbits::decode_weights<Net>(bytes, names, "test.kvbc");
  } catch (const kvbits::Error& error) {
    return {error.code(), error.what()};
  }
  FAIL("decoding did not throw");
  return {};
}

}  // namespace

TEST_CASE("Weight files round-trip bit for bit", "[controller][weights]") {
  const FileNet net = file_net();
  const std::vector<std::byte> bytes = valid_file();
  kvbits::test::save_corpus("controller", "valid_small", bytes);
  CHECK(bytes.size() ==
        28 + 4 + (4 + 7) + (4 + 13) + (4 + 7) + 4 + 8 + 4 + 16 + 24 + 24 + 4 * FileNet::kParameterCount);
  CHECK(bytes.size() <= kvbits::max_weight_file_bytes<FileNet>());
  const kvbits::ControllerWeights<FileNet> decoded = kvbits::decode_weights<FileNet>(bytes, kFileNames);
  CHECK(decoded.net == net);
  CHECK(decoded.training == kFileTraining);
  CHECK(kvbits::encode_weights(decoded.net, kFileNames, decoded.training) == bytes);

  SECTION("through a stream and a file") {
    std::stringstream stream;
    kvbits::write_weights(stream, net, kFileNames, kFileTraining);
    CHECK(kvbits::read_weights<FileNet>(stream, kFileNames).net == net);
    const auto path = std::filesystem::temp_directory_path() / "kvbits_test_controller.kvbc";
    kvbits::save_weights(path, net, kFileNames, kFileTraining);
    const auto loaded = kvbits::load_weights<FileNet>(path, kFileNames);
    CHECK(loaded.net == net);
    CHECK(loaded.training == kFileTraining);
    std::filesystem::remove(path);
    require_error([&] { (void)kvbits::load_weights<FileNet>(path, kFileNames); }, Errc::io_error,
                  "cannot open");
  }
  SECTION("a linear controller and seven widths") {
    using Linear = Mlp<1, Hidden<>, Widths7>;
    Linear linear;
    fill_random(linear, 5, 2.0, true);
    constexpr std::array<std::string_view, 1> name = {"layer"};
    const auto round = kvbits::decode_weights<Linear>(kvbits::encode_weights(linear, name, {}), name);
    CHECK(round.net == linear);
  }
}

TEST_CASE("A truncated weight file is a clear error at every length", "[controller][weights]") {
  const std::vector<std::byte> bytes = valid_file();
  for (std::size_t length = 0; length < bytes.size(); ++length) {
    const std::vector<std::byte> prefix(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(length));
    if (length == 20 || length == 100)
      kvbits::test::save_corpus("controller", "truncated_at_" + std::to_string(length), prefix);
    const Failure failure = decode_failure(prefix);
    INFO("prefix of " << length << " bytes: " << failure.message);
    CHECK(failure.code == Errc::corrupt_data);
    CHECK_THAT(failure.message, Catch::Contains("truncated"));
    CHECK_THAT(failure.message, Catch::Contains("test.kvbc"));
  }
  // One byte too many is an error too.
  std::vector<std::byte> longer = bytes;
  longer.push_back(std::byte{0});
  CHECK_THAT(decode_failure(longer).message, Catch::Contains("unexpected bytes after the declared"));
}

TEST_CASE("A flipped checksum or payload byte is a checksum mismatch", "[controller][weights]") {
  const std::vector<std::byte> bytes = valid_file();
  for (std::size_t i = kvbits::kWeightFileChecksumOffset; i < bytes.size(); ++i) {
    std::vector<std::byte> flipped = bytes;
    flipped[i] ^= std::byte{0x10};
    if (i == kvbits::kWeightFileChecksumOffset)
      kvbits::test::save_corpus("controller", "flipped_checksum", flipped);
    if (i == bytes.size() - 1) kvbits::test::save_corpus("controller", "flipped_payload", flipped);
    const Failure failure = decode_failure(flipped);
    INFO("byte " << i << ": " << failure.message);
    CHECK(failure.code == Errc::corrupt_data);
    CHECK_THAT(failure.message, Catch::Contains("checksum mismatch"));
  }
}

TEST_CASE("Wrong magic, version or payload size is a clear error", "[controller][weights]") {
  std::vector<std::byte> bytes = valid_file();
  bytes[0] = std::byte{'X'};
  kvbits::test::save_corpus("controller", "bad_magic", bytes);
  Failure failure = decode_failure(bytes);
  CHECK(failure.code == Errc::corrupt_data);
  CHECK_THAT(failure.message, Catch::Contains("not a kvbits controller weight file"));

  bytes = valid_file();
  write_u32(bytes, 8, 2);
  kvbits::test::save_corpus("controller", "version_2", bytes);
  failure = decode_failure(bytes);
  CHECK(failure.code == Errc::unsupported);
  CHECK_THAT(failure.message, Catch::Contains("version 2; this build reads version 1"));

  bytes = valid_file();
  write_u32(bytes, kvbits::kWeightFilePayloadSizeOffset, 0xffffffffU);
  kvbits::test::save_corpus("controller", "huge_payload_size", bytes);
  failure = decode_failure(bytes);
  CHECK(failure.code == Errc::corrupt_data);
  CHECK_THAT(failure.message, Catch::Contains("truncated: the header declares 4294967295 payload bytes"));
}

TEST_CASE("A file for other features, sizes or widths is rejected with what differs",
          "[controller][weights]") {
  SECTION("feature names") {
    constexpr std::array<std::string_view, 3> other = {"log_age", "attention_variance", "entropy"};
    const Failure failure = decode_failure(valid_file(), other);
    CHECK(failure.code == Errc::invalid_argument);
    CHECK_THAT(failure.message, Catch::Contains("features (log_age, received_mass, entropy) are not the "
                                                "controller's (log_age, attention_variance, entropy)"));
  }
  SECTION("feature count") {
    using Two = Mlp<2, Hidden<5, 4>, Widths4>;
    constexpr std::array<std::string_view, 2> two = {"log_age", "received_mass"};
    const Failure failure = decode_failure<Two>(valid_file(), two);
    CHECK(failure.code == Errc::invalid_argument);
    CHECK_THAT(failure.message, Catch::Contains("features (log_age, received_mass, entropy)"));
  }
  SECTION("hidden sizes") {
    const Failure failure = decode_failure<Mlp<3, Hidden<5, 3>, Widths4>>(valid_file());
    CHECK(failure.code == Errc::invalid_argument);
    CHECK_THAT(failure.message, Catch::Contains("layer sizes 3-5-4-2x4 are not the controller's 3-5-3-2x4"));
  }
  SECTION("hidden layer count") {
    const Failure failure = decode_failure<Mlp<3, Hidden<5>, Widths4>>(valid_file());
    CHECK(failure.code == Errc::invalid_argument);
    CHECK_THAT(failure.message, Catch::Contains("layer sizes 3-5-4-2x4 are not the controller's 3-5-2x4"));
  }
  SECTION("width count") {
    const Failure failure = decode_failure<Mlp<3, Hidden<5, 4>, WidthList<2, 4, 8>>>(valid_file());
    CHECK(failure.code == Errc::invalid_argument);
    CHECK_THAT(failure.message, Catch::Contains("are not the controller's 3-5-4-2x3"));
  }
  SECTION("widths") {
    const Failure failure = decode_failure<Mlp<3, Hidden<5, 4>, WidthList<2, 3, 4, 16>>>(valid_file());
    CHECK(failure.code == Errc::invalid_argument);
    CHECK_THAT(failure.message, Catch::Contains("widths 2,4,8,16 are not the controller's 2,3,4,16"));
  }
  SECTION("files of other controllers, read as this one (seeds for the fuzzer)") {
    using OtherWidths = Mlp<3, Hidden<5, 4>, WidthList<2, 3, 4, 16>>;
    OtherWidths other_widths;
    fill_random(other_widths, 22, 1.0, true);
    std::vector<std::byte> bytes = kvbits::encode_weights(other_widths, kFileNames, kFileTraining);
    kvbits::test::save_corpus("controller", "other_widths", bytes);
    CHECK_THAT(decode_failure(bytes).message,
               Catch::Contains("widths 2,3,4,16 are not the controller's 2,4,8,16"));

    using OtherSizes = Mlp<3, Hidden<6>, Widths7>;
    OtherSizes other_sizes;
    fill_random(other_sizes, 23, 1.0, true);
    bytes = kvbits::encode_weights(other_sizes, kFileNames, kFileTraining);
    kvbits::test::save_corpus("controller", "other_sizes", bytes);
    CHECK_THAT(decode_failure(bytes).message,
               Catch::Contains("layer sizes 3-6-2x7 are not the controller's 3-5-4-2x4"));

    constexpr std::array<std::string_view, 3> other_names = {"log_position", "layer", "rarity"};
    bytes = kvbits::encode_weights(file_net(), other_names, kFileTraining);
    kvbits::test::save_corpus("controller", "other_names", bytes);
    CHECK(decode_failure(bytes).code == Errc::invalid_argument);
  }
}

TEST_CASE("Out-of-range values behind a valid checksum are corrupt data", "[controller][weights]") {
  const std::vector<std::byte> bytes = valid_file();
  const std::size_t names_end = 28 + 4 + (4 + 7) + (4 + 13) + (4 + 7);
  const std::size_t training_at = names_end + 4 + 8 + 4 + 16;
  const std::size_t std_at = training_at + 24 + 12;
  const std::size_t weights_at = std_at + 12;
  const auto broken = [&](const std::string& name, std::size_t offset, std::uint32_t value) {
    std::vector<std::byte> b = bytes;
    write_u32(b, offset, value);
    reseal(b);
    kvbits::test::save_corpus("controller", name, b);
    return decode_failure(b);
  };
  const std::uint32_t nan = 0x7fc00000U, negative = 0xbf800000U;
  Failure failure = broken("nan_weight", weights_at + 8, nan);
  CHECK(failure.code == Errc::corrupt_data);
  CHECK_THAT(failure.message, Catch::Contains("layer 0 weight is not finite"));
  failure = broken("negative_std", std_at + 4, negative);
  CHECK_THAT(failure.message, Catch::Contains("input std is not finite and > 0"));
  failure = broken("negative_lambda", training_at + 4, negative);  // the high half of lambda's f64
  CHECK_THAT(failure.message, Catch::Contains("lambda, mu and tau"));
  failure = broken("empty_name", 32, 0);
  CHECK_THAT(failure.message, Catch::Contains("name of feature 0 is 0 bytes long"));
  failure = broken("huge_feature_count", 28, 0x40000000U);
  CHECK_THAT(failure.message, Catch::Contains("feature count 1073741824 cannot fit"));
  failure = broken("huge_hidden_count", names_end, 0x40000000U);
  CHECK_THAT(failure.message, Catch::Contains("hidden layer count 1073741824 cannot fit"));
  CHECK(failure.code == Errc::corrupt_data);
  // A stream longer than any file of this controller is refused without reading it all.
  std::stringstream huge(std::string(kvbits::max_weight_file_bytes<FileNet>() + 10000, 'K'));
  require_error([&] { (void)kvbits::read_weights<FileNet>(huge, kFileNames); }, Errc::corrupt_data,
                "longer than any weight file");
}

TEST_CASE("Saving refuses what could not be loaded back", "[controller][weights]") {
  FileNet net = file_net();
  constexpr std::array<std::string_view, 3> empty_name = {"log_age", "", "entropy"};
  require_error([&] { (void)kvbits::encode_weights(net, empty_name, {}); }, Errc::invalid_argument,
                "1..64 bytes");
  constexpr std::array<std::string_view, 2> two = {"log_age", "entropy"};
  require_error([&] { (void)kvbits::encode_weights(net, two, {}); }, Errc::invalid_argument,
                "names 3 features");
  require_error(
      [&] {
        (void)kvbits::encode_weights(net, kFileNames, {-1.0, 0.0, 0.0});
      },
      Errc::invalid_argument, "lambda, mu and tau");
  net.input_std()[1] = 0.0f;
  require_error([&] { (void)kvbits::encode_weights(net, kFileNames, {}); }, Errc::invalid_argument,
                "std > 0");
  net = file_net();
  std::get<2>(net.layers()).weight(1, 1) = std::numeric_limits<float>::infinity();
  require_error([&] { (void)kvbits::encode_weights(net, kFileNames, {}); }, Errc::invalid_argument,
                "must be finite");
}

// ---------------------------------------------------------------------------------------------
// LearnedPolicy
//
// LearnedPolicy static_asserts that Features::size + Supplied::size equals the Mlp's input count,
// with a message saying what to change (policy/learned_policy.hpp); a mismatched instantiation
// does not compile, so it cannot be tested here.

namespace {

using AttentionFeatures =
    FeatureSet<AgeFeature, kvbits::ReceivedMassFeature, kvbits::AttentionVarianceFeature>;
using WriteTimeFeatures = FeatureSet<kvbits::EntropyFeature, kvbits::ConfidenceFeature>;

CacheOptions cache_options(std::size_t capacity, std::size_t window) {
  CacheOptions o;
  o.layers = 2;
  o.kv_heads = 2;
  o.head_dim = 16;
  o.capacity = capacity;
  o.residual_window = window;
  o.sink_tokens = 1;
  o.key.group_size = 8;
  return o;
}

// A linear controller over log1p(age): 16/16 before age 4 (log1p(3) = 1.39), 2/2 from age 4 (1.61),
// for both heads.
using AgeNet = Mlp<1, Hidden<>, Widths4>;
AgeNet age_net() {
  AgeNet net;
  auto& layer = std::get<0>(net.layers());
  layer.weight.setZero();
  layer.bias.setConstant(-100.0f);
  for (const int head : {0, 4}) {
    layer.weight(head, 0) = 10.0f;  // 2 bits wins above log_age 1.5
    layer.bias[head] = -15.0f;
    layer.weight(head + 3, 0) = -10.0f;  // 16 bits below
    layer.bias[head + 3] = 15.0f;
  }
  return net;
}

/// Appends `steps` random tokens to both layers, attending after each, and returns every token's
/// widths after every append: [layer][token][append since].
template <class Cache>
std::vector<std::vector<std::vector<BitDecision>>> drive(Cache& cache, std::size_t steps, std::uint32_t seed,
                                                         std::size_t supplied = 0) {
  std::mt19937 rng(seed);
  const CacheOptions& o = cache.options();
  const std::size_t width = o.kv_heads * o.head_dim;
  std::vector<std::vector<std::vector<BitDecision>>> history(o.layers,
                                                             std::vector<std::vector<BitDecision>>(steps));
  std::vector<float> features(supplied);
  std::vector<float> out(2 * width);
  for (std::size_t t = 0; t < steps; ++t) {
    for (float& f : features) f = std::uniform_real_distribution<float>(0.0f, 3.0f)(rng);
    for (std::size_t layer = 0; layer < o.layers; ++layer) {
      cache.append(layer, random_vector(rng, width), random_vector(rng, width),
                   TokenInfo{layer, t, static_cast<std::int32_t>(t % 50), features});
      cache.attend(layer, random_vector(rng, 2 * width, 2.0f), out);
      for (std::size_t u = 0; u <= t; ++u) history[layer][u].push_back(cache.token_bits(layer, u));
    }
  }
  return history;
}

void check_never_raised(const std::vector<std::vector<std::vector<BitDecision>>>& history) {
  for (std::size_t layer = 0; layer < history.size(); ++layer) {
    for (std::size_t u = 0; u < history[layer].size(); ++u) {
      const auto& widths = history[layer][u];
      for (std::size_t i = 1; i < widths.size(); ++i) {
        INFO("layer " << layer << " token " << u << " after append " << u + i << ": "
                      << kvbits::to_string(widths[i - 1]) << " -> " << kvbits::to_string(widths[i]));
        CHECK(widths[i].key_bits <= widths[i - 1].key_bits);
        CHECK(widths[i].value_bits <= widths[i - 1].value_bits);
      }
    }
  }
}

}  // namespace

TEST_CASE("LearnedPolicy reads its features, names them and asks for attention when they need it",
          "[controller][policy]") {
  using Net = Mlp<6, Hidden<8>, Widths4>;
  using Policy = kvbits::LearnedPolicy<AttentionFeatures, Net, WriteTimeFeatures>;
  STATIC_REQUIRE(kvbits::Policy<Policy>);
  STATIC_REQUIRE(kvbits::ContextPolicy<Policy>);
  STATIC_REQUIRE(Policy::wants_attention_stats());
  STATIC_REQUIRE_FALSE(kvbits::LearnedPolicy<FeatureSet<AgeFeature>, AgeNet>::wants_attention_stats());
  STATIC_REQUIRE(
      kvbits::reads_attention_stats_v<FeatureSet<AgeFeature, FeatureSet<kvbits::ReceivedMassFeature>>>);
  CHECK(std::vector<std::string_view>(Policy::names().begin(), Policy::names().end()) ==
        std::vector<std::string_view>{"log_age", "received_mass", "attention_variance", "entropy",
                                      "next_token_probability", "max_probability"});
  Net net;
  fill_random(net, 31, 1.0, true);
  const Policy policy(net);
  CHECK(std::vector<std::size_t>(policy.decision_ages().begin(), policy.decision_ages().end()) ==
        std::vector<std::size_t>{1, 4, 16, 64});

  // decide() == the Mlp's argmax on [log1p(age), mass, variance, supplied...].
  kvbits::detail::SplitMix64 random(32);
  for (int i = 0; i < 200; ++i) {
    const std::vector<float> supplied{static_cast<float>(random.symmetric() + 1.0), 0.5f,
                                      static_cast<float>(random.symmetric()), 99.0f /* ignored extra */};
    DecisionContext context;
    context.token = TokenInfo{1, 40, 7, supplied};
    context.age = random.below(100);
    context.attention.queries = 10;
    context.attention.samples = 20;
    context.attention.sum = static_cast<float>(random.symmetric() + 1.0) * 5.0f;
    context.attention.sum_squares = context.attention.sum * 0.3f;
    Net::Input x;
    x << static_cast<float>(std::log1p(static_cast<double>(context.age))), context.attention.sum / 10.0f,
        context.attention.variance(), supplied[0], supplied[1], supplied[2];
    INFO("sample " << i);
    CHECK(policy.decide(context) == net.predict(x));
  }
  DecisionContext short_features;
  short_features.token.features = std::span<const float>();
  require_error([&] { (void)policy.decide(short_features); }, Errc::shape_mismatch,
                "reads 3 supplied features (entropy, next_token_probability, max_probability)");
}

TEST_CASE("LearnedPolicy never raises a width at a re-decision", "[controller][policy]") {
  using Net = Mlp<3, Hidden<8, 8>, Widths7>;
  Net net;
  fill_random(net, 41, 2.0);
  kvbits::LearnedPolicyOptions careful;
  careful.quantile = 0.9;
  for (const auto& options : {kvbits::LearnedPolicyOptions{}, careful}) {
    const kvbits::LearnedPolicy<AttentionFeatures, Net> policy(net, {}, options);
    kvbits::detail::SplitMix64 random(42);
    std::size_t lowered = 0;
    for (int i = 0; i < 2000; ++i) {
      DecisionContext context;
      context.age = random.below(200);
      context.attention.queries = 3;
      context.attention.samples = 6;
      context.attention.sum = static_cast<float>(random.symmetric() + 1.0);
      const BitDecision current{kvbits::kSupportedBits[random.below(kvbits::kSupportedBits.size())],
                                kvbits::kSupportedBits[random.below(kvbits::kSupportedBits.size())]};
      context.current = current;
      const BitDecision decided = policy.decide(context);
      DecisionContext fresh = context;
      fresh.current = {32, 32};
      const BitDecision wanted = policy.decide(fresh);
      INFO("current " << kvbits::to_string(current) << " wanted " << kvbits::to_string(wanted));
      CHECK(decided.key_bits <= current.key_bits);
      CHECK(decided.value_bits <= current.value_bits);
      CHECK(decided == BitDecision{std::min(wanted.key_bits, current.key_bits),
                                   std::min(wanted.value_bits, current.value_bits)});
      lowered += decided != current ? 1U : 0U;
    }
    CHECK(lowered > 100);  // the controller did lower tokens, not just keep them
  }
  require_error(
      [&] {
        (void)kvbits::LearnedPolicy<AttentionFeatures, Net>(net, {}, {{4, 4}, {}});
      },
      Errc::invalid_argument, "strictly increasing");
  require_error(
      [&] {
        (void)kvbits::LearnedPolicy<AttentionFeatures, Net>(net, {}, {{0, 4}, {}});
      },
      Errc::invalid_argument, "learned policy decision age 0 (0)");
  require_error(
      [&] {
        (void)kvbits::LearnedPolicy<AttentionFeatures, Net>(net, {}, {{1}, 1.5});
      },
      Errc::invalid_argument, "quantile");
}

TEST_CASE("LearnedPolicy lowers tokens as they age inside a QuantizedKVCache",
          "[controller][policy][cache]") {
  kvbits::LearnedPolicyOptions options;
  options.decision_ages = {4, 16};
  using Policy = kvbits::LearnedPolicy<FeatureSet<AgeFeature>, AgeNet>;
  QuantizedKVCache<Policy> cache(cache_options(64, 2), Policy(age_net(), {}, options));
  const std::size_t steps = 30;
  const auto history = drive(cache, steps, 51);
  check_never_raised(history);
  for (std::size_t layer = 0; layer < 2; ++layer) {
    for (std::size_t u = 0; u < steps; ++u) {
      const std::size_t age = steps - 1 - u;
      // Sink: float forever; window (age < 2): float; ages 2-3: decided at age 2 as 16/16; from 4: 2/2.
      const BitDecision expected = u == 0 || age < 2 ? BitDecision{32, 32}
                                   : age < 4         ? BitDecision{16, 16}
                                                     : BitDecision{2, 2};
      INFO("layer " << layer << " token " << u << " age " << age);
      CHECK(cache.token_bits(layer, u) == expected);
    }
  }
}

TEST_CASE("LearnedPolicy with attention and supplied features runs in a cache, alone and under a budget",
          "[controller][policy][cache]") {
  using Net = Mlp<5, Hidden<16, 8>, Widths7>;
  using Policy =
      kvbits::LearnedPolicy<AttentionFeatures, Net, FeatureSet<kvbits::EntropyFeature, kvbits::LayerFeature>>;
  Net net;
  fill_random(net, 61, 1.0);
  // A wide bias on the top classes: left alone, the controller keeps most tokens wide.
  std::get<2>(net.layers()).bias[6] = 3.0f;
  std::get<2>(net.layers()).bias[13] = 3.0f;
  const std::size_t steps = 160;

  QuantizedKVCache<Policy> alone(cache_options(256, 4), Policy(net));
  const auto history = drive(alone, steps, 62, 2);
  check_never_raised(history);
  CHECK(alone.attention_stats(0, 10).queries > 0);  // statistics kept because the features read them

  kvbits::BudgetOptions budget_options;
  budget_options.target_bits_per_element = 5.0;
  using Budgeted = kvbits::BudgetPolicy<Policy>;
  QuantizedKVCache<Budgeted> budgeted(cache_options(256, 4), Budgeted(Policy(net), budget_options));
  CHECK(budgeted.policy().wants_attention_stats());
  CHECK(budgeted.policy().protect_age() == 64);  // the learned policy's last decision age
  const auto budget_history = drive(budgeted, steps, 62, 2);
  check_never_raised(budget_history);
  INFO("bits per element alone " << alone.bits_per_element() << ", under the budget "
                                 << budgeted.bits_per_element());
  CHECK(budgeted.bits_per_element() < alone.bits_per_element() - 0.5);
}

TEST_CASE("LearnedPolicy::load reads a weight file saved under its input names",
          "[controller][policy][weights]") {
  using Net = Mlp<3, Hidden<4>, Widths4>;
  using Policy = kvbits::LearnedPolicy<AttentionFeatures, Net>;
  Net net;
  fill_random(net, 71, 1.0, true);
  const auto path = std::filesystem::temp_directory_path() / "kvbits_test_learned_policy.kvbc";
  kvbits::save_weights(path, net, Policy::names(), {1.0, 0.0, 0.05});
  const Policy policy = Policy::load(path);
  CHECK(policy.net() == net);
  using Other =
      kvbits::LearnedPolicy<FeatureSet<AgeFeature, kvbits::PositionFeature, kvbits::LayerFeature>, Net>;
  require_error([&] { (void)Other::load(path); }, Errc::invalid_argument,
                "are not the controller's (log_age, log_position, layer)");
  std::filesystem::remove(path);
}
