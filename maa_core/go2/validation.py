"""Checks a candidate actor must pass, off the control loop, before it may touch a motor:
the spec matches the controller's, every parameter is finite, and on a canary batch of recent
actor inputs its outputs have the right shape, are finite and within the action bound, and a
single forward pass fits the tick budget."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from ..actor_io import ActorBlob
from ..errors import MaaError, check
from ..specs import Actor, PolicySpec


@dataclass
class Candidate:
    module: torch.nn.Module
    generation_id: str
    spec: PolicySpec | None


def _build(spec: PolicySpec, params: np.ndarray) -> torch.nn.Module:
    """Actor module holding a copy of `params` (a clone of a cached template: no random init on the swap path)."""
    return spec.unflatten(params).eval()


def as_candidate(obj, expected: PolicySpec, generation_id: str | None = None) -> Candidate:
    """ActorBlob / blob bytes / Actor / TorchScript or nn.Module -> Candidate; MaaError on spec or value problems."""
    if isinstance(obj, (bytes, bytearray, memoryview)):
        obj = ActorBlob.from_bytes(bytes(obj))
    if isinstance(obj, ActorBlob):
        obj.spec.check_compatible(expected, "actor")
        params = np.asarray(obj.params)
        check(params.shape == (expected.num_params,), f"actor: {params.size} parameters, spec {expected.name} has {expected.num_params}")
        check(bool(np.isfinite(params).all()), "actor: parameters contain NaN or Inf")  # blobs may be built in-process
        return Candidate(_build(obj.spec, params), generation_id or obj.generation_id or obj.checksum[:12], obj.spec)
    if isinstance(obj, Actor):
        obj.spec.check_compatible(expected, "actor")
        check(all(bool(torch.isfinite(p).all()) for p in obj.parameters()), "actor: parameters contain NaN or Inf")
        return Candidate(obj.eval(), generation_id or f"actor-{id(obj):x}", obj.spec)
    if isinstance(obj, torch.nn.Module):  # e.g. a walk-these-ways body_latest.jit: no spec, canary decides
        check(all(bool(torch.isfinite(p).all()) for p in obj.parameters()), "actor: parameters contain NaN or Inf")
        return Candidate(obj.eval(), generation_id or f"module-{id(obj):x}", None)
    raise MaaError(f"actor: expected an ActorBlob, blob bytes, Actor or torch module, got {type(obj).__name__}")


def canary_check(c: Candidate, inputs: np.ndarray, act_dim: int, max_abs_action: float, max_inference_ms: float) -> dict:
    """Run the candidate on recent inputs (B, in_dim); MaaError names the first failure."""
    x = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))
    try:
        with torch.inference_mode():
            y = c.module(x)
            one = x[:1]
            c.module(one)  # warm-up
            times = []
            for _ in range(3):  # CPU time of this thread: the cost of a pass, not how busy the machine is
                t = time.thread_time()
                c.module(one)
                times.append(time.thread_time() - t)
    except (RuntimeError, ValueError, TypeError) as e:
        raise MaaError(f"actor: forward pass failed on a ({x.shape[0]}, {x.shape[1]}) canary batch "
                       f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    check(tuple(y.shape) == (x.shape[0], act_dim), f"actor: outputs shape {tuple(y.shape)}, expected ({x.shape[0]}, {act_dim})")
    check(bool(torch.isfinite(y).all()), "actor: non-finite outputs on the canary batch")
    peak = float(y.abs().max())
    check(peak <= max_abs_action, f"actor: output magnitude {peak:.3g} on the canary batch exceeds the bound {max_abs_action:g}")
    ms = 1000.0 * min(times)
    check(ms <= max_inference_ms, f"actor: forward pass takes {ms:.2f} ms > budget {max_inference_ms:g} ms")
    return {"canary_batch": int(x.shape[0]), "max_abs_action": peak, "inference_ms": ms}
