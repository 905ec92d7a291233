# SPDX-License-Identifier: MIT
"""Runs kvbits-eval for the CLI checks beside this file and hands back its JSON report."""

import json
import subprocess
import sys


def run_eval_json(check, eval_binary, arguments):
    """kvbits-eval ARGUMENTS --json -: the parsed report, or None after printing why not,
    prefixed by the name of the `check` that ran it."""
    command = [eval_binary, *arguments, "--json", "-"]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        print(f"{check}: FAIL: {' '.join(command)} exited with {completed.returncode}:\n"
              f"{completed.stderr}", file=sys.stderr)
        return None
    return json.loads(completed.stdout)
