"""Parsing of the files a user hands us: JSON, YAML, npz, safetensors headers, with limits.

Every reader here checks type and size before it allocates anything the file asks for, and turns
whatever is wrong into one `MaaError` line `<file>: <what is wrong, what was expected>`. Exceptions
of the parsing libraries are converted here, at the parse site, so callers see MaaError or a bug.
The format-specific readers (dataset manifests and shards, actor blobs, prompt bags, generator
folders) build on these.
"""
from __future__ import annotations

import json
import math
import os
import re
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import MaaError, check


@dataclass(frozen=True)
class Limits:
    json_bytes: int = 64 << 20  # a manifest of ~100k shards; generator.json and headers are far smaller
    json_depth: int = 64  # our files nest < 10 deep; json recursion fails near 1000
    yaml_bytes: int = 4 << 20  # configs and recipes are a few kB
    safetensors_header_bytes: int = 64 << 20  # dataset shard headers carry per-record metadata
    npz_member_bytes: int = 1 << 30  # one prompt array (states of a long trajectory are a few MB)
    npz_members: int = 64


LIMITS = Limits()

# safetensors dtype name -> (numpy dtype, bytes per element); anything else is refused before use
SAFETENSORS_DTYPES = {"F64": ("<f8", 8), "F32": ("<f4", 4), "F16": ("<f2", 2), "I64": ("<i8", 8), "I32": ("<i4", 4),
                      "I16": ("<i2", 2), "I8": ("i1", 1), "U8": ("u1", 1), "BOOL": ("?", 1)}


# -- JSON ------------------------------------------------------------------------------------------
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)


def json_depth(text: str) -> int:
    """Deepest [ / { nesting of a JSON text, without recursion (strings are skipped)."""
    bare = _JSON_STRING.sub("", text)
    if not bare:
        return 0
    codes = np.frombuffer(bare.encode("utf-8", "replace"), dtype=np.uint8)
    step = np.zeros(len(codes), np.int64)
    step[(codes == ord("[")) | (codes == ord("{"))] = 1
    step[(codes == ord("]")) | (codes == ord("}"))] = -1
    return int(np.cumsum(step).max(initial=0))


def loads_json(data: bytes | str, where: str, max_depth: int | None = None):
    """JSON text -> object; MaaError on invalid UTF-8, invalid JSON or nesting deeper than the limit."""
    max_depth = LIMITS.json_depth if max_depth is None else max_depth
    if isinstance(data, (bytes, bytearray, memoryview)):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as e:
            raise MaaError(f"{where}: not UTF-8 text (byte {e.start}), expected JSON") from None
    check(isinstance(data, str), f"{where}: expected JSON text, got {type(data).__name__}")
    # no text nests deeper than it has openers: the exact depth (a few numpy passes) only for texts with many
    if data.count("[") + data.count("{") > max_depth:
        depth = json_depth(data)
        check(depth <= max_depth, f"{where}: JSON nested {depth} deep, the limit is {max_depth}")
    try:
        return json.loads(data)
    except json.JSONDecodeError as e:
        raise MaaError(f"{where}: not valid JSON ({e})") from None


def read_json(path, what: str = "JSON file", max_bytes: int | None = None, max_depth: int | None = None):
    path = Path(path)
    data = read_bytes(path, what, LIMITS.json_bytes if max_bytes is None else max_bytes)
    return loads_json(data, str(path), max_depth)


def read_bytes(path, what: str, max_bytes: int) -> bytes:
    """The whole file, refused before reading when it is larger than `max_bytes`."""
    path = Path(path)
    try:
        size = path.stat().st_size
        check(not path.is_dir(), f"{path}: is a folder, expected a file ({what})")
        check(size <= max_bytes, f"{path}: {size} bytes, the limit for a {what} is {max_bytes}")
        return path.read_bytes()
    except FileNotFoundError:
        raise MaaError(f"{path}: no such {what}") from None
    except OSError as e:
        raise MaaError(f"{path}: cannot read {what} ({e.strerror or e})") from None


