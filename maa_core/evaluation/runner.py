"""Evaluation of many policies (flat parameters of one spec) in the paper's protocol, in parallel.

Every policy of a task is scored in the same `n_configs` seeded random initial configurations,
`episodes_per_config` episodes each (deterministic actor: tanh of the mean). A policy's score is a
pure function of (parameters, task, settings), so results do not depend on the worker count.
Workers are spawned processes (no forked simulator or torch state), one torch/BLAS thread each.
"""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ..errors import check
from ..specs import PolicySpec


@dataclass
class EvalSettings:
    n_configs: int = 5  # random initial configurations per policy (paper: 5)
    episodes_per_config: int = 1  # a deterministic actor repeats itself; >1 only matters with noise
    seed: int = 0  # seeds the configurations: every tool and every policy sees the same ones
    workers: int = 2  # spawned processes; 1 runs in this process
    max_episode_steps: int = 500  # MetaWorld horizon
    progress: bool = True
    # >= 0: an episode ends this many steps after its first success (success rates are unchanged, returns
    # cover the episode so far; for slow simulators); None: every episode runs its full length
    stop_after_success: int | None = None

    def validate(self) -> "EvalSettings":
        check(self.n_configs >= 1, f"configs per policy must be >= 1, got {self.n_configs}")
        check(self.episodes_per_config >= 1, f"episodes per configuration must be >= 1, got {self.episodes_per_config}")
        check(self.workers >= 1, f"workers must be >= 1, got {self.workers}")
        check(1 <= self.max_episode_steps, f"max episode steps must be >= 1, got {self.max_episode_steps}")
        check(self.stop_after_success is None or self.stop_after_success >= 0,
              f"stop after success must be >= 0 steps, got {self.stop_after_success}")
        return self


@dataclass
class PolicyScore:
    success_rate: float
    mean_return: float
    first_success: float | None  # mean step of the first success over successful episodes; None if none
    episode_success: list[bool] = field(default_factory=list)


class MetaWorldSuite:
    """The MetaWorld v3 tasks (goal-observable, 39-dim state, 4-dim action)."""

    def task_name(self, task: str) -> str:
        from ..envs.tasks import short_name

        return short_name(task)  # raises MaaError for an unknown task

    def dims(self, task: str) -> tuple[int, int]:
        from ..envs.metaworld_env import ACT_DIM, OBS_DIM

        return OBS_DIM, ACT_DIM

    def seen(self, task: str) -> bool | None:
        from ..envs.tasks import SEEN_TASKS, UNSEEN_TASKS

        return True if task in SEEN_TASKS else False if task in UNSEEN_TASKS else None

    def env(self, task: str, max_episode_steps: int):
        from ..envs.metaworld_env import get_env

        return get_env(task, max_episode_steps)

    def configs(self, task: str, n: int, seed: int) -> list:
        from ..envs.metaworld_env import random_configs

        return random_configs(task, n, seed)


class RobosuiteSuite:
    """The paper's Robosuite tasks (41-dim state, 8-dim action) on one robot: the paper trains on the
    Panda and evaluates on the Sawyer (cross-embodiment)."""

    def __init__(self, robot: str | None = None):
        from ..envs.tasks import ROBOSUITE_EVAL_ROBOT

        self.robot = robot or ROBOSUITE_EVAL_ROBOT

    def task_name(self, task: str) -> str:
        from ..envs.tasks import robosuite_task

        return robosuite_task(task)  # raises MaaError for an unknown task

    def dims(self, task: str) -> tuple[int, int]:
        from ..envs.robosuite_env import ACT_DIM, OBS_DIM

        return OBS_DIM, ACT_DIM

    def seen(self, task: str) -> bool | None:
        return None

    def env(self, task: str, max_episode_steps: int):
        from ..envs.robosuite_env import get_env

        return get_env(task, self.robot, max_episode_steps)

    def configs(self, task: str, n: int, seed: int) -> list:
        from ..envs.robosuite_env import robosuite_configs

        return robosuite_configs(n, seed)


def suite_for(tasks, robot: str | None = None):
    """The suite of `tasks`: Robosuite (on `robot`, default the evaluation robot) or MetaWorld; one
    clear error for a mix, or a robot given for MetaWorld tasks."""
    from ..envs.tasks import is_robosuite

    rs = {is_robosuite(t) for t in tasks}
    check(len(rs) <= 1, f"tasks {sorted(set(tasks))} mix Robosuite and MetaWorld; evaluate them separately")
    if rs == {True}:
        return RobosuiteSuite(robot)
    check(robot is None, f"--robot {robot}: a robot is chosen for Robosuite tasks only (these are MetaWorld: {sorted(set(tasks))})")
    return MetaWorldSuite()


def check_compatible(spec: PolicySpec, tasks, suite) -> list[str]:
    """Task names in the suite's form; one clear error for an unknown task or a spec that does not fit."""
    names = []
    for t in tasks:
        name = suite.task_name(t)
        obs, act = suite.dims(name)
        check(spec.obs_dim == obs and spec.act_dim == act,
              f"spec {spec.name!r} is {spec.obs_dim} -> {spec.act_dim}, but task {name!r} has observations of "
              f"{obs} and actions of {act}")
        names.append(name)
    return names


def _init_worker() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


def score_one(spec: PolicySpec, params: np.ndarray, task: str, settings: EvalSettings, suite) -> PolicyScore:
    from ..envs.evaluate import NumpyPolicy, evaluate_policy

    policy = NumpyPolicy(spec=spec, params=params)
    env = suite.env(task, settings.max_episode_steps)
    configs = suite.configs(task, settings.n_configs, settings.seed)
    res = evaluate_policy(policy, env, configs, settings.episodes_per_config, keep_trajectories=False,
                          seed=settings.seed, max_steps=settings.max_episode_steps,
                          stop_after_success=settings.stop_after_success)
    fs = [f for f in res.first_success if f >= 0]
    return PolicyScore(float(res.success_rate), float(res.mean_return), float(np.mean(fs)) if fs else None,
                       [f >= 0 for f in res.first_success])


def _job(args):
    return score_one(*args)


def evaluate_params(spec: PolicySpec, params, tasks, settings: EvalSettings | None = None, suite=None,
                    desc: str = "evaluate") -> list[PolicyScore]:
    """params (N, P) flat policies, tasks[i] the task of policy i -> one PolicyScore each, in order."""
    from tqdm import tqdm

    settings = (settings or EvalSettings()).validate()
    suite = suite or MetaWorldSuite()
    params = np.asarray(params, dtype=np.float32)
    if params.ndim == 1:
        params = params[None]
    check(params.ndim == 2 and params.shape[1] == spec.num_params,
          f"policies: expected (N, {spec.num_params}) parameters for spec {spec.name!r}, got {params.shape}")
    check(len(tasks) == len(params), f"policies: {len(params)} parameter vectors but {len(tasks)} tasks")
    check(bool(np.isfinite(params).all()), "policies: parameters contain NaN or Inf")
    names = check_compatible(spec, tasks, suite)
    jobs = [(spec, params[i], names[i], settings, suite) for i in range(len(params))]
    bar = dict(total=len(jobs), desc=desc, unit="policy", disable=not settings.progress)
    if settings.workers == 1 or len(jobs) <= 1:
        return [score_one(*j) for j in tqdm(jobs, **bar)]
    import multiprocessing as mp

    with ProcessPoolExecutor(max_workers=min(settings.workers, len(jobs)), mp_context=mp.get_context("spawn"),
                             initializer=_init_worker) as ex:
        return list(tqdm(ex.map(_job, jobs, chunksize=1), **bar))
