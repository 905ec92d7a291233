// SPDX-License-Identifier: MIT
// kvbits-unigram: counts how often each token of a model's vocabulary occurs in a corpus, the
// table the rarity feature reads.
#include <cstdio>
#include <optional>
#include <string>

#include "cli/args.hpp"
#include "cli/tool_main.hpp"
#include "kvbits/core/error.hpp"
#include "kvbits/features/unigram_file.hpp"
#include "kvbits/features/unigram_table.hpp"
#include "model/gguf_model.hpp"
#include "model/model_path.hpp"
#include "model/stories.hpp"

namespace {

constexpr const char* kUsage = R"(usage: kvbits-unigram --text CORPUS.txt --out TABLE.txt [options]

Tokenizes every document of a text file (documents separated by lines "<|endoftext|>") with a
model's tokenizer and writes the count of each vocabulary id, the table the rarity feature
reads (kvbits-eval --unigram). Ship it beside the model's weights.

options:
  --model M           a GGUF file or a shared model name (default stories260K)
  --text PATH         the corpus (required)
  --out PATH          the table to write (required)
  --smoothing K       add-K smoothing stored with the table (default 1)
  --help              this text
)";

struct Options {
  std::optional<std::string> model;
  std::optional<std::string> text;
  std::optional<std::string> out;
  double smoothing = 1.0;
  bool help = false;
};

Options parse_options(int argc, char** argv) {
  using kvbits::cli::ArgCursor;
  static constexpr kvbits::cli::OptionRule<Options> kRules[] = {
      {"--model", [](Options& o, ArgCursor& a) { o.model = a.value(); }},
      {"--text", [](Options& o, ArgCursor& a) { o.text = a.value(); }},
      {"--out", [](Options& o, ArgCursor& a) { o.out = a.value(); }},
      {"--smoothing", [](Options& o, ArgCursor& a) { o.smoothing = a.number(); }},
  };
  return kvbits::cli::parse_with<Options>(argc, argv, kRules);
}

int run(const Options& options) {
  kvbits::detail::require(options.text.has_value() && options.out.has_value(), kvbits::Errc::invalid_argument,
                          "--text and --out are required (see --help)");
  const std::string model_path =
      kvbits::model::resolve_model(options.model.value_or(std::string(kvbits::model::kDefaultModelFile)),
                                   KVBITS_SHARED_DIR_DEFAULT)
          .string();
  const kvbits::model::Tokenizer tokenizer =
      kvbits::model::load_tokenizer(kvbits::gguf::File::open(model_path));
  kvbits::UnigramTable table(tokenizer.size(), options.smoothing);
  const auto documents = kvbits::model::read_stories(*options.text);
  for (const auto& document : documents) table.add(tokenizer.encode(document));
  kvbits::save_unigram_table(table, *options.out);
  std::printf("kvbits-unigram: %zu documents, %llu tokens over a vocabulary of %zu -> %s\n", documents.size(),
              static_cast<unsigned long long>(table.total()), tokenizer.size(), options.out->c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return kvbits::cli::tool_main("kvbits-unigram", kUsage, argc, argv, parse_options, run);
}
