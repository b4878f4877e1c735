"""Damaged actor blobs for the validator tests: the named malformed classes (decoder breakers) and
random mutations (bit flips, truncations, header edits, splices) of a valid blob."""
import json

import numpy as np

NEST = 100_000  # deep enough for Python's json (recursion limit ~1000) and Rust's serde_json (128)


def split(blob: bytes) -> tuple[dict, bytes]:
    """safetensors bytes -> (header dict, data bytes)."""
    n = int.from_bytes(blob[:8], "little")
    return json.loads(blob[8:8 + n]), blob[8 + n:]


def join(header, data: bytes) -> bytes:
    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    return len(h).to_bytes(8, "little") + h + data


def _with(header: dict, **metadata) -> dict:
    h = json.loads(json.dumps(header))
    h["__metadata__"].update(metadata)
    return h


def malformed_blobs(good: bytes) -> dict[str, bytes]:
    """One blob per class of decoder failure, each built from the valid blob `good`."""
    h, data = split(good)
    p = h["params"]
    n = p["shape"][0]
    return {
        "nested-header": join(b'{"a":' * NEST + b"1" + b"}" * NEST, data),
        "nested-extra": join(_with(h, extra="[" * NEST + "]" * NEST), data),
        "nested-spec": join(_with(h, spec='{"a":' * NEST + "1" + "}" * NEST), data),
        "invalid-header": join(b'{"params": {"dtype": ', data),
        "invalid-extra": join(_with(h, extra="{not json"), data),
        "invalid-spec": join(_with(h, spec="{not json"), data),
        "dtype-BF16": join({**h, "params": {**p, "dtype": "BF16", "shape": [2 * n]}}, data),
        "dtype-F64": join({**h, "params": {**p, "dtype": "F64", "shape": [n // 2]}}, data),
        "truncated": good[:len(good) // 2],
        "header-only": good[:8 + int.from_bytes(good[:8], "little")],
        "wrong-size": join({**h, "params": {**p, "shape": [n + 1]}}, data),
        "header-length-huge": (1 << 50).to_bytes(8, "little") + good[8:],
        "too-short": good[:5],
        "empty": b"",
        "no-params-tensor": join({"w": p, "__metadata__": h["__metadata__"]}, data),
        "metadata-not-object": join({**h, "__metadata__": [1, 2]}, data),
        "spec-wrong-type": join(_with(h, spec="[1]"), data),
        "wrong-format": join(_with(h, format="maa-actor/999"), data),
    }


def mutate(good: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    """One random damage of `good` -> (what was done, damaged bytes). Every result differs from `good`."""
    h, data = split(good)
    hlen = len(good) - len(data)
    kind = ("flip-data", "flip-header", "truncate", "splice", "header-edit", "extend")[rng.integers(6)]
    b = bytearray(good)
    if kind in ("flip-data", "flip-header"):  # 1-8 random bit flips in the parameters / in the header
        lo, hi = (hlen, len(b)) if kind == "flip-data" else (0, hlen)
        for _ in range(int(rng.integers(1, 9))):
            b[int(rng.integers(lo, hi))] ^= 1 << int(rng.integers(8))
        if bytes(b) == good:
            b[lo] ^= 1
        return kind, bytes(b)
    if kind == "truncate":
        return kind, good[:int(rng.integers(0, len(good)))]
    if kind == "extend":
        return kind, good + rng.bytes(int(rng.integers(1, 64)))
    if kind == "splice":  # a chunk of the blob copied over another place (or random bytes)
        n = int(rng.integers(1, 4096))
        at = int(rng.integers(0, len(b) - n))
        src = rng.bytes(n) if rng.random() < 0.5 else good[int(rng.integers(0, len(good) - n)):][:n]
        b[at:at + n] = src
        if bytes(b) == good:
            b[at] ^= 0xFF
        return kind, bytes(b)
    # header edits: plausible-looking JSON with one field changed
    p, md = h["params"], h["__metadata__"]
    edits = [
        lambda: {**h, "params": {**p, "dtype": str(rng.choice(["BF16", "F16", "F64", "I32", "U8", "XX", ""]))}},
        lambda: {**h, "params": {**p, "shape": [int(p["shape"][0] + rng.integers(-3, 4)) or 1]}},
        lambda: {**h, "params": {**p, "data_offsets": [0, int(p["data_offsets"][1] - 4 * rng.integers(1, 9))]}},
        lambda: {**h, "__metadata__": {**md, "checksum": "0" * 64}},
        lambda: {**h, "__metadata__": {**md, "spec": md["spec"].replace("256", "255", 1)}},
        lambda: {**h, "__metadata__": {**md, "extra": str(rng.choice(["{", "[]]", "nul", '"x'])) }},
        lambda: {**h, "__metadata__": {k: v for k, v in md.items() if k != str(rng.choice(list(md)))}},
        lambda: {**h, "params": {k: v for k, v in p.items() if k != str(rng.choice(list(p)))}},
        lambda: {**h, "__metadata__": {**md, "format": None}},
    ]
    out = join(edits[int(rng.integers(len(edits)))](), data)
    if out == good:
        out = join({**h, "__metadata__": {**md, "checksum": "f" * 64}}, data)
    return kind, out
