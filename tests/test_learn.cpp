// SPDX-License-Identifier: MIT
// The path from a model to a learned controller: the document split, damage labelling on a real
// model, the damage dataset file, training labels, and the `learned:` policy of the tools.
#include "kvbits/core/simd_headers.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "kvbits/controller/head.hpp"
#include "kvbits/controller/trainer.hpp"
#include "kvbits/controller/weight_file.hpp"
#include "support/require_error.hpp"
#include "support/shared_data.hpp"

#include "learn/damage_dataset.hpp"
#include "learn/damage_labeller.hpp"
#include "learn/document_split.hpp"
#include "learn/tool_controller.hpp"
#include "learn/training_data.hpp"
#include "learn/width_cost.hpp"
#include "learn/width_quantizer.hpp"
#include "model/gguf_model.hpp"
#include "model/policy_spec.hpp"
#include "model/stories.hpp"
#include "model/token_features.hpp"
#include "model/tool_cache.hpp"

namespace {

namespace learn = kvbits::learn;
namespace model = kvbits::model;
using kvbits::Errc;
using kvbits::test::require_error;

// A row stored as fp16 changes by at most 2^-11 relative: its mean damage per row stays orders
// of magnitude below any tolerance the tools use (1e-7 nats per position and up).
constexpr double kFp16DamageBound = 1e-8;

/// The shipped weight file of one operating point.
std::filesystem::path shipped_weights(const std::string& name) {
  return std::filesystem::path(KVBITS_TESTS_DIR) / ".." / "examples" / "weights" / name;
}

model::LoadedModel& stories_model() {
  static model::LoadedModel loaded =
      model::load_model(kvbits::test::shared_file("models/stories260K.gguf").string());
  return loaded;
}

learn::DamageDataset small_dataset() {
  learn::DamageDataset data;
  data.model = "stories260K.gguf";
  data.cache = "t=scale";
  data.head_dim = 8;
  data.horizon = 32;
  for (const std::string_view name : learn::controller_input_names()) data.input_names.emplace_back(name);
  for (const int bits : learn::ControllerWidths::kValues) {
    data.widths.push_back(bits);
    data.bits_per_element.push_back(bits == 16 ? 16.0 : bits + 4.0);
  }
  for (std::uint32_t i = 0; i < 5; ++i) {
    learn::DamageSample s;
    s.document = i / 2;
    s.position = 10 + i;
    s.age = static_cast<std::uint32_t>(learn::kDecisionAges[i % 4]);
    s.layer = i % 3;
    for (std::size_t f = 0; f < s.inputs.size(); ++f)
      s.inputs[f] = static_cast<float>(i) * 0.5f + static_cast<float>(f);
    for (std::size_t b = 0; b < learn::kControllerWidths; ++b) {
      s.key_damage[b] = static_cast<float>(std::pow(10.0, -2.0 - static_cast<double>(b + i)));
      s.value_damage[b] = static_cast<float>(std::pow(10.0, -4.0 - static_cast<double>(b)));
    }
    data.samples.push_back(s);
  }
  return data;
}

/// Recomputes the header's checksum, so a test reaches the checks behind it.
void reseal(std::vector<std::byte>& bytes) {
  const std::uint64_t checksum =
      kvbits::detail::fnv1a64(std::span<const std::byte>(bytes).subspan(learn::kDatasetHeaderBytes));
  for (std::size_t i = 0; i < 8; ++i) {
    bytes[learn::kDatasetChecksumOffset + i] = static_cast<std::byte>((checksum >> (8 * i)) & 0xffU);
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The split

TEST_CASE("The split rule is deterministic, disjoint and covers every document", "[learn][split]") {
  STATIC_REQUIRE(learn::split_of(3) == learn::Split::validation);
  STATIC_REQUIRE(learn::split_of(0) == learn::Split::training);
  for (const std::size_t documents :
       {std::size_t{0}, std::size_t{1}, std::size_t{4}, std::size_t{138}, std::size_t{176}}) {
    const auto training = learn::split_indices(documents, learn::Split::training);
    const auto validation = learn::split_indices(documents, learn::Split::validation);
    CHECK(training == learn::split_indices(documents, learn::Split::training));
    std::vector<std::size_t> all;
    std::merge(training.begin(), training.end(), validation.begin(), validation.end(),
               std::back_inserter(all));
    std::vector<std::size_t> expected(documents);
    std::iota(expected.begin(), expected.end(), std::size_t{0});
    INFO(documents << " documents");
    CHECK(all == expected);  // disjoint (no index twice) and complete
    CHECK(validation.size() == documents / 4);
    for (const std::size_t i : validation) CHECK(i % 4 == 3);
  }
}

TEST_CASE("Each side of a dev text is written as a text file that reads back as its documents",
          "[learn][split]") {
  for (const std::string text : {"data/tinystories_valid_dev.txt", "data/bible_dev.txt"}) {
    const std::vector<std::string> documents = model::read_stories(kvbits::test::shared_file(text).string());
    for (const learn::Split side : {learn::Split::training, learn::Split::validation}) {
      std::vector<std::string> chosen;
      for (const std::size_t i : learn::split_indices(documents.size(), side)) chosen.push_back(documents[i]);
      INFO(text << ", " << learn::split_name(side));
      CHECK(model::split_stories(learn::format_documents(chosen)) == chosen);
    }
  }
  const std::vector<std::string> trailing{"line\n", "\nstarts with a break"};
  CHECK(model::split_stories(learn::format_documents(trailing)) == trailing);
  const std::vector<std::string> separator{"one\n<|endoftext|>\ntwo"};
  require_error([&] { (void)learn::format_documents(separator); }, Errc::invalid_argument, "separator line");
  const std::vector<std::string> empty{""};
  require_error([&] { (void)learn::format_documents(empty); }, Errc::invalid_argument, "empty document");
}

// ---------------------------------------------------------------------------------------------
// Damage on a real model

TEST_CASE("Measured damage is 0 for the FP32 row, ~0 at 16 bits, and grows as the width falls",
          "[learn][damage]") {
  model::LoadedModel& loaded = stories_model();
  const model::LlamaConfig& config = loaded.model.config();
  const std::vector<std::string> stories =
      model::read_stories(kvbits::test::shared_file("data/tinystories_valid_dev.txt").string());
  const std::vector<std::int32_t> ids = learn::document_ids(loaded.tokenizer, stories.front(), 80);
  const kvbits::CacheOptions cache = model::parse_learned_cache_options("").cache_options(
      config.layers, config.kv_heads, config.head_dim(), 80);
  learn::LabelOptions options;
  options.horizon = 16;
  learn::DamageLabeller labeller(loaded.model, cache, nullptr, nullptr, options);
  labeller.prepare(ids);

  learn::WidthQuantizer quantizer(cache, learn::ControllerWidths::kValues, nullptr);
  const std::size_t width = config.kv_heads * config.head_dim();
  std::vector<float> k(width), v(width);
  using Side = learn::DamageLabeller::Side;
  // [width class][side] damage summed over a few tokens and every layer.
  std::array<std::array<double, 2>, learn::kControllerWidths> total{};
  const std::array<std::size_t, 3> tokens{5, 20, 40};
  const auto rows = static_cast<double>(tokens.size() * config.layers);
  for (const std::size_t token : tokens) {
    for (std::size_t layer = 0; layer < config.layers; ++layer) {
      for (const Side side : {Side::key, Side::value}) {
        const std::vector<float> row(labeller.reference_row(layer, token, side).begin(),
                                     labeller.reference_row(layer, token, side).end());
        INFO("token " << token << " layer " << layer << (side == Side::key ? " keys" : " values"));
        CHECK(labeller.damage(layer, token, 4, side, row) == 0.0f);  // width 32: bit-identical continuation
      }
      for (std::size_t b = 0; b < learn::kControllerWidths; ++b) {
        quantizer.quantize(b, layer, labeller.reference_row(layer, token, Side::key),
                           labeller.reference_row(layer, token, Side::value), k, v);
        total[b][0] += labeller.damage(layer, token, 4, Side::key, k);
        total[b][1] += labeller.damage(layer, token, 4, Side::value, v);
      }
    }
  }
  for (std::size_t side = 0; side < 2; ++side) {
    INFO((side == 0 ? "keys" : "values") << ": mean damage at 16 bits " << total.back()[side] / rows);
    CHECK(total.back()[side] / rows < kFp16DamageBound);
    CHECK(total.back()[side] > 0.0);
    for (std::size_t b = 1; b < learn::kControllerWidths; ++b) {
      INFO("width " << learn::ControllerWidths::kValues[b - 1] << " damage " << total[b - 1][side]
                    << ", width " << learn::ControllerWidths::kValues[b] << " damage " << total[b][side]);
      CHECK(total[b - 1][side] > total[b][side]);
    }
  }
  require_error([&] { (void)labeller.damage(0, 60, 16, Side::key, k); }, Errc::invalid_argument,
                "horizon does not fit");
}

TEST_CASE("Labelling records the inputs the learned policy reads at each decision", "[learn][damage]") {
  model::LoadedModel& loaded = stories_model();
  const model::LlamaConfig& config = loaded.model.config();
  const std::vector<std::string> stories =
      model::read_stories(kvbits::test::shared_file("data/tinystories_valid_dev.txt").string());
  const std::vector<std::int32_t> ids = learn::document_ids(loaded.tokenizer, stories[1], 120);
  const kvbits::CacheOptions cache = model::parse_learned_cache_options("").cache_options(
      config.layers, config.kv_heads, config.head_dim(), 120);
  learn::LabelOptions options;
  options.horizon = 8;
  options.samples_per_age = 1;
  learn::DamageLabeller labeller(loaded.model, cache, nullptr, nullptr, options);
  const std::vector<learn::DamageSample> samples = labeller.label(ids, 7);
  REQUIRE(samples.size() == learn::kDecisionAges.size() * config.layers);
  const auto names = learn::controller_input_names();
  const auto input = [&](const learn::DamageSample& s, std::string_view name) {
    return s.inputs[static_cast<std::size_t>(std::find(names.begin(), names.end(), name) - names.begin())];
  };
  for (const learn::DamageSample& s : samples) {
    INFO("position " << s.position << " age " << s.age << " layer " << s.layer);
    CHECK(s.document == 7);
    CHECK(s.position + s.age + options.horizon <= ids.size() - 1);
    CHECK(input(s, "log_age") == Approx(std::log1p(static_cast<double>(s.age))));
    CHECK(input(s, "layer") == static_cast<float>(s.layer));
    CHECK(input(s, "log_position") == Approx(std::log1p(static_cast<double>(s.position))));
    // The token's own query and the s.age - 1 later ones saw it, summed over the 8 query heads.
    CHECK(input(s, "received_mass") > 0.0f);
    CHECK(input(s, "received_mass") <= static_cast<float>(config.heads) + 1e-4f);
    CHECK(input(s, "entropy") > 0.0f);  // the write-time features were fed
    CHECK(input(s, "max_probability") >= input(s, "next_token_probability"));
    CHECK(s.key_damage.front() > s.key_damage.back());
  }
  // The same document and seed draw the same tokens and measure the same damage.
  CHECK(labeller.label(ids, 7) == samples);
}

// ---------------------------------------------------------------------------------------------
// Dataset file and labels

TEST_CASE("A damage dataset round-trips through its file", "[learn][dataset]") {
  const learn::DamageDataset data = small_dataset();
  CHECK(learn::decode_dataset(learn::encode_dataset(data), "memory") == data);
  const auto path = std::filesystem::temp_directory_path() / "kvbits_test_learn.kvbd";
  learn::save_dataset(path, data);
  CHECK(learn::load_dataset(path) == data);
  std::filesystem::remove(path);
  require_error([&] { (void)learn::load_dataset(path); }, Errc::io_error, "cannot open");
}

TEST_CASE("A damaged dataset file is a clear error", "[learn][dataset]") {
  const std::vector<std::byte> good = learn::encode_dataset(small_dataset());
  const auto fails = [](std::vector<std::byte> bytes, Errc code, const std::string& message) {
    require_error([&] { (void)learn::decode_dataset(bytes, "data.kvbd"); }, code, message);
  };
  SECTION("truncated anywhere") {
    for (std::size_t size = 0; size < good.size(); size += std::max<std::size_t>(1, size / 3)) {
      INFO("truncated to " << size << " bytes");
      fails(std::vector<std::byte>(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(size)),
            Errc::corrupt_data, "data.kvbd: ");
    }
  }
  SECTION("a flipped payload byte") {
    std::vector<std::byte> bytes = good;
    bytes[bytes.size() - 3] ^= std::byte{0x10};
    fails(bytes, Errc::corrupt_data, "checksum mismatch");
  }
  SECTION("trailing bytes") {
    std::vector<std::byte> bytes = good;
    bytes.push_back(std::byte{0});
    fails(bytes, Errc::corrupt_data, "truncated or extended");
  }
  SECTION("another file type or version") {
    std::vector<std::byte> bytes = good;
    bytes[0] = std::byte{'X'};
    fails(bytes, Errc::corrupt_data, "not a kvbits damage dataset");
    bytes = good;
    bytes[8] = std::byte{2};
    fails(bytes, Errc::unsupported, "version 2");
  }
  SECTION("values out of range behind a valid checksum") {
    // The last float of the file is the last sample's widest value damage.
    std::vector<std::byte> bytes = good;
    bytes[bytes.size() - 1] = std::byte{0xbf};  // a negative float
    reseal(bytes);
    fails(bytes, Errc::corrupt_data, "damage of sample 4 is not finite and >= 0");
  }
  SECTION("a dataset for another controller") {
    learn::DamageDataset other = small_dataset();
    other.input_names[0] = "log_age_other";
    std::vector<std::byte> bytes = learn::encode_dataset(other);
    fails(bytes, Errc::invalid_argument, "labelled for another controller");
  }
}

TEST_CASE("Training labels: the cheapest width within tau, damage in units of tau, documents as groups",
          "[learn][dataset]") {
  const std::array<float, learn::kControllerWidths> damage{1e-3f, 1e-4f, 2e-6f, 9e-7f, 1e-7f, 1e-8f, 0.0f};
  CHECK(learn::target_class(damage, 1e-6) == 3);
  CHECK(learn::target_class(damage, 1.0) == 0);
  const std::array<float, learn::kControllerWidths> hopeless{1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f};
  CHECK(learn::target_class(hopeless, 1e-6) == learn::kControllerWidths - 1);

  const learn::DamageDataset data = small_dataset();
  learn::LabelRule rule;
  rule.tau = 1e-5;
  rule.damage_cap = 50.0;
  const auto set = learn::make_training_set(data, rule);
  set.validate("labels");
  REQUIRE(set.size() == data.samples.size());
  CHECK(set.groups == std::vector<std::uint32_t>{0, 0, 1, 1, 2});
  CHECK(set.heads[kvbits::kKeyHead].target[0] == 3);                // 1e-5 at 5 bits
  CHECK(set.heads[kvbits::kValueHead].target[0] == 1);              // 1e-5 at 3 bits
  CHECK(set.heads[kvbits::kKeyHead].damage[0] == 50.0f);            // 1e-2 / 1e-5, capped
  CHECK(set.heads[kvbits::kValueHead].damage[0] == Approx(10.0f));  // 1e-4 / 1e-5
  CHECK(set.heads[kvbits::kValueHead].damage[1] == Approx(1.0f));
  CHECK(learn::width_costs(data)[0][0] == Approx(6.0 / 16.0));
  rule.tau = 0.0;
  require_error([&] { (void)learn::make_training_set(data, rule); }, Errc::invalid_argument, "tau");
}

TEST_CASE("cost(b) mixes storage bits and the measured attention time of the dataset's model",
          "[learn][cost]") {
  learn::DamageDataset data = small_dataset();
  const auto storage = learn::width_costs(data);
  const auto time = learn::width_costs(data, 1.0);
  const auto half = learn::width_costs(data, 0.5);
  const learn::AttentionTime& measured = learn::attention_time(data);
  for (std::size_t b = 0; b < learn::kControllerWidths; ++b) {
    INFO("width " << learn::ControllerWidths::kValues[b]);
    for (const std::size_t head : {kvbits::kKeyHead, kvbits::kValueHead}) {
      CHECK(storage[head][b] == data.bits_per_element[b] / 16.0);
      CHECK(half[head][b] == Approx(0.5 * storage[head][b] + 0.5 * time[head][b]));
    }
    CHECK(time[kvbits::kKeyHead][b] == measured.key[b]);
    CHECK(time[kvbits::kValueHead][b] == measured.value[b]);
  }
  // Every cost is 1 at 16 bits, so the time share only reprices the narrower widths.
  CHECK(half[kvbits::kKeyHead].back() == Approx(1.0));
  require_error([&] { (void)learn::width_costs(data, 1.5); }, Errc::invalid_argument, "time share");
  require_error([&] { (void)learn::width_costs(data, -0.1); }, Errc::invalid_argument, "time share");
  data.cache = "g=32";
  CHECK(learn::width_costs(data)[0][0] == Approx(6.0 / 16.0));
  require_error([&] { (void)learn::width_costs(data, 0.1); }, Errc::invalid_argument,
                "no attention time is known for stories260K.gguf with cache 'g=32'");
}

TEST_CASE("An ablation's weight file ignores its dropped inputs and never chooses a masked width",
          "[learn][ablation]") {
  const learn::InputMask dropped = learn::parse_input_mask("log_age,entropy");
  const learn::WidthMask allowed = learn::parse_width_mask("2,4,8,16");
  const auto names = learn::controller_input_names();
  for (std::size_t f = 0; f < learn::kControllerInputs; ++f) {
    INFO("input " << names[f]);
    CHECK(dropped[f] == (names[f] == "log_age" || names[f] == "entropy"));
  }
  CHECK(allowed == learn::WidthMask{true, false, true, false, false, true, true});
  require_error([] { (void)learn::parse_input_mask("log_age,age"); }, Errc::invalid_argument,
                "no input 'age'");
  require_error([] { (void)learn::parse_width_mask("2,7"); }, Errc::invalid_argument, "no width '7'");

  learn::LabelRule rule;
  rule.tau = 1e-5;
  rule.allowed = allowed;
  auto set = learn::make_training_set(small_dataset(), rule);
  // Sample 0's key damage falls to 1e-5 at 5 bits, which is masked: its target is 8 bits.
  CHECK(set.heads[kvbits::kKeyHead].target[0] == 5);
  CHECK(learn::target_class(std::array<float, learn::kControllerWidths>{1, 1, 1, 1, 1, 1, 1}, 1e-5,
                            allowed) == 6);
  learn::drop_inputs(set, dropped);
  for (std::size_t i = 0; i < set.size(); ++i) {
    for (std::size_t f = 0; f < learn::kControllerInputs; ++f) {
      INFO("sample " << i << ", input " << f);
      if (dropped[f]) CHECK(set.features[i * learn::kControllerInputs + f] == 0.0f);
    }
  }
  rule.allowed = learn::parse_width_mask("2,4");
  require_error([&] { (void)learn::make_training_set(small_dataset(), rule); }, Errc::invalid_argument,
                "include the widest");

  // Trained as kvbits-train does: masked initial weights, then Adam.
  auto net = std::make_unique<learn::ControllerNet>();
  kvbits::initialize_weights(*net, 3);
  learn::apply_masks(*net, dropped, allowed);
  kvbits::TrainingOptions<learn::ControllerNet> options;
  options.initialize_weights = false;
  options.loss.lambda = 1.0;
  options.loss.mu = 1.0;
  options.max_epochs = 20;
  options.patience = 0;
  options.seed = 3;
  (void)kvbits::train(*net, set, set, options);
  // Training left the dropped columns at 0 exactly (their inputs are 0) and the masked rows
  // within 1e-30 of it; applying the masks again, as kvbits-train does, makes both exact.
  for (std::size_t f = 0; f < learn::kControllerInputs; ++f) {
    if (dropped[f]) CHECK(std::get<0>(net->layers()).weight.col(static_cast<Eigen::Index>(f)).isZero(0.0));
  }
  for (std::size_t row = 0; row < learn::ControllerNet::kOutputs; ++row) {
    if (!allowed[row % learn::kControllerWidths]) {
      const auto& moved = std::get<learn::ControllerNet::kLayers - 1>(net->layers());
      CHECK(moved.weight.row(static_cast<Eigen::Index>(row)).cwiseAbs().maxCoeff() < 1e-30f);
      CHECK(moved.bias[static_cast<Eigen::Index>(row)] == learn::kMaskedLogit);
    }
  }
  learn::apply_masks(*net, dropped, allowed);
  const auto path = std::filesystem::temp_directory_path() / "kvbits_test_ablation.kvbc";
  kvbits::save_weights(path, *net, names, kvbits::TrainingMetadata{1.0, 1.0, 1e-5});
  const learn::ControllerNet loaded = kvbits::load_weights<learn::ControllerNet>(path, names).net;
  std::filesystem::remove(path);

  // The file holds the masks.
  const auto& first = std::get<0>(loaded.layers());
  for (std::size_t f = 0; f < learn::kControllerInputs; ++f) {
    INFO("first-layer column of input " << names[f]);
    if (dropped[f]) {
      CHECK(first.weight.col(static_cast<Eigen::Index>(f)).isZero(0.0));
    } else {
      CHECK(first.weight.col(static_cast<Eigen::Index>(f)).cwiseAbs().maxCoeff() > 0.0f);
    }
  }
  const auto& last = std::get<learn::ControllerNet::kLayers - 1>(loaded.layers());
  for (std::size_t row = 0; row < learn::ControllerNet::kOutputs; ++row) {
    const bool masked = !allowed[row % learn::kControllerWidths];
    INFO("output row " << row);
    CHECK((last.bias[static_cast<Eigen::Index>(row)] == learn::kMaskedLogit) == masked);
    if (masked) CHECK(last.weight.row(static_cast<Eigen::Index>(row)).isZero(0.0));
  }

  // At run time the dropped inputs change nothing and a masked width is never chosen.
  learn::ControllerNet::Input x;
  std::uint64_t state = 12345;
  for (int trial = 0; trial < 200; ++trial) {
    for (Eigen::Index f = 0; f < x.size(); ++f) {
      state = state * 6364136223846793005ULL + 1442695040888963407ULL;
      x[f] = static_cast<float>(static_cast<double>(state >> 40) / 16777216.0 * 20.0 - 10.0);
    }
    learn::ControllerNet::Input moved = x;
    moved[0] += 7.0f;  // log_age
    moved[5] -= 3.0f;  // entropy
    const auto out = loaded.forward(x);
    const auto other = loaded.forward(moved);
    INFO("trial " << trial);
    CHECK(out.key == other.key);
    CHECK(out.value == other.value);
    const kvbits::BitDecision chosen = loaded.predict(x);
    CHECK(allowed[learn::ControllerWidths::index_of(chosen.key_bits)]);
    CHECK(allowed[learn::ControllerWidths::index_of(chosen.value_bits)]);
    for (const double q : {0.05, 0.5, 0.95}) {
      CHECK(allowed[kvbits::detail::quantile_class(kvbits::detail::softmax(out.key), q)]);
      CHECK(allowed[kvbits::detail::quantile_class(kvbits::detail::softmax(out.value), q)]);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The learned: policy

TEST_CASE("learned: policies parse, load their weight file once and refuse what cannot run",
          "[learn][policy]") {
  const std::string path = shipped_weights("stories260K-8.5.kvbc").string();
  const model::PolicySpec plain = model::parse_policy("learned:" + path);
  CHECK(plain.kind == model::PolicyKind::learned);
  CHECK(plain.weights == path);
  CHECK(plain.residual_window == 1);  // the write-time features need one float token
  CHECK(plain.needs_token_features());
  REQUIRE(plain.learned != nullptr);
  CHECK(std::vector<std::size_t>(plain.learned->decision_ages().begin(),
                                 plain.learned->decision_ages().end()) ==
        std::vector<std::size_t>(learn::kDecisionAges.begin(), learn::kDecisionAges.end()));
  CHECK(plain.make_policy().get_if<learn::ToolLearnedPolicy>() != nullptr);

  const model::PolicySpec full = model::parse_policy("learned:" + path + ",budget=8.5,q=0.7,t=scale,w=2,s=1");
  CHECK(full.budget == 8.5);
  CHECK(full.quantile == 0.7);
  CHECK(full.learned->options().quantile == 0.7);
  CHECK(full.key_transform == kvbits::KeyTransform::channel_scale);
  CHECK(full.residual_window == 2);
  CHECK(full.sink_tokens == 1);
  const model::ToolPolicy budgeted = full.make_policy();
  const auto* budget = budgeted.get_if<kvbits::BudgetPolicy<model::BasePolicy>>();
  REQUIRE(budget != nullptr);
  // A learned budget lowers keys and values each along its own widths; other budgets keep the ladder.
  CHECK(budget->options().lowering == kvbits::BudgetLowering::per_side);
  const model::ToolPolicy tiered = model::parse_policy("budget:7.5:tiers:4=16/16,*=8/2").make_policy();
  REQUIRE(tiered.get_if<kvbits::BudgetPolicy<model::BasePolicy>>() != nullptr);
  CHECK(tiered.get_if<kvbits::BudgetPolicy<model::BasePolicy>>()->options().lowering ==
        kvbits::BudgetLowering::ladder);
  CHECK(model::parse_policy("budget:8:learned:" + path).budget == 8.0);

  require_error([&] { (void)model::parse_policy("learned:" + path + ",w=0"); }, Errc::invalid_argument,
                "w=1 or more");
  require_error([&] { (void)model::parse_policy("learned:g=32"); }, Errc::invalid_argument,
                "weight file first");
  require_error([&] { (void)model::parse_policy("learned:" + path + ",q=1.5"); }, Errc::invalid_argument,
                "quantile in (0, 1]");
  require_error([&] { (void)model::parse_policy("budget:8:learned:" + path + ",budget=9"); },
                Errc::invalid_argument, "second time");
  require_error([&] { (void)model::parse_policy("learned:" + path + ",x=1"); }, Errc::invalid_argument,
                "is not an item of learned:PATH");
  require_error([&] { (void)model::parse_policy("learned:/no/such/weights.kvbc"); }, Errc::io_error,
                "/no/such/weights.kvbc");
  require_error([&] { (void)model::parse_learned_cache_options("g=32,q=1"); }, Errc::invalid_argument,
                "is not a cache option");
  CHECK(model::parse_learned_cache_options("g=32,s=2").group_size == 32);
}

TEST_CASE("A shipped controller runs in the tools' cache and lowers tokens as they age", "[learn][policy]") {
  model::LoadedModel& loaded = stories_model();
  const model::LlamaConfig& config = loaded.model.config();
  const model::PolicySpec spec =
      model::parse_policy("learned:" + shipped_weights("stories260K-8.5.kvbc").string());
  const std::vector<std::string> stories =
      model::read_stories(kvbits::test::shared_file("data/tinystories_valid_dev.txt").string());
  const std::vector<std::int32_t> ids = learn::document_ids(loaded.tokenizer, stories[3], 200);
  model::ToolCache cache = model::make_cache(spec, config, ids.size());
  model::TokenFeatureFeeder features(config.vocab);
  std::vector<float> logits(config.vocab);
  for (std::size_t p = 0; p + 1 < ids.size(); ++p) {
    loaded.model.forward(ids[p], p, cache, logits);
    features.feed(cache, logits, ids[p], p, ids[p + 1]);
  }
  const std::size_t newest = ids.size() - 2;
  double young = 0.0, old = 0.0;
  for (std::size_t layer = 0; layer < config.layers; ++layer) {
    CHECK(cache.token_bits(layer, newest) == kvbits::BitDecision{32, 32});  // the one-token window
    young += cache.token_bits(layer, newest - 2).key_bits;                  // decided at age 1
    for (std::size_t t = 0; t < 16; ++t) old += cache.token_bits(layer, t).key_bits;
  }
  INFO("mean key bits: age 2 " << young / 5.0 << ", the first 16 tokens " << old / 80.0);
  CHECK(young / 5.0 > old / 80.0);
  CHECK(cache.bits_per_element() < 16.0);
}
