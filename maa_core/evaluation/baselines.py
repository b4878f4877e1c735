"""Baselines on the same prompts and the same protocol as the generator.

- nearest-checkpoint retrieval: the training checkpoint whose behavior embedding (the generator's
  own trained embedding, condition h || v) is closest in cosine to the prompt's (the search lives
  in serving/retrieval.py, which the serving modes `retrieve` / `auto` use too);
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
