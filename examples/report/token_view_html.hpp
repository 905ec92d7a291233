// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "report/markup.hpp"
#include "report/scales.hpp"

namespace kvbits::report {

/// The widths one token holds in one layer.
struct TokenWidths {
  int key_bits = 0;          ///< a width of kvbits::kSupportedBits (32 = float)
  int value_bits = 0;        ///< likewise
  bool in_residual = false;  ///< still in the float sink/window area, not yet decided
};

/// What the per-token view shows: plain data, filled by a tool from its cache.
struct TokenView {
  std::string model;                             ///< the model's name or path
  std::string policy;                            ///< the cache policy specification
  std::vector<std::string> tokens;               ///< [tokens] each token's text, in position order
  std::size_t prompt_tokens = 0;                 ///< tokens[0, prompt_tokens) were the prompt
  std::vector<std::vector<TokenWidths>> layers;  ///< [layers][stored tokens] widths at the end; a
                                                 ///< layer may hold fewer tokens than `tokens` (a
                                                 ///< token sampled last is never stored)
  std::vector<double> bits_per_element;          ///< [stored tokens] the cache's bits/element
                                                 ///< right after each token was stored
};

namespace detail {

/// How a width is drawn: the strong colour underlines (values), the tint fills (keys).
struct WidthColour {
  int bits;
  std::string_view strong;
  std::string_view tint;
};
inline constexpr std::array<WidthColour, 8> kWidthColours = {{
    {2, "#b2182b", "#f4c3c9"},
    {3, "#e34a33", "#f9d2c9"},
    {4, "#ef8a17", "#fde1bd"},
    {5, "#c9a400", "#f5eab0"},
    {6, "#86b300", "#e4f1c2"},
    {8, "#1a9850", "#c6ead3"},
    {16, "#2c7bb6", "#cde0f2"},
    {32, "#6a51a3", "#e0d9ef"},
}};

inline constexpr std::string_view kTokenViewStyle = R"css(
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; margin: 24px; color: #222; max-width: 1100px; }
h1 { font-size: 20px; margin: 0 0 6px; }
.meta { color: #444; margin: 2px 0; font-size: 13px; }
.meta code { background: #f3f3f3; padding: 1px 4px; }
.controls { margin: 14px 0 8px; font-size: 14px; }
.controls select { font-size: 14px; margin-right: 18px; }
#summary { color: #444; font-size: 13px; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 14px; font-size: 13px; margin: 8px 0 12px; align-items: center; }
.legend .swatch { display: inline-block; padding: 0 8px; border-bottom: 4px solid transparent; margin-right: 4px; }
.legend .note { color: #555; }
#text { font-size: 16px; line-height: 2.0; white-space: pre-wrap; word-wrap: break-word;
        border: 1px solid #ddd; padding: 10px 12px; background: #fff; }
.t { border-bottom: 4px solid transparent; padding: 1px 0; box-shadow: inset -1px 0 0 rgba(255, 255, 255, 0.9); }
.t.p { font-style: italic; }
.t.none { outline: 1px dashed #999; outline-offset: -1px; }
.t:hover { outline: 2px solid #222; }
#tip { position: absolute; background: #222; color: #fff; font-size: 12px; padding: 6px 8px; border-radius: 4px;
       white-space: pre; pointer-events: none; z-index: 10; }
h2 { font-size: 15px; margin: 18px 0 4px; }
)css";

// Colours the tokens for the chosen layer, fills the summary line and the tooltip. The widths
// live in the JSON block #kvbits-data: key/value/float [layer][stored token], prompt, tokens.
inline constexpr std::string_view kTokenViewScript = R"js(
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("kvbits-data").textContent);
  const text = document.getElementById("text");
  const spans = Array.from(text.querySelectorAll(".t"));
  const select = document.getElementById("layer");
  const summary = document.getElementById("summary");
  const tip = document.getElementById("tip");
  let layer = 0;

  function widths(i) {
    const key = data.key[layer][i];
    if (key === undefined) return null;
    return { key: key, value: data.value[layer][i], float: data.float[layer][i] === 1 };
  }

  function paint() {
    const counts = new Map();
    spans.forEach(function (span, i) {
      const w = widths(i);
      span.className = "t" + (i < data.prompt ? " p" : "") + (w ? " k" + w.key + " v" + w.value : " none");
      if (w) {
        const pair = w.key + "/" + w.value;
        counts.set(pair, (counts.get(pair) || 0) + 1);
      }
    });
    const parts = Array.from(counts.entries())
      .sort(function (a, b) { return b[1] - a[1]; })
      .map(function (entry) { return entry[0] + " \u00d7 " + entry[1]; });
    summary.textContent = "layer " + layer + ": " + (parts.length ? parts.join(", ") : "no tokens") +
      " (key/value bits \u00d7 tokens)";
  }

  select.addEventListener("change", function () {
    layer = Number(select.value);
    paint();
  });

  text.addEventListener("mouseover", function (event) {
    const span = event.target.closest(".t");
    if (!span) return;
    const i = Number(span.dataset.i);
    const w = widths(i);
    const lines = [JSON.stringify(span.textContent), "position " + i + (i < data.prompt ? " (prompt)" : " (generated)"),
                   "layer " + layer];
    if (w) {
      lines.push("key " + w.key + "-bit, value " + w.value + "-bit");
      if (w.float) lines.push("float window/sink: not decided yet");
    } else {
      lines.push("not stored (sampled last)");
    }
    tip.textContent = lines.join("\n");
    const box = span.getBoundingClientRect();
    tip.style.left = (box.left + window.scrollX) + "px";
    tip.style.top = (box.bottom + window.scrollY + 6) + "px";
    tip.hidden = false;
  });
  text.addEventListener("mouseleave", function () { tip.hidden = true; });

  paint();
})();
)js";

/// Appends `[a,b,...]` of `values`.
template <typename T, typename Get>
void append_json_array(std::string& out, std::span<const T> values, Get get) {
  out += '[';
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(get(values[i]));
  }
  out += ']';
}

