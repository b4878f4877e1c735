"""Parameter novelty (paper Fig. 11): cosine similarity of generated parameters to the policy that
produced the prompt, and to the nearest training checkpoint.

The paper's cosine is over the whole parameter vector. Where the checkpoints share most of it (runs
from one starting point, frozen layers: the Go2 students train 4,940 of 139,532 parameters), every
pair of checkpoints, of one run or of two, has a cosine near 1 and the figure says nothing about
copying. Two measures that do, over what the checkpoints do not share:
  * centered cosine: the cosine after subtracting the bank's mean from both sides;
  * distance ratio: the distance to the nearest checkpoint over the median distance of a checkpoint
    to its nearest other one (0: a copy; about 1: as far from the bank as its checkpoints are from
    each other, e.g. a neighbouring checkpoint of the same run)."""
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


def _nearest_sq(params, bank, chunk: int, exclude_self: bool = False) -> np.ndarray:
    """Squared L2 distance of each row of params (N, P) to its nearest row of bank (M, P)."""
    bn = np.einsum("ij,ij->i", bank, bank)
    out = np.empty(len(params))
    for s in range(0, len(params), chunk):
        x = params[s:s + chunk]
        d = np.einsum("ij,ij->i", x, x)[:, None] + bn[None] - 2.0 * (x @ bank.T)
        if exclude_self:
            d[np.arange(len(x)), np.arange(s, s + len(x))] = np.inf
        out[s:s + chunk] = np.maximum(d.min(1), 0.0)
    return out


def centered_nearest(params, bank, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(centered cosine to the nearest checkpoint, distance ratio) of each row of params (N, P); see the
    module docstring. The bank needs >= 2 checkpoints."""
    params, bank = np.atleast_2d(params).astype(np.float64), np.atleast_2d(bank).astype(np.float64)
    check(params.shape[1] == bank.shape[1], f"novelty: {params.shape[1]} parameters vs {bank.shape[1]} in the checkpoints")
    check(len(bank) >= 2, "novelty: the distance ratio needs at least 2 training checkpoints")
    mu = bank.mean(0)
    g, b = params - mu, bank - mu
    cos, _ = nearest_cosine(g, b, chunk)
    spacing = float(np.median(np.sqrt(_nearest_sq(b, b, chunk, exclude_self=True))))
    return cos, np.sqrt(_nearest_sq(g, b, chunk)) / max(spacing, EPS)


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
        if len(np.atleast_2d(bank)) >= 2:
            out["to_nearest_checkpoint_centered"], out["nearest_distance_ratio"] = centered_nearest(g, bank)
    return out
