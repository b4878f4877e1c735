"""Retrieval: the training checkpoint whose behavior embedding is nearest to a prompt's.

The one home of nearest-checkpoint search: the evaluation baseline (evaluation/baselines.py) and
the serving modes `retrieve` / `auto` (serving/engine.py, `maa generate --mode`, the generator
node's `mode`) use it.

Embedding: the generator's own behavior embedding (condition h || v), scaled to unit length;
distance: cosine distance 1 - cos, in [0, 2]. A checkpoint with several trajectories has one row
per trajectory, and its distance to a prompt is that of its nearest row.

`auto` retrieves when the nearest checkpoint is within `threshold` of the prompt; otherwise the
engine screens that checkpoint beside the generated samples (serving/engine.py). The default
threshold comes from the index itself (`RetrievalConfig`): half the median distance from a
checkpoint's rows to the nearest row of another checkpoint, i.e. a prompt retrieves when it lies
nearer to a checkpoint than the midpoint to that checkpoint's typical neighbour. It is a starting
point, to be tuned from measurements (`maa index --threshold`, node `retrieval_threshold`).

On disk, `retrieval.safetensors` in the generator folder (`save_index`, `maa index`, or
`PolicyGenerator.save_pretrained(..., retrieval_dataset=...)`):
    cond    (M, C) float32 | float16  unit conditions, one row per checkpoint trajectory
    record  (M,)   int64              checkpoint of each row
    params  (N, Q) float32 | float16  the checkpoints' coded parameters: the autoencoder's constant
                                      groups (a frozen layer) are the generator's own, bit-exact
                                      (param_norm mean), so only the Q coded values are stored
    header metadata "retrieval": JSON (INDEX_FORMAT, spec, dims, embedding fingerprint, threshold,
                                      keys and tasks of the N checkpoints)
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import MaaError, check

INDEX_FILE = "retrieval.safetensors"
INDEX_FORMAT = "maa-retrieval/1"
MODES = ("generate", "retrieve", "auto")
INDEX_DTYPES = {"float32": np.float32, "float16": np.float16}
MAX_INDEX_BYTES = 1 << 31  # read whole; a 2 GiB index is far beyond any index meant to ship in a folder


@dataclass(frozen=True)
class RetrievalConfig:
    embed_batch: int = 256  # trajectories embedded per forward pass
    # default threshold = threshold_fraction x this percentile of the checkpoints' distances to their
    # nearest other checkpoint (module docstring)
    threshold_percentile: float = 50.0
    threshold_fraction: float = 0.5


# -- the search ------------------------------------------------------------------------------------
@torch.inference_mode()
def conditions(gen, trajectories: list, batch: int = RetrievalConfig.embed_batch) -> np.ndarray:
    """(N, C) unit-length conditions of the generator's embedding for each trajectory."""
    rows = [gen.condition(trajectories[s:s + batch]).float().cpu().numpy() for s in range(0, len(trajectories), batch)]
    return unit_rows(np.concatenate(rows))


def unit_rows(c) -> np.ndarray:
    """(N, C) conditions (array or tensor) -> unit-length float32 rows, as the index holds them."""
    c = np.asarray(c.float().cpu().numpy() if hasattr(c, "cpu") else c, np.float32)
    return c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)