/// The widths as JSON: {"tokens":N,"prompt":P,"key":[[..],..],"value":[[..],..],"float":[[..],..]}.
inline std::string token_view_json(const TokenView& view) {
  std::string json = "{\"tokens\":";
  json += std::to_string(view.tokens.size());
  json += ",\"prompt\":";
  json += std::to_string(view.prompt_tokens);
  const auto layers = [&](std::string_view name, auto get) {
    json += ",\"";
    json += name;
    json += "\":[";
    for (std::size_t l = 0; l < view.layers.size(); ++l) {
      if (l > 0) json += ',';
      append_json_array(json, std::span<const TokenWidths>(view.layers[l]), get);
    }
    json += ']';
  };
  layers("key", [](const TokenWidths& w) { return w.key_bits; });
  layers("value", [](const TokenWidths& w) { return w.value_bits; });
  layers("float", [](const TokenWidths& w) { return w.in_residual ? 1 : 0; });
  json += '}';
  return json;
}

/// The style sheet: the fixed rules, then a tint (key) and an underline (value) class per width.
inline std::string token_view_style() {
  std::string css(kTokenViewStyle);
  for (const WidthColour& c : kWidthColours) {
    css += ".k";
    css += std::to_string(c.bits);
    css += " { background: ";
    css += c.tint;
    css += "; }\n.v";
    css += std::to_string(c.bits);
    css += " { border-bottom-color: ";
    css += c.strong;
    css += "; }\n";
  }
  return css;
}

