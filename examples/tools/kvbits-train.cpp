// SPDX-License-Identifier: MIT
// kvbits-train: fits the tools' learned controller to a damage dataset (kvbits-label) and writes
// its weight file, the one `learned:PATH` policies read.
#include "kvbits/core/simd_headers.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/args.hpp"
#include "cli/tool_main.hpp"
#include "kvbits/controller/trainer.hpp"
#include "kvbits/controller/weight_file.hpp"
#include "kvbits/core/error.hpp"
#include "learn/damage_dataset.hpp"
#include "learn/tool_controller.hpp"
#include "learn/training_data.hpp"
#include "learn/width_cost.hpp"

namespace {

namespace learn = kvbits::learn;
using Net = learn::ControllerNet;

constexpr const char* kUsage = R"(usage: kvbits-train --data DATA.kvbd --out WEIGHTS.kvbc [options]

Trains the tools' learned controller (examples/learn/tool_controller.hpp) on a damage dataset
written by kvbits-label, and writes its weight file (use it as --policy learned:WEIGHTS.kvbc).

Labels: a head's target width is the cheapest whose measured damage is <= tau; the damage enters
the loss in units of tau, capped at --cap. Loss per sample, summed over the key and value heads:
  ce * CE(target) + lambda * sum_b p(b) cost(b) + mu * sum_b p(b) min(damage(b) / tau, cap)
with cost(b) = (1 - s) * storage bits/element of width b at the dataset's cache options / 16
             + s * attention time of width b relative to 16 bits (examples/learn/width_cost.hpp)
and s = --time-share (default 0: storage alone). Whole documents (a --holdout share, seeded) are
held back for early stopping; Adam on mini-batches, deterministic for a given seed and build.
Raise lambda for cheaper controllers.

options:
  --data PATH         the dataset (required)
  --out PATH          the weight file to write
  --tau T             damage tolerance, nats per position (default 1e-6)
  --lambda L          weight of the expected cost (default 1)
  --mu M              weight of the expected damage (default 1)
  --ce W              weight of the cross-entropy to the targets (default 1)
  --cap C             cap of the damage in units of tau (default 100)
  --time-share S      weight of the attention time in cost(b), in [0, 1] (default 0); the
                      dataset's model and cache options need a measured time (width_cost.hpp)
  --epochs N          most epochs (default 200)
  --patience N        stop after N epochs without a lower held-back loss (default 20)
  --batch N           samples per Adam step (default 64)
  --learning-rate R   Adam step size (default 0.001)
  --seed S            initial weights, batch order and held-back documents (default 1)
  --holdout F         share of the training documents held back (default 0.2)
  --drop-features A,B ablation: train without these inputs (names as in the weight file, e.g.
                      log_age); they are set to 0 in every sample and the first layer's weights
                      for them are 0, so the saved controller ignores them at run time
  --widths 2,4,8,16   ablation: only these widths (at least two, 16 among them) are targets
                      and choices; the other classes' logits are fixed at -1e4 (weights 0), so
                      the saved controller never chooses them
  --quiet             no line per epoch
  --help              this text

Prints one line per epoch (the three loss terms on the training batches and on the held-back
documents, the held-back loss and per-head accuracy), then what the kept controller chooses on
the held-back documents: mean bits/element and mean damage per decision age.
)";

struct Options {
  std::optional<std::string> data;
  std::optional<std::string> out;
  learn::LabelRule rule;
  double lambda = 1.0;
  double mu = 1.0;
  double ce = 1.0;
  double time_share = 0.0;
  std::size_t epochs = 200;
  std::size_t patience = 20;
  std::size_t batch = 64;
  double learning_rate = 1e-3;
  std::uint64_t seed = 1;
  double holdout = 0.2;
  learn::InputMask dropped{};
  bool quiet = false;
  bool help = false;
};

