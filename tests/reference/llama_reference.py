# SPDX-License-Identifier: MIT
"""Independent pure-Python reference for kvbits-eval.

Reads a LLaMA-architecture GGUF model (F32 tensors), tokenizes TinyStories-style text with its own
SentencePiece-BPE encoder, and teacher-forces every story through the transformer with either an
exact KV cache or a simulated quantized one (per token, per KV head, asymmetric min/max uniform
quantization with fp32 metadata, dequantized as soon as it is stored). It reports the pooled
perplexity and, for quantized caches, mean KL(exact || quantized) and top-1 agreement against its
own exact-cache run.

Everything here is written from the formats' and the model's definitions, not from kvbits' code, so
that agreement between the two is evidence that both are right. Standard library only.

usage: python3 llama_reference.py --model M.gguf --text STORIES.txt [--stories N]
                                  [--max-tokens 512] [--bits-k B] [--bits-v B] [--json]
"""

import argparse
import json
import math
import os
import struct
import sys
import time
from array import array
from itertools import repeat
from operator import add, mul

# ---------------------------------------------------------------------------------------------
# GGUF

GGUF_MAGIC = b"GGUF"
GGUF_DEFAULT_ALIGNMENT = 32
GGML_TYPE_F32 = 0

# GGUF metadata value types: id -> struct format of a scalar (strings and arrays handled apart).
_SCALAR_FORMATS = {
    0: "B",  # uint8
    1: "b",  # int8
    2: "H",  # uint16
    3: "h",  # int16
    4: "I",  # uint32
    5: "i",  # int32
    6: "f",  # float32
    7: "?",  # bool
    10: "Q",  # uint64
    11: "q",  # int64
    12: "d",  # float64
}
_TYPE_STRING = 8
_TYPE_ARRAY = 9


class GgufError(Exception):
    """A file that is not a GGUF file this reference can read."""


class _Reader:
    """Little-endian cursor over the bytes of a file."""

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def scalar(self, fmt):
        size = struct.calcsize("<" + fmt)
        if self.pos + size > len(self.data):
            raise GgufError(f"truncated file at byte {self.pos}")
        (value,) = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += size
        return value

    def string(self):
        length = self.scalar("Q")
        if self.pos + length > len(self.data):
            raise GgufError(f"string of {length} bytes runs past the end at byte {self.pos}")
        raw = self.data[self.pos:self.pos + length]
        self.pos += length
        # Token pieces may hold arbitrary bytes; keep them rather than fail on bad UTF-8.
        return raw.decode("utf-8", errors="surrogateescape")

    def value(self, value_type):
        if value_type == _TYPE_STRING:
            return self.string()
        if value_type == _TYPE_ARRAY:
            element_type = self.scalar("I")
            count = self.scalar("Q")
            if element_type in _SCALAR_FORMATS:
                fmt = _SCALAR_FORMATS[element_type]
                size = struct.calcsize("<" + fmt) * count
                if self.pos + size > len(self.data):
                    raise GgufError("array runs past the end of the file")
                values = list(struct.unpack_from(f"<{count}{fmt}", self.data, self.pos))
                self.pos += size
                return values
            return [self.value(element_type) for _ in range(count)]
        if value_type in _SCALAR_FORMATS:
            return self.scalar(_SCALAR_FORMATS[value_type])
        raise GgufError(f"unknown metadata value type {value_type} at byte {self.pos}")


def read_gguf(path):
    """Parses a GGUF v2/v3 file.

    Returns (metadata dict, tensors dict name -> (shape list, flat list of floats)). Shapes are in
    GGUF order: shape[0] is the contiguous dimension, so a matrix of shape [n, m] is m rows of n.
    """
    with open(path, "rb") as handle:
        data = handle.read()
    reader = _Reader(data)
    if data[:4] != GGUF_MAGIC:
        raise GgufError(f"{path}: not a GGUF file (magic {data[:4]!r})")
    reader.pos = 4
    version = reader.scalar("I")
    if version not in (2, 3):
        raise GgufError(f"{path}: GGUF version {version} is not supported")
    tensor_count = reader.scalar("Q")
    kv_count = reader.scalar("Q")

    metadata = {}
    for _ in range(kv_count):
        key = reader.string()
        metadata[key] = reader.value(reader.scalar("I"))

    infos = []
    for _ in range(tensor_count):
        name = reader.string()
        n_dims = reader.scalar("I")
        shape = [reader.scalar("Q") for _ in range(n_dims)]
        tensor_type = reader.scalar("I")
        offset = reader.scalar("Q")
        infos.append((name, shape, tensor_type, offset))

    alignment = metadata.get("general.alignment", GGUF_DEFAULT_ALIGNMENT)
    data_start = (reader.pos + alignment - 1) // alignment * alignment

    tensors = {}
    for name, shape, tensor_type, offset in infos:
        if tensor_type != GGML_TYPE_F32:
            raise GgufError(f"tensor {name}: ggml type {tensor_type} is not F32")
        count = math.prod(shape)
        begin = data_start + offset
        end = begin + 4 * count
        if end > len(data):
            raise GgufError(f"tensor {name} runs past the end of the file")
        values = array("f")
        values.frombytes(data[begin:end])
        if sys.byteorder != "little":
            values.byteswap()
        tensors[name] = (shape, values.tolist())
    return metadata, tensors


