// SPDX-License-Identifier: MIT
#include <cctype>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "browser/sample_points.hpp"
#include "support/require_error.hpp"

#include "report/eval_points.hpp"
#include "report/json_value.hpp"
#include "report/markup.hpp"
#include "report/pareto_svg.hpp"
#include "report/scales.hpp"
#include "report/token_view_html.hpp"

namespace {

using kvbits::report::JsonValue;
using kvbits::report::ParetoAxis;
using kvbits::report::ParetoChart;
using kvbits::report::ParetoPoint;
using kvbits::report::PointKind;
using kvbits::report::policy_point;
using kvbits::report::TokenView;
using kvbits::report::TokenWidths;
using kvbits::test::sample_points;

/// What check_markup found: the first problem (empty when none) and how many elements it read.
struct MarkupCheck {
  std::string problem;
  std::size_t elements = 0;
};

/// @return true when `text` at `at` starts one of the entities the writers produce.
bool entity_at(std::string_view text, std::size_t at) {
  for (const std::string_view entity : {"&amp;", "&lt;", "&gt;", "&quot;", "&#39;"}) {
    if (text.substr(at, entity.size()) == entity) return true;
  }
  return false;
}

/**
 * A small well-formedness check of XML, or of HTML written as XML: every tag closed in order,
 * attribute values quoted, no '<' in them, every '&' an entity. Script and style contents are
 * raw text up to their end tag; <?...?>, <!-- --> and <!DOCTYPE> are skipped.
 */
MarkupCheck check_markup(std::string_view doc) {
  MarkupCheck check;
  std::vector<std::string> open;
  const auto is_name = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == ':';
  };
  const auto fail = [&](std::string what, std::size_t at) {
    check.problem = std::move(what);
    check.problem += " at offset ";
    check.problem += std::to_string(at);
    return check;
  };
  std::size_t pos = 0;
  while (pos < doc.size()) {
    if (doc[pos] == '&') {
      if (!entity_at(doc, pos)) return fail("bare '&'", pos);
      ++pos;
      continue;
    }
    if (doc[pos] != '<') {
      ++pos;
      continue;
    }
    const std::string_view rest = doc.substr(pos);
    if (rest.starts_with("<?") || rest.starts_with("<!--") || rest.starts_with("<!")) {
      const std::string_view end = rest.starts_with("<?") ? "?>" : (rest.starts_with("<!--") ? "-->" : ">");
      const std::size_t close = doc.find(end, pos);
      if (close == std::string_view::npos) return fail("unterminated declaration", pos);
      pos = close + end.size();
      continue;
    }
    if (rest.starts_with("</")) {
      const std::size_t close = doc.find('>', pos);
      if (close == std::string_view::npos) return fail("unterminated end tag", pos);
      const std::string name(doc.substr(pos + 2, close - pos - 2));
      if (open.empty() || open.back() != name) return fail("</" + name + "> closes the wrong element", pos);
      open.pop_back();
      pos = close + 1;
      continue;
    }
    std::size_t at = pos + 1;
    while (at < doc.size() && is_name(doc[at])) ++at;
    const std::string name(doc.substr(pos + 1, at - pos - 1));
    if (name.empty()) return fail("bare '<'", pos);
    ++check.elements;
    bool self_closing = false;
    while (true) {
      while (at < doc.size() && doc[at] == ' ') ++at;
      if (at >= doc.size()) return fail("unterminated tag <" + name + ">", pos);
      if (doc.substr(at, 2) == "/>") {
        self_closing = true;
        at += 2;
        break;
      }
      if (doc[at] == '>') {
        ++at;
        break;
      }
      const std::size_t equals = doc.find('=', at);
      if (equals == std::string_view::npos || doc[equals + 1] != '"') return fail("unquoted attribute", at);
      for (std::size_t c = at; c < equals; ++c) {
        if (!is_name(doc[c])) return fail("bad attribute name", c);
      }
      const std::size_t quote = doc.find('"', equals + 2);
      if (quote == std::string_view::npos) return fail("unterminated attribute", at);
      for (std::size_t c = equals + 2; c < quote; ++c) {
        if (doc[c] == '<') return fail("'<' in an attribute", c);
        if (doc[c] == '&' && !entity_at(doc, c)) return fail("bare '&' in an attribute", c);
      }
      at = quote + 1;
    }
    pos = at;
    if (self_closing) continue;
    if (name == "script" || name == "style") {
      std::string end_tag = "</";
      end_tag += name;
      const std::size_t close = doc.find(end_tag, pos);
      if (close == std::string_view::npos) return fail("unterminated <" + name + ">", pos);
      pos = close + end_tag.size() + 1;
      continue;
    }
    open.push_back(name);
  }
  if (!open.empty()) return fail("<" + open.back() + "> never closed", doc.size());
  return check;
}

