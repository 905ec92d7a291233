// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <queue>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kvbits/core/error.hpp"

namespace kvbits::model {

/// SentencePiece piece types, numbered as in GGUF's `tokenizer.ggml.token_type`.
enum class TokenType : std::int32_t {
  undefined = 0,
  normal = 1,
  unknown = 2,
  control = 3,
  user_defined = 4,
  unused = 5,
  byte = 6,
};

/// Ids of the special pieces.
struct SpecialTokens {
  std::int32_t unknown = 0;
  std::int32_t bos = 1;
  std::int32_t eos = 2;
};

/// A vocabulary under construction: pieces with their scores and types, indexed by id.
struct Vocabulary {
  std::vector<std::string> pieces;  // [vocab]
  std::vector<float> scores;        // [vocab]
  std::vector<TokenType> types;     // [vocab]

  /// Appends a piece; its id is the previous size().
  void add(std::string piece, float score, TokenType type = TokenType::normal) {
    pieces.push_back(std::move(piece));
    scores.push_back(score);
    types.push_back(type);
  }
  /// @return the number of pieces.
  [[nodiscard]] std::size_t size() const noexcept { return pieces.size(); }
};

/**
 * The fixed head of a LLaMA SentencePiece vocabulary: <unk> (0), <s> (1), </s> (2), then the
 * byte pieces <0x00>..<0xFF> (ids 3..258). Normal pieces are added after it.
 */
inline Vocabulary byte_fallback_vocabulary() {
  Vocabulary vocabulary;
  vocabulary.add("<unk>", 0.0f, TokenType::unknown);
  vocabulary.add("<s>", 0.0f, TokenType::control);
  vocabulary.add("</s>", 0.0f, TokenType::control);
  constexpr char kHex[] = "0123456789ABCDEF";
  for (unsigned byte = 0; byte < 256; ++byte) {
    vocabulary.add(std::string("<0x") + kHex[byte >> 4] + kHex[byte & 15] + ">", 0.0f, TokenType::byte);
  }
  return vocabulary;
}

namespace detail {

/// U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's visible stand-in for a space.
inline constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";

/// Length in bytes of the UTF-8 character whose lead byte is `lead`; 1 for a byte that cannot
/// start a character, so invalid UTF-8 still splits into symbols (and falls back to bytes).
constexpr std::size_t utf8_length(unsigned char lead) noexcept {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 1;
}

/// Parses a byte piece "<0xAB>"; @return the byte, or -1 when `piece` is not one.
inline int parse_byte_piece(std::string_view piece) noexcept {
  if (piece.size() != 6 || piece.substr(0, 3) != "<0x" || piece[5] != '>') return -1;
  int value = 0;
  for (const char c : piece.substr(3, 2)) {
    value *= 16;
    if (c >= '0' && c <= '9') {
      value += c - '0';
    } else if (c >= 'A' && c <= 'F') {
      value += c - 'A' + 10;
    } else if (c >= 'a' && c <= 'f') {
      value += c - 'a' + 10;
    } else {
      return -1;
    }
  }
  return value;
}

/// Replaces every occurrence of `from` in `text` by `to`.
inline std::string replace_all(std::string_view text, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(text.size());
  std::size_t begin = 0;
  for (std::size_t hit = text.find(from); hit != std::string_view::npos; hit = text.find(from, begin)) {
    out.append(text.substr(begin, hit - begin)).append(to);
    begin = hit + from.size();
  }
  out.append(text.substr(begin));
  return out;
}

}  // namespace detail

/**
 * SentencePiece BPE tokenizer (the LLaMA / llama2.c flavour) over a scored vocabulary.
 *
 * Encoding: the text gets the dummy prefix space, spaces become U+2581, the text is split into
 * UTF-8 characters, and adjacent symbols are merged greedily — always the pair whose
 * concatenation is a vocabulary piece with the highest score, the leftmost pair on ties — until
 * no pair merges. A symbol that is not a piece becomes byte tokens `<0xXX>`.
 * Only normal and user-defined pieces take part in merges, so text such as "<s>" never turns
 * into a control token. Decoding is the inverse, dropping the dummy prefix; a literal U+2581 in
 * the input cannot be told from a space and decodes as one (as in SentencePiece).
 */
class Tokenizer {
 public:
  /**
   * @param pieces  the vocabulary, indexed by token id
   * @param scores  merge priority of each piece (higher merges first); same length as `pieces`
   * @param types   SentencePiece type of each piece; same length as `pieces`
   * @param special ids of the unknown, begin- and end-of-sequence pieces
   * @throw Error(invalid_argument) on length mismatches, out-of-range special ids or a byte
   *        piece whose text is not `<0xXX>`.
   */
  Tokenizer(std::vector<std::string> pieces, std::vector<float> scores, std::vector<TokenType> types,
            SpecialTokens special = {})
      : pieces_(std::move(pieces)), scores_(std::move(scores)), types_(std::move(types)), special_(special) {
    kvbits::detail::require(!pieces_.empty(), Errc::invalid_argument, "tokenizer: empty vocabulary");
    kvbits::detail::require(scores_.size() == pieces_.size() && types_.size() == pieces_.size(),
                            Errc::invalid_argument,
                            "tokenizer: pieces, scores and types must have the same length");
    for (const std::int32_t id : {special_.unknown, special_.bos, special_.eos}) {
      kvbits::detail::require(valid(id), Errc::invalid_argument, "tokenizer: special id out of range");
    }
    byte_to_id_.fill(-1);
    for (std::size_t id = 0; id < pieces_.size(); ++id) {
      const auto token = static_cast<std::int32_t>(id);
      if (types_[id] == TokenType::byte) {
        const int byte = detail::parse_byte_piece(pieces_[id]);
        kvbits::detail::require(byte >= 0, Errc::invalid_argument,
                                "tokenizer: byte piece '" + pieces_[id] + "' is not of the form <0xXX>");
        byte_to_id_[static_cast<std::size_t>(byte)] = token;
      } else if (types_[id] == TokenType::normal || types_[id] == TokenType::user_defined) {
        // The first occurrence wins, as a duplicated piece could never be produced twice.
        piece_to_id_.emplace(pieces_[id], token);
      }
    }
  }

