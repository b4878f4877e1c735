"""A tiny, fast stand-in for a robot task family, used by the learning tests of maa_core.

Point-mass reaching in the MetaWorld actor's shapes (obs 39, act 4): obs[0:4] is the position,
obs[4:8] the task's goal, the rest is zero. p' = p + 0.1 * a. Success: |p - g| < 0.1.
Policies are real metaworld-sac actors, trained by regression on a scripted expert.
"""
from __future__ import annotations

import numpy as np
import torch

from maa_core.specs import get_spec
from maa_core.trajectory import Trajectory

SPEC = get_spec("metaworld-sac")
GOALS = {"A": np.array([0.6, 0.6, -0.3, 0.2]), "B": np.array([-0.6, -0.4, 0.5, -0.2])}


def obs_of(p: np.ndarray, goal: np.ndarray) -> np.ndarray:
    o = np.zeros((len(p), 39), np.float32)
    o[:, :4], o[:, 4:8] = p, goal
    return o


def expert(obs: np.ndarray) -> np.ndarray:
    return np.clip(5.0 * (obs[:, 4:8] - obs[:, :4]), -1, 1)


def rollout(actor, goal, start=None, steps=80, action_noise=0.0, seed=0) -> Trajectory:
    rng = np.random.default_rng(seed)
    p = np.zeros((1, 4)) if start is None else np.asarray(start, float)[None]
    S, A, succ = [], [], []
    for _ in range(steps):
        o = obs_of(p, goal)
        with torch.no_grad():
            a = actor(torch.as_tensor(o)).numpy().astype(np.float64)
        a = np.clip(a + action_noise * rng.standard_normal(a.shape), -1, 1)
        S.append(o[0]), A.append(a[0])
        p = p + 0.1 * a
        succ.append(bool(np.linalg.norm(p - goal) < 0.1))
    return Trajectory(np.array(S), np.array(A), np.array(succ))


def success_rate(actor, goal, n=5, seed=0) -> float:
    rng = np.random.default_rng(seed)
    return float(np.mean([rollout(actor, goal, start=rng.uniform(-0.3, 0.3, 4)).success.any() for _ in range(n)]))


def train_checkpoints(goal, seed: int, steps=200, every=25, keep_after=100):
    """Behavior cloning of the expert from one seed; returns [(step, flat params)] after keep_after steps."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    actor = SPEC.build()
    opt = torch.optim.Adam(actor.parameters(), lr=3e-3)
    out = []
    for step in range(1, steps + 1):
        p = rng.uniform(-1, 1, (64, 4))
        o = obs_of(p, goal)
        loss = ((actor(torch.as_tensor(o)) - torch.as_tensor(expert(o), dtype=torch.float32)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step >= keep_after and step % every == 0:
            out.append((step, SPEC.flatten(actor).clone()))
    return out


def make_records(tasks=("A", "B"), seeds=range(4), traj_per_ckpt=2):
    """-> (params (N, P), [(record index, Trajectory)], task of each record)."""
    params, trajs, task_of = [], [], []
    for task in tasks:
        for seed in seeds:
            for step, flat in train_checkpoints(GOALS[task], seed=1000 * ord(task[0]) + seed):
                actor = SPEC.unflatten(flat)
                i = len(params)
                params.append(flat.numpy())
                task_of.append(task)
                for j in range(traj_per_ckpt):
                    start = np.random.default_rng(100 * i + j).uniform(-0.3, 0.3, 4)
                    trajs.append((i, rollout(actor, GOALS[task], start=start)))
    return np.stack(params), trajs, task_of


class ToyReachEnv:
    """The point-mass task as an environment for maa_core's evaluation runner (reset(config) / step)."""

    obs_dim, act_dim = 39, 4

    def __init__(self, task: str, max_episode_steps: int = 80):
        self.goal, self.max_episode_steps = GOALS[task], int(max_episode_steps)

    def reset(self, config=None):
        self.p, self.t = np.asarray(config if config is not None else np.zeros(4), float)[None], 0
        return obs_of(self.p, self.goal)[0]

    def step(self, a):
        self.p = self.p + 0.1 * np.clip(np.asarray(a, float).reshape(1, 4), -1, 1)
        self.t += 1
        d = float(np.linalg.norm(self.p - self.goal))
        return obs_of(self.p, self.goal)[0], -d, d < 0.1, self.t >= self.max_episode_steps


class ToySuite:
    """Tasks "A" and "B" for maa_core.evaluation.runner: configurations are random start positions."""

    def task_name(self, task):
        from maa_core.errors import check

        check(task in GOALS, f"unknown toy task {task!r}")
        return task

    def dims(self, task):
        return 39, 4

    def seen(self, task):
        return True

    def env(self, task, max_episode_steps):
        return ToyReachEnv(task, min(max_episode_steps, 80))

    def configs(self, task, n, seed):
        rng = np.random.default_rng([seed, 7])
        return [rng.uniform(-0.3, 0.3, 4) for _ in range(n)]