std::size_t count(std::string_view text, std::string_view part) {
  std::size_t n = 0;
  for (std::size_t at = text.find(part); at != std::string_view::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

/// The (x, y) pairs of the `points` attribute of the first element carrying `marker`.
std::vector<std::pair<double, double>> polyline_after(std::string_view svg, std::string_view marker) {
  std::vector<std::pair<double, double>> pairs;
  const std::size_t at = svg.find(marker);
  if (at == std::string_view::npos) return pairs;
  const std::size_t begin = svg.find("points=\"", at) + 8;
  const std::string list(svg.substr(begin, svg.find('"', begin) - begin));
  std::size_t pos = 0;
  while (pos < list.size()) {
    std::size_t used = 0;
    const double x = std::stod(list.substr(pos), &used);
    pos += used + 1;  // the comma
    const double y = std::stod(list.substr(pos), &used);
    pos += used + 1;  // the space
    pairs.emplace_back(x, y);
  }
  return pairs;
}

}  // namespace

TEST_CASE("escaping makes any text safe character data", "[report]") {
  using kvbits::report::escaped;
  CHECK(escaped("<a & \"b\" 'c'>") == "&lt;a &amp; &quot;b&quot; &#39;c&#39;&gt;");
  CHECK(escaped("plain, caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80") ==
        "plain, caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
  CHECK(escaped("tab\tnew\nline") == "tab\tnew\nline");
  SECTION("ill-formed UTF-8 and forbidden characters become U+FFFD") {
    const std::string r(kvbits::report::detail::kReplacement);
    CHECK(escaped("a\xFF"
                  "b") == "a" + r + "b");
    CHECK(escaped("\xC0\xAF") == r + r);                  // overlong '/'
    CHECK(escaped("\xE2\x82") == r + r);                  // cut short
    CHECK(escaped("\xED\xA0\x80") == r + r + r);          // a surrogate
    CHECK(escaped("\xF4\x90\x80\x80") == r + r + r + r);  // beyond U+10FFFF
    CHECK(escaped(std::string_view("\x01\x00", 2)) == r + r);
    CHECK(escaped("\xEF\xBF\xBF") == r);
  }
}

TEST_CASE("numbers are written the same in every locale and without negative zero", "[report]") {
  using kvbits::report::fixed;
  CHECK(fixed(1.5, 1) == "1.5");
  CHECK(fixed(12.345, 2) == "12.35");
  CHECK(fixed(-0.001, 2) == "0.00");
  CHECK(fixed(-1.25, 1) == "-1.2");
  CHECK(kvbits::report::shortest(0.001) == "0.001");
  CHECK(kvbits::report::significant(2.2e-3, 2) == "0.0022");
}

TEST_CASE("the markup writer closes what it opens", "[report]") {
  kvbits::report::MarkupWriter ok;
  ok.open("a", {{"href", "x?a=1&b=\"2\""}}).text("1 < 2").leaf("br").close();
  CHECK(std::move(ok).finish() == "<a href=\"x?a=1&amp;b=&quot;2&quot;\">1 &lt; 2<br/></a>");

  kvbits::report::MarkupWriter unclosed;
  unclosed.open("svg").open("g");
  kvbits::test::require_error([&] { (void)std::move(unclosed).finish(); }, kvbits::Errc::invalid_argument,
                              "<g> is still open");
  kvbits::report::MarkupWriter empty;
  kvbits::test::require_error([&] { empty.close(); }, kvbits::Errc::invalid_argument, "no open element");
}

TEST_CASE("axis ticks land on round values around the data", "[report]") {
  const kvbits::report::LinearTicks bits = kvbits::report::linear_ticks(1.44, 16.56, 8);
  CHECK(bits.lo == 0.0);
  CHECK(bits.hi == 18.0);
  REQUIRE(bits.ticks.size() == 10);
  CHECK(bits.ticks[1].label == "2");
  CHECK(kvbits::report::linear_ticks(0.0, 0.7, 5).ticks[1].label == "0.2");

  const auto decades = kvbits::report::log_ticks(2e-7, 0.7);
  REQUIRE(decades.size() == 8);
  CHECK(decades.front().label == "-7");
  CHECK(decades.back().label == "0");
  CHECK(kvbits::report::log_ticks(0.02, 0.03).size() == 2);

  const auto symlog = kvbits::report::symlog_ticks(-0.5, 84.0, 0.1);
  std::vector<std::string> labels;
  for (const auto& t : symlog) labels.push_back(t.label);
  CHECK(labels == std::vector<std::string>{"-1", "-0.1", "0", "0.1", "1", "10", "100"});

  const kvbits::report::Scale log(kvbits::report::ScaleKind::log, 1e-3, 1.0, 300.0, 0.0);
  CHECK(log(1e-3) == Approx(300.0));
  CHECK(log(1e-2) == Approx(200.0));
  CHECK(log(1.0) == Approx(0.0));
  const kvbits::report::Scale symmetric(kvbits::report::ScaleKind::symlog, -10.0, 10.0, 0.0, 200.0, 1.0);
  CHECK(symmetric(0.0) == Approx(100.0));
  CHECK(symmetric(-10.0) == Approx(0.0));
  CHECK(symmetric(5.0) - 100.0 == Approx(100.0 - symmetric(-5.0)));
}

TEST_CASE("policies are sorted into kinds and families by their specification", "[report]") {
  using kvbits::report::family_of_policy;
  using kvbits::report::kind_of_policy;
  struct Case {
    std::string_view spec;
    std::string_view family;
    PointKind kind;
  };
  const std::vector<Case> cases = {
      {"fp32", "fp32", PointKind::reference},
      {"fp32,w=4", "fp32", PointKind::reference},
      {"fp16", "fp16", PointKind::static_config},
      {"fp16,g=32", "fp16", PointKind::static_config},
      {"static:8,8,t=scale", "static", PointKind::static_config},
      {" static:4,4", "static", PointKind::static_config},
      {"tiers:4=16/16,16=8/8,*=4/2", "tiers", PointKind::adaptive},
      // A hard fp16 window is a static configuration spelled as tiers.
      {"tiers:16=16/16,*=4/2,t=scale", "tiers", PointKind::static_config},
      {"tiers:8=32/32,*=2/2,g=32", "tiers", PointKind::static_config},
      {"tiers:8=8/8,*=2/2", "tiers", PointKind::adaptive},
      {"tiers:1=16/16,4=8/8,*=4/2,k+=0.05", "tiers", PointKind::adaptive},
      {"budget:7.5:static:8,8", "budget", PointKind::adaptive},
      {"random:4/2:1,8/8:1", "random", PointKind::adaptive},
      {"rule:4/2,entropy>2=8/4,w=1", "rule", PointKind::adaptive},
      {"learned:model.bin", "learned", PointKind::adaptive},
  };
  for (const Case& c : cases) {
    INFO(c.spec);
    CHECK(family_of_policy(c.spec) == c.family);
    CHECK(kind_of_policy(c.spec) == c.kind);
  }
}

TEST_CASE("the y measure is read from its option text", "[report]") {
  CHECK(kvbits::report::parse_pareto_axis("kl", "--y") == ParetoAxis::mean_kl);
  CHECK(kvbits::report::parse_pareto_axis("ppl", "--y") == ParetoAxis::perplexity_change);
  kvbits::test::require_error([] { (void)kvbits::report::parse_pareto_axis("KL", "--plot-y"); },
                              kvbits::Errc::invalid_argument, "--plot-y expects kl or ppl, got 'KL'");
}

TEST_CASE("the static frontier keeps the undominated static points by bits", "[report]") {
  const std::vector<ParetoPoint> points = sample_points();
  std::vector<std::string> labels;
  for (const std::size_t i : kvbits::report::static_frontier(points, ParetoAxis::mean_kl)) {
    labels.push_back(points[i].label);
  }
  // static:8,4 (6.5 bits) loses to static:6,6 at the same bits; adaptive points never count.
  CHECK(labels == std::vector<std::string>{"static:2,2", "static:4,2", "static:4,4", "static:6,6",
                                           "static:8,8", "fp16"});

  std::vector<ParetoPoint> ppl = points;
  ppl[6].perplexity_change_percent = 0.5;  // static:6,6 now worse than static:8,4 on perplexity
  labels.clear();
  for (const std::size_t i : kvbits::report::static_frontier(ppl, ParetoAxis::perplexity_change)) {
    labels.push_back(ppl[i].label);
  }
  CHECK(labels == std::vector<std::string>{"static:2,2", "static:4,2", "static:4,4", "static:8,4",
                                           "static:8,8", "fp16"});
}

TEST_CASE("the Pareto chart is well-formed SVG showing every point", "[report]") {
  std::vector<ParetoPoint> points = sample_points();
  points.push_back(policy_point("weird <label> & \"quotes\" \xFF", 5.5, 2.0e-2, 2.0));
  points.back().family = "weird";
  const ParetoChart chart{"quality & memory <test>", ParetoAxis::mean_kl};
  const std::string svg = kvbits::report::pareto_svg(points, chart);

  const MarkupCheck check = check_markup(svg);
  INFO(check.problem);
  REQUIRE(check.problem.empty());
  CHECK(check.elements > 100);
  CHECK(svg.starts_with(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\""));

  SECTION("every label, escaped, in the table") {
    for (const ParetoPoint& p : points) {
      INFO(p.label);
      CHECK(svg.find(kvbits::report::escaped(p.label)) != std::string::npos);
    }
    CHECK(svg.find("weird &lt;label&gt; &amp; &quot;quotes&quot; \xEF\xBF\xBD") != std::string::npos);
    CHECK(svg.find("<label>") == std::string::npos);
    CHECK(svg.find("quality &amp; memory &lt;test&gt;") != std::string::npos);
  }
  SECTION("a marker per point but the reference, which the legend names") {
    CHECK(count(svg, "class=\"point\"") == points.size() - 1);
    CHECK(svg.find("data-index=\"1\"") == std::string::npos);  // fp32
    CHECK(svg.find("#1 fp32: reference, 32.00 bits") != std::string::npos);
  }
  SECTION("the frontier line runs through the frontier points, left to right, downhill in KL") {
    const auto line = polyline_after(svg, "class=\"frontier\"");
    REQUIRE(line.size() == 6);
    for (std::size_t i = 1; i < line.size(); ++i) {
      INFO("frontier point " << i);
      CHECK(line[i].first > line[i - 1].first);
      CHECK(line[i].second > line[i - 1].second);  // SVG y grows downwards: less KL
    }
  }
  SECTION("each adaptive family with two or more points is joined, in increasing bits") {
    for (const std::string_view family : {"tiers", "budget"}) {
      std::string marker = "data-family=\"";
      marker += family;
      const auto line = polyline_after(svg, marker);
      INFO(family);
      REQUIRE(line.size() == 2);
      CHECK(line[0].first < line[1].first);
    }
    CHECK(svg.find("data-family=\"rule\"") == std::string::npos);  // a single point
    CHECK(svg.find(">rule</text>") != std::string::npos);          // yet in the legend
  }
  SECTION("the same input gives the same bytes") {
    const std::vector<ParetoPoint> copy = points;
    CHECK(kvbits::report::pareto_svg(copy, chart) == svg);
  }
}

TEST_CASE("the Pareto chart copes with zero, missing and negative values", "[report]") {
  std::vector<ParetoPoint> points = sample_points();
  points.push_back(policy_point("static:32,32", 32.0, 0.0, 0.0));
  points.push_back(policy_point("static:3,3", 3.5, std::numeric_limits<double>::quiet_NaN(), 40.0));

  const std::string kl = kvbits::report::pareto_svg(points, {});
  CHECK(check_markup(kl).problem.empty());
  CHECK(kl.find("markers on the floor: KL 0") != std::string::npos);
  CHECK(kl.find("nan") == std::string::npos);
  CHECK(kl.find("inf") == std::string::npos);
  CHECK(kl.find(">n/a<") != std::string::npos);  // static:3,3's KL in the table
  CHECK(count(kl, "class=\"point\"") == points.size() - 2);

  const std::string ppl = kvbits::report::pareto_svg(points, {"", ParetoAxis::perplexity_change});
  CHECK(check_markup(ppl).problem.empty());
  CHECK(ppl.find("class=\"reference\"") != std::string::npos);
  CHECK(ppl.find(">-0.1<") != std::string::npos);  // the symlog axis reaches the negative point
  CHECK(count(ppl, "class=\"point\"") == points.size() - 1);

  const std::string empty = kvbits::report::pareto_svg({}, {});
  CHECK(check_markup(empty).problem.empty());
  CHECK(count(empty, "class=\"point\"") == 0);
}

TEST_CASE("the token view escapes the text and embeds every layer", "[report]") {
  TokenView view;
  view.model = "models/<tiny>.gguf";
  view.policy = "rule:4/2,entropy>2=8/4";
  view.tokens = {"<s>", "<script>alert(1)</script>", " a & \"b\"", "", "\xE2"};
  view.prompt_tokens = 2;
  // Three layers of four stored tokens: the fifth token was sampled last and never stored.
  view.layers = {
      {{32, 32, true}, {8, 4, false}, {4, 2, false}, {32, 32, true}},
      {{32, 32, true}, {16, 16, false}, {2, 2, false}, {32, 32, true}},
      {{32, 32, true}, {8, 8, false}, {4, 4, false}, {32, 32, true}},
  };
  view.bits_per_element = {32.0, 24.5, 18.25, 16.0};
  const std::string html = kvbits::report::token_view_html(view);

  const MarkupCheck check = check_markup(html);
  INFO(check.problem);
  REQUIRE(check.problem.empty());
  CHECK(html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));

  SECTION("token text, model and policy are escaped") {
    CHECK(html.find("<script>alert") == std::string::npos);
    CHECK(html.find(">&lt;script&gt;alert(1)&lt;/script&gt;</span>") != std::string::npos);
    CHECK(html.find("> a &amp; &quot;b&quot;</span>") != std::string::npos);
    CHECK(html.find(">\xEF\xBF\xBD</span>") != std::string::npos);  // the lone byte
    CHECK(html.find(">\xE2\x88\x85</span>") != std::string::npos);  // the empty token
    CHECK(html.find("models/&lt;tiny&gt;.gguf") != std::string::npos);
    CHECK(html.find("rule:4/2,entropy&gt;2=8/4") != std::string::npos);
    CHECK(count(html, "<span class=\"t\" data-i=\"") == view.tokens.size());
  }
  SECTION("every layer's widths are in the data block and the selector") {
    const std::string json =
        "{\"tokens\":5,\"prompt\":2,"
        "\"key\":[[32,8,4,32],[32,16,2,32],[32,8,4,32]],"
        "\"value\":[[32,4,2,32],[32,16,2,32],[32,8,4,32]],"
        "\"float\":[[1,0,0,1],[1,0,0,1],[1,0,0,1]]}";
    CHECK(kvbits::report::detail::token_view_json(view) == json);
    CHECK(html.find("<script id=\"kvbits-data\" type=\"application/json\">" + json + "</script>") !=
          std::string::npos);
    CHECK(count(html, "<option value=") == 3);
    CHECK(html.find("<option value=\"2\">2</option>") != std::string::npos);
  }
  SECTION("the legend lists the widths in use and the unstored token") {
    for (const std::string_view used :
         {">2-bit<", ">4-bit<", ">8-bit<", ">16-bit<", ">32-bit (float)<", ">not stored<"}) {
      CHECK(html.find(used) != std::string::npos);
    }
    CHECK(html.find(">5-bit<") == std::string::npos);
    CHECK(html.find(">3-bit<") == std::string::npos);
  }
  SECTION("the chart has a point per stored token, falling as the bits do") {
    const auto line = polyline_after(html, "id=\"bits-chart\"");
    REQUIRE(line.size() == view.bits_per_element.size());
    for (std::size_t i = 1; i < line.size(); ++i) {
      CHECK(line[i].first > line[i - 1].first);
      CHECK(line[i].second > line[i - 1].second);
    }
    CHECK(html.find("16.000 bits/element at the end") != std::string::npos);
  }
  SECTION("deterministic") { CHECK(kvbits::report::token_view_html(view) == html); }
  SECTION("an empty view is still a page") {
    const std::string empty = kvbits::report::token_view_html(TokenView{});
    CHECK(check_markup(empty).problem.empty());
    CHECK(count(empty, "<option value=") == 0);
  }
}

TEST_CASE("the JSON reader reads what the tools write", "[report]") {
  const JsonValue doc = kvbits::report::parse_json(
      R"( {"a": [1, -2.5e-3, 0, true, false, null], "s": "q\"\\\/\n\u00e9\ud83d\ude00", "o": {}} )");
  REQUIRE(doc.type == JsonValue::Type::object);
  const JsonValue* a = doc.find("a");
  REQUIRE(a != nullptr);
  REQUIRE(a->array.size() == 6);
  CHECK(a->array[0].number == 1.0);
  CHECK(a->array[1].number == -2.5e-3);
  CHECK(a->array[3].boolean);
  CHECK_FALSE(a->array[4].boolean);
  CHECK(a->array[4].type == JsonValue::Type::boolean);
  CHECK(std::isnan(a->array[5].number_or_nan()));
  CHECK(doc.find("s")->string == "q\"\\/\n\xC3\xA9\xF0\x9F\x98\x80");
  CHECK(doc.find("o")->type == JsonValue::Type::object);
  CHECK(doc.find("missing") == nullptr);

  for (const std::string_view bad :
       {"", "{", "[1,]", "{\"a\" 1}", "01", "1.", "\"\\x\"", "\"\\ud800\"", "[1] 2", "tru", "\"a\nb\""}) {
    INFO(bad);
    CHECK_THROWS_AS(kvbits::report::parse_json(bad), kvbits::Error);
  }
  kvbits::test::require_error([] { (void)kvbits::report::parse_json("[1, x]"); }, kvbits::Errc::corrupt_data,
                              "at offset 4");
}

