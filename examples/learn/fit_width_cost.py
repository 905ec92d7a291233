# SPDX-License-Identifier: MIT
"""Fits the learned controller's attention-time cost to bench_width_cost's JSON output and prints
the rows of kAttentionTimes (examples/learn/width_cost.hpp).

For each model shape, at one context length (default 512), a side's time of width b is the median
ns_per_token of the row `key/b` (keys at b, values at 16) or `value/b` (values at b, keys at 16),
divided by the median of `both/16` (the all-16-bit cache): 1 at 16 bits.

usage: python3 fit_width_cost.py BENCH.json [--tokens N]
  BENCH.json from bench_width_cost --benchmark_repetitions=R --benchmark_out=BENCH.json
"""

import argparse
import json
import sys

WIDTHS = [2, 3, 4, 5, 6, 8, 16]
# The dataset's model file name and cache options of each benchmark shape.
SHAPES = {"stories260K": ("stories260K.gguf", "t=scale"), "bible919K": ("bible919K.gguf", "g=32")}


def medians(bench):
    rows = {}
    for row in bench["benchmarks"]:
        if row.get("run_type") == "aggregate" and row.get("aggregate_name") == "median":
            rows[row["run_name"]] = row["ns_per_token"]
        elif row.get("run_type") == "iteration" and "repetitions" not in row:
            rows.setdefault(row["run_name"], row["ns_per_token"])
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bench_json")
    parser.add_argument("--tokens", type=int, default=512)
    args = parser.parse_args(argv)
    with open(args.bench_json, encoding="utf-8") as handle:
        rows = medians(json.load(handle))
    for shape, (model, cache) in SHAPES.items():
        prefix = f"width_cost/{shape}/N{args.tokens}/"
        base = rows[prefix + "both/16"]
        sides = []
        for side in ("key", "value"):
            ratios = [1.0 if b == 16 else rows[f"{prefix}{side}/{b}"] / base for b in WIDTHS]
            sides.append("{" + ", ".join(f"{r:.3f}" for r in ratios) + "}")
        print(f'    {{"{model}", "{cache}", {sides[0]}, {sides[1]}}},  // both/16: {base:.2f} ns/token')
    return 0


if __name__ == "__main__":
    sys.exit(main())
