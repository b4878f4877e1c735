"""Task names of the paper and their MetaWorld v3 / Robosuite ids."""
from __future__ import annotations

from ..errors import MaaError

# Paper (App. B.1) short name -> MetaWorld v3 environment id
SEEN_TASKS: dict[str, str] = {
    "window-open": "window-open-v3",
    "door-open": "door-open-v3",
    "drawer-open": "drawer-open-v3",
    "dial-turn": "dial-turn-v3",
    "faucet-close": "faucet-close-v3",
    "button-press": "button-press-v3",
    "door-unlock": "door-unlock-v3",
    "handle-press": "handle-press-v3",
    "plate-slide": "plate-slide-v3",
    "reach": "reach-v3",
}
UNSEEN_TASKS: dict[str, str] = {
    "window-close": "window-close-v3",
    "door-close": "door-close-v3",
    "drawer-close": "drawer-close-v3",
    "faucet-open": "faucet-open-v3",
    "button-press-wall": "button-press-wall-v3",
    "door-lock": "door-lock-v3",
    "handle-press-side": "handle-press-side-v3",
    "coffee-button": "coffee-button-v3",
    "reach-wall": "reach-wall-v3",
}
PAPER_TASKS: dict[str, str] = {**SEEN_TASKS, **UNSEEN_TASKS}

# Robosuite tasks of the paper: Panda for training, Sawyer for evaluation
ROBOSUITE_TASKS: dict[str, str] = {"door": "Door", "lift": "Lift", "nut-assembly": "NutAssemblySingle"}
ROBOSUITE_TRAIN_ROBOT = "Panda"
ROBOSUITE_EVAL_ROBOT = "Sawyer"


def metaworld_id(task: str) -> str:
    """'window-open', 'window-open-v3' (any MetaWorld v3 task) -> 'window-open-v3'."""
    if task in PAPER_TASKS:
        return PAPER_TASKS[task]
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS

    if task in ALL_V3_ENVIRONMENTS:
        return task
    if f"{task}-v3" in ALL_V3_ENVIRONMENTS:
        return f"{task}-v3"
    raise MaaError(f"unknown MetaWorld task {task!r} (paper tasks: {', '.join(PAPER_TASKS)}; "
                   f"or any MetaWorld v3 id such as 'pick-place-v3')")


def short_name(task: str) -> str:
    """The paper's short name ('window-open') for a task given either way."""
    v3 = metaworld_id(task)
    return v3[:-3] if v3.endswith("-v3") else v3


def is_robosuite(task: str) -> bool:
    """A Robosuite task, by the paper's short name ('lift') or the environment's ('Lift')."""
    return task in ROBOSUITE_TASKS or task in ROBOSUITE_TASKS.values()


def robosuite_task(task: str) -> str:
    """'lift' or 'Lift' -> 'lift' (the short name records and reports use)."""
    env_name = robosuite_env_name(task)  # MaaError for an unknown task
    return next(s for s, e in ROBOSUITE_TASKS.items() if e == env_name)


def robosuite_env_name(task: str) -> str:
    if task in ROBOSUITE_TASKS:
        return ROBOSUITE_TASKS[task]
    if task in ROBOSUITE_TASKS.values():
        return task
    raise MaaError(f"unknown Robosuite task {task!r} (known: {', '.join(ROBOSUITE_TASKS)})")
