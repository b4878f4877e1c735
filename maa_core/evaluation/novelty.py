"""Parameter novelty (paper Fig. 11): cosine similarity of generated parameters to the policy that
produced the prompt, and to the nearest training checkpoint."""
from __future__ import annotations

import numpy as np

from ..errors import check

EPS = 1e-12  # guards the norm of an all-zero vector


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), EPS)


def cosine(a, b) -> np.ndarray:
    """Row-wise cosine similarity of (N, P) and (N, P) (or broadcastable) arrays."""
    return np.sum(_unit(a) * _unit(b), axis=-1)


def nearest_cosine(params, bank, chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """For each row of params (N, P): the highest cosine similarity to a row of bank (M, P) and its index."""
    params, bank = np.atleast_2d(params), np.atleast_2d(bank)
    check(params.shape[1] == bank.shape[1], f"novelty: {params.shape[1]} parameters vs {bank.shape[1]} in the checkpoints")
    check(len(bank) > 0, "novelty: no training checkpoints to compare with")
    ub = _unit(bank).astype(np.float32)
    best, idx = np.empty(len(params)), np.empty(len(params), dtype=np.int64)
    for s in range(0, len(params), chunk):
        sim = _unit(params[s:s + chunk]).astype(np.float32) @ ub.T
        idx[s:s + chunk] = sim.argmax(1)
        best[s:s + chunk] = sim.max(1)
    return best, idx


def novelty(generated, source=None, bank=None) -> dict:
    """generated (N, P); source (N, P) or None (rows may be NaN where unknown); bank (M, P) or None."""
    out = {}
    g = np.atleast_2d(np.asarray(generated, dtype=np.float64))
    if source is not None:
        src = np.atleast_2d(np.asarray(source, dtype=np.float64))
        known = np.isfinite(src).all(1)
        out["to_prompt_policy"] = cosine(g[known], src[known]) if known.any() else np.array([])
    if bank is not None:
        out["to_nearest_checkpoint"], out["nearest_index"] = nearest_cosine(g, bank)
    return out
