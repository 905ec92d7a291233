# SPDX-License-Identifier: MIT
"""Documents shorter than a policy's window + sinks must not abort an evaluation.

Runs kvbits-eval on tests/data/short_documents.txt (documents of 2 to ~25 tokens) with policies
whose float window and sinks exceed every document, and with one whose window is shorter than
some of them. Fails (exit status 1) unless the run succeeds, scores every document, keeps every
token of the all-float policies in float (32 bits/element, KL exactly 0) and quantizes some
tokens of the other.

usage: python3 check_short_documents.py EVAL_BINARY --model NAME --group G [--policy P ...]
"""

import argparse
import os
import sys

from eval_json import run_eval_json

DOCUMENTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data",
                         "short_documents.txt")
EXPECTED_DOCUMENTS = 5


def fail(message):
    print(f"check_short_documents: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("eval_binary")
    parser.add_argument("--model", required=True, help="model name or GGUF path")
    parser.add_argument("--group", required=True, help="quantization group size for the model")
    parser.add_argument("--policy", action="append", default=[],
                        help="further policies that must run (window and sinks may exceed "
                             "the documents)")
    args = parser.parse_args(argv)

    group = f"g={args.group}"
    all_float = [f"static:4,2,{group},w=32,s=4", f"static:2,2,{group},w=64"]
    partly_quantized = f"static:4,2,{group},w=8,s=4"
    policies = all_float + [partly_quantized] + args.policy
    arguments = ["--model", args.model, "--text", DOCUMENTS]
    for policy in policies:
        arguments += ["--policy", policy]
    result = run_eval_json("check_short_documents", args.eval_binary, arguments)
    if result is None:
        sys.exit(1)
    if result["stories"] != EXPECTED_DOCUMENTS:
        fail(f"scored {result['stories']} documents, expected {EXPECTED_DOCUMENTS}")
    rows = {row["policy"]: row for row in result["policies"]}
    for policy in policies:
        if policy not in rows:
            fail(f"no result row for {policy}")
    for policy in all_float:
        row = rows[policy]
        if row["average_bits"] != 32.0 or row["mean_kl"] != 0.0:
            fail(f"{policy}: every token should stay float, got {row['average_bits']} "
                 f"bits/element and mean KL {row['mean_kl']}")
    if rows[partly_quantized]["average_bits"] >= 32.0:
        fail(f"{partly_quantized}: no token was quantized")
    print(f"check_short_documents: {args.model}: {len(policies)} policies ran on "
          f"{result['stories']} short documents ({result['positions']} positions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
