// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "report/markup.hpp"
#include "report/pareto.hpp"
#include "report/scales.hpp"

namespace kvbits::report {

namespace detail {

/// Pixel geometry of the chart: the plot, the legend column to its right, the table below.
struct ParetoLayout {
  static constexpr double kLeft = 84.0;
  static constexpr double kTop = 64.0;
  static constexpr double kPlotWidth = 600.0;
  static constexpr double kPlotHeight = 380.0;
  static constexpr double kRight = kLeft + kPlotWidth;
  static constexpr double kBottom = kTop + kPlotHeight;
  static constexpr double kLegendX = kRight + 28.0;
  static constexpr double kMinWidth = 980.0;
  static constexpr double kTableTop = kBottom + 84.0;
  static constexpr double kRowHeight = 16.0;
  static constexpr double kMonoCharWidth = 6.7;   // 11 px monospace, generously rounded up
  static constexpr double kLabelCharWidth = 6.4;  // 10 px digits of the marker numbers
  static constexpr double kNumberColumn = 96.0;   // width of each numeric column of the table
  static constexpr double kMarkerRadius = 4.5;
};

/// How a family's points are drawn.
struct SeriesStyle {
  std::string colour;
  int shape;  ///< 0 circle, 1 square, 2 diamond, 3 triangle, 4 inverted triangle
};

inline constexpr std::string_view kStaticColour = "#222222";
inline constexpr std::string_view kGridColour = "#e4e4e4";
inline constexpr std::string_view kMinorGridColour = "#f2f2f2";

/// The colours and shapes of the adaptive families kvbits has; other families take kExtraColours.
struct KnownFamily {
  std::string_view name;
  std::string_view colour;
  int shape;
};
inline constexpr std::array<KnownFamily, 5> kKnownFamilies = {{
    {"tiers", "#0072b2", 1},
    {"budget", "#d55e00", 2},
    {"rule", "#009e73", 3},
    {"random", "#cc79a7", 4},
    {"learned", "#e69f00", 1},
}};
inline constexpr std::array<std::string_view, 5> kExtraColours = {"#56b4e9", "#8c564b", "#17becf", "#7f7f7f",
                                                                  "#bcbd22"};

/// The adaptive families in order of first appearance, each with its style.
struct Family {
  std::string name;
  SeriesStyle style;
  std::vector<std::size_t> members;  // indices into the points, increasing bits
};

inline std::vector<Family> adaptive_families(std::span<const ParetoPoint> points,
                                             const std::vector<bool>& plotted, ParetoAxis axis) {
  std::vector<Family> families;
  std::size_t extra = 0;
  for (std::size_t i = 0; i < points.size(); ++i) {
    if (points[i].kind != PointKind::adaptive || !plotted[i]) continue;
    auto found = std::find_if(families.begin(), families.end(),
                              [&](const Family& f) { return f.name == points[i].family; });
    if (found == families.end()) {
      Family family{points[i].family, {}, {}};
      const auto known = std::find_if(kKnownFamilies.begin(), kKnownFamilies.end(),
                                      [&](const KnownFamily& k) { return k.name == family.name; });
      if (known != kKnownFamilies.end()) {
        family.style = {std::string(known->colour), known->shape};
      } else {
        family.style = {std::string(kExtraColours[extra % kExtraColours.size()]),
                        static_cast<int>(1 + extra % 4)};
        ++extra;
      }
      families.push_back(std::move(family));
      found = families.end() - 1;
    }
    found->members.push_back(i);
  }
  for (Family& family : families) {
    std::stable_sort(family.members.begin(), family.members.end(), [&](std::size_t a, std::size_t b) {
      if (points[a].bits != points[b].bits) return points[a].bits < points[b].bits;
      return quality(points[a], axis) < quality(points[b], axis);
    });
  }
  return families;
}

/// An axis-aligned box, for keeping marker numbers apart.
struct Box {
  double x0, y0, x1, y1;
  [[nodiscard]] bool overlaps(const Box& o) const noexcept {
    return x0 < o.x1 && o.x0 < x1 && y0 < o.y1 && o.y0 < y1;
  }
};

/// Where a marker's number goes: its text anchor and position, and whether it needs a leader line.
struct LabelPlacement {
  double x, y;
  std::string_view anchor;
  bool leader;
};

/**
 * Chooses, for each marker in turn, the first of a fixed ring of positions around it whose
 * number box hits no marker, no number placed before and stays inside the plot; failing that,
 * the position with the fewest collisions. Deterministic.
 */
inline std::vector<LabelPlacement> place_labels(const std::vector<std::array<double, 2>>& centres,
                                                const std::vector<std::string>& texts) {
  using L = ParetoLayout;
  struct Candidate {
    double dx, dy;
    std::string_view anchor;
  };
  static constexpr std::array<Candidate, 8> kRing = {{{7, 3.5, "start"},
                                                      {-7, 3.5, "end"},
                                                      {0, -7, "middle"},
                                                      {0, 14, "middle"},
                                                      {5, -5, "start"},
                                                      {5, 12, "start"},
                                                      {-5, -5, "end"},
                                                      {-5, 12, "end"}}};
  std::vector<Box> markers;
  for (const auto& c : centres) {
    const double r = L::kMarkerRadius + 1.0;
    markers.push_back({c[0] - r, c[1] - r, c[0] + r, c[1] + r});
  }
  std::vector<Box> placed;
  std::vector<LabelPlacement> result;
  for (std::size_t i = 0; i < centres.size(); ++i) {
    const double width = L::kLabelCharWidth * static_cast<double>(texts[i].size());
    std::size_t best_cost = static_cast<std::size_t>(-1);
    LabelPlacement best{};
    Box best_box{};
    for (const double distance : {1.0, 2.2}) {
      for (const Candidate& c : kRing) {
        const double x = centres[i][0] + c.dx * distance;
        const double y = centres[i][1] + (c.dy > 5 ? c.dy + (distance - 1.0) * 6.0 : c.dy * distance);
        const double x0 = c.anchor == "start" ? x : (c.anchor == "end" ? x - width : x - width / 2);
        const Box box{x0, y - 8.0, x0 + width, y + 1.0};
        std::size_t cost = 0;
        if (box.x0 < L::kLeft || box.x1 > L::kRight || box.y0 < L::kTop || box.y1 > L::kBottom) cost += 2;
        for (std::size_t m = 0; m < markers.size(); ++m)
          if (m != i && box.overlaps(markers[m])) ++cost;
        for (const Box& other : placed)
          if (box.overlaps(other)) ++cost;
        if (cost < best_cost) {
          best_cost = cost;
          best = {x, y, c.anchor, distance > 1.0};
          best_box = box;
        }
        if (cost == 0) break;
      }
      if (best_cost == 0) break;
    }
    placed.push_back(best_box);
    result.push_back(best);
  }
  return result;
}

/// Writes a marker of `shape` centred at (x, y).
inline void write_marker(MarkupWriter& svg, int shape, double x, double y, const std::string& fill,
                         const std::string& stroke) {
  const double r = ParetoLayout::kMarkerRadius;
  const auto point = [](double px, double py) {
    std::string text = fixed(px, 2);
    text += ',';
    text += fixed(py, 2);
    return text;
  };
  const auto polygon = [&](std::initializer_list<std::array<double, 2>> corners) {
    std::string list;
    for (const auto& c : corners) {
      if (!list.empty()) list += ' ';
      list += point(x + c[0], y + c[1]);
    }
    svg.leaf("polygon", {{"points", list}, {"fill", fill}, {"stroke", stroke}, {"stroke-width", "1.2"}});
  };
  switch (shape) {
    case 1:
      polygon({{-r, -r}, {r, -r}, {r, r}, {-r, r}});
      break;
    case 2:
      polygon({{0, -r * 1.3}, {r * 1.3, 0}, {0, r * 1.3}, {-r * 1.3, 0}});
      break;
    case 3:
      polygon({{0, -r * 1.25}, {r * 1.2, r * 0.9}, {-r * 1.2, r * 0.9}});
      break;
    case 4:
      polygon({{0, r * 1.25}, {r * 1.2, -r * 0.9}, {-r * 1.2, -r * 0.9}});
      break;
    default:
      svg.leaf("circle", {{"cx", fixed(x, 2)},
                          {"cy", fixed(y, 2)},
                          {"r", fixed(r, 2)},
                          {"fill", fill},
                          {"stroke", stroke},
                          {"stroke-width", "1.2"}});
      break;
  }
}

/// "x0,y0 x1,y1 ..." of the points `indices` under the scales.
inline std::string polyline_points(std::span<const std::size_t> indices,
                                   const std::vector<std::array<double, 2>>& centres) {
  std::string list;
  for (const std::size_t i : indices) {
    if (!list.empty()) list += ' ';
    list += fixed(centres[i][0], 2);
    list += ',';
    list += fixed(centres[i][1], 2);
  }
  return list;
}

/// The text of a quality value in the table: shortest-ish, "nan" for a missing one.
inline std::string table_value(double value, int digits) {
  return std::isfinite(value) ? significant(value, digits) : "n/a";
}

}  // namespace detail

/**
 * Draws policies' quality against their memory as a self-contained SVG document: stored bits per
 * element on x (linear), mean KL (log) or the change of perplexity in percent (symlog) on y; a
 * numbered marker per policy, explained by a table under the plot; the static configurations'
 * lower-left frontier as a dark line; each adaptive family's points joined in its own colour; a
 * legend. Reference points (fp32, KL 0) are not plotted: the legend notes them, and on the
 * perplexity axis they are the dashed zero line. Points with KL 0 on the log axis sit on its
 * floor; points with a non-finite coordinate appear only in the table. The same input gives the
 * same bytes.
 * @param points the policies, in the order the table lists them
 * @param chart  title and y measure
 * @return the SVG document
 */
inline std::string pareto_svg(std::span<const ParetoPoint> points, const ParetoChart& chart) {
  using L = detail::ParetoLayout;
  const ParetoAxis axis = chart.y;
  const bool log_axis = axis == ParetoAxis::mean_kl;

  // Which points the plot shows, and the data ranges they span.
  std::vector<bool> plotted(points.size(), false);
  double bits_lo = 0.0, bits_hi = 0.0, q_lo = 0.0, q_hi = 0.0;
  bool any = false, any_q = false, any_floor = false;
  for (std::size_t i = 0; i < points.size(); ++i) {
    const ParetoPoint& p = points[i];
    const double q = quality(p, axis);
    if (p.kind == PointKind::reference || !std::isfinite(p.bits) || !std::isfinite(q)) continue;
    plotted[i] = true;
    bits_lo = any ? std::min(bits_lo, p.bits) : p.bits;
    bits_hi = any ? std::max(bits_hi, p.bits) : p.bits;
    any = true;
    if (log_axis && q <= 0.0) {
      any_floor = true;
      continue;
    }
    q_lo = any_q ? std::min(q_lo, q) : q;
    q_hi = any_q ? std::max(q_hi, q) : q;
    any_q = true;
  }
  if (!any) {
    bits_lo = 2.0;
    bits_hi = 16.0;
  }
  const double bits_pad = 0.04 * std::max(bits_hi - bits_lo, 1.0);
  const LinearTicks x_ticks = linear_ticks(bits_lo - bits_pad, bits_hi + bits_pad, 8);
  const Scale x(ScaleKind::linear, x_ticks.lo, x_ticks.hi, L::kLeft, L::kRight);

  std::vector<Tick> y_ticks;
  Scale y;
  if (log_axis) {
    if (!any_q) {
      q_lo = 1e-4;
      q_hi = 1e-1;
    }
    y_ticks = log_ticks(q_lo / 1.2, q_hi * 1.2);
    y = Scale(ScaleKind::log, y_ticks.front().value, y_ticks.back().value, L::kBottom, L::kTop);
  } else {
    double smallest = 0.0;
    for (std::size_t i = 0; i < points.size(); ++i) {
      const double magnitude = std::fabs(quality(points[i], axis));
      if (plotted[i] && magnitude > 0.0 && (smallest == 0.0 || magnitude < smallest)) smallest = magnitude;
    }
    const double constant =
        smallest > 0.0 ? std::clamp(std::pow(10.0, std::floor(std::log10(smallest))), 1e-3, 1.0) : 1.0;
    y_ticks = symlog_ticks(std::min(q_lo, 0.0), std::max(q_hi, constant), constant);
    y = Scale(ScaleKind::symlog, y_ticks.front().value, y_ticks.back().value, L::kBottom, L::kTop, constant);
  }

  std::vector<std::array<double, 2>> centres(points.size(), {0.0, 0.0});
  for (std::size_t i = 0; i < points.size(); ++i) {
    if (!plotted[i]) continue;
    const double q = quality(points[i], axis);
    centres[i] = {x(points[i].bits), log_axis && q <= 0.0 ? L::kBottom : y(q)};
  }

  // Table geometry: the widest label sets the policy column.
  std::size_t longest = 6;
  for (const ParetoPoint& p : points) longest = std::max(longest, p.label.size());
  const double policy_x = L::kLeft + 34.0;
  const double numbers_x = policy_x + L::kMonoCharWidth * static_cast<double>(longest) + 24.0;
  const double width = std::max(L::kMinWidth, numbers_x + 3.0 * L::kNumberColumn + 24.0);
  const double height = L::kTableTop + L::kRowHeight * static_cast<double>(points.size() + 1) + 24.0;

  std::string view_box = "0 0 ";
  view_box += fixed(width, 0);
  view_box += ' ';
  view_box += fixed(height, 0);
  MarkupWriter svg;
  svg.raw("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
  svg.open("svg", {{"xmlns", "http://www.w3.org/2000/svg"},
                   {"width", fixed(width, 0)},
                   {"height", fixed(height, 0)},
                   {"viewBox", view_box},
                   {"font-family", "DejaVu Sans, Helvetica, Arial, sans-serif"},
                   {"font-size", "12"}});
  const std::string title = chart.title.empty() ? "kvbits: quality against KV cache memory" : chart.title;
  svg.element("title", {}, title);
  svg.leaf("rect", {{"width", fixed(width, 0)}, {"height", fixed(height, 0)}, {"fill", "#ffffff"}});
  svg.element("text", {{"x", fixed(L::kLeft, 0)}, {"y", "30"}, {"font-size", "17"}, {"font-weight", "bold"}},
              title);
  svg.element("text", {{"x", fixed(L::kLeft, 0)}, {"y", "48"}, {"fill", "#555555"}},
              log_axis ? "mean KL(FP32 || policy) per position, log scale; lower left is better"
                       : "change of perplexity against FP32 in %, symmetric log scale; lower left is better");

  // Grid, then axes with their ticks.
  svg.open("g", {{"class", "grid"}, {"stroke-width", "1"}});
  if (log_axis) {
    for (std::size_t t = 0; t + 1 < y_ticks.size(); ++t) {
      for (int m = 2; m <= 9; ++m) {
        const std::string py = fixed(y(y_ticks[t].value * m), 2);
        svg.leaf("line", {{"x1", fixed(L::kLeft, 0)},
                          {"x2", fixed(L::kRight, 0)},
                          {"y1", py},
                          {"y2", py},
                          {"stroke", std::string(detail::kMinorGridColour)}});
      }
    }
  }
  for (const Tick& t : y_ticks) {
    const std::string py = fixed(y(t.value), 2);
    svg.leaf("line", {{"x1", fixed(L::kLeft, 0)},
                      {"x2", fixed(L::kRight, 0)},
                      {"y1", py},
                      {"y2", py},
                      {"stroke", std::string(detail::kGridColour)}});
  }
  for (const Tick& t : x_ticks.ticks) {
    const std::string px = fixed(x(t.value), 2);
    svg.leaf("line", {{"x1", px},
                      {"x2", px},
                      {"y1", fixed(L::kTop, 0)},
                      {"y2", fixed(L::kBottom, 0)},
                      {"stroke", std::string(detail::kGridColour)}});
  }
  svg.close();

  svg.open("g", {{"class", "axes"}, {"fill", "#333333"}});
  svg.leaf("rect", {{"x", fixed(L::kLeft, 0)},
                    {"y", fixed(L::kTop, 0)},
                    {"width", fixed(L::kPlotWidth, 0)},
                    {"height", fixed(L::kPlotHeight, 0)},
                    {"fill", "none"},
                    {"stroke", "#888888"}});
  for (const Tick& t : x_ticks.ticks) {
    svg.element("text",
                {{"x", fixed(x(t.value), 2)}, {"y", fixed(L::kBottom + 18.0, 0)}, {"text-anchor", "middle"}},
                t.label);
  }
  for (const Tick& t : y_ticks) {
    const std::string py = fixed(y(t.value) + 4.0, 2);
    const std::string px = fixed(L::kLeft - 8.0, 0);
    if (log_axis) {
      // 10 with the exponent raised: the label is the exponent k of 10^k.
      svg.open("text", {{"x", px}, {"y", py}, {"text-anchor", "end"}});
      svg.text("10");
      svg.element("tspan", {{"dy", "-6"}, {"font-size", "9"}}, t.label);
      svg.close();
    } else {
      svg.element("text", {{"x", px}, {"y", py}, {"text-anchor", "end"}}, t.label);
    }
  }
  svg.element("text",
              {{"x", fixed(L::kLeft + L::kPlotWidth / 2, 0)},
               {"y", fixed(L::kBottom + 42.0, 0)},
               {"text-anchor", "middle"}},
              "stored bits per K/V element");
  const std::string y_label_x = fixed(L::kLeft - 56.0, 0);
  const std::string y_label_y = fixed(L::kTop + L::kPlotHeight / 2, 0);
  std::string rotation = "rotate(-90 ";
  rotation += y_label_x;
  rotation += ' ';
  rotation += y_label_y;
  rotation += ')';
  svg.element("text",
              {{"x", y_label_x}, {"y", y_label_y}, {"text-anchor", "middle"}, {"transform", rotation}},
              log_axis ? "mean KL" : "perplexity change (%)");
  svg.close();

  // The zero line stands for the references on the perplexity axis.
  const bool any_reference = std::any_of(points.begin(), points.end(),
                                         [](const ParetoPoint& p) { return p.kind == PointKind::reference; });
  if (!log_axis) {
    const std::string py = fixed(y(0.0), 2);
    svg.leaf("line", {{"class", "reference"},
                      {"x1", fixed(L::kLeft, 0)},
                      {"x2", fixed(L::kRight, 0)},
                      {"y1", py},
                      {"y2", py},
                      {"stroke", "#999999"},
                      {"stroke-dasharray", "6 4"}});
  }

  // Lines under the markers: the static frontier, then each family.
  const std::vector<std::size_t> frontier = static_frontier(points, axis);
  if (frontier.size() > 1) {
    svg.leaf("polyline", {{"class", "frontier"},
                          {"points", detail::polyline_points(frontier, centres)},
                          {"fill", "none"},
                          {"stroke", std::string(detail::kStaticColour)},
                          {"stroke-width", "1.8"}});
  }
  const std::vector<detail::Family> families = detail::adaptive_families(points, plotted, axis);
  for (const detail::Family& family : families) {
    if (family.members.size() < 2) continue;
    svg.leaf("polyline", {{"class", "family"},
                          {"data-family", family.name},
                          {"points", detail::polyline_points(family.members, centres)},
                          {"fill", "none"},
                          {"stroke", family.style.colour},
                          {"stroke-width", "1.6"}});
  }

  // Markers, each with a tooltip, then their numbers.
  const auto style_of = [&](std::size_t i) -> detail::SeriesStyle {
    if (points[i].kind == PointKind::adaptive) {
      for (const detail::Family& family : families) {
        if (family.name == points[i].family) return family.style;
      }
    }
    return {std::string(detail::kStaticColour), 0};
  };
  std::vector<std::array<double, 2>> marker_centres;
  std::vector<std::string> numbers;
  std::vector<std::size_t> marker_points;
  svg.open("g", {{"class", "points"}});
  for (std::size_t i = 0; i < points.size(); ++i) {
    if (!plotted[i]) continue;
    const ParetoPoint& p = points[i];
    const detail::SeriesStyle style = style_of(i);
    const bool on_frontier = std::find(frontier.begin(), frontier.end(), i) != frontier.end();
    const bool hollow = p.kind == PointKind::static_config && !on_frontier;
    std::string tooltip = "#";
    tooltip += std::to_string(i + 1);
    tooltip += ' ';
    tooltip += p.label;
    tooltip += ": ";
    tooltip += fixed(p.bits, 2);
    tooltip += " bits, mean KL ";
    tooltip += detail::table_value(p.mean_kl, 3);
    tooltip += ", perplexity ";
    tooltip += detail::table_value(p.perplexity_change_percent, 3);
    tooltip += " %";
    svg.open("g", {{"class", "point"}, {"data-index", std::to_string(i + 1)}});
    svg.element("title", {}, tooltip);
    detail::write_marker(svg, style.shape, centres[i][0], centres[i][1], hollow ? "#ffffff" : style.colour,
                         style.colour);
    svg.close();
    marker_centres.push_back(centres[i]);
    numbers.push_back(std::to_string(i + 1));
    marker_points.push_back(i);
  }
  svg.close();
  const std::vector<detail::LabelPlacement> placements = detail::place_labels(marker_centres, numbers);
  svg.open("g", {{"class", "labels"}, {"font-size", "10"}});
  for (std::size_t m = 0; m < placements.size(); ++m) {
    const detail::LabelPlacement& at = placements[m];
    const std::string colour = style_of(marker_points[m]).colour;
    if (at.leader) {
      svg.leaf("line", {{"x1", fixed(marker_centres[m][0], 2)},
                        {"y1", fixed(marker_centres[m][1], 2)},
                        {"x2", fixed(at.x, 2)},
                        {"y2", fixed(at.y - 3.0, 2)},
                        {"stroke", colour},
                        {"stroke-width", "0.6"}});
    }
    svg.element("text",
                {{"x", fixed(at.x, 2)},
                 {"y", fixed(at.y, 2)},
                 {"text-anchor", std::string(at.anchor)},
                 {"fill", colour}},
                numbers[m]);
  }
  svg.close();

  // Legend: what each style means, and where the references are.
  double ly = L::kTop + 8.0;
  const double lx = L::kLegendX;
  const auto swatch = [&](const std::string& colour, int shape, bool hollow, bool line,
                          std::string_view text) {
    if (line) {
      svg.leaf("line", {{"x1", fixed(lx, 0)},
                        {"x2", fixed(lx + 26.0, 0)},
                        {"y1", fixed(ly, 2)},
                        {"y2", fixed(ly, 2)},
                        {"stroke", colour},
                        {"stroke-width", "1.6"}});
    }
    detail::write_marker(svg, shape, lx + 13.0, ly, hollow ? "#ffffff" : colour, colour);
    svg.element("text", {{"x", fixed(lx + 34.0, 0)}, {"y", fixed(ly + 4.0, 2)}}, text);
    ly += 20.0;
  };
  svg.open("g", {{"class", "legend"}});
  const bool any_static = std::any_of(
      points.begin(), points.end(), [](const ParetoPoint& p) { return p.kind == PointKind::static_config; });
  if (any_static) {
    swatch(std::string(detail::kStaticColour), 0, false, true, "static, on the frontier");
    swatch(std::string(detail::kStaticColour), 0, true, false, "static, dominated");
  }
  for (const detail::Family& family : families) {
    swatch(family.style.colour, family.style.shape, false, family.members.size() > 1, family.name);
  }
  if (any_reference) {
    ly += 6.0;
    if (!log_axis) {
      svg.leaf("line", {{"x1", fixed(lx, 0)},
                        {"x2", fixed(lx + 26.0, 0)},
                        {"y1", fixed(ly, 2)},
                        {"y2", fixed(ly, 2)},
                        {"stroke", "#999999"},
                        {"stroke-dasharray", "6 4"}});
    }
    for (std::size_t i = 0; i < points.size(); ++i) {
      if (points[i].kind != PointKind::reference) continue;
      std::string note = "#";
      note += std::to_string(i + 1);
      note += ' ';
      note += points[i].label;
      note += ": reference, ";
      note += fixed(points[i].bits, 2);
      note += " bits";
      svg.element("text", {{"x", fixed(log_axis ? lx : lx + 34.0, 0)}, {"y", fixed(ly + 4.0, 2)}}, note);
      ly += 16.0;
    }
    svg.element("text",
                {{"x", fixed(log_axis ? lx : lx + 34.0, 0)}, {"y", fixed(ly + 4.0, 2)}, {"fill", "#555555"}},
                log_axis ? "KL 0: below any log axis" : "the dashed line, change 0");
    ly += 20.0;
  }
  if (any_floor) {
    svg.element("text", {{"x", fixed(lx, 0)}, {"y", fixed(ly + 4.0, 2)}, {"fill", "#555555"}},
                "markers on the floor: KL 0");
  }
  svg.close();

  // Table: every point, numbered as on the plot.
  svg.open("g", {{"class", "table"},
                 {"font-family", "DejaVu Sans Mono, Menlo, Consolas, monospace"},
                 {"font-size", "11"}});
  const auto row = [&](double ry, std::string_view number, std::string_view label,
                       const std::array<std::string, 3>& values, bool bold) {
    const std::string weight = bold ? "bold" : "normal";
    svg.element("text",
                {{"x", fixed(policy_x - 10.0, 0)},
                 {"y", fixed(ry, 0)},
                 {"text-anchor", "end"},
                 {"font-weight", weight}},
                number);
    svg.element("text", {{"x", fixed(policy_x, 0)}, {"y", fixed(ry, 0)}, {"font-weight", weight}}, label);
    for (std::size_t c = 0; c < values.size(); ++c) {
      svg.element("text",
                  {{"x", fixed(numbers_x + L::kNumberColumn * static_cast<double>(c + 1), 0)},
                   {"y", fixed(ry, 0)},
                   {"text-anchor", "end"},
                   {"font-weight", weight}},
                  values[c]);
    }
  };
  row(L::kTableTop, "#", "policy", {"bits/elem", "mean KL", "ppl change %"}, true);
  for (std::size_t i = 0; i < points.size(); ++i) {
    const ParetoPoint& p = points[i];
    row(L::kTableTop + L::kRowHeight * static_cast<double>(i + 1), std::to_string(i + 1), p.label,
        {std::isfinite(p.bits) ? fixed(p.bits, 2) : "n/a", detail::table_value(p.mean_kl, 3),
         detail::table_value(p.perplexity_change_percent, 3)},
        false);
  }
  svg.close();

  svg.close();
  std::string document = std::move(svg).finish();
  document += '\n';
  return document;
}

}  // namespace kvbits::report
