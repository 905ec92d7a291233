// SPDX-License-Identifier: MIT
#pragma once

// GGUF reader for the examples. types.hpp: value and tensor types;
// file.hpp: the validated, memory-mapped File. Internals: parser.hpp validates
// the layout through byte_reader.hpp; decode.hpp decodes values (fp16/bf16 via
// kvbits/core/fp16.hpp); mapped_bytes.hpp owns the mapping.
#include "gguf/file.hpp"
#include "gguf/types.hpp"
