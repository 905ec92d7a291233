// SPDX-License-Identifier: MIT
// An engine's decode loop on an adaptive kvbits cache: widths by age, attention statistics,
// write-time features and age-graded demotion. docs/integration.md walks through it.
#include <cstdio>
#include <string>
#include <vector>

#include <kvbits/kvbits.hpp>

#include "model/gguf_model.hpp"
#include "model/model_path.hpp"
#include "model/sampling.hpp"

int main(int argc, char** argv) {
  // The engine: any LLaMA-style model; here a shared GGUF model, by name or path.
  const std::string model_name = argc > 1 ? argv[1] : "stories260K";
  auto [tokenizer, model] =
      kvbits::model::load_model(kvbits::model::resolve_model(model_name, KVBITS_SHARED_DIR_DEFAULT).string());
  const auto& config = model.config();

  // One cache per sequence, shaped like the model's KV heads.
  kvbits::CacheOptions options;
  options.layers = config.layers;
  options.kv_heads = config.kv_heads;
  options.head_dim = config.head_dim();
  options.capacity = 256;
  // The newest tokens wide, older ones narrower, keys of much-attended tokens one step wider:
  // the cache re-decides each token at ages 4, 16 and 64 and keeps attention statistics for it.
  kvbits::TieredPolicy policy = kvbits::parse_tiers("4=16/16,16=8/8,64=6/4,*=4/2,k+=0.05");
  kvbits::QuantizedKVCache<kvbits::TieredPolicy> cache(options, policy);

  // Write-time features straight from the model's logits (entropy, the followed token's and the
  // largest probability: one vectorised pass, no softmax of the engine's own); a learned policy
  // reads them.
  kvbits::LogitFeatures features;
  std::vector<float> logits(config.vocab), values(features.size);

  std::int32_t token = tokenizer.bos();
  for (std::size_t position = 0; position < options.capacity; ++position) {
    // Per layer, forward() calls cache.append(layer, k, v, {layer, position, token}) and
    // cache.attend(layer, q, out); demotions of tokens crossing an age happen in append.
    model.forward(token, position, cache, logits);
    const std::int32_t next = kvbits::model::argmax(logits);

    kvbits::FeatureContext context;
    context.token_id = token;
    context.position = position;
    context.next_token = next;
    context.next_token_logits = logits;
    features.extract(context, values);
    for (std::size_t layer = 0; layer < options.layers; ++layer) {
      if (cache.awaits_decision(layer, position)) cache.set_features(layer, position, values);
    }
    std::printf("%s", tokenizer.token_text(next, token).c_str());
    token = next;
  }

  const kvbits::MemoryReport memory = cache.memory();
  std::printf("\n\n%zu tokens x %zu layers at %.2f bits/element (%zu bytes)\n", cache.size(0), options.layers,
              cache.bits_per_element(), memory.total.bytes);
  for (int bits : kvbits::kSupportedBits) {
    if (memory.total.histogram.key_tokens(bits) + memory.total.histogram.value_tokens(bits) == 0) continue;
    std::printf("  %2d-bit: %5zu keys, %5zu values\n", bits, memory.total.histogram.key_tokens(bits),
                memory.total.histogram.value_tokens(bits));
  }
  const kvbits::AttentionStats first = cache.attention_stats(0, 0);
  std::printf("token 0, layer 0: seen by %u queries, mean attention %.3f\n", first.queries, first.mean());
  return 0;
}
