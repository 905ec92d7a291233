# SPDX-License-Identifier: MIT
"""A budgeted policy (budget:B:POLICY, or learned:PATH,budget=B,...) must land within 0.1
bits/element of B on a whole dev text (bits/element as the cache counts them: codes, metadata,
sinks and window; final caches averaged over documents weighted by length, as kvbits-eval
reports them).

usage: python3 check_budget.py EVAL_BINARY --model M --text FILE --policy budget:B:P [...]
"""

import argparse
import re
import sys

from eval_json import run_eval_json

TOLERANCE = 0.1


def target_of(policy):
    """The B of a `budget:B:` prefix or of a `budget=B` item (learned:)."""
    match = re.match(r"budget:([0-9.]+):", policy) or re.search(r"(?:^|,)budget=([0-9.]+)(?:,|$)", policy)
    if match is None:
        raise ValueError(f"policy '{policy}' has no budget")
    return float(match.group(1))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("eval_binary")
    parser.add_argument("--model", required=True)
    parser.add_argument("--text", required=True)
    parser.add_argument("--policy", action="append", required=True, help="budget:BITS:POLICY or learned:PATH,budget=BITS,...")
    args = parser.parse_args(argv)
    arguments = ["--model", args.model, "--text", args.text]
    for policy in args.policy:
        arguments += ["--policy", policy]
    report = run_eval_json("check_budget", args.eval_binary, arguments)
    if report is None:
        return 1
    rows = report["policies"]
    failures = 0 if len(rows) == len(args.policy) else 1
    for row in rows:
        target = target_of(row["policy"])
        error = row["average_bits"] - target
        status = "ok" if abs(error) <= TOLERANCE else "FAIL"
        failures += status != "ok"
        print(f"check_budget: {row['policy']}: {row['average_bits']:.3f} bits/element, target "
              f"{target}, error {error:+.3f} (limit ±{TOLERANCE})  {status}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