/// Writes the inline SVG chart of the cache's bits/element over the positions.
inline void write_bits_chart(MarkupWriter& html, std::span<const double> bits, std::size_t prompt_tokens) {
  constexpr double kWidth = 820.0, kHeight = 210.0;
  constexpr double kLeft = 58.0, kRight = 800.0, kTop = 14.0, kBottom = 166.0;
  const double last = bits.empty() ? 1.0 : static_cast<double>(bits.size() - 1);
  const double top = bits.empty() ? 32.0 : *std::max_element(bits.begin(), bits.end());
  const LinearTicks x_ticks = linear_ticks(0.0, std::max(last, 1.0), 10);
  const LinearTicks y_ticks = linear_ticks(0.0, std::max(top, 1.0) * 1.05, 5);
  const Scale x(ScaleKind::linear, x_ticks.lo, x_ticks.hi, kLeft, kRight);
  const Scale y(ScaleKind::linear, y_ticks.lo, y_ticks.hi, kBottom, kTop);

  html.open("svg", {{"id", "bits-chart"},
                    {"xmlns", "http://www.w3.org/2000/svg"},
                    {"width", fixed(kWidth, 0)},
                    {"height", fixed(kHeight, 0)},
                    {"viewBox", "0 0 820 210"},
                    {"font-size", "11"},
                    {"role", "img"}});
  html.element("title", {}, "KV cache bits per element after each stored token");
  for (const Tick& t : y_ticks.ticks) {
    const std::string py = fixed(y(t.value), 2);
    html.leaf(
        "line",
        {{"x1", fixed(kLeft, 0)}, {"x2", fixed(kRight, 0)}, {"y1", py}, {"y2", py}, {"stroke", "#e6e6e6"}});
    html.element("text",
                 {{"x", fixed(kLeft - 6.0, 0)}, {"y", fixed(y(t.value) + 4.0, 2)}, {"text-anchor", "end"}},
                 t.label);
  }
  for (const Tick& t : x_ticks.ticks) {
    html.element("text",
                 {{"x", fixed(x(t.value), 2)}, {"y", fixed(kBottom + 16.0, 0)}, {"text-anchor", "middle"}},
                 t.label);
  }
  html.leaf("rect", {{"x", fixed(kLeft, 0)},
                     {"y", fixed(kTop, 0)},
                     {"width", fixed(kRight - kLeft, 0)},
                     {"height", fixed(kBottom - kTop, 0)},
                     {"fill", "none"},
                     {"stroke", "#999999"}});
  if (prompt_tokens > 0 && prompt_tokens < bits.size()) {
    const std::string px = fixed(x(static_cast<double>(prompt_tokens) - 0.5), 2);
    html.leaf("line", {{"x1", px},
                       {"x2", px},
                       {"y1", fixed(kTop, 0)},
                       {"y2", fixed(kBottom, 0)},
                       {"stroke", "#888888"},
                       {"stroke-dasharray", "4 3"}});
    html.element("text", {{"x", px}, {"y", fixed(kTop + 12.0, 0)}, {"dx", "4"}, {"fill", "#555555"}},
                 "generated \u2192");
  }
  std::string line;
  for (std::size_t i = 0; i < bits.size(); ++i) {
    if (i > 0) line += ' ';
    line += fixed(x(static_cast<double>(i)), 2);
    line += ',';
    line += fixed(y(bits[i]), 2);
  }
  html.leaf("polyline", {{"points", line}, {"fill", "none"}, {"stroke", "#2c7bb6"}, {"stroke-width", "1.8"}});
  html.element(
      "text",
      {{"x", fixed((kLeft + kRight) / 2, 0)}, {"y", fixed(kHeight - 6.0, 0)}, {"text-anchor", "middle"}},
      "position (tokens stored)");
  const std::string middle = fixed((kTop + kBottom) / 2, 0);
  std::string rotation = "rotate(-90 14 ";
  rotation += middle;
  rotation += ')';
  html.element("text", {{"x", "14"}, {"y", middle}, {"text-anchor", "middle"}, {"transform", rotation}},
               "bits/element");
  html.close();
}

}  // namespace detail

/**
 * Writes a self-contained HTML page of a generation: each token coloured by the key (background)
 * and value (underline) widths it holds in the chosen layer at the end, a layer selector, a
 * legend, a tooltip per token, and a chart of the cache's bits/element over the positions. No
 * external resources; the widths are embedded as JSON and the colouring is done by inline script.
 * @param view the tokens, their widths per layer and the bits/element series
 * @return the HTML document
 */
