"""Prompt items for evaluation: a trajectory, the task it comes from, and its own policy when known.

Sources: a maa dataset (records carry the task and the prompt's policy parameters), .npz files or a
ROS 2 bag (the task must be given). `add_action_noise` makes the robustness variant (paper Fig. 7).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import MaaError, check
from ..trajectory import Trajectory


@dataclass
class PromptItem:
    id: str
    task: str
    trajectory: Trajectory
    source_params: np.ndarray | None = None  # the policy that produced the prompt (dataset records)
    source_key: str = ""


def dataset_dirs(path) -> tuple[Path, Path | None]:
    """A dataset root (with prompts/ and checkpoints/) or one dataset dir -> (prompt dir, checkpoint dir or None)."""
    path = Path(path)
    check(path.is_dir(), f"{path}: no such dataset directory")
    if (path / "manifest.json").is_file():
        sib = path.parent / "checkpoints"
        return path, (sib if (sib / "manifest.json").is_file() and sib != path else None)
    if (path / "prompts" / "manifest.json").is_file():
        ck = path / "checkpoints"
        return path / "prompts", (ck if (ck / "manifest.json").is_file() else None)
    raise MaaError(f"{path}: not a maa dataset (no manifest.json, and no prompts/manifest.json)")


def from_dataset(path, tasks: list[str] | None = None, per_task: int | None = None) -> list[PromptItem]:
    """Every trajectory of every record (in dataset order), optionally only `tasks`, at most `per_task` each."""
    from ..dataset import PolicyDataset

    ds = PolicyDataset(path)
    check(len(ds) > 0, f"{path}: dataset is empty")
    known = set(ds.tasks())
    for t in tasks or []:
        check(t in known, f"{path}: no prompts for task {t!r} (dataset has: {', '.join(sorted(known))})")
    want = set(tasks) if tasks else None
    count: dict[str, int] = {}
    items = []
    for i, m in enumerate(ds.meta()):
        task = m["task"]
        if (want is not None and task not in want) or (per_task is not None and count.get(task, 0) >= per_task):
            continue
        rec = ds[i]
        for j, traj in enumerate(rec.trajectories):
            if per_task is not None and count.get(task, 0) >= per_task:
                break
            count[task] = count.get(task, 0) + 1
            items.append(PromptItem(f"{rec.key}#{j}", task, traj, rec.params, rec.key))
    return items


def from_files(paths, task: str) -> list[PromptItem]:
    from ..trajectory import load_trajectory

    check(bool(task), "prompt files carry no task: give --task")
    return [PromptItem(Path(p).stem, task, load_trajectory(p)) for p in paths]


def from_bag(path, task: str, topic: str | None = None) -> list[PromptItem]:
    from ..prompts import read_prompts_from_bag

    check(bool(task), "a bag carries no task: give --task")
    return [PromptItem(pid, task, t) for pid, t in read_prompts_from_bag(path, topic=topic)]


def add_action_noise(items: list[PromptItem], sigma: float, seed: int = 0) -> list[PromptItem]:
    """Gaussian noise of std `sigma` on every prompt action (states untouched), seeded per prompt."""
    check(np.isfinite(sigma) and sigma >= 0, f"action noise must be >= 0, got {sigma}")
    if sigma == 0:
        return list(items)
    out = []
    for i, it in enumerate(items):
        rng = np.random.default_rng([int(seed), i, 0x6E6F6973])
        t = it.trajectory
        noisy = Trajectory(t.states, t.actions + rng.normal(0.0, sigma, t.actions.shape).astype(np.float32), t.success)
        out.append(replace(it, trajectory=noisy))
    return out