def write_atomic(path, data: bytes | str) -> Path:
    """Writes to a temp file in the same folder, then renames: a failure leaves nothing partial."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


# -- typed fields ----------------------------------------------------------------------------------
_TYPE_NAMES = {dict: "a mapping", list: "a list", str: "a string", int: "an integer", float: "a number", bool: "true/false"}


def expect(value, kind, where: str):
    """`value` if it has type `kind` (int: not bool; float: int or float), else MaaError."""
    ok = (isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float
          else isinstance(value, int) and not isinstance(value, bool) if kind is int else isinstance(value, kind))
    check(ok, f"{where}: expected {_TYPE_NAMES.get(kind, kind.__name__)}, got {_describe(value)}")
    return value


def get_field(d: dict, key: str, kind, where: str):
    """d[key] of type `kind`; MaaError naming the key when it is missing or of another type."""
    check(isinstance(d, dict), f"{where}: expected a mapping, got {_describe(d)}")
    check(key in d, f"{where}: missing key {key!r}")
    return expect(d[key], kind, f"{where}: {key!r}")


def positive_int(value, where: str, limit: int | None = None) -> int:
    expect(value, int, where)
    check(value >= 1, f"{where}: {value}, expected a positive integer")
    if limit is not None:
        check(value <= limit, f"{where}: {value} exceeds the limit of {limit}")
    return int(value)


def _describe(v) -> str:
    if isinstance(v, (dict, list)):
        return f"{type(v).__name__} of {len(v)}"
    r = repr(v)
    return f"{type(v).__name__} {r[:40] + '...' if len(r) > 40 else r}"


# -- YAML ------------------------------------------------------------------------------------------
def read_yaml_mapping(path, what: str = "config file") -> dict:
    """A YAML file whose top level is a mapping (an empty file is {}); one clear line when it is not."""
    import yaml

    path = Path(path)
    data = read_bytes(path, what, LIMITS.yaml_bytes)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise MaaError(f"{path}: not UTF-8 text (byte {e.start}), expected a YAML {what}") from None
    try:
        d = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise MaaError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    except RecursionError:
        raise MaaError(f"{path}: YAML nested too deep") from None
    d = {} if d is None else d
    if not isinstance(d, dict):
        raise MaaError(f"{path}: expected a mapping at top level, got {type(d).__name__}")
    return d


def dataclass_from_mapping(cls, d: dict | None, where: str, required: tuple[str, ...] = ()):
    """A dataclass from a config mapping: unknown keys, missing required keys and values whose type
    differs from the field's default (a string where a number belongs) end in one line."""
    import dataclasses

    d = dict(d or {})
    flds = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(flds))
    check(not unknown, f"{where}: unknown key(s) {unknown} (known: {sorted(flds)})")
    for k in required:
        check(k in d, f"{where}: missing key {k!r}")
    for k, v in d.items():
        f = flds[k]
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        if default is None or v is None:
            continue
        if isinstance(default, bool):
            ok = isinstance(v, bool)
        elif isinstance(default, (int, float)):
            ok = isinstance(v, (int, float)) and not isinstance(v, bool)
            if ok and isinstance(default, float):
                d[k] = float(v)
            ok = ok and (isinstance(default, float) or isinstance(v, int))
        elif isinstance(default, str):
            ok = isinstance(v, str)
        elif isinstance(default, (tuple, list)):
            ok = isinstance(v, (tuple, list))
            if ok and isinstance(default, tuple):
                d[k] = tuple(v)
        elif isinstance(default, dict):
            ok = isinstance(v, dict)
        else:
            ok = True
        check(ok, f"{where}: {k} = {_describe(v)}, expected {type(default).__name__}")
    return cls(**d)


# -- safetensors -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TensorInfo:
    dtype: str
    shape: tuple[int, ...]
    start: int  # byte offsets within the data section
    stop: int


def parse_safetensors_header(head: bytes, total_size: int, where: str,
                             dtypes=tuple(SAFETENSORS_DTYPES), max_header: int | None = None,
                             max_data_bytes: int | None = None) -> tuple[dict[str, TensorInfo], dict[str, str], int]:
    """Checks a safetensors header without touching the data -> (tensors, metadata, header length).

    `head` must hold at least the first 8 bytes; when the header is longer than `head`, MaaError
    tells the caller how much to read (use `read_safetensors_header` for files). `total_size` is
    the size of the whole blob/file: every tensor must lie inside it and have exactly
    prod(shape) x itemsize bytes, so nothing is allocated for a header that lies about sizes.
    """
    max_header = LIMITS.safetensors_header_bytes if max_header is None else max_header
    check(total_size >= 8 and len(head) >= 8, f"{where}: {total_size} bytes, too short for a safetensors file")
    n = struct.unpack("<Q", bytes(head[:8]))[0]
    check(n <= max_header, f"{where}: safetensors header of {n} bytes exceeds the limit of {max_header}")
    check(8 + n <= total_size, f"{where}: safetensors header of {n} bytes runs past the end of the {total_size}-byte file")
    check(len(head) >= 8 + n, f"{where}: header not read completely")  # a caller bug, not bad input
    header = loads_json(bytes(head[8:8 + n]), f"{where}: header")
    check(isinstance(header, dict), f"{where}: safetensors header is {_describe(header)}, expected a mapping")
    md = header.pop("__metadata__", None) or {}
    check(isinstance(md, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in md.items()),
          f"{where}: safetensors metadata must map strings to strings")
    data_size = total_size - 8 - n
    tensors: dict[str, TensorInfo] = {}
    spans = []
    for name, t in header.items():
        w = f"{where}: tensor {name!r}"
        check(isinstance(t, dict), f"{w}: expected a mapping with dtype, shape, data_offsets")
        dtype = t.get("dtype")
        check(dtype in dtypes, f"{w}: dtype {dtype!r}, expected one of {', '.join(dtypes)}")
        shape, offs = t.get("shape"), t.get("data_offsets")
        check(isinstance(shape, list) and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape),
              f"{w}: shape {shape!r}, expected a list of non-negative integers")
        check(isinstance(offs, list) and len(offs) == 2 and all(isinstance(o, int) and not isinstance(o, bool) for o in offs)
              and 0 <= offs[0] <= offs[1] <= data_size,
              f"{w}: data_offsets {offs!r} do not lie within the {data_size} data bytes")
        nbytes = math.prod(shape) * SAFETENSORS_DTYPES[dtype][1]  # Python ints: no overflow
        check(offs[1] - offs[0] == nbytes, f"{w}: shape {shape} x {dtype} is {nbytes} bytes, its data_offsets span {offs[1] - offs[0]}")
        tensors[name] = TensorInfo(dtype, tuple(shape), offs[0], offs[1])
        spans.append((offs[0], offs[1]))
    spans.sort()
    end = 0
    for a, b in spans:  # the tensors tile the data section exactly, as the format requires
        check(a == end, f"{where}: tensors do not tile the data section (gap or overlap at byte {min(a, end)})")
        end = b
    check(end == data_size, f"{where}: tensors end at byte {end} of a {data_size}-byte data section")
    if max_data_bytes is not None:
        total = sum(t.stop - t.start for t in tensors.values())
        check(total <= max_data_bytes, f"{where}: tensors hold {total} bytes, the limit is {max_data_bytes}")
    return tensors, md, n


