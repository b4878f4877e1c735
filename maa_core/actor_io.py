"""A generated actor as one self-describing blob: safetensors bytes whose header carries the spec,
a generation id, the prompt id and a checksum of the parameters. The same bytes are the export
file format (`.safetensors`) and the payload of the ROS actor topic."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from .errors import MaaError, check
from .specs import Actor, PolicySpec

BLOB_FORMAT = "maa-actor/1"


def params_checksum(params: np.ndarray) -> str:
    return hashlib.sha256(memoryview(np.ascontiguousarray(params, dtype=np.float32)).cast("B")).hexdigest()


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
                         max_bytes: int | None = None) -> tuple["ActorBlob", str]:
        """Everything `from_bytes` checks except the checksum -> (blob, the checksum its header claims).
        For callers that overlap the SHA-256 (~3 ms for 5 MB) with other work; nothing built from the
        blob may be used before `verify_checksum` passes."""
        if max_bytes is not None:
            check(len(data) <= max_bytes, f"{where}: {len(data)} bytes exceeds the limit of {max_bytes}")
        try:
            data = data if isinstance(data, bytes) else bytes(data)  # (a 5 MB copy is 1-2 ms on the swap path)
            tensors = st_load(data)
            header_len = int.from_bytes(data[:8], "little")
            md = json.loads(bytes(data[8:8 + header_len])).get("__metadata__") or {}
        except (SafetensorError, ValueError, json.JSONDecodeError) as e:
            raise MaaError(f"{where}: not a valid safetensors blob ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
        check(md.get("format") == BLOB_FORMAT, f"{where}: format {md.get('format')!r}, expected {BLOB_FORMAT!r}")
        check("params" in tensors, f"{where}: missing tensor 'params'")
        spec = PolicySpec.from_json(md.get("spec", ""))
        params = tensors["params"]
        check(params.dtype == np.float32 and params.shape == (spec.num_params,),
              f"{where}: params have shape {params.shape}, spec {spec.name} expects ({spec.num_params},)")
        check(np.isfinite(params).all(), f"{where}: params contain NaN or Inf")
        blob = cls(spec, params, md.get("generation_id", ""), md.get("prompt_id", ""), json.loads(md.get("extra") or "{}"))
        return blob, str(md.get("checksum", ""))

    def actor(self) -> Actor:
        return self.spec.unflatten(self.params)

    def save(self, path) -> Path:
        path = Path(path)
        path.write_bytes(self.to_bytes())
        return path

    @classmethod
    def load(cls, path) -> "ActorBlob":
        path = Path(path)
        check(path.is_file(), f"{path}: no such actor file")
        return cls.from_bytes(path.read_bytes(), where=str(path))