# ---------------------------------------------------------------------------------------------
# Tokenizer: SentencePiece BPE with byte fallback

SPACE_MARKER = "\u2581"
TOKEN_TYPE_NORMAL = 1
TOKEN_TYPE_USER_DEFINED = 4
TOKEN_TYPE_BYTE = 6


class Tokenizer:
    def __init__(self, metadata):
        self.pieces = metadata["tokenizer.ggml.tokens"]
        self.scores = metadata["tokenizer.ggml.scores"]
        types = metadata.get("tokenizer.ggml.token_type", [TOKEN_TYPE_NORMAL] * len(self.pieces))
        self.bos = metadata.get("tokenizer.ggml.bos_token_id", 1)
        # Only text pieces take part in merges; control and byte pieces are never spelled out.
        self.piece_id = {}
        self.byte_id = {}
        for token, (piece, kind) in enumerate(zip(self.pieces, types)):
            if kind in (TOKEN_TYPE_NORMAL, TOKEN_TYPE_USER_DEFINED):
                self.piece_id.setdefault(piece, token)
            elif kind == TOKEN_TYPE_BYTE:
                self.byte_id[int(piece[3:5], 16)] = token

    def encode(self, text):
        """[pieces of " " + text], without BOS; empty text gives no tokens."""
        if not text:
            return []
        symbols = list((" " + text).replace(" ", SPACE_MARKER))
        # Merge the best adjacent pair until none is a piece. Quadratic, but plain enough to trust.
        while True:
            best_score = None
            best_index = -1
            for i in range(len(symbols) - 1):
                token = self.piece_id.get(symbols[i] + symbols[i + 1])
                if token is not None and (best_score is None or self.scores[token] > best_score):
                    best_score = self.scores[token]
                    best_index = i
            if best_index < 0:
                break
            symbols[best_index:best_index + 2] = [symbols[best_index] + symbols[best_index + 1]]
        ids = []
        for symbol in symbols:
            token = self.piece_id.get(symbol)
            if token is not None:
                ids.append(token)
            else:
                ids.extend(self.byte_id[b] for b in symbol.encode("utf-8", errors="surrogateescape"))
        return ids


# ---------------------------------------------------------------------------------------------
# Stories

STORY_SEPARATOR = "<|endoftext|>"


def split_stories(text):
    """Stories are the lines between separator lines, joined with newlines; empty ones dropped.

    Lines are split on '\\n' with a trailing '\\r' removed; nothing else is stripped, so leading
    spaces and blank lines inside a story are kept, exactly as kvbits-eval reads the file.
    """
    stories = []
    current = []
    for line in text.split("\n"):
        if line.endswith("\r"):
            line = line[:-1]
        if line == STORY_SEPARATOR:
            story = "\n".join(current)
            if story:
                stories.append(story)
            current = []
        else:
            current.append(line)
    # A file ending in '\n' yields one empty last line, which is no line of a story.
    if current and text.endswith("\n"):
        current.pop()
    story = "\n".join(current)
    if story:
        stories.append(story)
    return stories


def read_stories(path):
    with open(path, "rb") as handle:
        return split_stories(handle.read().decode("utf-8", errors="surrogateescape"))


# ---------------------------------------------------------------------------------------------
# Model


class Config:
    def __init__(self, metadata, tensors):
        arch = metadata.get("general.architecture", "llama")
        self.dim = metadata[f"{arch}.embedding_length"]
        self.layers = metadata[f"{arch}.block_count"]
        self.heads = metadata[f"{arch}.attention.head_count"]
        self.kv_heads = metadata.get(f"{arch}.attention.head_count_kv", self.heads)
        self.ffn = metadata[f"{arch}.feed_forward_length"]
        self.context = metadata[f"{arch}.context_length"]
        self.eps = metadata[f"{arch}.attention.layer_norm_rms_epsilon"]
        self.theta = metadata.get(f"{arch}.rope.freq_base", 10000.0)
        self.head_dim = self.dim // self.heads
        rope_dims = metadata.get(f"{arch}.rope.dimension_count", self.head_dim)
        if rope_dims != self.head_dim:
            raise GgufError(f"partial RoPE ({rope_dims} of {self.head_dim} dims) is not supported")
        self.vocab = tensors["token_embd.weight"][0][1]


