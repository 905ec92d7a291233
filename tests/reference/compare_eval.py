# SPDX-License-Identifier: MIT
"""Checks kvbits-eval against the independent Python reference (llama_reference.py).

Runs both on the first N documents of a shared model's dev text (stories260K on the TinyStories
file, or bible919K on the Bible file) and fails (exit status 1) unless
  - the FP32-cache perplexities agree to 4 significant digits: |eval - reference| is at most half
    a unit in the reference's 4th significant digit, and
  - the static 8-bit and 4-bit rows (group = head_dim, no residual window, no sinks, no
    transform) agree with the reference's to within 2 % relative.
A missing model, text file or binary is an error, never a skip.

The two quantizers differ on purpose (the reference keeps fp32 group metadata, kvbits stores fp16
metadata rounded outward), so their quantized perplexities are two samples of the same noise: the
2 % bound is meaningful over several hundred positions (the default 2 stories score 744; on the
first 63 positions alone the 4-bit rows differ by 3.6 %).

usage: python3 compare_eval.py EVAL_BINARY [--model stories260K|bible919K] [--shared-dir DIR]
                               [--stories N] [--json]
"""

import argparse
import json
import math
import os
import subprocess
import sys

# Keep the source tree free of __pycache__ when CTest runs this from it.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_reference  # noqa: E402  (the sibling module, found through the path set above)

# Each shared model with the dev text it is checked on.
MODELS = {
    "stories260K": (os.path.join("models", "stories260K.gguf"),
                    os.path.join("data", "tinystories_valid_dev.txt")),
    "bible919K": (os.path.join("models", "bible919K.gguf"), os.path.join("data", "bible_dev.txt")),
}
DEFAULT_SHARED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                                  "shared")
QUANTIZED_BITS = (8, 4)
QUANTIZED_RELATIVE_TOLERANCE = 0.02
SIGNIFICANT_DIGITS = 4


def four_digit_tolerance(reference):
    """Half a unit in the last of SIGNIFICANT_DIGITS significant digits of `reference`."""
    exponent = math.floor(math.log10(abs(reference)))
    return 0.5 * 10.0 ** (exponent - (SIGNIFICANT_DIGITS - 1))


def fail(message):
    print(f"compare_eval: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def run_eval(binary, model, text, stories, max_tokens, policies):
    command = [binary, "--model", model, "--text", text, "--stories", str(stories),
               "--max-tokens", str(max_tokens), "--json", "-"]
    for policy in policies:
        command += ["--policy", policy]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        fail(f"{' '.join(command)} exited with {completed.returncode}:\n{completed.stderr}")
    try:
        return json.loads(completed.stdout)
    except json.JSONDecodeError as error:
        fail(f"kvbits-eval printed no valid JSON ({error}):\n{completed.stdout}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("eval_binary", help="path of the kvbits-eval program")
    parser.add_argument("--shared-dir", default=os.environ.get("KVBITS_SHARED_DIR",
                                                               DEFAULT_SHARED_DIR),
                        help="folder holding models/ and data/ (default: ../shared)")
    parser.add_argument("--model", choices=sorted(MODELS), default="stories260K",
                        help="shared model and its dev text (default stories260K)")
    parser.add_argument("--stories", type=int, default=2, help="first N stories (default 2)")
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--json", action="store_true", help="also print both results as JSON")
    args = parser.parse_args(argv)

    model_file, text_file = MODELS[args.model]
    model = os.path.join(args.shared_dir, model_file)
    text = os.path.join(args.shared_dir, text_file)
    for path in (args.eval_binary, model, text):
        if not os.path.isfile(path):
            fail(f"{path} does not exist (shared data is required; set --shared-dir or "
                 f"KVBITS_SHARED_DIR)")

    head_dim = llama_reference.Config(*llama_reference.read_gguf(model)).head_dim
    policies = {bits: f"static:{bits},{bits},g={head_dim}" for bits in QUANTIZED_BITS}
    evaluated = run_eval(args.eval_binary, model, text, args.stories, args.max_tokens,
                         [policies[bits] for bits in QUANTIZED_BITS])
    reference = llama_reference.run(model, text, args.stories,
                                    [(bits, bits) for bits in QUANTIZED_BITS], args.max_tokens,
                                    quiet=True)
    if args.json:
        print(json.dumps({"kvbits_eval": evaluated, "reference": reference}, indent=2))

    problems = []
    if evaluated["positions"] != reference["positions"]:
        problems.append(f"scored positions differ: kvbits-eval {evaluated['positions']}, "
                        f"reference {reference['positions']} (tokenization or story splitting "
                        f"disagrees)")

    ref_ppl = reference["reference_perplexity"]
    eval_ppl = evaluated["reference_perplexity"]
    tolerance = four_digit_tolerance(ref_ppl)
    status = "ok" if abs(eval_ppl - ref_ppl) <= tolerance else "MISMATCH"
    print(f"{args.model}: {args.stories} documents, {reference['positions']} positions; reference "
          f"{reference['forward_passes']} forward passes at "
          f"{reference['tokens_per_second']:.1f} tokens/s")
    print(f"fp32        kvbits-eval {eval_ppl:.6f}  reference {ref_ppl:.6f}  "
          f"|diff| {abs(eval_ppl - ref_ppl):.2e} (limit {tolerance:.1e})  {status}")
    if status != "ok":
        problems.append(f"FP32 perplexity: kvbits-eval {eval_ppl:.6f}, reference {ref_ppl:.6f} "
                        f"differ by more than {tolerance:.1e} ({SIGNIFICANT_DIGITS} significant "
                        f"digits)")

    eval_rows = {row["policy"]: row for row in evaluated["policies"]}
    ref_rows = {row["policy"]: row for row in reference["policies"]}
    for bits in QUANTIZED_BITS:
        eval_row = eval_rows.get(policies[bits])
        ref_row = ref_rows.get(llama_reference.policy_name(bits, bits))
        if eval_row is None or ref_row is None:
            problems.append(f"no {bits}-bit row in the results")
            continue
        relative = abs(eval_row["perplexity"] / ref_row["perplexity"] - 1.0)
        status = "ok" if relative <= QUANTIZED_RELATIVE_TOLERANCE else "MISMATCH"
        print(f"{policies[bits]:<15} kvbits-eval ppl {eval_row['perplexity']:.6f} "
              f"KL {eval_row['mean_kl']:.3e} top1 {eval_row['top1_agreement']:.4f} | reference "
              f"ppl {ref_row['perplexity']:.6f} KL {ref_row['mean_kl']:.3e} "
              f"top1 {ref_row['top1_agreement']:.4f} | ppl rel. diff {100.0 * relative:.3f}% "
              f"(limit {100.0 * QUANTIZED_RELATIVE_TOLERANCE:.0f}%)  {status}")
        if status != "ok":
            problems.append(f"{bits}-bit perplexity: kvbits-eval {eval_row['perplexity']:.6f}, "
                            f"reference {ref_row['perplexity']:.6f} differ by "
                            f"{100.0 * relative:.3f}% > "
                            f"{100.0 * QUANTIZED_RELATIVE_TOLERANCE:.0f}%")

    for problem in problems:
        print(f"compare_eval: FAIL: {problem}", file=sys.stderr)
    if problems:
        return 1
    print("compare_eval: kvbits-eval agrees with the reference")
    return 0


if __name__ == "__main__":
    sys.exit(main())
