# SPDX-License-Identifier: MIT
"""A shipped learned controller must do what docs/learned.md says it does, on the first documents
of a dev text: land in a bits/element window and have lower mean KL than each comparator, which
must use at least as many bits/element. A broken controller (random weights, every token wide,
every token narrow) fails one of the two.

usage: python3 check_learned.py EVAL_BINARY --model M --text FILE --stories N
           --learned POLICY --bits LOW,HIGH --beats POLICY [--beats POLICY ...] [--also POLICY ...]
  --also: further policies run in the same pass that must only run (e.g. budget=, q= forms).
"""

import argparse
import sys

from eval_json import run_eval_json


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("eval_binary")
    parser.add_argument("--model", required=True)
    parser.add_argument("--text", required=True)
    parser.add_argument("--stories", required=True)
    parser.add_argument("--learned", required=True)
    parser.add_argument("--bits", required=True, help="LOW,HIGH: the learned row's bits/element window")
    parser.add_argument("--beats", action="append", required=True)
    parser.add_argument("--also", action="append", default=[])
    args = parser.parse_args(argv)
    low, high = (float(x) for x in args.bits.split(","))
    policies = [args.learned] + args.beats + args.also
    arguments = ["--model", args.model, "--text", args.text, "--stories", args.stories]
    for policy in policies:
        arguments += ["--policy", policy]
    report = run_eval_json("check_learned", args.eval_binary, arguments)
    if report is None:
        return 1
    rows = {row["policy"]: row for row in report["policies"]}
    missing = [p for p in policies if p not in rows]
    if missing:
        print(f"check_learned: FAIL: no row for {missing}", file=sys.stderr)
        return 1
    learned = rows[args.learned]
    failures = 0
    bits = learned["average_bits"]
    status = "ok" if low <= bits <= high else "FAIL"
    failures += status != "ok"
    print(f"check_learned: {args.learned}: {bits:.3f} bits/element, window [{low}, {high}]  {status}")
    for policy in args.beats:
        row = rows[policy]
        ok = row["average_bits"] >= bits and learned["mean_kl"] < row["mean_kl"]
        failures += not ok
        print(f"check_learned: mean KL {learned['mean_kl']:.3e} at {bits:.3f} bits against {policy}: "
              f"{row['mean_kl']:.3e} at {row['average_bits']:.3f} bits  {'ok' if ok else 'FAIL'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
