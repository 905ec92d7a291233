# SPDX-License-Identifier: MIT
"""A budget: policy must land within 0.1 bits/element of its target on a whole dev text
(bits/element as the cache counts them: codes, metadata, sinks and window; final caches
averaged over documents weighted by length, as kvbits-eval reports them).

usage: python3 check_budget.py EVAL_BINARY --model M --text FILE --policy budget:B:P [...]
"""

import argparse
import json
import subprocess
import sys

TOLERANCE = 0.1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("eval_binary")
    parser.add_argument("--model", required=True)
    parser.add_argument("--text", required=True)
    parser.add_argument("--policy", action="append", required=True, help="budget:BITS:POLICY")
    args = parser.parse_args(argv)
    command = [args.eval_binary, "--model", args.model, "--text", args.text, "--json", "-"]
    for policy in args.policy:
        command += ["--policy", policy]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        print(f"check_budget: FAIL: {' '.join(command)} exited with {completed.returncode}:\n"
              f"{completed.stderr}", file=sys.stderr)
        return 1
    failures = 0
    for row in json.loads(completed.stdout)["policies"]:
        target = float(row["policy"].split(":")[1])
        error = row["average_bits"] - target
        status = "ok" if abs(error) <= TOLERANCE else "FAIL"
        failures += status != "ok"
        print(f"check_budget: {row['policy']}: {row['average_bits']:.3f} bits/element, target "
              f"{target}, error {error:+.3f} (limit ±{TOLERANCE})  {status}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