Options parse_options(int argc, char** argv) {
  using kvbits::cli::ArgCursor;
  static constexpr kvbits::cli::OptionRule<Options> kRules[] = {
      {"--data", [](Options& o, ArgCursor& a) { o.data = a.value(); }},
      {"--out", [](Options& o, ArgCursor& a) { o.out = a.value(); }},
      {"--tau", [](Options& o, ArgCursor& a) { o.rule.tau = a.number(); }},
      {"--lambda", [](Options& o, ArgCursor& a) { o.lambda = a.number(); }},
      {"--mu", [](Options& o, ArgCursor& a) { o.mu = a.number(); }},
      {"--ce", [](Options& o, ArgCursor& a) { o.ce = a.number(); }},
      {"--cap", [](Options& o, ArgCursor& a) { o.rule.damage_cap = a.number(); }},
      {"--time-share", [](Options& o, ArgCursor& a) { o.time_share = a.number(); }},
      {"--epochs", [](Options& o, ArgCursor& a) { o.epochs = static_cast<std::size_t>(a.count()); }},
      {"--patience", [](Options& o, ArgCursor& a) { o.patience = static_cast<std::size_t>(a.count()); }},
      {"--batch", [](Options& o, ArgCursor& a) { o.batch = static_cast<std::size_t>(a.count()); }},
      {"--learning-rate", [](Options& o, ArgCursor& a) { o.learning_rate = a.number(); }},
      {"--seed", [](Options& o, ArgCursor& a) { o.seed = a.count(); }},
      {"--holdout", [](Options& o, ArgCursor& a) { o.holdout = a.number(); }},
      {"--drop-features", [](Options& o, ArgCursor& a) { o.dropped = learn::parse_input_mask(a.value()); }},
      {"--widths", [](Options& o, ArgCursor& a) { o.rule.allowed = learn::parse_width_mask(a.value()); }},
      {"--quiet",
       [](Options& o, ArgCursor& a) {
         a.no_value();
         o.quiet = true;
       }},
  };
  return kvbits::cli::parse_with<Options>(argc, argv, kRules);
}

void print_epoch(const kvbits::EpochReport& r) {
  const kvbits::LossTerms& t = r.training;
  const kvbits::LossTerms& v = r.validation.loss;
  std::printf(
      "epoch %3zu  train: ce %.4f cost %.4f damage %.4f | held back: ce %.4f cost %.4f damage %.4f total "
      "%.4f, "
      "accuracy key %.1f%% value %.1f%%%s\n",
      r.epoch, t.cross_entropy, t.expected_cost, t.expected_damage, v.cross_entropy, v.expected_cost,
      v.expected_damage, v.total, 100.0 * r.validation.accuracy[kvbits::kKeyHead],
      100.0 * r.validation.accuracy[kvbits::kValueHead], r.improved ? "  (kept)" : "");
  std::fflush(stdout);
}

// What the controller chooses (argmax, as the policy does without q=) on the held-back samples,
// per decision age: mean bits/element and mean measured damage of its keys and values.
void print_choices(const Net& net, const learn::DamageDataset& data,
                   const std::vector<std::uint32_t>& held_documents) {
  std::printf("\nthe kept controller on the held-back documents (argmax widths):\n");
  std::printf("| age | decisions | key bits/element | value bits/element | key damage | value damage |\n");
  std::printf("| ---: | ---: | ---: | ---: | ---: | ---: |\n");
  for (const std::size_t age : learn::kDecisionAges) {
    std::size_t n = 0;
    std::array<double, 2> bits{};
    std::array<double, 2> damage{};
    for (const learn::DamageSample& s : data.samples) {
      if (s.age != age || !std::binary_search(held_documents.begin(), held_documents.end(), s.document))
        continue;
      const Net::Output out = net.forward(Eigen::Map<const Net::Input>(s.inputs.data()));
      const std::size_t key = kvbits::detail::argmax(out.key);
      const std::size_t value = kvbits::detail::argmax(out.value);
      bits[0] += data.bits_per_element[key];
      bits[1] += data.bits_per_element[value];
      damage[0] += s.key_damage[key];
      damage[1] += s.value_damage[value];
      ++n;
    }
    if (n == 0) continue;
    const double scale = 1.0 / static_cast<double>(n);
    std::printf("| %zu | %zu | %.3f | %.3f | %.3e | %.3e |\n", age, n, bits[0] * scale, bits[1] * scale,
                damage[0] * scale, damage[1] * scale);
  }
}

