# SPDX-License-Identifier: MIT
"""Prints the `random:` policy that draws every token from a policy's final width mix, read from
kvbits-eval's JSON output: the control "random at the same mix" of docs/learned.md.

kvbits-eval counts key widths and value widths separately (tokens x layers, final caches), not
(key, value) pairs. The mix pairs them by rank: the widest keys with the widest values, down to
the narrowest of both. That reproduces both histograms, hence the bits/element, with at most
(key widths + value widths - 1) pairs. Float tokens (width 32: the residual window) are left
out of the mix; give the random policy the same window (w=).

usage: python3 random_mix.py EVAL.json POLICY [--options w=1,t=scale]
  POLICY: the policy text of a row of EVAL.json (kvbits-eval --json)
"""

import argparse
import json
import sys


def rank_pairs(keys, values):
    """(key bits, value bits, count) pairs with the given key and value histograms, widest first."""
    key_list = sorted(((int(b), n) for b, n in keys.items() if int(b) != 32), reverse=True)
    value_list = sorted(((int(b), n) for b, n in values.items() if int(b) != 32), reverse=True)
    if sum(n for _, n in key_list) != sum(n for _, n in value_list):
        raise ValueError("key and value histograms count different numbers of quantised tokens")
    pairs = []
    i = j = 0
    key_left = key_list[0][1] if key_list else 0
    value_left = value_list[0][1] if value_list else 0
    while i < len(key_list) and j < len(value_list):
        n = min(key_left, value_left)
        if n > 0:
            pairs.append((key_list[i][0], value_list[j][0], n))
        key_left -= n
        value_left -= n
        if key_left == 0:
            i += 1
            key_left = key_list[i][1] if i < len(key_list) else 0
        if value_left == 0:
            j += 1
            value_left = value_list[j][1] if j < len(value_list) else 0
    return pairs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("eval_json")
    parser.add_argument("policy")
    parser.add_argument("--options", default="", help="cache options appended to the mix, e.g. w=1,t=scale")
    args = parser.parse_args(argv)
    with open(args.eval_json, encoding="utf-8") as handle:
        rows = {row["policy"]: row for row in json.load(handle)["policies"]}
    if args.policy not in rows:
        print(f"random_mix: no row '{args.policy}' in {args.eval_json}", file=sys.stderr)
        return 1
    row = rows[args.policy]
    mix = ",".join(f"{k}/{v}:{n}" for k, v, n in rank_pairs(row["key_widths"], row["value_widths"]))
    print(f"random:{mix}" + (f",{args.options}" if args.options else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
