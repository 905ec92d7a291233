#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks that two object files built for different instruction sets share no kvbits symbol
whose code depends on the instruction set.

Both objects define the inline functions they use as weak symbols, and the linker keeps one
definition of each name. kvbits puts every instruction-set-dependent definition in an inline
namespace named after the target (include/kvbits/core/isa_namespace.hpp), so the two objects'
kernel symbols must differ. The check fails when
  - an object has no kvbits symbol in such a namespace, or both use the same one;
  - a kvbits symbol defined in both objects lies in such a namespace, names an xsimd
    architecture or kvbits::kernel, or is an instruction-set-dependent entity (one that the
    other object has inside its namespace) defined outside the namespace.
Build the objects with -fno-inline so that every inline function they use is emitted.
With --expect-clash the check must fail (a control: two objects built for one instruction set).

Usage: check_symbols.py [--expect-clash] --nm NM first.o second.o
"""

import argparse
import re
import subprocess
import sys

# The names core/isa_namespace.hpp derives, as one namespace component.
ISA = re.compile(r"::((?:avx512bw|avx512dq|avx512cd|avx512f|avx2|avx|sse4_2|sse4_1|ssse3|sse3|sse2|x87|"
                 r"neon64|neon|scalar)(?:_(?:no)?(?:fma|f16c|bmi2|vnni))*)::")
KVBITS = re.compile(r"(?:^|[\s(<,*&])kvbits::")
ISA_DEPENDENT_TEXT = re.compile(r"xsimd::|kvbits::kernel::")
WEAK_OR_GLOBAL = set("TWVDBRu")


def kvbits_symbols(nm, path):
    """@return the demangled external symbols of `path` defined there and named in kvbits."""
    listing = subprocess.run([nm, "-C", "--defined-only", path], check=True, capture_output=True, text=True)
    symbols = set()
    for line in listing.stdout.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[1] in WEAK_OR_GLOBAL and KVBITS.search(parts[2]):
            symbols.add(parts[2])
    return symbols


def isa_names(symbols):
    return {m.group(1) for s in symbols for m in ISA.finditer(s)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nm", default="nm")
    parser.add_argument("--expect-clash", action="store_true", help="succeed only when the check fails")
    parser.add_argument("first")
    parser.add_argument("second")
    args = parser.parse_args()

    objects = [args.first, args.second]
    try:
        symbols = [kvbits_symbols(args.nm, path) for path in objects]
    except (OSError, subprocess.CalledProcessError) as error:
        print(f"cannot list the symbols: {error}", file=sys.stderr)
        return 2
    problems = []
    names = []
    for path, own in zip(objects, symbols):
        found = isa_names(own)
        namespaced = [s for s in own if ISA.search(s)]
        print(f"{path}: {len(own)} kvbits symbols, {len(namespaced)} in instruction-set namespace "
              f"{', '.join(sorted(found)) or '(none)'}")
        if len(found) != 1:
            problems.append(f"{path}: expected kvbits symbols in exactly one instruction-set namespace, "
                            f"found {sorted(found)}")
        names.append(found)
    if names[0] and names[0] == names[1]:
        problems.append(f"both objects use the instruction-set namespace {sorted(names[0])}")

    # Every entity that either object keeps in its namespace, with the namespace taken out.
    dependent = {ISA.sub("::", s) for own in symbols for s in own if ISA.search(s)}
    shared = symbols[0] & symbols[1]
    clashes = sorted(s for s in shared if ISA.search(s) or ISA_DEPENDENT_TEXT.search(s) or s in dependent)
    print(f"{len(shared)} kvbits symbols are defined in both objects; "
          f"{len(clashes)} of them depend on the instruction set")
    for s in clashes[:20]:
        problems.append(f"defined in both: {s}")
    if len(clashes) > 20:
        problems.append(f"... and {len(clashes) - 20} more")

    for problem in problems:
        print(problem, file=sys.stderr)
    if args.expect_clash:
        print("the check fails, as expected" if problems else "expected the check to fail", file=sys.stderr)
        return 0 if problems else 1
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
