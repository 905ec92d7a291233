# SPDX-License-Identifier: MIT
"""kvbits-eval's whole report on a dev text: tail quality, multiple choice, and the JSON, CSV and
Markdown outputs agreeing with each other.

Runs kvbits-eval on every story of the text with fp16 and static:8,8 and N multiple-choice items,
writing JSON and CSV files, then again on the items file the first run wrote. Fails (exit status
1) unless:
- the FP32-cache perplexity and position count match the stated ones (4 significant digits);
- fp16's 99th-percentile KL is below 1e-4 and static:8,8's below 1e-2;
- the JSON and CSV parse, have a row per policy, and agree on every shared number;
- the multiple-choice run scored the items, FP32's acc_norm is above chance (25%) and fp16's picks
  agree with FP32's on at least 97% of items;
- the items file read back gives the FP32 cache the same picks (the same accuracy);
- the Markdown on stdout has the quality table and the summary line.

usage: python3 check_eval_report.py EVAL_BINARY --model M --text FILE --expected PPL --positions N
                                    [--mc N]
"""

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import tempfile

P99_LIMITS = {"fp16": 1e-4, "static:8,8": 1e-2}
MIN_FP16_AGREEMENT = 0.97


def fail(message):
    print(f"check_eval_report: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def run(command):
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        fail(f"{' '.join(command)} exited with {completed.returncode}:\n{completed.stderr}")
    return completed.stdout


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("eval_binary")
    parser.add_argument("--model", required=True)
    parser.add_argument("--text", required=True)
    parser.add_argument("--expected", type=float, required=True, help="FP32-cache perplexity")
    parser.add_argument("--positions", type=int, required=True)
    parser.add_argument("--mc", type=int, default=150, help="multiple-choice items")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        json_path = os.path.join(scratch, "eval.json")
        csv_path = os.path.join(scratch, "eval.csv")
        items_path = os.path.join(scratch, "items.tsv")
        policies = list(P99_LIMITS)
        command = [args.eval_binary, "--model", args.model, "--text", args.text, "--mc", str(args.mc),
                   "--write-mc-items", items_path, "--json", json_path, "--csv", csv_path]
        for policy in policies:
            command += ["--policy", policy]
        markdown = run(command)
        with open(json_path, encoding="utf-8") as file:
            result = json.load(file)
        with open(csv_path, encoding="utf-8", newline="") as file:
            rows = list(csv.DictReader(file))

        again = json.loads(run([args.eval_binary, "--model", args.model, "--text", args.text,
                                "--stories", "1", "--mc-items", items_path, "--policy", "fp32",
                                "--json", "-"]))

    ppl = result["reference_perplexity"]
    tolerance = 0.5 * 10.0 ** (math.floor(math.log10(abs(args.expected))) - 3)
    print(f"check_eval_report: {result['positions']} positions, FP32 perplexity {ppl:.6f} "
          f"(expected {args.expected}), 95% interval {result['reference_perplexity_95']}")
    if result["positions"] != args.positions or abs(ppl - args.expected) > tolerance:
        fail("positions or FP32 perplexity differ")
    low, high = result["reference_perplexity_95"]
    if not low < ppl < high:
        fail(f"perplexity {ppl} outside its own interval [{low}, {high}]")

    by_policy = {row["policy"]: row for row in result["policies"]}
    if sorted(by_policy) != sorted(policies) or len(rows) != len(policies):
        fail(f"JSON has {sorted(by_policy)}, CSV {len(rows)} rows, expected {policies}")
    for policy, limit in P99_LIMITS.items():
        row = by_policy[policy]
        print(f"check_eval_report: {policy}: mean KL {row['mean_kl']:.3e}, median "
              f"{row['median_kl']:.3e}, p99 {row['p99_kl']:.3e} (limit {limit:g}), p99.9 "
              f"{row['p999_kl']:.3e}, max {row['max_kl']:.3e}, decode time x"
              f"{row['decode_time_ratio']:.2f}")
        if not row["p99_kl"] < limit:
            fail(f"{policy}: p99 KL {row['p99_kl']} is not below {limit}")
        if not row["median_kl"] <= row["p99_kl"] <= row["p999_kl"] <= row["max_kl"]:
            fail(f"{policy}: KL percentiles out of order")
        if not row["decode_time_ratio"] > 0 or not row["cache_bytes_per_token"] > 0:
            fail(f"{policy}: no decode time ratio or cache size")
    for row in rows:
        expected = by_policy[row["policy"]]
        for name in ("average_bits", "perplexity", "mean_kl", "p99_kl", "top1_agreement",
                     "decode_time_ratio"):
            if not math.isclose(float(row[name]), expected[name], rel_tol=1e-12, abs_tol=1e-300):
                fail(f"CSV {row['policy']} {name} = {row[name]}, JSON {expected[name]}")

    mc = result["multiple_choice"]
    reference = mc["reference"]
    print(f"check_eval_report: multiple choice: {mc['items']} items ({mc['source']}), FP32 "
          f"acc_norm {reference['acc_norm']:.3f} {reference['acc_norm_95']}, acc "
          f"{reference['acc']:.3f}")
    if mc["items"] + mc["too_long"] != args.mc or mc["items"] < args.mc * 0.9:
        fail(f"scored {mc['items']} items (+{mc['too_long']} too long), asked for {args.mc}")
    if not reference["acc_norm"] > 0.25:
        fail(f"FP32 acc_norm {reference['acc_norm']} is not above chance")
    for policy in policies:
        choice = by_policy[policy]["multiple_choice"]
        print(f"check_eval_report: {policy}: acc_norm {choice['acc_norm']:.3f}, agreement with "
              f"FP32 {choice['agreement']:.3f}")
        if choice["items"] != mc["items"]:
            fail(f"{policy} scored {choice['items']} items")
    if by_policy["fp16"]["multiple_choice"]["agreement"] < MIN_FP16_AGREEMENT:
        fail(f"fp16 agrees with FP32 on fewer than {MIN_FP16_AGREEMENT:.0%} of items")
    read_back = again["multiple_choice"]
    if read_back["items"] != mc["items"] or read_back["reference"]["acc_norm"] != reference["acc_norm"]:
        fail(f"the items file read back scored {read_back['items']} items, FP32 acc_norm "
             f"{read_back['reference']['acc_norm']} (first run {reference['acc_norm']})")

    if "| policy | bits/element | perplexity [95% CI]" not in markdown or \
            "Pareto frontier" not in markdown or "| FP32 cache |" not in markdown:
        fail(f"the Markdown report lacks a table or the summary line:\n{markdown}")
    print("check_eval_report: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