  /**
   * @param vocabulary pieces, scores and types
   * @param special    ids of the unknown, begin- and end-of-sequence pieces
   * @throw as the constructor from separate vectors.
   */
  explicit Tokenizer(Vocabulary vocabulary, SpecialTokens special = {})
      : Tokenizer(std::move(vocabulary.pieces), std::move(vocabulary.scores), std::move(vocabulary.types),
                  special) {}

  /// @return the number of pieces.
  [[nodiscard]] std::size_t size() const noexcept { return pieces_.size(); }
  /// @return the begin-of-sequence id.
  [[nodiscard]] std::int32_t bos() const noexcept { return special_.bos; }
  /// @return the end-of-sequence id.
  [[nodiscard]] std::int32_t eos() const noexcept { return special_.eos; }
  /// @return the unknown-piece id.
  [[nodiscard]] std::int32_t unknown() const noexcept { return special_.unknown; }

  /**
   * @param id a token id
   * @return the raw piece text (with U+2581 for spaces, `<0xXX>` for byte pieces).
   * @throw Error(invalid_argument) when `id` is out of range.
   */
  [[nodiscard]] const std::string& piece(std::int32_t id) const {
    kvbits::detail::require(valid(id), Errc::invalid_argument, "tokenizer: token id out of range");
    return pieces_[static_cast<std::size_t>(id)];
  }

  /**
   * Encodes text without BOS/EOS.
   * @param text UTF-8 text (invalid sequences fall back to byte tokens)
   * @return the token ids; empty for empty text (no dummy prefix is added to nothing).
   */
  [[nodiscard]] std::vector<std::int32_t> encode(std::string_view text) const {
    if (text.empty()) return {};
    const std::string normalized =
        std::string(detail::kSpaceMarker) + detail::replace_all(text, " ", detail::kSpaceMarker);
    auto symbols = split_characters(normalized);
    merge(normalized, symbols);

    std::vector<std::int32_t> ids;
    ids.reserve(symbols.size());
    for (std::size_t i = 0; i != kNone; i = symbols[i].next) {
      const Symbol& symbol = symbols[i];
      const std::string_view text_of_symbol(normalized.data() + symbol.start, symbol.length);
      if (const auto found = piece_to_id_.find(std::string(text_of_symbol)); found != piece_to_id_.end()) {
        ids.push_back(found->second);
        continue;
      }
      for (const char c : text_of_symbol) {
        const std::int32_t byte_id = byte_to_id_[static_cast<unsigned char>(c)];
        ids.push_back(byte_id >= 0 ? byte_id : special_.unknown);
      }
    }
    return ids;
  }

  /**
   * Text of one token as it appears in the output stream: spaces restored, a byte piece as its
   * raw byte (a multi-byte character arrives over several tokens), control pieces empty.
   * @param id a token id
   * @param previous the token before it, or -1; after BOS the dummy prefix space is dropped
   * @throw Error(invalid_argument) when `id` is out of range.
   */
  [[nodiscard]] std::string token_text(std::int32_t id, std::int32_t previous = -1) const {
    const std::string& raw = piece(id);
    std::string text;
    switch (types_[static_cast<std::size_t>(id)]) {
      case TokenType::byte:
        text.push_back(static_cast<char>(detail::parse_byte_piece(raw)));
        break;
      case TokenType::control:
      case TokenType::unknown:
      case TokenType::unused:
        break;
      default:
        text = detail::replace_all(raw, detail::kSpaceMarker, " ");
        break;
    }
    if (previous == special_.bos && !text.empty() && text.front() == ' ') text.erase(0, 1);
    return text;
  }