TEST_CASE("a kvbits-eval report becomes chart points", "[report]") {
  const JsonValue run = kvbits::report::parse_json(R"({"model": "m", "policies": [
      {"policy": "fp32", "average_bits": 32, "mean_kl": 0, "perplexity_change_percent": 0},
      {"policy": "static:4,4", "average_bits": 4.5, "mean_kl": 0.011, "perplexity_change_percent": null},
      {"policy": "tiers:4=16/16,*=4/2", "average_bits": 4.1, "mean_kl": 0.031, "perplexity_change_percent": 3.4}]})");
  const std::vector<ParetoPoint> points = kvbits::report::eval_points(run, "bible: ");
  REQUIRE(points.size() == 3);
  CHECK(points[0].kind == PointKind::reference);
  CHECK(points[1].label == "bible: static:4,4");
  CHECK(points[1].family == "static");
  CHECK(points[1].kind == PointKind::static_config);
  CHECK(points[1].bits == 4.5);
  CHECK(std::isnan(points[1].perplexity_change_percent));
  CHECK(points[2].family == "tiers");
  CHECK(points[2].mean_kl == 0.031);

  kvbits::test::require_error([] { (void)kvbits::report::eval_points(kvbits::report::parse_json("{}")); },
                              kvbits::Errc::corrupt_data, "no \"policies\" array");
  kvbits::test::require_error(
      [] {
        (void)kvbits::report::eval_points(
            kvbits::report::parse_json(R"({"policies": [{"policy": "fp16"}]})"));
      },
      kvbits::Errc::corrupt_data, "lacks");
}
