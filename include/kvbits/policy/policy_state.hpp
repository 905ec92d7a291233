// SPDX-License-Identifier: MIT
#pragma once

#include <concepts>
#include <string>

#include "kvbits/core/byte_io.hpp"
#include "kvbits/policy/policy.hpp"

// What a cache file asks of a policy: a description of its configuration and its running state.
namespace kvbits {

/**
 * A policy that describes its configuration (what it decides from, not what it
 * has accumulated) as text, e.g. "static:8/4". A cache file records it and
 * refuses to load into a cache whose policy describes itself differently.
 */
template <class P>
concept DescribedPolicy = requires(const P& policy) {
  { policy.describe() } -> std::convertible_to<std::string>;
};

/**
 * A policy whose decisions depend on state it accumulates (a random generator,
 * a controller's integral), which a cache file carries so that a restored
 * cache decides exactly as the saved one would have. `save_state` appends the
 * state; `load_state` reads back exactly what save_state wrote, and throws
 * Error(corrupt_data) (ByteReader::fail) for values save_state cannot write.
 */
template <class P>
concept StatefulPolicy = requires(const P& policy, P& target, ByteWriter& out, ByteReader& in) {
  policy.save_state(out);
  target.load_state(in);
};

/// @return the policy's describe(), or an empty text for a policy without one.
template <Policy P>
std::string policy_description(const P& policy) {
  if constexpr (DescribedPolicy<P>) {
    return policy.describe();
  } else {
    return {};
  }
}

/// Appends the policy's state to `out`; nothing for a policy without state.
template <Policy P>
void save_policy_state(const P& policy, ByteWriter& out) {
  if constexpr (StatefulPolicy<P>) policy.save_state(out);
}

/**
 * Reads back what save_policy_state wrote; nothing for a policy without state.
 * @throws Error(corrupt_data) for a truncated or impossible state.
 */
template <Policy P>
void load_policy_state(P& policy, ByteReader& in) {
  if constexpr (StatefulPolicy<P>) policy.load_state(in);
}

}  // namespace kvbits