def _rows(tensor):
    """The matrix of a GGUF tensor [n, m] as m Python lists of n floats (one per output)."""
    shape, values = tensor
    width = shape[0]
    return [values[i:i + width] for i in range(0, len(values), width)]


class Layer:
    def __init__(self, tensors, index):
        prefix = f"blk.{index}."
        self.attn_norm = tensors[prefix + "attn_norm.weight"][1]
        self.wq = _rows(tensors[prefix + "attn_q.weight"])         # [heads * head_dim][dim]
        self.wk = _rows(tensors[prefix + "attn_k.weight"])         # [kv_heads * head_dim][dim]
        self.wv = _rows(tensors[prefix + "attn_v.weight"])         # [kv_heads * head_dim][dim]
        self.wo = _rows(tensors[prefix + "attn_output.weight"])    # [dim][heads * head_dim]
        self.ffn_norm = tensors[prefix + "ffn_norm.weight"][1]
        self.w_gate = _rows(tensors[prefix + "ffn_gate.weight"])   # [ffn][dim]
        self.w_up = _rows(tensors[prefix + "ffn_up.weight"])       # [ffn][dim]
        self.w_down = _rows(tensors[prefix + "ffn_down.weight"])   # [dim][ffn]


def _matvec(rows, x):
    return [sum(map(mul, row, x)) for row in rows]


def _rms_norm(x, weight, eps):
    inv = 1.0 / math.sqrt(sum(map(mul, x, x)) / len(x) + eps)
    return [a * inv * w for a, w in zip(x, weight)]


def _silu(x):
    # Written per sign so exp never overflows for large |x|.
    if x >= 0.0:
        return x / (1.0 + math.exp(-x))
    e = math.exp(x)
    return x * e / (1.0 + e)


def quantize_group(values, bits):
    """Asymmetric uniform quantization of one group, returned dequantized.

    min/max of the group, scale = (max - min) / (2^bits - 1), code = round((x - min) / scale)
    (half away from zero; codes are non-negative), x^ = min + scale * code. A constant group is
    exact.
    """
    lo = min(values)
    hi = max(values)
    if hi == lo:
        return list(values)
    scale = (hi - lo) / ((1 << bits) - 1)
    return [lo + scale * math.floor((v - lo) / scale + 0.5) for v in values]


class KVCache:
    """History of one sequence, per layer and KV head; keys are post-RoPE.

    keys[layer][kv_head] is a list over positions of head_dim-tuples ([positions][head_dim]), the
    layout the generated scorer unpacks; values[layer][kv_head] is channel-major
    ([head_dim][positions]) so each output channel is one C-level inner product. With key_bits /
    value_bits set, every token's K / V head vector is quantized as one group and only its
    dequantized value is kept.
    """

    def __init__(self, config, key_bits=None, value_bits=None):
        self.key_bits = key_bits
        self.value_bits = value_bits
        self.keys = [[[] for _ in range(config.kv_heads)] for _ in range(config.layers)]
        self.values = [[[[] for _ in range(config.head_dim)] for _ in range(config.kv_heads)]
                       for _ in range(config.layers)]

    def append(self, layer, kv_head, key, value):
        if self.key_bits is not None:
            key = quantize_group(key, self.key_bits)
        if self.value_bits is not None:
            value = quantize_group(value, self.value_bits)
        self.keys[layer][kv_head].append(tuple(key))
        for column, x in zip(self.values[layer][kv_head], value):
            column.append(x)


def make_scorer(head_dim):
    """Returns score(q, keys) -> [q . k for k in keys] for head_dim-long vectors.

    The products are written out for the model's head_dim because CPython runs unpacked local
    float arithmetic about 2.5x faster than map(mul, ...) over short tuples, and scoring is most of
    the attention time at long positions. Terms are summed left to right, as sum() would.
    """
    qs = ", ".join(f"q{i}" for i in range(head_dim))
    ks = ", ".join(f"k{i}" for i in range(head_dim))
    expression = " + ".join(f"q{i} * k{i}" for i in range(head_dim))
    source = (f"def score(q, keys):\n"
              f"    ({qs},) = q\n"
              f"    return [{expression} for ({ks},) in keys]\n")
    namespace = {}
    exec(compile(source, f"<scorer for head_dim {head_dim}>", "exec"), namespace)
    return namespace["score"]


