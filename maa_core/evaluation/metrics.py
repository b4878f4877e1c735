"""Success metrics of the paper (Table 4), as pure functions of per-policy success rates."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import check

QUALIFIED = 1.0  # a policy is "qualified" when it succeeds in every evaluation episode (paper App. B.2)


def _rates(rates) -> np.ndarray:
    r = np.asarray(rates, dtype=np.float64).reshape(-1)
    check(r.size > 0, "metrics: no success rates given")
    check(bool(np.isfinite(r).all()) and bool(((r >= 0) & (r <= 1)).all()), "metrics: success rates must lie in [0, 1]")
    return r


def top_k_mean(rates, k: int) -> float:
    """Mean of the k best success rates (all of them when there are fewer than k)."""
    check(k >= 1, f"metrics: k must be >= 1, got {k}")
    r = np.sort(_rates(rates))[::-1]
    return float(r[:k].mean())


def qualified_rate(rates) -> float:
    """Fraction of policies with success rate 1."""
    return float((_rates(rates) >= QUALIFIED).mean())


@dataclass
class TaskSummary:
    task: str
    seen: bool | None
    prompts: int
    policies: int
    mean: float  # mean success over prompts (each prompt: mean over its policies)
    std: float  # spread over prompts
    top5: float
    top10: float
    qualified: float
    mean_return: float
    mean_first_success: float | None  # mean step of first success over successful episodes

    def row(self) -> dict:
        return dict(self.__dict__)


def summarize_task(task: str, rates, prompt_of, returns=None, first_success=None, seen: bool | None = None) -> TaskSummary:
    """rates[i]: success rate of policy i; prompt_of[i]: which prompt generated it."""
    r = _rates(rates)
    p = np.asarray(prompt_of).reshape(-1)
    check(len(p) == len(r), f"metrics: {len(r)} rates but {len(p)} prompt ids")
    per_prompt = np.array([r[p == u].mean() for u in dict.fromkeys(p.tolist())])
    fs = [f for f in (first_success or []) if f is not None and f >= 0]
    return TaskSummary(task, seen, len(per_prompt), len(r), float(per_prompt.mean()), float(per_prompt.std()),
                       top_k_mean(r, 5), top_k_mean(r, 10), qualified_rate(r),
                       float(np.mean(returns)) if returns is not None and len(returns) else float("nan"),
                       float(np.mean(fs)) if fs else None)


def group_average(summaries: list[TaskSummary], fields=("mean", "top5", "top10", "qualified")) -> dict:
    """Average (and spread) over tasks of each field, as the paper's per-group averages."""
    check(len(summaries) > 0, "metrics: no tasks to average")
    out = {"tasks": len(summaries)}
    for f in fields:
        v = np.array([getattr(s, f) for s in summaries], dtype=np.float64)
        out[f] = float(v.mean())
        out[f + "_std"] = float(v.std())
    return out
