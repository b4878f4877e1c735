"""A generated actor as an ONNX model, for deploy stacks that run ONNX (onnxruntime, TensorRT, ...).

The actor is a plain MLP (`specs.Actor`), so the graph is written directly from its spec and
weights with `onnx.helper` — one Gemm per layer, its activation, the action head and the optional
tanh squash — rather than traced: the graph is the same whatever torch's exporter of the day does.

    input  "obs"     float32 [batch, obs_dim]
    output "action"  float32 [batch, act_dim]   (= Actor.forward: the deterministic action)

The spec, generation id, prompt id and checksum travel in the model's metadata_props.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .actor_io import ActorBlob
from .errors import MaaError, check


@dataclass(frozen=True)
class OnnxExportConfig:
    opset: int = 17            # Gemm/Elu/Relu/Tanh are unchanged since opset 13-14; 17 is read by every current runtime
    input_name: str = "obs"
    output_name: str = "action"
    elu_alpha: float = 1.0     # torch.nn.ELU's default, which specs.Actor uses


def actor_onnx_model(blob: ActorBlob, cfg: OnnxExportConfig = OnnxExportConfig()):
    """The `onnx.ModelProto` computing `blob.actor()(obs)`; checked with onnx.checker."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    spec = blob.spec
    params = dict(blob.actor().state_dict())
    nodes, inits = [], []

    def gemm(x: str, prefix: str, out: str) -> str:
        w, b = f"{prefix}.weight", f"{prefix}.bias"
        inits.append(numpy_helper.from_array(params[w].detach().numpy().astype(np.float32), w))
        inits.append(numpy_helper.from_array(params[b].detach().numpy().astype(np.float32), b))
        nodes.append(helper.make_node("Gemm", [x, w, b], [out], name=prefix, transB=1))
        return out

    def activation(x: str, kind: str, out: str) -> str:
        if kind == "identity":
            return x
        op = {"elu": "Elu", "relu": "Relu", "tanh": "Tanh"}.get(kind)
        check(op is not None, f"spec {spec.name}: activation {kind!r} has no ONNX export")
        attrs = {"alpha": cfg.elu_alpha} if op == "Elu" else {}
        nodes.append(helper.make_node(op, [x], [out], name=out, **attrs))
        return out

    x = cfg.input_name
    for i, layer in enumerate(spec.trunk):  # trunk.{2i} is the Linear, trunk.{2i+1} its activation
        x = gemm(x, f"trunk.{2 * i}", f"trunk{i}_linear")
        x = activation(x, layer.activation, f"trunk{i}_{layer.activation}")
    head_out = cfg.output_name if spec.squash == "none" else "action_pre_squash"
    gemm(x, f"heads.{spec.action_head}", head_out)
    if spec.squash == "tanh":
        nodes.append(helper.make_node("Tanh", [head_out], [cfg.output_name], name="squash"))
    graph = helper.make_graph(
        nodes, f"maa_actor_{spec.name}",
        [helper.make_tensor_value_info(cfg.input_name, TensorProto.FLOAT, ["batch", spec.obs_dim])],
        [helper.make_tensor_value_info(cfg.output_name, TensorProto.FLOAT, ["batch", spec.act_dim])],
        initializer=inits)
    model = helper.make_model(graph, producer_name="maa", opset_imports=[helper.make_opsetid("", cfg.opset)])
    model.ir_version = min(model.ir_version, 8)  # readable by runtimes a few years old (opset 17 needs IR 8)
    meta = {"maa.spec": json.dumps(spec.to_dict()), "maa.generation_id": blob.generation_id or "",
            "maa.prompt_id": blob.prompt_id or "", "maa.checksum": blob.checksum}
    for k, v in meta.items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=k, value=v))
    onnx.checker.check_model(model)
    return model


def export_onnx(blob: ActorBlob, path, overwrite: bool = False, cfg: OnnxExportConfig = OnnxExportConfig()) -> Path:
    """Writes the actor's ONNX model to `path` atomically (a temp file beside it, then renamed):
    a failed export leaves nothing; an existing file is replaced only with `overwrite=True`."""
    path = Path(path)
    check(not path.is_dir(), f"{path}: exists and is a folder")
    check(overwrite or not path.exists(), f"{path}: exists already; pass --force to overwrite")
    data = actor_onnx_model(blob, cfg).SerializeToString()
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as e:
        raise MaaError(f"{path}: cannot write the ONNX model ({e.strerror or e})") from None
    finally:
        tmp.unlink(missing_ok=True)
    return path


def run_onnx(model_or_path, obs: np.ndarray, engine: str = "onnxruntime") -> np.ndarray:
    """Actions of an ONNX actor on `obs` [batch, obs_dim]: with onnxruntime (CPU), or with onnx's
    reference evaluator (`engine="reference"`, plain numpy)."""
    import onnx

    model = model_or_path if isinstance(model_or_path, onnx.ModelProto) else onnx.load(str(model_or_path))
    x = np.ascontiguousarray(obs, dtype=np.float32)
    name = model.graph.input[0].name
    if engine == "reference":
        from onnx.reference import ReferenceEvaluator
        return ReferenceEvaluator(model).run(None, {name: x})[0]
    check(engine == "onnxruntime", f"ONNX engine {engine!r}: expected 'onnxruntime' or 'reference'")
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1  # deterministic and polite on a shared CPU
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {name: x})[0]
