# SPDX-License-Identifier: MIT
"""kvbits-eval's FP32-cache perplexity over a whole dev text must equal an independently stated
figure to 4 significant digits (half a unit in the 4th digit).

usage: python3 check_perplexity.py EVAL_BINARY --model M --text FILE --expected PPL --positions N
"""

import argparse
import math
import sys

from eval_json import run_eval_json


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("eval_binary")
    parser.add_argument("--model", required=True)
    parser.add_argument("--text", required=True)
    parser.add_argument("--expected", type=float, required=True)
    parser.add_argument("--positions", type=int, required=True)
    args = parser.parse_args(argv)
    result = run_eval_json("check_perplexity", args.eval_binary,
                           ["--model", args.model, "--text", args.text, "--policy", "fp32"])
    if result is None:
        return 1
    measured = result["reference_perplexity"]
    tolerance = 0.5 * 10.0 ** (math.floor(math.log10(abs(args.expected))) - 3)
    print(f"check_perplexity: {result['positions']} positions, FP32 perplexity {measured:.6f}, "
          f"expected {args.expected:.6f} (limit {tolerance:.1e})")
    if result["positions"] != args.positions or abs(measured - args.expected) > tolerance:
        print("check_perplexity: FAIL: positions or perplexity differ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
