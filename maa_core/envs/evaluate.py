"""Rollouts and the evaluation protocol: a deterministic actor in n seeded random configurations."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import check
from ..trajectory import Trajectory


def _act_fn(name: str):
    if name == "elu":
        return lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0)))
    if name == "relu":
        return lambda x: np.maximum(x, 0)
    if name == "tanh":
        return np.tanh
    return lambda x: x


class NumpyPolicy:
    """The deterministic action of an `Actor` (or spec + flat params) in numpy: fast for one state
    at a time and free of torch threads. Matches `Actor.forward` to float32 rounding."""

    def __init__(self, actor=None, *, spec=None, params=None):
        if actor is not None:
            spec = actor.spec
            params = spec.flatten(actor).detach().cpu().numpy()
        check(spec is not None and params is not None, "NumpyPolicy: give an actor, or spec and params")
        params = np.asarray(params, dtype=np.float32)
        check(params.shape == (spec.num_params,), f"NumpyPolicy: expected {spec.num_params} params, got {params.shape}")
        tensors, off = {}, 0
        for key, shape in spec.param_shapes():
            n = int(np.prod(shape))
            tensors[key] = params[off:off + n].reshape(shape)
            off += n
        self.layers = [(tensors[f"trunk.{2 * i}.weight"].T.copy(), tensors[f"trunk.{2 * i}.bias"], _act_fn(l.activation))
                       for i, l in enumerate(spec.trunk)]
        h = spec.action_head
        self.head = (tensors[f"heads.{h}.weight"].T.copy(), tensors[f"heads.{h}.bias"])
        self.squash = spec.squash == "tanh"
        self.spec = spec

    def __call__(self, obs) -> np.ndarray:
        x = np.asarray(obs, dtype=np.float32)
        for w, b, f in self.layers:
            x = f(x @ w + b)
        a = x @ self.head[0] + self.head[1]
        return np.tanh(a) if self.squash else a


@dataclass
class Rollout:
    trajectory: Trajectory
    ret: float
    first_success: int  # step index of the first success, -1 if none

    @property
    def success(self) -> bool:
        return self.first_success >= 0


def rollout(env, policy, config=None, max_steps: int | None = None, action_noise: float = 0.0,
            rng: np.random.Generator | None = None, label=None, stop_after_success: int | None = None) -> Rollout:
    """One full episode of `policy` (obs -> action) in `env` from `config`.

    action_noise: std of Gaussian noise added to the executed action (recorded: the executed one).
    label: optional second policy; when given, the *recorded* actions are label(obs) (DAgger-style
    expert relabelling) while `policy` (+ noise) drives the environment.
    stop_after_success: end the episode this many steps after its first success (None: run to the end).
    """
    obs = env.reset(config)
    T = int(max_steps or env.max_episode_steps)
    S = np.empty((T, env.obs_dim), np.float32)
    A = np.empty((T, env.act_dim), np.float32)
    succ = np.zeros(T, bool)
    ret, t, first = 0.0, 0, None
    for t in range(T):
        a = np.asarray(policy(obs), dtype=np.float64)
        if action_noise > 0:
            a = a + rng.normal(0.0, action_noise, size=a.shape)
        a = np.clip(a, -1.0, 1.0)
        S[t] = obs
        A[t] = label(obs) if label is not None else a
        obs, r, s, done = env.step(a)
        ret += r
        succ[t] = s
        if s and first is None:
            first = t
        if done or (stop_after_success is not None and first is not None and t >= first + stop_after_success):
            break
    n = t + 1
    traj = Trajectory(S[:n], A[:n], succ[:n])
    return Rollout(traj, ret, traj.first_success)


@dataclass
class EvalResult:
    success_rate: float
    mean_return: float
    returns: list[float] = field(default_factory=list)
    first_success: list[int] = field(default_factory=list)  # per episode; -1 = never
    trajectories: list[Trajectory] = field(default_factory=list)
    configs: list = field(default_factory=list)

    def summary(self) -> dict:
        fs = [f for f in self.first_success if f >= 0]
        return {"success_rate": self.success_rate, "mean_return": self.mean_return,
                "mean_first_success": float(np.mean(fs)) if fs else None, "episodes": len(self.returns)}


def evaluate_policy(policy, env, configs, episodes_per_config: int = 1, keep_trajectories: bool = True,
                    action_noise: float = 0.0, seed: int = 0, max_steps: int | None = None,
                    stop_after_success: int | None = None) -> EvalResult:
    """Runs `policy` from each config; with action_noise=0 the episodes of one config are identical."""
    rng = np.random.default_rng(seed)
    res = EvalResult(0.0, 0.0, configs=list(configs))
    for c in configs:
        for _ in range(int(episodes_per_config)):
            ro = rollout(env, policy, c, max_steps=max_steps, action_noise=action_noise, rng=rng,
                         stop_after_success=stop_after_success)
            res.returns.append(ro.ret)
            res.first_success.append(ro.first_success)
            if keep_trajectories:
                res.trajectories.append(ro.trajectory)
    n = len(res.returns)
    check(n > 0, "evaluation: no episodes to run")
    res.success_rate = sum(f >= 0 for f in res.first_success) / n
    res.mean_return = float(np.mean(res.returns))
    return res


def evaluate_actor(actor, task: str, n_configs: int = 5, episodes_per_config: int = 1, seed: int = 0,
                   configs=None, robot: str | None = None, max_episode_steps: int = 500,
                   keep_trajectories: bool = True, action_noise: float = 0.0) -> EvalResult:
    """The paper's evaluation: the actor's deterministic action in `n_configs` random initial
    configurations (reproducible from `seed`), `episodes_per_config` episodes each.

    actor: an `Actor`, a `NumpyPolicy` or any callable obs -> action.
    task: a MetaWorld task ('window-open', 'window-open-v3') or a Robosuite task ('door', 'lift',
    'nut-assembly'; robot defaults to the evaluation robot, Sawyer).
    configs: explicit configurations instead of random ones (e.g. [training_config(task, seed)]).
    """
    from .tasks import ROBOSUITE_EVAL_ROBOT, ROBOSUITE_TASKS

    policy = actor if (isinstance(actor, NumpyPolicy) or not hasattr(actor, "spec")) else NumpyPolicy(actor)
    if task in ROBOSUITE_TASKS or task in ROBOSUITE_TASKS.values():
        from .robosuite_env import RobosuiteEnv, robosuite_configs

        env = RobosuiteEnv(task, robot=robot or ROBOSUITE_EVAL_ROBOT, max_episode_steps=max_episode_steps)
        if configs is None:
            configs = robosuite_configs(n_configs, seed)
    else:
        from .metaworld_env import get_env, random_configs

        env = get_env(task, max_episode_steps)
        if configs is None:
            configs = random_configs(task, n_configs, seed)
    return evaluate_policy(policy, env, configs, episodes_per_config, keep_trajectories, action_noise, seed)