def nearest(query: np.ndarray, cond: np.ndarray, record: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """query (Q, C), cond (M, C) unit rows of checkpoints `record` (M,) -> (checkpoint (Q,), cosine distance (Q,))."""
    sim = query @ cond.T
    best = sim.argmax(1)
    return record[best], np.clip(1.0 - sim[np.arange(len(query)), best], 0.0, 2.0)


def nearest_k(query: np.ndarray, cond: np.ndarray, record: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest checkpoints (not rows) per query, nearest first -> (checkpoints (Q, k'), cosine
    distances (Q, k')), k' = min(k, checkpoints with a row). A checkpoint's distance is its nearest row's,
    as in `nearest`, whose checkpoint is column 0 here."""
    check(k >= 1, f"retrieval: k must be >= 1, got {k}")
    order = np.argsort(record, kind="stable")
    ids, starts = np.unique(record[order], return_index=True)
    per = np.maximum.reduceat(query @ cond[order].T, starts, axis=1)  # (Q, checkpoints): best row of each
    top = np.argsort(-per, axis=1, kind="stable")[:, :min(k, len(ids))]
    return ids[top], np.clip(1.0 - np.take_along_axis(per, top, 1), 0.0, 2.0)


def neighbour_distances(cond: np.ndarray, record: np.ndarray) -> np.ndarray:
    """(M,) cosine distance of each row to the nearest row of another checkpoint (inf: no other checkpoint)."""
    sim = cond @ cond.T
    sim[record[:, None] == record[None, :]] = -np.inf
    return 1.0 - sim.max(1)


def default_threshold(cond: np.ndarray, record: np.ndarray, cfg: RetrievalConfig = RetrievalConfig()) -> float:
    d = neighbour_distances(cond, record)
    d = d[np.isfinite(d)]
    if not len(d):  # one checkpoint: only (numerically) exact matches retrieve
        return 0.0
    return float(cfg.threshold_fraction * np.percentile(np.clip(d, 0.0, 2.0), cfg.threshold_percentile))


# -- the index -------------------------------------------------------------------------------------
@dataclass
class Match:
    checkpoint: int  # row of the index's checkpoints
    key: str
    distance: float  # cosine distance of the prompt to that checkpoint


@dataclass
class RetrievalIndex:
    cond: np.ndarray  # (M, C) float32 unit conditions
    record: np.ndarray  # (M,) int64 checkpoint of each row
    params: np.ndarray  # (N, P) float32 full flat parameters of the checkpoints
    keys: list[str]
    tasks: list[str]
    threshold: float
    meta: dict  # the identity it was built for: spec, dims, embedding fingerprint
    threshold_rule: str = ""  # how the threshold was chosen

    def __len__(self) -> int:
        return len(self.keys)

    def match(self, gen, trajectories: list) -> list[Match]:
        return self.match_conditions(conditions(gen, trajectories))

    def match_conditions(self, cond) -> list[Match]:
        """The nearest checkpoint of each row of `gen.condition(...)` (N, C), without embedding again."""
        best, dist = nearest(unit_rows(cond), self.cond, self.record)
        return [Match(int(b), self.keys[b], float(d)) for b, d in zip(best, dist)]

    def match_k(self, gen, trajectories: list, k: int) -> np.ndarray:
        """(N, k') rows of the k nearest checkpoints of each trajectory, nearest first."""
        return nearest_k(conditions(gen, trajectories), self.cond, self.record, k)[0]

    def retrieves(self, mode: str, m: Match, threshold: float | None = None) -> bool:
        """Whether `mode` serves this prompt from the index (else: generate)."""
        t = self.threshold if threshold is None or threshold < 0 else threshold
        return mode == "retrieve" or (mode == "auto" and m.distance <= t)


def embedding_fingerprint(gen) -> str:
    """sha256 over the embedding's tensors (float32): an index is only valid for the embedding it was built with."""
    h = hashlib.sha256()
    for k, v in sorted(gen.embedding.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def identity(gen) -> dict:
    """What an index must agree with to serve this generator."""
    return {"spec": gen.spec.name, "num_params": int(gen.spec.num_params), "obs_dim": int(gen.obs_dim),
            "act_dim": int(gen.act_dim), "cond_dim": int(gen.config.embedding.cond_dim),
            "embedding_sha256": embedding_fingerprint(gen)}


def _coded(gen) -> tuple[np.ndarray, list]:
    """(indices of the coded parameters, constant groups) of the generator's autoencoder."""
    ae = gen.autoencoder
    idx = np.concatenate([np.arange(g.start, g.stop) for g in ae.groups]).astype(np.int64)
    const = [g for g in ae.spec_groups if g.name in ae.cfg.constant_groups]
    return np.sort(idx), const


def build_index(gen, checkpoints, cfg: RetrievalConfig = RetrievalConfig()) -> RetrievalIndex:
    """checkpoints: a PolicyDataset of the generator's training checkpoints."""
    check(len(checkpoints) > 0, "retrieval: the checkpoint dataset is empty")
    check(checkpoints.spec.num_params == gen.spec.num_params,
          f"retrieval: checkpoints have spec {checkpoints.spec.name!r} ({checkpoints.spec.num_params} parameters), "
          f"the generator {gen.spec.name!r} ({gen.spec.num_params})")
    trajs, rec = [], []
    for i, r in enumerate(checkpoints):
        for t in r.trajectories:
            if len(t) >= gen.prompt_length:
                trajs.append(t)
                rec.append(i)
    check(trajs, "retrieval: no checkpoint trajectory is long enough for the generator's embedding")
    cond, record = conditions(gen, trajs, cfg.embed_batch), np.asarray(rec, np.int64)
    meta = checkpoints.meta()
    return RetrievalIndex(cond, record, checkpoints.params().astype(np.float32), [m["key"] for m in meta],
                          [m["task"] for m in meta], default_threshold(cond, record, cfg), identity(gen),
                          f"{cfg.threshold_fraction} x percentile {cfg.threshold_percentile} of the checkpoints' "
                          "cosine distances to their nearest other checkpoint; to be tuned from measurements")


def save_index(index: RetrievalIndex, gen, folder, dtype: str = "float32", force: bool = False) -> Path:
    """Writes `folder/retrieval.safetensors` atomically; refuses to replace one unless `force`."""
    from safetensors.numpy import save

    from ..files import write_atomic

    check(dtype in INDEX_DTYPES, f"retrieval index dtype {dtype!r}: expected one of {', '.join(INDEX_DTYPES)}")
    path = Path(folder) / INDEX_FILE
    check(force or not path.exists(), f"{path}: exists already; pass --force to overwrite")
    _check_identity(index.meta, identity(gen), path)
    coded, const = _coded(gen)
    mean = gen.autoencoder.param_norm.mean.detach().float().cpu().numpy()
    for g in const:  # stored without these values: they must be the generator's, bit for bit
        bad = np.flatnonzero((index.params[:, g.start:g.stop] != mean[g.start:g.stop]).any(1))
        check(not len(bad), f"retrieval: checkpoint {index.keys[bad[0]] if len(bad) else ''} differs from the "
                            f"generator's constant group {g.name}: not this generator's training data")
    meta = {"format": INDEX_FORMAT, **index.meta, "threshold": float(index.threshold), "threshold_rule": index.threshold_rule,
            "distance": "cosine", "dtype": dtype, "keys": list(index.keys), "tasks": list(index.tasks)}
    tensors = {"cond": np.ascontiguousarray(index.cond.astype(INDEX_DTYPES[dtype])),
               "record": np.ascontiguousarray(index.record, np.int64),
               "params": np.ascontiguousarray(index.params[:, coded].astype(INDEX_DTYPES[dtype]))}
    return write_atomic(path, save(tensors, metadata={"retrieval": json.dumps(meta)}))


def has_index(folder) -> bool:
    return (Path(folder) / INDEX_FILE).is_file()


def load_index(folder, gen) -> RetrievalIndex:
    """The folder's index, checked against `gen` (spec, dims, embedding); one MaaError line when it does not fit."""
    from ..files import load_safetensors_bytes, loads_json, read_bytes

    path = Path(folder) / INDEX_FILE
    check(path.is_file(), f"{folder}: no retrieval index ({INDEX_FILE}; build one with `maa index {folder} --dataset DIR`)")
    t, header_meta = load_safetensors_bytes(read_bytes(path, "retrieval index", MAX_INDEX_BYTES), str(path))
    check("retrieval" in (header_meta or {}), f"{path}: not a retrieval index (no 'retrieval' metadata)")
    meta = loads_json(header_meta["retrieval"], f"{path}: metadata")
    check(isinstance(meta, dict) and meta.get("format") == INDEX_FORMAT,
          f"{path}: format {meta.get('format') if isinstance(meta, dict) else meta!r}, expected {INDEX_FORMAT!r}")
    _check_identity(meta, identity(gen), path)
    for k in ("cond", "record", "params"):
        check(k in t, f"{path}: missing tensor {k!r}")
    cond, record, stored = t["cond"].astype(np.float32), t["record"].astype(np.int64), t["params"]
    cond /= np.maximum(np.linalg.norm(cond, axis=1, keepdims=True), 1e-12)  # float16 rows: unit length again
    coded, _ = _coded(gen)
    keys, tasks = meta.get("keys"), meta.get("tasks")
    check(isinstance(keys, list) and isinstance(tasks, list) and len(keys) == len(tasks) == len(stored) >= 1,
          f"{path}: keys/tasks do not list the {len(stored)} checkpoints of 'params'")
    check(stored.ndim == 2 and stored.shape[1] == len(coded),
          f"{path}: params {tuple(stored.shape)}, the generator codes {len(coded)} parameters per checkpoint")
    check(cond.ndim == 2 and cond.shape[1] == meta["cond_dim"] and record.shape == (len(cond),) and len(cond) >= 1,
          f"{path}: cond {tuple(cond.shape)} / record {tuple(record.shape)} do not fit cond_dim {meta['cond_dim']}")
    check(bool(((record >= 0) & (record < len(stored))).all()), f"{path}: record names checkpoints outside 0..{len(stored) - 1}")
    check(bool(np.isfinite(cond).all() and np.isfinite(stored).all()), f"{path}: contains NaN or Inf")
    threshold = meta.get("threshold")
    check(isinstance(threshold, (int, float)) and not isinstance(threshold, bool) and math.isfinite(threshold) and threshold >= 0,
          f"{path}: threshold {threshold!r}, expected a number >= 0")
    params = np.tile(gen.autoencoder.param_norm.mean.detach().float().cpu().numpy(), (len(stored), 1))
    params[:, coded] = stored.astype(np.float32)
    return RetrievalIndex(cond, record, params, [str(k) for k in keys], [str(x) for x in tasks], float(threshold),
                          {k: meta[k] for k in identity_keys()}, str(meta.get("threshold_rule", "")))


def identity_keys() -> tuple[str, ...]:
    return ("spec", "num_params", "obs_dim", "act_dim", "cond_dim", "embedding_sha256")


def _check_identity(have: dict, want: dict, path) -> None:
    for k in identity_keys():
        if have.get(k) != want[k]:
            what = "was built with another embedding (retrained generator?)" if k == "embedding_sha256" else \
                f"has {k} {have.get(k)!r}, the generator {want[k]!r}"
            raise MaaError(f"{path}: retrieval index does not match the generator: it {what}; rebuild it with `maa index`")

