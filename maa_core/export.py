"""Standalone export of a generated actor: safetensors (+ spec JSON beside it), TorchScript and ONNX.

Every output is written to a temp file in the output folder first and renamed into place only when
all of them were written: a failed export leaves nothing behind, and existing files are replaced
only with `overwrite=True`."""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from .actor_io import ActorBlob
from .errors import MaaError, check


def _write_safetensors(blob: ActorBlob, path: Path) -> None:
    path.write_bytes(blob.to_bytes())


def _write_spec(blob: ActorBlob, path: Path) -> None:
    path.write_text(json.dumps({"spec": blob.spec.to_dict(), "generation_id": blob.generation_id,
                                "prompt_id": blob.prompt_id, "checksum": blob.checksum}, indent=1))


def _write_torchscript(blob: ActorBlob, path: Path) -> None:
    actor = blob.actor().eval()
    torch.jit.trace(actor, torch.zeros(1, blob.spec.obs_dim)).save(str(path))


def _write_onnx(blob: ActorBlob, path: Path) -> None:
    from .onnx_export import actor_onnx_model  # onnx is imported only when asked for

    path.write_bytes(actor_onnx_model(blob).SerializeToString())


# kind -> (file suffix, writer); the order is the order of the returned paths
WRITERS = {"safetensors": (".safetensors", _write_safetensors), "spec": (".spec.json", _write_spec),
           "torchscript": (".pt", _write_torchscript), "onnx": (".onnx", _write_onnx)}


def export_actor(blob: ActorBlob, out_dir, name: str = "actor", torchscript: bool = True,
                 overwrite: bool = False, onnx: bool = False) -> dict[str, Path]:
    check(name not in ("", ".", "..") and name == Path(name).name, f"--name {name!r}: expected a file name without folders")
    out_dir = Path(out_dir)
    check(not out_dir.exists() or out_dir.is_dir(), f"{out_dir}: exists and is not a folder (the export goes into a folder)")
    kinds = [k for k in WRITERS if (torchscript or k != "torchscript") and (onnx or k != "onnx")]
    targets = {k: out_dir / f"{name}{WRITERS[k][0]}" for k in kinds}
    for p in targets.values():
        check(not p.is_dir(), f"{p}: exists and is a folder")
    existing = [p for p in targets.values() if p.exists()]
    check(overwrite or not existing, f"{existing[0] if existing else ''}: exists already; pass --force to overwrite")
    created = not out_dir.exists()
    staged: dict[str, Path] = {}
    done = False
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for k in kinds:
            staged[k] = out_dir / f".{targets[k].name}.{os.getpid()}.tmp"
            WRITERS[k][1](blob, staged[k])
        for k in kinds:
            os.replace(staged[k], targets[k])
        done = True
    except OSError as e:
        raise MaaError(f"{out_dir}: cannot write the export ({e.strerror or e})") from None
    finally:
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)
        if not done and created and out_dir.is_dir() and not any(out_dir.iterdir()):
            out_dir.rmdir()
    return targets
