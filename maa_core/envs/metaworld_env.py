"""MetaWorld v3 tasks with the paper's protocol.

A *configuration* is MetaWorld's random vector (object and goal positions). Training runs use one
fixed configuration per run, drawn from the run's seed exactly as MetaWorld's goal-observable
classes draw it (`training_config(task, seed)`). Evaluation uses `n` random configurations drawn
from a seeded generator (`random_configs(task, n, seed)`), so every tool evaluates the same ones.

Observations are the 39-dim goal-observable state, actions 4-dim in [-1, 1]. `step` returns the
MetaWorld success flag; episodes run the full horizon (500 steps) and do not stop on success.
"""
from __future__ import annotations

import os
import warnings

import numpy as np

from ..errors import check
from .tasks import metaworld_id, short_name

OBS_DIM = 39
ACT_DIM = 4
MAX_EPISODE_STEPS = 500


def _env_class(env_id: str):
    os.environ.setdefault("MUJOCO_GL", "egl")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from metaworld.env_dict import ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE
    return ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE[f"{env_id}-goal-observable"]


class MetaWorldEnv:
    """One MetaWorld v3 task. `reset(config)` sets the object/goal configuration (None: keep)."""

    obs_dim = OBS_DIM
    act_dim = ACT_DIM
    domain = "metaworld"

    def __init__(self, task: str, seed: int = 0, max_episode_steps: int = MAX_EPISODE_STEPS):
        self.env_id = metaworld_id(task)
        self.task = short_name(task)
        check(1 <= int(max_episode_steps) <= MAX_EPISODE_STEPS,
              f"max_episode_steps must be in 1..{MAX_EPISODE_STEPS}, got {max_episode_steps}")
        self.max_episode_steps = int(max_episode_steps)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # the goal-observable class draws the configuration from np.random seeded with `seed`
            self._env = _env_class(self.env_id)(seed=int(seed))
        self._env._freeze_rand_vec = True
        self.train_config = np.array(self._env._last_rand_vec, dtype=np.float64)
        self._t = 0

    # -- configurations ---------------------------------------------------------------------
    @property
    def config_space(self) -> tuple[np.ndarray, np.ndarray]:
        sp = self._env._random_reset_space
        return np.asarray(sp.low, dtype=np.float64), np.asarray(sp.high, dtype=np.float64)

    @property
    def config(self) -> np.ndarray:
        return np.array(self._env._last_rand_vec, dtype=np.float64)

    def set_config(self, config) -> None:
        config = np.asarray(config, dtype=np.float64)
        lo, hi = self.config_space
        check(config.shape == lo.shape, f"{self.task}: configuration has shape {config.shape}, expected {lo.shape}")
        self._env._freeze_rand_vec = True
        self._env._last_rand_vec = config.copy()

    # -- gym-like interface -----------------------------------------------------------------
    def reset(self, config=None) -> np.ndarray:
        if config is not None:
            self.set_config(config)
        self._t = 0
        obs, _ = self._env.reset()
        return np.asarray(obs, dtype=np.float32)

    def step(self, action) -> tuple[np.ndarray, float, bool, bool]:
        """-> (obs, reward, success, done); done when the horizon is reached."""
        a = np.clip(np.asarray(action, dtype=np.float64).reshape(ACT_DIM), -1.0, 1.0)
        obs, reward, _, _, info = self._env.step(a)
        self._t += 1
        return (np.asarray(obs, dtype=np.float32), float(reward), bool(info.get("success", False)),
                self._t >= self.max_episode_steps)

    def expert(self):
        """MetaWorld's scripted expert for this task: callable obs -> action."""
        from metaworld.policies import ENV_POLICY_MAP

        check(self.env_id in ENV_POLICY_MAP, f"{self.task}: MetaWorld has no scripted expert")
        pol = ENV_POLICY_MAP[self.env_id]()
        return lambda obs: np.clip(pol.get_action(np.asarray(obs, dtype=np.float64)), -1.0, 1.0)

    def close(self) -> None:
        self._env.close()


def training_config(task: str, seed: int) -> np.ndarray:
    """The fixed object/goal configuration of the training run with this seed."""
    return MetaWorldEnv(task, seed=seed).train_config


def random_configs(task: str, n: int = 5, seed: int = 0) -> list[np.ndarray]:
    """`n` random initial configurations for evaluation, reproducible from `seed`."""
    check(n >= 1, f"n_configs must be >= 1, got {n}")
    lo, hi = get_env(task).config_space
    rng = np.random.default_rng([int(seed), 0x6D7761])  # seeds the evaluation stream apart from training seeds
    return [rng.uniform(lo, hi) for _ in range(n)]


_CACHE: dict[tuple[str, int], MetaWorldEnv] = {}


def get_env(task: str, max_episode_steps: int = MAX_EPISODE_STEPS) -> MetaWorldEnv:
    """A per-process cached env for `task` (reset with an explicit config before use)."""
    key = (metaworld_id(task), int(max_episode_steps))
    if key not in _CACHE:
        _CACHE[key] = MetaWorldEnv(task, seed=0, max_episode_steps=max_episode_steps)
    return _CACHE[key]

