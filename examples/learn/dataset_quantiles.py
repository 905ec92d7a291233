# SPDX-License-Identifier: MIT
"""Prints percentiles of each controller input over the samples of a damage dataset (kvbits-label's
file, format in examples/learn/damage_dataset.hpp): where a threshold on a write-time feature
falls, e.g. for the rule grid of docs/learned.md. Reads the file as written and does not verify
its checksum (kvbits-train does).

usage: python3 dataset_quantiles.py DATA.kvbd [--age A] [--percentiles 50,75,90]
  --age: only the samples of this decision age (default 1, the first decision)
"""

import argparse
import struct
import sys

HEADER_BYTES = 28  # magic, version, payload size, checksum


def read_dataset(path):
    """(input names, [(age, inputs)]) of a damage dataset file."""
    with open(path, "rb") as handle:
        data = handle.read()
    if data[:8] != b"KVBITDMG":
        raise ValueError(f"{path} is not a kvbits damage dataset")
    offset = HEADER_BYTES

    def u32():
        nonlocal offset
        (value,) = struct.unpack_from("<I", data, offset)
        offset += 4
        return value

    def text():
        nonlocal offset
        length = u32()
        value = data[offset:offset + length].decode()
        offset += length
        return value

    text()  # model
    text()  # cache options
    u32()  # head_dim
    u32()  # horizon
    names = [text() for _ in range(u32())]
    widths = u32()
    offset += widths * 12  # u32 width, f64 bits per element
    (count,) = struct.unpack_from("<Q", data, offset)
    offset += 8
    record = struct.Struct(f"<4I{len(names)}f{widths}f{widths}f")
    samples = []
    for i in range(count):
        fields = record.unpack_from(data, offset + i * record.size)
        samples.append((fields[2], fields[4:4 + len(names)]))
    return names, samples


def percentile(sorted_values, p):
    """Linear interpolation between closest ranks."""
    rank = p / 100.0 * (len(sorted_values) - 1)
    low = int(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (rank - low) * (sorted_values[high] - sorted_values[low])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset")
    parser.add_argument("--age", type=int, default=1)
    parser.add_argument("--percentiles", default="50,75,90")
    args = parser.parse_args(argv)
    names, samples = read_dataset(args.dataset)
    chosen = [inputs for age, inputs in samples if age == args.age]
    if not chosen:
        print(f"dataset_quantiles: no samples at age {args.age}", file=sys.stderr)
        return 1
    percentiles = [float(p) for p in args.percentiles.split(",")]
    print(f"{len(chosen)} samples at age {args.age}")
    print("| input | " + " | ".join(f"p{p:g}" for p in percentiles) + " |")
    print("| --- | " + " | ".join("---:" for _ in percentiles) + " |")
    for f, name in enumerate(names):
        values = sorted(inputs[f] for inputs in chosen)
        print(f"| {name} | " + " | ".join(f"{percentile(values, p):.3g}" for p in percentiles) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