inline std::string token_view_html(const TokenView& view) {
  std::string title = "kvbits token view: ";
  title += view.policy;
  std::vector<bool> used(detail::kWidthColours.size(), false);
  std::size_t stored = 0;
  for (const auto& layer : view.layers) {
    stored = std::max(stored, layer.size());
    for (const TokenWidths& w : layer) {
      for (std::size_t c = 0; c < detail::kWidthColours.size(); ++c) {
        if (detail::kWidthColours[c].bits == w.key_bits || detail::kWidthColours[c].bits == w.value_bits) {
          used[c] = true;
        }
      }
    }
  }

  MarkupWriter html;
  html.raw("<!DOCTYPE html>\n");
  html.open("html", {{"lang", "en"}});
  html.open("head");
  html.leaf("meta", {{"charset", "utf-8"}});
  html.element("title", {}, title);
  html.open("style").raw(detail::token_view_style()).close();
  html.close();
  html.open("body");
  html.element("h1", {}, "Per-token KV precision");
  const auto meta = [&](std::string_view name, std::string_view value) {
    html.open("p", {{"class", "meta"}});
    html.text(name);
    html.element("code", {}, value);
    html.close();
  };
  meta("model: ", view.model);
  meta("policy: ", view.policy);
  std::string counts = std::to_string(view.prompt_tokens);
  counts += " prompt + ";
  counts += std::to_string(view.tokens.size() - std::min(view.prompt_tokens, view.tokens.size()));
  counts += " generated tokens, ";
  counts += std::to_string(stored);
  counts += " stored in each of ";
  counts += std::to_string(view.layers.size());
  counts += " layers; ";
  counts += view.bits_per_element.empty() ? "n/a" : fixed(view.bits_per_element.back(), 3);
  counts += " bits/element at the end";
  html.element("p", {{"class", "meta"}}, counts);

  html.open("div", {{"class", "controls"}});
  html.open("label");
  html.text("layer ");
  html.open("select", {{"id", "layer"}});
  for (std::size_t l = 0; l < view.layers.size(); ++l) {
    html.element("option", {{"value", std::to_string(l)}}, std::to_string(l));
  }
  html.close().close();
  html.element("span", {{"id", "summary"}}, "");
  html.close();

  html.open("div", {{"class", "legend"}});
  html.element("span", {{"class", "note"}}, "background: key width, underline: value width");
  for (std::size_t c = 0; c < detail::kWidthColours.size(); ++c) {
    if (!used[c]) continue;
    const detail::WidthColour& colour = detail::kWidthColours[c];
    std::string style = "background: ";
    style += colour.tint;
    style += "; border-bottom-color: ";
    style += colour.strong;
    html.open("span");
    html.element("span", {{"class", "swatch"}, {"style", style}}, "\u00a0");
    html.text(colour.bits == 32 ? "32-bit (float)" : std::to_string(colour.bits) + "-bit");
    html.close();
  }
  if (stored < view.tokens.size()) {
    html.open("span");
    html.element("span", {{"class", "swatch t none"}}, "\u00a0");
    html.text("not stored");
    html.close();
  }
  html.element("span", {{"class", "note"}}, "italic: prompt");
  html.close();

  html.open("div", {{"id", "text"}});
  for (std::size_t i = 0; i < view.tokens.size(); ++i) {
    html.element("span", {{"class", "t"}, {"data-i", std::to_string(i)}},
                 view.tokens[i].empty() ? std::string_view("\u2205") : std::string_view(view.tokens[i]));
  }
  html.close();
  html.open("div", {{"id", "tip"}, {"hidden", "hidden"}}).close();

  html.element("h2", {}, "KV cache bits per element over the sequence");
  detail::write_bits_chart(html, view.bits_per_element, view.prompt_tokens);

  html.open("script", {{"id", "kvbits-data"}, {"type", "application/json"}})
      .raw(detail::token_view_json(view))
      .close();
  html.open("script").raw(detail::kTokenViewScript).close();
  html.close().close();
  std::string document = std::move(html).finish();
  document += '\n';
  return document;
}

}  // namespace kvbits::report
