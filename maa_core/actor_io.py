"""A generated actor as one self-describing blob: safetensors bytes whose header carries the spec,
a generation id, the prompt id and a checksum of the parameters. The same bytes are the export
file format (`.safetensors`) and the payload of the ROS actor topic."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from safetensors.numpy import save as st_save

from .errors import MaaError, check
from .files import LIMITS, load_safetensors_bytes, loads_json, read_bytes, write_atomic
from .specs import Actor, PolicySpec

BLOB_FORMAT = "maa-actor/1"
MAX_ACTOR_FILE_BYTES = 4 * (1 << 28) + LIMITS.safetensors_header_bytes  # specs.MAX_PARAMS float32 + a header


def params_checksum(params: np.ndarray) -> str:
    return hashlib.sha256(memoryview(np.ascontiguousarray(params, dtype=np.float32)).cast("B")).hexdigest()


def finite(values: np.ndarray) -> bool:
    """No NaN or Inf: min and max propagate NaN and are finite only if every value is, and unlike
    `np.isfinite(values).all()` they allocate nothing (a 1.2 MB mask per 5 MB actor on the swap path)."""
    return values.size == 0 or bool(np.isfinite(values.min()) and np.isfinite(values.max()))


def verify_checksum(params: np.ndarray, claimed: str, where: str = "actor blob") -> None:
    check(params_checksum(params) == claimed, f"{where}: checksum mismatch")


@dataclass
class ActorBlob:
    spec: PolicySpec
    params: np.ndarray  # (P,) float32
    generation_id: str = ""
    prompt_id: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def checksum(self) -> str:
        return params_checksum(self.params)

    def to_bytes(self) -> bytes:
        md = {"format": BLOB_FORMAT, "spec": self.spec.to_json(), "generation_id": self.generation_id,
              "prompt_id": self.prompt_id, "checksum": self.checksum, "extra": json.dumps(self.extra)}
        return st_save({"params": np.ascontiguousarray(self.params, dtype=np.float32)}, metadata=md)

    @classmethod
    def from_bytes(cls, data: bytes, where: str = "actor blob", max_bytes: int | None = None) -> "ActorBlob":
        blob, claimed = cls.parse_unverified(data, where, max_bytes)
        verify_checksum(blob.params, claimed, where)
        return blob

    @classmethod
    def parse_unverified(cls, data: bytes, where: str = "actor blob",
                         max_bytes: int | None = None, copy: bool = True) -> tuple["ActorBlob", str]:
        """Everything `from_bytes` checks except the checksum -> (blob, the checksum its header claims).
        For callers that overlap the SHA-256 (~3 ms for 5 MB) with other work; nothing built from the
        blob may be used before `verify_checksum` passes. copy=False: `params` is a read-only view of
        the bytes (no 5 MB copy), for callers that copy them anyway (the Go2 validator builds a module)."""
        # every defect of a blob (header length, nesting, dtype, sizes, JSON) is a MaaError from here:
        # the Go2 validator thread and the generator node rely on that to refuse instead of dying
        try:
            data = data if isinstance(data, bytes) else bytes(data)  # (a 5 MB copy is 1-2 ms on the swap path)
        except (TypeError, ValueError):
            raise MaaError(f"{where}: expected bytes, got {type(data).__name__}") from None
        if max_bytes is not None:
            check(len(data) <= max_bytes, f"{where}: {len(data)} bytes exceeds the limit of {max_bytes}")
        try:
            tensors, md = load_safetensors_bytes(data, where, dtypes=("F32",))
        except MaaError as e:
            raise MaaError(f"{where}: not a valid safetensors blob ({str(e).removeprefix(f'{where}: ')})") from None
        check(md.get("format") == BLOB_FORMAT, f"{where}: format {md.get('format')!r}, expected {BLOB_FORMAT!r}")
        check(set(tensors) == {"params"}, f"{where}: tensors {sorted(tensors)}, expected exactly ['params']")
        spec = PolicySpec.from_json(md.get("spec", ""), where=f"{where}: spec")
        params = tensors["params"]
        check(params.shape == (spec.num_params,),
              f"{where}: params have shape {params.shape}, spec {spec.name} expects ({spec.num_params},)")
        check(finite(params), f"{where}: params contain NaN or Inf")
        extra = loads_json(md.get("extra") or "{}", f"{where}: 'extra' metadata")
        check(isinstance(extra, dict), f"{where}: 'extra' metadata must be a JSON object")
        blob = cls(spec, np.array(params) if copy else params, md.get("generation_id", ""), md.get("prompt_id", ""), extra)
        return blob, str(md.get("checksum", ""))

    def actor(self) -> Actor:
        return self.spec.unflatten(self.params)

    def save(self, path) -> Path:
        """Atomic (temp file + rename): a failed save leaves no partial file."""
        return write_atomic(Path(path), self.to_bytes())

    @classmethod
    def load(cls, path) -> "ActorBlob":
        path = Path(path)
        return cls.from_bytes(read_bytes(path, "actor file", MAX_ACTOR_FILE_BYTES), where=str(path))
