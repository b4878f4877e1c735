"""Screening of candidate actors before one is published.

Validity: finite parameters; on the prompt's states (when they are the actor's inputs) finite
actions within `max_abs_action`. Ranking: agreement with the prompt's actions (negative MSE), or,
with a `Scorer` given, its score of each valid candidate. Scorers belong to their domain (a
simulator rollout in maa_core.go2 or maa_core.envs; `scorers.make_scorer` builds one by name):
this module knows none of them. A scorer that can score all candidates at once (`BatchScorer`,
e.g. the Go2's lock-step rollouts) is asked once; any other one candidate at a time.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np
import torch

from ..specs import Actor, PolicySpec
from ..trajectory import Trajectory


class Scorer(Protocol):
    """Scores one candidate actor, higher is better (e.g. a simulator rollout). A non-finite score
    marks the candidate invalid; so does a score <= 0 when `zero_is_invalid` is true."""

    zero_is_invalid: bool

    def __call__(self, actor: Actor) -> float: ...


class BatchScorer(Scorer, Protocol):
    """Optionally also: the scores of many actors at once, the same as calling it on each."""

    def score_all(self, actors: Sequence[Actor]) -> np.ndarray: ...


def _scores(scorer: Scorer, actors: list[Actor]) -> np.ndarray:
    score_all = getattr(scorer, "score_all", None)
    if callable(score_all) and len(actors) > 1:
        return np.asarray(score_all(actors), dtype=float)
    return np.array([float(scorer(a)) for a in actors])


@dataclass
class Screening:
    """Per-candidate verdicts; the best valid candidate wins."""

    valid: np.ndarray  # (K,) bool
    score: np.ndarray  # (K,) float, -inf where invalid
    reasons: list[str]

    @property
    def best(self) -> int:
        return int(np.argmax(self.score)) if self.valid.any() else -1


def screen(spec: PolicySpec, params: np.ndarray, prompt: Trajectory, max_abs_action: float,
           scorer: Scorer | None = None) -> Screening:
    K = params.shape[0]
    valid, score, reasons = np.zeros(K, bool), np.full(K, -np.inf), []
    states = torch.as_tensor(prompt.states, dtype=torch.float32)
    obs_ok = states.shape[1] == spec.obs_dim  # prompt states may differ from the actor's input (e.g. Go2 history)
    for k in range(K):
        p = params[k]
        if not np.isfinite(p).all():
            reasons.append("non-finite parameters")
            continue
        if not obs_ok:
            valid[k], score[k] = True, 0.0
            reasons.append("ok (prompt states are not actor inputs: not ranked)")
            continue
        with torch.no_grad():
            act = spec.unflatten(p)(states).numpy()
        if not np.isfinite(act).all():
            reasons.append("non-finite actions on the prompt states")
            continue
        peak = float(np.abs(act).max())
        if peak > max_abs_action:
            reasons.append(f"action magnitude {peak:.3g} > {max_abs_action:g}")
            continue
        valid[k] = True
        score[k] = -float(np.mean((act - prompt.actions) ** 2)) if act.shape == prompt.actions.shape else 0.0
        reasons.append("ok")
    if scorer is not None:
        ks = np.flatnonzero(valid)
        for k, s in zip(ks, _scores(scorer, [spec.unflatten(params[k]).eval() for k in ks])):
            if not np.isfinite(s) or (s <= 0.0 and getattr(scorer, "zero_is_invalid", False)):
                valid[k], score[k], reasons[k] = False, -np.inf, f"failed the scorer ({getattr(scorer, 'name', 'rollout')})"
            else:
                score[k] = s
    return Screening(valid, score, reasons)