class Llama:
    def __init__(self, path):
        metadata, tensors = read_gguf(path)
        self.metadata = metadata
        self.config = Config(metadata, tensors)
        self.tokenizer = Tokenizer(metadata)
        self.embedding = _rows(tensors["token_embd.weight"])      # [vocab][dim]
        self.layers = [Layer(tensors, i) for i in range(self.config.layers)]
        self.output_norm = tensors["output_norm.weight"][1]
        name = "output.weight" if "output.weight" in tensors else "token_embd.weight"
        self.output = _rows(tensors[name])                         # [vocab][dim]
        hd = self.config.head_dim
        self.frequencies = [self.config.theta ** (-2.0 * i / hd) for i in range(hd // 2)]
        self.score = make_scorer(hd)

    def _rope(self, vector, position):
        """Rotates the consecutive pairs (2i, 2i+1) of every head in place."""
        hd = self.config.head_dim
        rotation = [(math.cos(position * f), math.sin(position * f)) for f in self.frequencies]
        for base in range(0, len(vector), hd):
            for i, (c, s) in enumerate(rotation):
                a = vector[base + 2 * i]
                b = vector[base + 2 * i + 1]
                vector[base + 2 * i] = a * c - b * s
                vector[base + 2 * i + 1] = a * s + b * c

    def forward(self, token, position, cache):
        """Logits for the token after `token` at `position`; appends its K/V to `cache`."""
        cfg = self.config
        hd = cfg.head_dim
        group = cfg.heads // cfg.kv_heads
        inv_sqrt_hd = 1.0 / math.sqrt(hd)
        exp = math.exp
        x = list(self.embedding[token])
        for index, layer in enumerate(self.layers):
            h = _rms_norm(x, layer.attn_norm, cfg.eps)
            q = _matvec(layer.wq, h)
            k = _matvec(layer.wk, h)
            v = _matvec(layer.wv, h)
            self._rope(q, position)
            self._rope(k, position)
            for kv_head in range(cfg.kv_heads):
                cache.append(index, kv_head, k[kv_head * hd:(kv_head + 1) * hd],
                             v[kv_head * hd:(kv_head + 1) * hd])
            attention = []
            for head in range(cfg.heads):
                keys = cache.keys[index][head // group]
                values = cache.values[index][head // group]
                scores = self.score([c * inv_sqrt_hd for c in q[head * hd:(head + 1) * hd]], keys)
                top = max(scores)
                weights = [exp(s - top) for s in scores]
                norm = 1.0 / sum(weights)
                attention.extend(sum(map(mul, weights, column)) * norm for column in values)
            x = list(map(add, x, _matvec(layer.wo, attention)))

            h = _rms_norm(x, layer.ffn_norm, cfg.eps)
            gate = _matvec(layer.w_gate, h)
            up = _matvec(layer.w_up, h)
            # SwiGLU: silu(gate) * up
            hidden = [_silu(g) * u for g, u in zip(gate, up)]
            x = list(map(add, x, _matvec(layer.w_down, hidden)))
        return _matvec(self.output, _rms_norm(x, self.output_norm, cfg.eps))


def log_softmax(logits):
    top = max(logits)
    log_total = top + math.log(sum(math.exp(z - top) for z in logits))
    return [z - log_total for z in logits]


def argmax(values):
    return max(range(len(values)), key=values.__getitem__)


# ---------------------------------------------------------------------------------------------
# Evaluation


class Totals:
    def __init__(self, name):
        self.name = name
        self.nll = 0.0
        self.kl = 0.0
        self.agreements = 0
        self.positions = 0

    def as_dict(self, reference_ppl=None):
        ppl = math.exp(self.nll / self.positions) if self.positions else float("nan")
        result = {"policy": self.name, "perplexity": ppl}
        if reference_ppl is not None:
            result["perplexity_change_percent"] = 100.0 * (ppl / reference_ppl - 1.0)
            result["mean_kl"] = self.kl / self.positions if self.positions else float("nan")
            result["top1_agreement"] = (self.agreements / self.positions
                                        if self.positions else float("nan"))
        return result


def policy_name(key_bits, value_bits):
    """The kvbits-eval policy string of the same cache (32 = not quantized)."""
    return f"static:{key_bits or 32},{value_bits or 32}"


def encode_stories(model, stories, max_tokens):
    limit = min(max_tokens, model.config.context)
    sequences = []
    for story in stories:
        ids = [model.tokenizer.bos] + model.tokenizer.encode(story)
        sequences.append(ids[:limit])
    return sequences


def evaluate(model, sequences, variants, progress=None):
    """Teacher-forces every sequence with an exact cache and each (key_bits, value_bits) variant.

    Returns (reference Totals, [Totals per variant], forward passes run).
    """
    reference = Totals("fp32")
    totals = [Totals(policy_name(kb, vb)) for kb, vb in variants]
    forwards = 0
    for number, ids in enumerate(sequences):
        positions = len(ids) - 1
        cache = KVCache(model.config)
        reference_rows = []
        reference_top = []
        for p in range(positions):
            logits = model.forward(ids[p], p, cache)
            row = log_softmax(logits)
            reference_rows.append(row)
            reference_top.append(argmax(logits))
            reference.nll -= row[ids[p + 1]]
        reference.positions += positions
        forwards += positions
        for (key_bits, value_bits), total in zip(variants, totals):
            cache = KVCache(model.config, key_bits, value_bits)
            for p in range(positions):
                logits = model.forward(ids[p], p, cache)
                row = log_softmax(logits)
                total.nll -= row[ids[p + 1]]
                ref = reference_rows[p]
                total.kl += max(0.0, sum(math.exp(a) * (a - b) for a, b in zip(ref, row)))
                total.agreements += argmax(logits) == reference_top[p]
            total.positions += positions
            forwards += positions
        if progress:
            progress(number + 1, len(sequences), forwards)
    return reference, totals, forwards


def run(model_path, text_path, story_count, variants, max_tokens=512, quiet=False):
    """Loads, tokenizes and evaluates; returns a JSON-ready dict of the results."""
    start = time.perf_counter()
    model = Llama(model_path)
    stories = read_stories(text_path)
    if story_count is not None:
        stories = stories[:story_count]
    if not stories:
        raise SystemExit(f"no stories in {text_path}")
    sequences = encode_stories(model, stories, max_tokens)
    loaded = time.perf_counter()

    def progress(done, count, forwards):
        if not quiet:
            elapsed = time.perf_counter() - loaded
            print(f"\rreference: story {done}/{count}, {forwards} forward passes, "
                  f"{forwards / elapsed:.1f} tokens/s", end="", file=sys.stderr, flush=True)

    reference, totals, forwards = evaluate(model, sequences, variants, progress)
    finished = time.perf_counter()
    if not quiet:
        print(file=sys.stderr)
    reference_ppl = reference.as_dict()["perplexity"]
    return {
        "model": model_path,
        "text": text_path,
        "stories": len(sequences),
        "max_tokens": min(max_tokens, model.config.context),
        "positions": reference.positions,
        "reference_perplexity": reference_ppl,
        "policies": [t.as_dict(reference_ppl) for t in totals],
        "forward_passes": forwards,
        "load_seconds": loaded - start,
        "eval_seconds": finished - loaded,
        "tokens_per_second": forwards / (finished - loaded),
    }


def _bits(text):
    value = int(text)
    if not 1 <= value <= 16:
        raise argparse.ArgumentTypeError("bits must be in 1..16")
    return value


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="LLaMA GGUF file with F32 tensors")
    parser.add_argument("--text", required=True, help="stories separated by <|endoftext|> lines")
    parser.add_argument("--stories", type=int, default=None, help="only the first N stories")
    parser.add_argument("--max-tokens", type=int, default=512,
                        help="most tokens per story including BOS (default 512)")
    parser.add_argument("--bits-k", type=_bits, default=None, help="quantize keys to B bits")
    parser.add_argument("--bits-v", type=_bits, default=None, help="quantize values to B bits")
    parser.add_argument("--json", action="store_true", help="print JSON")
    return parser.parse_args(argv)


def print_table(result):
    print(f"model: {result['model']}; {result['stories']} stories, {result['positions']} positions;"
          f" FP32-cache perplexity {result['reference_perplexity']:.6f}")
    print(f"{result['forward_passes']} forward passes in {result['eval_seconds']:.1f} s "
          f"({result['tokens_per_second']:.1f} tokens/s)")
    for row in result["policies"]:
        print(f"{row['policy']}: perplexity {row['perplexity']:.6f} "
              f"({row['perplexity_change_percent']:+.3f}%), mean KL {row['mean_kl']:.4e}, "
              f"top-1 agreement {100.0 * row['top1_agreement']:.2f}%")


def main(argv=None):
    args = parse_args(argv)
    variants = []
    if args.bits_k is not None or args.bits_v is not None:
        variants.append((args.bits_k, args.bits_v))
    for path in (args.model, args.text):
        if not os.path.isfile(path):
            raise SystemExit(f"llama_reference: {path} does not exist")
    result = run(args.model, args.text, args.stories, variants, args.max_tokens)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
