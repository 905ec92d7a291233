// SPDX-License-Identifier: MIT
#pragma once

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kvbits/core/error.hpp"

namespace kvbits::model {

/// File name of the model the tools load when no --model is given.
inline constexpr std::string_view kDefaultModelFile = "stories260K.gguf";

/**
 * Where the tools look for a model file by name, in order: $KVBITS_MODEL_DIR (when set),
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

/**
 * The model file a --model value names: an existing path as given, or else a model name such as
 * `bible919K` (or `bible919K.gguf`) looked up like the default model.
 * @param name_or_path the --model value
 * @param shared_dir   the shared folder compiled into the tool
 * @throw Error(io_error) naming every place that was tried.
 */
inline std::filesystem::path resolve_model(const std::string& name_or_path,
                                           const std::filesystem::path& shared_dir) {
  std::error_code error;
  if (std::filesystem::is_regular_file(name_or_path, error)) return name_or_path;
  std::string tried = name_or_path;
  const std::filesystem::path as_path(name_or_path);
  if (!as_path.has_parent_path()) {
    const std::string file = as_path.extension() == ".gguf" ? name_or_path : name_or_path + ".gguf";
    if (const auto found = find_default_model(shared_dir, file)) return *found;
    for (const auto& candidate : default_model_candidates(shared_dir, file))
      tried += ", " + candidate.string();
  }
  throw Error(Errc::io_error, "model '" + name_or_path + "' not found (tried " + tried +
                                  "); pass a GGUF path or a model name from the shared models folder");
}

}  // namespace kvbits::model
