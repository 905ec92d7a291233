# SPDX-License-Identifier: MIT
"""Compiles the C++ code blocks of Markdown documents, so the documentation cannot show code that
does not build against the headers next to it.

Every ```cpp block is one of
  - a whole program (it defines `int main(`): compiled, linked and run, and must exit 0; a block
    after a `<!-- snippet: compile-only -->` line (say, one that needs a model file) is compiled
    and linked only;
  - a fragment: compiled as the body of a function in namespace `engine`, after
    snippet_context.hpp, which declares the names a fragment takes from the engine around it
    (`layer`, `k`, `cache`, ...); its #include lines go first;
  - a block after an `<!-- include: PATH -->` line: skipped, since the build compiles PATH and
    tests/cli/check_doc_includes.py keeps the block equal to it.
Diagnostics point at the Markdown file's lines. Fails (exit status 1) naming every block that
does not compile, link or run.

usage: python3 check_snippets.py --compiler CXX --flags FILE --work DIR DOC.md [DOC.md ...]
"""

import argparse
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
MARKER = re.compile(r"^<!-- (include|snippet): (\S+) -->$")
WARNINGS = ["-Wall", "-Wextra", "-Wconversion", "-Werror"]


def blocks(path):
    """Yields (first body line number, language, marker, body lines) for every fenced block."""
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().split("\n")
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        previous = next((line for line in reversed(lines[:i]) if line.strip()), "")
        marker = MARKER.match(previous)
        indent, end = fence.group(1), i + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        body = [line[len(indent):] if line.startswith(indent) else line for line in lines[i + 1:end]]
        yield i + 2, fence.group(2), marker.groups() if marker else None, body
        i = end + 1


def source_for(doc, line, body):
    """The translation unit for one block: (source text, whether it is a whole program)."""
    location = f'#line {line} "{doc}"'
    if any(re.match(r"\s*int main\(", text) for text in body):
        return "\n".join([location] + body) + "\n", True
    # Blank the hoisted #include lines so the body keeps the document's line numbers.
    includes = [text for text in body if text.startswith("#include")]
    kept = ["" if text.startswith("#include") else text for text in body]
    wrapped = includes + ['#include "snippet_context.hpp"', "", "namespace engine {", "void fragment() {",
                          location] + kept + ["}", "}  // namespace engine"]
    return "\n".join(wrapped) + "\n", False


def run(command, timeout):
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            timeout=timeout, env=dict(os.environ, LC_ALL="C"))
    return result.returncode, result.stdout


def check(doc, args):
    problems = []
    for line, language, marker, body in blocks(doc):
        if language != "cpp":
            continue
        where = f"{os.path.relpath(doc)}:{line}"
        if marker and marker[0] == "include":
            print(f"{where}: shows {marker[1]}, which the build compiles")
            continue
        compile_only = marker == ("snippet", "compile-only")
        source, program = source_for(os.path.relpath(doc), line, body)
        stem = re.sub(r"\W", "_", os.path.relpath(doc)) + f"_{line}"
        path = os.path.join(args.work, stem + ".cpp")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(source)
        command = [args.compiler, "@" + args.flags, *WARNINGS, "-I", HERE, path]
        if program:
            executable = os.path.join(args.work, stem)
            status, output = run(command + ["-O1", "-o", executable], 600)
        else:
            status, output = run(command + ["-fsyntax-only"], 600)
        if status != 0:
            problems.append(f"{where}: does not compile:\n{output}")
            continue
        if not program:
            print(f"{where}: fragment compiles")
        elif compile_only:
            print(f"{where}: program compiles (not run: compile-only)")
        else:
            status, output = run([executable], 60)
            if status != 0:
                problems.append(f"{where}: the program exits with {status}:\n{output}")
                continue
            print(f"{where}: program runs: {output.strip()}")
    return problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compiler", required=True, help="the C++ compiler")
    parser.add_argument("--flags", required=True, help="a response file with kvbits::kvbits' flags")
    parser.add_argument("--work", required=True, help="folder for the generated sources and programs")
    parser.add_argument("docs", nargs="+")
    args = parser.parse_args(argv)
    os.makedirs(args.work, exist_ok=True)
    problems = [p for doc in args.docs for p in check(doc, args)]
    for problem in problems:
        print(f"check_snippets: FAIL: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