  /**
   * Decodes ids back to text: byte tokens are reassembled into UTF-8, control pieces (BOS, EOS)
   * produce nothing and the dummy prefix space at the start is removed.
   * @param ids token ids, with or without a leading BOS
   * @throw Error(invalid_argument) when an id is out of range.
   */
  [[nodiscard]] std::string decode(std::span<const std::int32_t> ids) const {
    std::string bytes;
    for (const std::int32_t id : ids) {
      const std::string& raw = piece(id);
      const TokenType type = types_[static_cast<std::size_t>(id)];
      if (type == TokenType::byte) {
        bytes.push_back(static_cast<char>(detail::parse_byte_piece(raw)));
      } else if (type != TokenType::control && type != TokenType::unknown && type != TokenType::unused) {
        bytes += raw;
      }
    }
    // Spaces are restored after the bytes are joined, so a U+2581 that had to be spelled with
    // byte tokens is treated exactly like one carried by a piece.
    std::string text = detail::replace_all(bytes, detail::kSpaceMarker, " ");
    if (!text.empty() && text.front() == ' ') text.erase(0, 1);
    return text;
  }

 private:
  static constexpr std::size_t kNone = static_cast<std::size_t>(-1);

  // One symbol of the merge: a byte range of the normalized text, in a doubly linked list.
  struct Symbol {
    std::size_t start = 0;
    std::size_t length = 0;
    std::size_t prev = kNone;
    std::size_t next = kNone;
  };

  // A mergeable adjacent pair; stale once either side has changed since it was queued.
  struct Candidate {
    float score = 0.0f;
    std::size_t left = 0;
    std::size_t right = 0;
    std::size_t length = 0;  // left.length + right.length when queued
  };

  struct CandidateOrder {
    // Highest score first; among equal scores the leftmost pair (smallest start) first.
    bool operator()(const Candidate& a, const Candidate& b) const noexcept {
      if (a.score != b.score) return a.score < b.score;
      return a.left > b.left;
    }
  };

  [[nodiscard]] bool valid(std::int32_t id) const noexcept {
    return id >= 0 && static_cast<std::size_t>(id) < pieces_.size();
  }

  static std::vector<Symbol> split_characters(std::string_view text) {
    std::vector<Symbol> symbols;
    for (std::size_t at = 0; at < text.size();) {
      std::size_t length = detail::utf8_length(static_cast<unsigned char>(text[at]));
      if (at + length > text.size()) length = 1;
      Symbol symbol;
      symbol.start = at;
      symbol.length = length;
      symbol.prev = symbols.empty() ? kNone : symbols.size() - 1;
      symbols.push_back(symbol);
      at += length;
    }
    for (std::size_t i = 0; i + 1 < symbols.size(); ++i) symbols[i].next = i + 1;
    return symbols;
  }

  void push_candidate(std::string_view text, const std::vector<Symbol>& symbols, std::size_t left,
                      std::priority_queue<Candidate, std::vector<Candidate>, CandidateOrder>& queue) const {
    const std::size_t right = symbols[left].next;
    if (right == kNone) return;
    const std::size_t length = symbols[left].length + symbols[right].length;
    const auto found = piece_to_id_.find(std::string(text.substr(symbols[left].start, length)));
    if (found == piece_to_id_.end()) return;
    queue.push({scores_[static_cast<std::size_t>(found->second)], left, right, length});
  }

  // Symbols are indexed by their first character, so a smaller index is further left.
  void merge(std::string_view text, std::vector<Symbol>& symbols) const {
    std::priority_queue<Candidate, std::vector<Candidate>, CandidateOrder> queue;
    for (std::size_t i = 0; i < symbols.size(); ++i) push_candidate(text, symbols, i, queue);
    while (!queue.empty()) {
      const Candidate best = queue.top();
      queue.pop();
      Symbol& left = symbols[best.left];
      if (left.length == 0 || left.next != best.right ||
          left.length + symbols[best.right].length != best.length) {
        continue;
      }
      Symbol& right = symbols[best.right];
      left.length += right.length;
      left.next = right.next;
      if (right.next != kNone) symbols[right.next].prev = best.left;
      right.length = 0;  // marks the right symbol as consumed
      right.next = kNone;
      if (left.prev != kNone) push_candidate(text, symbols, left.prev, queue);
      push_candidate(text, symbols, best.left, queue);
    }
  }

  std::vector<std::string> pieces_;  // [vocab]
  std::vector<float> scores_;        // [vocab]
  std::vector<TokenType> types_;     // [vocab]
  SpecialTokens special_;
  std::unordered_map<std::string, std::int32_t> piece_to_id_;  // mergeable pieces only
  std::array<std::int32_t, 256> byte_to_id_{};                 // -1 where no byte piece exists
};

}  // namespace kvbits::model
