// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kvbits/core/error.hpp"
#include "model/stories.hpp"
#include "model/tokenizer.hpp"

namespace kvbits::learn {

/// Which side of the training/validation split a document is on.
enum class Split {
  training,    ///< labelled, trained on (and part of it held back for early stopping)
  validation,  ///< only ever evaluated
};

/// Every kSplitPeriod-th document is a validation document.
inline constexpr std::size_t kSplitPeriod = 4;

/**
 * The split rule, the same for every dev text: document i (0-based, in the order
 * model::read_stories yields them) is a validation document when i % 4 == 3, a training
 * document otherwise. Deterministic, interleaved (no part of a file is all validation), and a
 * quarter of the documents, rounded down, are validation.
 * @param index the document's index in its file.
 * @return its side.
 */
constexpr Split split_of(std::size_t index) noexcept {
  return index % kSplitPeriod == kSplitPeriod - 1 ? Split::validation : Split::training;
}

/// @return the name of a side, as the tools print it.
constexpr std::string_view split_name(Split side) noexcept {
  return side == Split::training ? "training" : "validation";
}

/**
 * @param documents how many documents the file holds.
 * @param side which side to list.
 * @return the indices of that side's documents, increasing.
 */
inline std::vector<std::size_t> split_indices(std::size_t documents, Split side) {
  std::vector<std::size_t> indices;
  for (std::size_t i = 0; i < documents; ++i) {
    if (split_of(i) == side) indices.push_back(i);
  }
  return indices;
}

/**
 * Formats documents as a text file model::read_stories reads back into the same documents:
 * each document followed by a line `<|endoftext|>`.
 * @param documents non-empty documents (read_stories drops empty ones).
 * @return the file's text.
 * @throw Error(invalid_argument) for an empty document or one holding a separator line, which
 *        would not read back as itself.
 */
inline std::string format_documents(std::span<const std::string> documents) {
  std::string text;
  for (const std::string& document : documents) {
    kvbits::detail::require(!document.empty(), Errc::invalid_argument,
                            "format_documents: an empty document would not read back");
    bool reads_back = document.find('\r') == std::string::npos;
    for (std::size_t start = 0; reads_back && start <= document.size();) {
      const std::size_t end = std::min(document.find('\n', start), document.size());
      reads_back = std::string_view(document).substr(start, end - start) != model::kStorySeparator;
      start = end + 1;
    }
    kvbits::detail::require(reads_back, Errc::invalid_argument,
                            "format_documents: a document holds a separator line or a carriage return");
    text += document;
    text += '\n';
    text += model::kStorySeparator;
    text += '\n';
  }
  return text;
}

/**
 * A document as the tools teacher-force it: [BOS] + tokens, cut to `limit` ids (as kvbits-eval
 * does with --max-tokens and the model's context).
 * @throw Error(invalid_argument) when the document encodes to no token.
 */
inline std::vector<std::int32_t> document_ids(const model::Tokenizer& tokenizer, std::string_view document,
                                              std::size_t limit) {
  std::vector<std::int32_t> ids{tokenizer.bos()};
  const std::vector<std::int32_t> encoded = tokenizer.encode(document);
  ids.insert(ids.end(), encoded.begin(), encoded.end());
  if (ids.size() > limit) ids.resize(limit);
  kvbits::detail::require(ids.size() >= 2, Errc::invalid_argument, "a document encodes to no tokens");
  return ids;
}

}  // namespace kvbits::learn