def read_safetensors_header(path, where: str | None = None, **kw) -> tuple[dict[str, TensorInfo], dict[str, str], int]:
    """`parse_safetensors_header` for a file: reads the 8-byte length and the header only."""
    path = Path(path)
    where = where or str(path)
    try:
        size = path.stat().st_size
        check(not path.is_dir(), f"{where}: is a folder, expected a safetensors file")
        with open(path, "rb") as f:
            first = f.read(8)
            check(len(first) == 8, f"{where}: {size} bytes, too short for a safetensors file")
            n = struct.unpack("<Q", first)[0]
            max_header = kw.get("max_header") or LIMITS.safetensors_header_bytes
            check(n <= max_header, f"{where}: safetensors header of {n} bytes exceeds the limit of {max_header}")
            check(8 + n <= size, f"{where}: safetensors header of {n} bytes runs past the end of the {size}-byte file")
            head = first + f.read(n)
    except FileNotFoundError:
        raise MaaError(f"{where}: no such file") from None
    except OSError as e:
        raise MaaError(f"{where}: cannot read ({e.strerror or e})") from None
    return parse_safetensors_header(head, size, where, **kw)


def load_safetensors_bytes(data: bytes, where: str, dtypes=tuple(SAFETENSORS_DTYPES),
                           max_data_bytes: int | None = None) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Checked header, then the tensors as numpy arrays (views of `data`: no copy of the payload)."""
    tensors, md, n = parse_safetensors_header(data, len(data), where, dtypes, max_data_bytes=max_data_bytes)
    base = 8 + n
    mv = memoryview(data)
    out = {}
    for name, t in tensors.items():
        np_dtype = SAFETENSORS_DTYPES[t.dtype][0]
        out[name] = np.frombuffer(mv[base + t.start:base + t.stop], dtype=np_dtype).reshape(t.shape)
    return out, md


# -- npz -------------------------------------------------------------------------------------------
def load_npz(path, what: str = ".npz file", max_member_bytes: int | None = None) -> dict[str, np.ndarray]:
    """Every array of an .npz file; each member's header (dtype, shape) is checked before it is read.

    Refused: not a zip, a truncated or corrupt zip (CRC), more than `Limits.npz_members` members,
    object (pickled) arrays, and an array whose shape asks for more than `max_member_bytes`."""
    path = Path(path)
    limit = LIMITS.npz_member_bytes if max_member_bytes is None else max_member_bytes
    check(path.exists(), f"{path}: no such {what}")
    check(not path.is_dir(), f"{path}: is a folder, expected a {what}")
    out = {}
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
            check(len(infos) <= LIMITS.npz_members, f"{path}: {len(infos)} members, a {what} has at most {LIMITS.npz_members}")
            for info in infos:
                name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                w = f"{path}: array {name!r}"
                check(info.file_size <= limit + 4096, f"{w}: {info.file_size} bytes, the limit is {limit}")
                with z.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    check(version in ((1, 0), (2, 0)), f"{w}: .npy version {version}, expected 1.0 or 2.0")
                    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                    shape, _fortran, dtype = read_header(f)
                    check(not dtype.hasobject and dtype.kind in "biuf",
                          f"{w}: dtype {dtype}, expected numbers or booleans (no pickled objects)")
                    nbytes = math.prod(shape) * dtype.itemsize
                    check(nbytes <= limit, f"{w}: shape {shape} x {dtype} is {nbytes} bytes, the limit is {limit}")
                    check(info.file_size - f.tell() >= nbytes, f"{w}: shape {shape} needs {nbytes} bytes, the member holds fewer")
                with z.open(info) as f:
                    out[name] = np.lib.format.read_array(f, allow_pickle=False)
    except MaaError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, NotImplementedError) as e:
        raise MaaError(f"{path}: not a readable {what} ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    return out
