#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks that docs/errors.md and tests/test_errors.cpp match one to one.

Every row of the error tables in the document starts with an id (`| E07 |`); every test case
in the test file carries one id as a tag (`[E07]`). The check fails, naming the ids, when a row
has no test case, a test case names no row, or an id appears twice on either side.

Usage: check_error_rows.py docs/errors.md tests/test_errors.cpp
"""

import argparse
import collections
import re
import sys

ROW_ID = re.compile(r"^\|\s*([EX]\d{2})\s*\|", re.MULTILINE)
TEST_CASE = re.compile(r"^\s*(?:TEMPLATE_)?TEST_CASE\(\s*\"([^\"]*)\",\s*\"([^\"]*)\"", re.MULTILINE)
TAG_ID = re.compile(r"\[([EX]\d{2})\]")


def duplicates(ids):
    return sorted(i for i, n in collections.Counter(ids).items() if n > 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("document", help="docs/errors.md")
    parser.add_argument("tests", help="tests/test_errors.cpp")
    args = parser.parse_args()

    with open(args.document, encoding="utf-8") as f:
        rows = ROW_ID.findall(f.read())
    with open(args.tests, encoding="utf-8") as f:
        cases = TEST_CASE.findall(f.read())

    problems = []
    tagged = []
    for name, tags in cases:
        ids = TAG_ID.findall(tags)
        if len(ids) != 1:
            problems.append(f"test case '{name}' has {len(ids)} row ids in its tags '{tags}', expected 1")
            continue
        if not name.startswith(ids[0] + " "):
            problems.append(f"test case '{name}' is tagged {ids[0]} but its name does not start with it")
        tagged.append(ids[0])

    for i in duplicates(rows):
        problems.append(f"row {i} appears more than once in {args.document}")
    for i in duplicates(tagged):
        problems.append(f"row {i} has more than one test case in {args.tests}")
    for i in sorted(set(rows) - set(tagged)):
        problems.append(f"row {i} of {args.document} has no test case in {args.tests}")
    for i in sorted(set(tagged) - set(rows)):
        problems.append(f"test case {i} of {args.tests} has no row in {args.document}")
    if not rows:
        problems.append(f"no rows found in {args.document}")

    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    print(f"{len(rows)} rows, each with its test case")
    return 0


if __name__ == "__main__":
    sys.exit(main())
