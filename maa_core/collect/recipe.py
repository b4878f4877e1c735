"""Collection recipes (config/dataset_*.yaml) -> job lists."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import MaaError, check
from .jobs import METHODS, Job

TASK_SETS = ("seen", "unseen", "paper")


def resolve_tasks(tasks) -> list[str]:
    """'seen' | 'unseen' | 'paper' | comma-separated string | list -> the paper's short names (validated)."""
    from ..envs.tasks import PAPER_TASKS, ROBOSUITE_TASKS, SEEN_TASKS, UNSEEN_TASKS, short_name

    if isinstance(tasks, str):
        tasks = [t.strip() for t in tasks.split(",") if t.strip()]
    out: list[str] = []
    for t in tasks:
        sets = {"seen": list(SEEN_TASKS), "unseen": list(UNSEEN_TASKS), "paper": list(PAPER_TASKS)}
        for name in sets.get(t, [t]):
            s = name if name in ROBOSUITE_TASKS else short_name(name)  # MaaError for unknown tasks
            if s not in out:
                out.append(s)
    check(out, "no tasks given")
    return out


def _seeds(v) -> list[int]:
    if isinstance(v, int):
        check(v >= 1, f"seeds: expected >= 1 runs, got {v}")
        return list(range(v))
    if isinstance(v, str) and "-" in v:
        a, b = v.split("-", 1)
        return list(range(int(a), int(b) + 1))
    if isinstance(v, (list, tuple)):
        return [int(x) for x in v]
    raise MaaError(f"seeds: expected a count, 'a-b' or a list, got {v!r}")


def load_recipe(path) -> dict:
    from ..config import read_yaml_mapping

    p = Path(path)
    r = read_yaml_mapping(p, "recipe file")
    check(isinstance(r.get("groups"), list) and r["groups"],
          f"{p}: a recipe needs a non-empty 'groups' list")
    return r


def plan_jobs(recipe: dict) -> list[Job]:
    """Expands recipe groups into (task, seed) jobs, in a deterministic order."""
    method = recipe.get("method", "distill")
    jobs: list[Job] = []
    seen = set()
    for gi, g in enumerate(recipe["groups"]):
        check(isinstance(g, dict), f"groups[{gi}]: expected a mapping")
        m = g.get("method", method)
        check(m in METHODS, f"groups[{gi}]: unknown method {m!r} (known: {', '.join(METHODS)})")
        cfg = {**(recipe.get(m) or {}), **(g.get(m) or {})}
        from .distill import DEFAULTS as DD
        from .sac import DEFAULTS as SD

        unknown = set(cfg) - set(DD if m == "distill" else SD)
        check(not unknown, f"groups[{gi}]: unknown {m} settings {sorted(unknown)}")
        n_ck = int(g.get("checkpoints_per_run", 0))
        n_pr = int(g.get("prompts_per_run", 0))
        check(n_ck >= 0 and n_pr >= 0 and n_ck + n_pr > 0, f"groups[{gi}]: needs checkpoints_per_run or prompts_per_run > 0")
        tasks = resolve_tasks(g.get("tasks", "seen"))
        from ..envs.tasks import ROBOSUITE_TASKS

        rs = [t for t in tasks if t in ROBOSUITE_TASKS]
        check(not rs or m in ("sac", "distill"), f"groups[{gi}]: method {m!r} does not collect Robosuite tasks {rs}; use distill or sac")
        for task in tasks:
            for s in _seeds(g.get("seeds", 1)):
                j = Job(task, s, m, n_ck, n_pr, json.dumps(cfg, sort_keys=True))
                check(j.id not in seen, f"groups[{gi}]: job {j.id} appears twice in the recipe")
                seen.add(j.id)
                jobs.append(j)
    return jobs



def _shared_base_settings(recipe: dict):
    from dataclasses import fields

    from .distill import SharedBaseConfig

    sb = recipe.get("shared_base")
    check(isinstance(sb, dict), "shared_base: expected a mapping of settings")
    known = {f.name for f in fields(SharedBaseConfig)}
    unknown = set(sb) - known - {"tasks"}
    check(not unknown, f"shared_base: unknown settings {sorted(unknown)} (known: tasks, {', '.join(sorted(known))})")
    method = recipe.get("method", "distill")
    check(method == "distill", f"shared_base: runs start from a base student with method distill, not {method!r}")
    try:
        cfg = SharedBaseConfig(**{k: v for k, v in sb.items() if k != "tasks"})
    except TypeError as e:
        raise MaaError(f"shared_base: {e}") from None
    return resolve_tasks(sb.get("tasks") or sorted({j.task for j in plan_jobs(recipe)})), cfg


def with_shared_base(recipe: dict, root) -> dict:
    """A recipe with a `shared_base` section -> the same recipe with every distill run starting from
    <root>/base.npy (see prepare_shared_base). Recipes without the section come back unchanged."""
    if recipe.get("shared_base") is None:
        return recipe
    _shared_base_settings(recipe)  # bad settings fail here, before any work
    base = str(Path(root) / "base.npy")
    return {**recipe, "distill": {**(recipe.get("distill") or {}), "base": base}}


def prepare_shared_base(recipe: dict, root, log=print) -> Path | None:
    """Trains the recipe's shared base student once per dataset root (<root>/base.npy, written
    atomically; a rerun reuses it). None for a recipe without a `shared_base` section."""
    import os

    import numpy as np

    from .distill import train_shared_base

    if recipe.get("shared_base") is None:
        return None
    tasks, cfg = _shared_base_settings(recipe)
    base = Path(root) / "base.npy"
    if not base.is_file():
        base.parent.mkdir(parents=True, exist_ok=True)
        if log:
            log(f"training the shared base student ({', '.join(tasks)}; {cfg.configs_per_task} configurations each) -> {base}")
        params = train_shared_base(tasks, recipe.get("spec", "metaworld-sac"), cfg, log=log)
        tmp = base.with_name(".base.tmp.npy")
        np.save(tmp, params)
        os.replace(tmp, base)
    return base
