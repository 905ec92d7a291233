# SPDX-License-Identifier: MIT
"""Documentation shows source files through include markers, so that a snippet can never drift
from the code the build compiles and the tests run.

A marker line `<!-- include: PATH -->` (PATH relative to the repository root) must be followed by
a fenced code block whose body is exactly the file's contents. Fails (exit status 1) naming every
stale block; `--fix` rewrites them from the files instead.

usage: python3 check_doc_includes.py [--fix] DOC.md [DOC.md ...]
"""

import argparse
import os
import re
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
MARKER = re.compile(r"^<!-- include: (\S+) -->$")


def process(path, fix):
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().split("\n")
    problems, out, i = [], [], 0
    while i < len(lines):
        out.append(lines[i])
        match = MARKER.match(lines[i])
        i += 1
        if not match:
            continue
        if i >= len(lines) or not lines[i].startswith("```"):
            problems.append(f"{path}: marker for {match.group(1)} is not followed by a code fence")
            continue
        fence = lines[i]
        end = i + 1
        while end < len(lines) and lines[end] != "```":
            end += 1
        with open(os.path.join(ROOT, match.group(1)), encoding="utf-8") as source:
            wanted = source.read().rstrip("\n").split("\n")
        if lines[i + 1:end] != wanted:
            problems.append(f"{path}: the block after '<!-- include: {match.group(1)} -->' differs "
                            f"from the file (run {os.path.relpath(__file__, ROOT)} --fix)")
        out += [fence] + wanted + ["```"]
        i = end + 1
    if fix:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("\n".join(out))
        return []
    return problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fix", action="store_true")
    parser.add_argument("docs", nargs="+")
    args = parser.parse_args(argv)
    problems = [p for doc in args.docs for p in process(doc, args.fix)]
    for problem in problems:
        print(f"check_doc_includes: FAIL: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
