"""Standalone export of a generated actor: safetensors (+ spec JSON beside it) and TorchScript."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from .actor_io import ActorBlob


def export_actor(blob: ActorBlob, out_dir, name: str = "actor", torchscript: bool = True) -> dict[str, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"safetensors": blob.save(out_dir / f"{name}.safetensors")}
    spec_path = out_dir / f"{name}.spec.json"
    spec_path.write_text(json.dumps({"spec": blob.spec.to_dict(), "generation_id": blob.generation_id,
                                     "prompt_id": blob.prompt_id, "checksum": blob.checksum}, indent=1))
    paths["spec"] = spec_path
    if torchscript:
        actor = blob.actor().eval()
        ts = torch.jit.trace(actor, torch.zeros(1, blob.spec.obs_dim))
        ts.save(str(out_dir / f"{name}.pt"))
        paths["torchscript"] = out_dir / f"{name}.pt"
    return paths