int run(const Options& options) {
  kvbits::detail::require(options.data.has_value(), kvbits::Errc::invalid_argument,
                          "--data is required (see --help)");
  const learn::DamageDataset data = learn::load_dataset(*options.data);
  kvbits::TrainingSet<Net> all = learn::make_training_set(data, options.rule);
  learn::drop_inputs(all, options.dropped);
  auto [training, held] = kvbits::split_training_set(all, options.holdout, options.seed);
  std::vector<std::uint32_t> held_documents = held.groups;
  std::sort(held_documents.begin(), held_documents.end());
  held_documents.erase(std::unique(held_documents.begin(), held_documents.end()), held_documents.end());
  std::printf(
      "kvbits-train: %s (%s, cache '%s', horizon %u): %zu samples, %zu for training, %zu held back (%zu "
      "documents)\n",
      options.data->c_str(), data.model.c_str(), data.cache.c_str(), data.horizon, all.size(),
      training.size(), held.size(), held_documents.size());
  std::printf("tau %g, cap %g, lambda %g, mu %g, ce %g, time share %g, seed %llu\n", options.rule.tau,
              options.rule.damage_cap, options.lambda, options.mu, options.ce, options.time_share,
              static_cast<unsigned long long>(options.seed));
  const auto cost = learn::width_costs(data, options.time_share);
  for (const std::size_t head : {kvbits::kKeyHead, kvbits::kValueHead}) {
    std::printf("cost(b), %s:", head == kvbits::kKeyHead ? "keys" : "values");
    for (std::size_t b = 0; b < learn::kControllerWidths; ++b) {
      std::printf(" %d: %.3f", learn::ControllerWidths::kValues[b], cost[head][b]);
    }
    std::printf("\n");
  }
  std::string ablation;
  for (std::size_t f = 0; f < learn::kControllerInputs; ++f) {
    if (!options.dropped[f]) continue;
    ablation += ablation.empty() ? "dropped inputs:" : ",";
    ablation += ' ';
    ablation += learn::controller_input_names()[f];
  }
  if (options.rule.allowed != learn::kAllWidths) {
    ablation += ablation.empty() ? "" : "; ";
    ablation += "widths:";
    for (std::size_t b = 0; b < learn::kControllerWidths; ++b) {
      if (!options.rule.allowed[b]) continue;
      ablation += ' ';
      ablation += std::to_string(learn::ControllerWidths::kValues[b]);
    }
  }
  if (!ablation.empty()) std::printf("%s\n", ablation.c_str());

  kvbits::TrainingOptions<Net> train;
  train.loss.cross_entropy_weight = options.ce;
  train.loss.lambda = options.lambda;
  train.loss.mu = options.mu;
  train.loss.cost = cost;
  train.adam.learning_rate = options.learning_rate;
  train.batch_size = options.batch;
  train.max_epochs = options.epochs;
  train.patience = options.patience;
  train.seed = options.seed;
  // The initial weights are drawn here rather than in train() (same seed, same weights) so the
  // ablations' masks hold from the first step.
  auto net = std::make_unique<Net>();
  kvbits::initialize_weights(*net, options.seed);
  learn::apply_masks(*net, options.dropped, options.rule.allowed);
  train.initialize_weights = false;
  const kvbits::TrainingResult result =
      kvbits::train(*net, training, held, train,
                    options.quiet ? std::function<void(const kvbits::EpochReport&)>{}
                                  : std::function<void(const kvbits::EpochReport&)>(print_epoch));
  std::printf("kept epoch %zu of %zu: held-back total %.4f, accuracy key %.1f%% value %.1f%%\n",
              result.best_epoch, result.epochs, result.best_validation.loss.total,
              100.0 * result.best_validation.accuracy[kvbits::kKeyHead],
              100.0 * result.best_validation.accuracy[kvbits::kValueHead]);
  learn::apply_masks(*net, options.dropped, options.rule.allowed);
  print_choices(*net, data, held_documents);
  if (options.out) {
    kvbits::save_weights(*options.out, *net, learn::controller_input_names(),
                         kvbits::TrainingMetadata{options.lambda, options.mu, options.rule.tau});
    std::printf("-> %s\n", options.out->c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return kvbits::cli::tool_main("kvbits-train", kUsage, argc, argv, parse_options, run);
}
