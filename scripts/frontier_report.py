# SPDX-License-Identifier: MIT
"""Reads kvbits-eval --json results of scripts/frontier.sh and writes the tables of
docs/results.md.

  frontier_report.py random-mixes ADAPTIVE.json TIERS...
      prints, one per line, a random: policy with each tiered configuration's final width mix
      (its tokens x layers per (K, V) tier, counted from the value-width histogram) and cache options
  frontier_report.py report --model M --budgets B... --tiers T... -- RESULT.json...
      prints the budget comparison and the whole grid as Markdown

Static configurations are `static:` policies and hard fp16 windows (`tiers:R=16/16,*=K/V`).
At each budget B the tiered configuration (itself at most B bits/element) is compared with the
best static configuration of at most B bits/element, chosen separately for each metric (mean KL,
perplexity, top-1 agreement).
"""

import argparse
import json
import re
import sys

HARD_FP16_WINDOW = re.compile(r"^tiers:\d+=16/16,\*=\d+/\d+(,|$)")
TIER_ITEM = re.compile(r"^(\d+|\*)=(\d+)/(\d+)$")


def load_rows(paths):
    rows, reference = {}, None
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            result = json.load(handle)
        reference = result["reference_perplexity"]
        for row in result["policies"]:
            rows[row["policy"]] = row
    return rows, reference


def is_static(policy):
    return policy.startswith("static:") or bool(HARD_FP16_WINDOW.match(policy))


def split_tiers(policy):
    """(tier (K, V) pairs youngest first, cache option items) of a tiers: policy."""
    pairs, options = [], []
    for item in policy[len("tiers:"):].split(","):
        match = TIER_ITEM.match(item)
        if match:
            pairs.append((int(match.group(2)), int(match.group(3))))
        elif not item.startswith(("k+=", "v+=")):
            options.append(item)
    return pairs, options


def random_mix_policy(rows, policy):
    """The random: policy drawing each token from the final width mix of tiered `policy`."""
    pairs, options = split_tiers(policy)
    values = rows[policy]["value_widths"]
    value_widths = [v for _, v in pairs]
    if len(set(value_widths)) != len(value_widths):
        sys.exit(f"frontier_report: {policy}: tiers share a value width; cannot count its mix")
    mix = [f"{k}/{v}:{values.get(str(v), 0)}" for k, v in pairs if values.get(str(v), 0) > 0]
    return "random:" + ",".join(mix + options)


def random_mixes(adaptive_json, tiers):
    rows, _ = load_rows([adaptive_json])
    for policy in tiers:
        print(random_mix_policy(rows, policy))


def fmt_row(row, reference):
    return (f"| `{row['policy']}` | {row['average_bits']:.3f} | {row['perplexity']:.4f} | "
            f"{row['perplexity_change_percent']:+.3f}% | {row['mean_kl']:.2e} | "
            f"{100.0 * row['top1_agreement']:.2f}% |")


HEADER = ("| policy | bits/element | perplexity | Δ perplexity | mean KL | top-1 agreement |\n"
          "| --- | ---: | ---: | ---: | ---: | ---: |")
METRICS = (("mean KL", "mean_kl", min), ("perplexity", "perplexity", min),
           ("top-1 agreement", "top1_agreement", max))


def report(model, budgets, tiers, budget_inners, paths):
    rows, reference = load_rows(paths)
    static = [row for policy, row in rows.items() if is_static(policy)]
    print(f"### {model}: adaptive against the best static configuration at each budget\n")
    print(f"FP32-cache perplexity {reference:.4f}. {len(static)} static configurations searched "
          f"(full grid below).\n")
    verdicts = []
    for budget, policy, budget_inner in zip(budgets, tiers, budget_inners):
        tiered = rows[policy]
        candidates = [row for row in static if row["average_bits"] <= float(budget) + 1e-9]
        print(f"**Budget {budget} bits/element.**\n")
        print(HEADER)
        print(fmt_row(tiered, reference))
        budgeted = rows.get(f"budget:{budget}:{budget_inner}")
        if budgeted:
            print(fmt_row(budgeted, reference))
        random = rows.get(random_mix_policy(rows, policy))
        if random:
            print(fmt_row(random, reference))
        best_rows = []
        for label, key, pick in METRICS:
            if not candidates:
                continue
            best = pick(candidates, key=lambda row: row[key])
            if best not in best_rows:
                best_rows.append(best)
            better = tiered[key] < best[key] if pick is min else tiered[key] > best[key]
            within = tiered["average_bits"] <= float(budget) + 1e-9
            verdicts.append((model, budget, label, better and within, best["policy"]))
        for row in best_rows:
            print(fmt_row(row, reference))
        if random and best_rows:
            worse = random["mean_kl"] > tiered["mean_kl"] and all(random["mean_kl"] > row["mean_kl"]
                                                                 for row in best_rows)
            verdicts.append((model, budget, "random at the tiered mix is worse (KL)", worse,
                             random["policy"]))
        print()
    print("| model | budget | tiered (≤ budget) better than the best static ≤ budget in | holds | against |")
    print("| --- | ---: | --- | --- | --- |")
    for model_name, budget, label, won, best in verdicts:
        print(f"| {model_name} | {budget} | {label} | {'yes' if won else '**no**'} | `{best}` |")
    print(f"\n### {model}: the whole grid, by bits/element\n")
    print(HEADER)
    for row in sorted(rows.values(), key=lambda row: (row["average_bits"], row["mean_kl"])):
        print(fmt_row(row, reference))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "random-mixes":
        random_mixes(argv[1], argv[2:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["report"])
    parser.add_argument("--model", required=True)
    parser.add_argument("--budgets", nargs="+", required=True)
    parser.add_argument("--tiers", nargs="+", required=True)
    parser.add_argument("--budget-inners", nargs="+", required=True)
    parser.add_argument("results", nargs="+")
    args = parser.parse_args(argv)
    report(args.model, args.budgets, args.tiers, args.budget_inners, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
