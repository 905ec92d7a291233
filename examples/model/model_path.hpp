// SPDX-License-Identifier: MIT
#pragma once

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kvbits::model {

/// File name of the model the tools load when no --model is given.
inline constexpr std::string_view kDefaultModelFile = "stories260K.gguf";

/**
 * Where the tools look for the default model, in order: $KVBITS_MODEL_DIR (when set),
 * ../shared/models relative to the current directory, then `<shared_dir>/models`.
 * @param shared_dir the shared folder compiled into the tool (KVBITS_SHARED_DIR_DEFAULT)
 * @param file       model file name
 */
inline std::vector<std::filesystem::path> default_model_candidates(
    const std::filesystem::path& shared_dir, std::string_view file = kDefaultModelFile) {
  std::vector<std::filesystem::path> candidates;
  if (const char* dir = std::getenv("KVBITS_MODEL_DIR"); dir != nullptr && *dir != '\0') {
    candidates.push_back(std::filesystem::path(dir) / file);
  }
  candidates.push_back(std::filesystem::path("..") / "shared" / "models" / file);
  candidates.push_back(shared_dir / "models" / file);
  return candidates;
}

/// @return the first existing file of default_model_candidates(), if any.
inline std::optional<std::filesystem::path> find_default_model(const std::filesystem::path& shared_dir,
                                                               std::string_view file = kDefaultModelFile) {
  for (const auto& candidate : default_model_candidates(shared_dir, file)) {
    std::error_code error;
    if (std::filesystem::is_regular_file(candidate, error)) return candidate;
  }
  return std::nullopt;
}

}  // namespace kvbits::model
