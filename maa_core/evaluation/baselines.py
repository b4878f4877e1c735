"""Baselines on the same prompts and the same protocol as the generator.

- nearest-checkpoint retrieval: the training checkpoint whose behavior embedding (the generator's
  own trained embedding, condition h || v) is closest in cosine to the prompt's (the search lives
  in serving/retrieval.py, which the serving modes `retrieve` / `auto` use too);
- noised retrieval (Zeng et al. 2025, "Generative Modeling of Weights: Generalization or
  Memorization?"): the retrieved checkpoint plus Gaussian parameter noise, K draws per prompt like the
  generator. Noise std per Linear layer (weight and bias): by default the generator's own spread, the
  RMS distance of the prompt's generated candidates to their nearest training checkpoint (L2, in
  parameter space), so the noised checkpoints lie as far from the training set as the generated ones;
  or a fixed fraction of the checkpoint's own per-layer RMS;
- average (Zeng et al.'s average of checkpoints): the mean parameters of the k checkpoints nearest
  to the prompt in the same embedding search;
- behavior cloning: an actor of the same spec regressed (MSE on the deterministic action,
  tanh of the mean) on the prompt's state-action pairs, or on all prompts of its task.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import check
from ..serving.retrieval import RetrievalIndex, build_index
from ..specs import PolicySpec
from ..trajectory import Trajectory
from .sources import PromptItem


def build_retrieval_index(gen, checkpoints) -> RetrievalIndex:
    """checkpoints: a PolicyDataset of the generator's training checkpoints."""
    return build_index(gen, checkpoints)


def retrieve(gen, index: RetrievalIndex, prompts: list[PromptItem]) -> tuple[np.ndarray, list[str]]:
    """-> (params (N, P) of the nearest checkpoint per prompt, that checkpoint's task per prompt)."""
    best = [m.checkpoint for m in index.match(gen, [p.trajectory for p in prompts])]
    return index.params[best].astype(np.float32), [index.tasks[b] for b in best]


def average_of_nearest(gen, index: RetrievalIndex, prompts: list[PromptItem], k: int) -> tuple[np.ndarray, np.ndarray]:
    """-> (params (N, P): mean of each prompt's k nearest checkpoints, their index rows (N, k'))."""
    check(k >= 1, f"average baseline: k must be >= 1, got {k}")
    rows = index.match_k(gen, [p.trajectory for p in prompts], k)
    return index.params[rows].astype(np.float64).mean(1).astype(np.float32), rows


NOISE_SEED_TAG = 0x70617261  # separates the parameter-noise streams from other seeded streams
NN_CHUNK = 256  # policies per distance block in the nearest-checkpoint search


@dataclass
class NoiseConfig:
    # None: per prompt and layer, the generator's spread (module docstring);
    # a number s >= 0: s x the retrieved checkpoint's per-layer RMS (0.05 = 5 %)
    scale: float | None = None

    def validate(self) -> "NoiseConfig":
        check(self.scale is None or (np.isfinite(self.scale) and self.scale >= 0),
              f"noise scale must be a number >= 0, got {self.scale}")
        return self


def layer_slices(spec: PolicySpec) -> list[tuple[str, slice]]:
    """(name, slice of the flat vector) of each Linear layer, weight and bias together, in flattening order."""
    out, start = [], 0
    for name, layer in [(f"trunk.{i}", l) for i, l in enumerate(spec.trunk)] + [(f"heads.{n}", l) for n, l in spec.heads]:
        out.append((name, slice(start, start + layer.num_params)))
        start += layer.num_params
    return out


def layer_rms(x: np.ndarray, spec: PolicySpec) -> np.ndarray:
    """(..., P) -> (..., L) root mean square of each layer's values."""
    x = np.asarray(x, dtype=np.float64)
    return np.stack([np.sqrt(np.mean(x[..., sl] ** 2, axis=-1)) for _, sl in layer_slices(spec)], axis=-1)


def overall_rms(per_layer: np.ndarray, spec: PolicySpec) -> np.ndarray:
    """(..., L) per-layer RMS -> (...) RMS over all parameters."""
    n = np.array([sl.stop - sl.start for _, sl in layer_slices(spec)], dtype=np.float64)
    return np.sqrt((np.asarray(per_layer) ** 2 * n).sum(-1) / n.sum())


def nearest_l2(params: np.ndarray, bank: np.ndarray) -> np.ndarray:
    """(N, P), (M, P) -> (N,) row of bank nearest to each row of params in Euclidean distance."""
    check(len(bank) > 0, "noised retrieval: no training checkpoints")
    b = np.asarray(bank, np.float32)
    bb = (b.astype(np.float64) ** 2).sum(1)
    out = np.empty(len(params), np.int64)
    for s in range(0, len(params), NN_CHUNK):
        q = np.asarray(params[s:s + NN_CHUNK], np.float32)
        out[s:s + NN_CHUNK] = (bb[None] - 2.0 * (q @ b.T)).argmin(1)  # |q|^2 is the same for every bank row
    return out


def generator_spread(generated: np.ndarray, bank: np.ndarray, spec: PolicySpec) -> np.ndarray:
    """generated (N, K, P) -> (N, L): per prompt and layer, the RMS distance of its K candidates to
    each one's nearest training checkpoint."""
    N, K, P = generated.shape
    flat = generated.reshape(N * K, P)
    d = layer_rms(flat.astype(np.float64) - np.asarray(bank, np.float64)[nearest_l2(flat, bank)], spec)
    return np.sqrt((d.reshape(N, K, -1) ** 2).mean(1))


def add_parameter_noise(base: np.ndarray, std: np.ndarray, spec: PolicySpec, k: int, seed: int) -> np.ndarray:
    """base (N, P), per-layer std (N, L) -> (N, k, P) base + N(0, std^2), seeded per prompt."""
    sizes = [sl.stop - sl.start for _, sl in layer_slices(spec)]
    out = np.empty((len(base), k, base.shape[1]), np.float32)
    for i in range(len(base)):
        rng = np.random.default_rng([int(seed), i, NOISE_SEED_TAG])
        sigma = np.repeat(np.asarray(std[i], np.float64), sizes)
        out[i] = (base[i].astype(np.float64) + sigma * rng.standard_normal((k, base.shape[1]))).astype(np.float32)
    return out


def noised_retrieval(gen, index: RetrievalIndex, prompts: list[PromptItem], k: int, cfg: NoiseConfig,
                     generated: np.ndarray | None = None, seed: int = 0) -> tuple[np.ndarray, dict]:
    """-> (params (N, k, P), the noise used: rule, per-prompt overall and per-layer std, relative scale).
    generated (N, K, P): the generator's policies for these prompts (needed when cfg.scale is None)."""
    cfg.validate()
    base, _ = retrieve(gen, index, prompts)
    spec = gen.spec
    if cfg.scale is None:
        check(generated is not None and len(generated) == len(prompts),
              "noised retrieval: the generator's spread needs its policies for these prompts")
        std, rule = generator_spread(generated, index.params, spec),             "per prompt and layer: RMS distance of the generated policies to their nearest training checkpoint (L2)"
    else:
        std, rule = cfg.scale * layer_rms(base, spec), f"{cfg.scale:g} x the retrieved checkpoint's per-layer RMS"
    params = add_parameter_noise(base, std, spec, k, seed)
    total, ref = overall_rms(std, spec), overall_rms(layer_rms(base, spec), spec)
    per_prompt = [{"prompt": p.id, "std": float(t), "relative": float(t / max(r, 1e-12)),
                   "std_per_layer": {n: float(v) for (n, _), v in zip(layer_slices(spec), s)}}
                  for p, t, r, s in zip(prompts, total, ref, std)]
    return params, {"rule": rule, "scale": cfg.scale, "per_prompt": per_prompt,
                    "mean_relative": float(np.mean([q["relative"] for q in per_prompt]))}


@dataclass
class BCConfig:
    steps: int = 400  # gradient steps per cloned policy
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    pool: str = "prompt"  # "prompt": its own trajectory; "task": every evaluated prompt of its task
    seed: int = 0


def behavior_clone(spec: PolicySpec, trajectories: list[Trajectory], cfg: BCConfig, seed: int) -> np.ndarray:
    """One actor of `spec` regressed on the state-action pairs of `trajectories` -> flat parameters."""
    check(trajectories, "behavior cloning: no trajectories")
    S = torch.as_tensor(np.concatenate([t.states for t in trajectories]))
    A = torch.as_tensor(np.concatenate([t.actions for t in trajectories]))
    check(S.shape[1] == spec.obs_dim and A.shape[1] == spec.act_dim,
          f"behavior cloning: trajectories are {S.shape[1]} -> {A.shape[1]}, spec {spec.name!r} is "
          f"{spec.obs_dim} -> {spec.act_dim}")
    g = torch.Generator().manual_seed(int(seed))
    torch.manual_seed(int(seed))
    actor = spec.build()
    opt = torch.optim.Adam(actor.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    for _ in range(cfg.steps):
        idx = torch.randint(0, len(S), (cfg.batch_size,), generator=g)
        loss = torch.nn.functional.mse_loss(actor(S[idx]), A[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return spec.flatten(actor).detach().numpy().astype(np.float32)


def behavior_cloning(spec: PolicySpec, prompts: list[PromptItem], cfg: BCConfig | None = None,
                     progress: bool = True) -> np.ndarray:
    """One cloned policy per prompt -> (N, P)."""
    from tqdm import tqdm

    cfg = cfg or BCConfig()
    check(cfg.pool in ("prompt", "task"), f"behavior cloning: pool must be 'prompt' or 'task', got {cfg.pool!r}")
    by_task: dict[str, list[Trajectory]] = {}
    for p in prompts:
        by_task.setdefault(p.task, []).append(p.trajectory)
    out = []
    for i, p in enumerate(tqdm(prompts, desc=f"bc ({cfg.pool})", unit="policy", disable=not progress)):
        data = [p.trajectory] if cfg.pool == "prompt" else by_task[p.task]
        out.append(behavior_clone(spec, data, cfg, seed=cfg.seed * 100003 + i))
    return np.stack(out)
