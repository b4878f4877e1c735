"""Screening of candidate actors before one is published (no ROS).

Validity: finite parameters; on the prompt's states (when they are the actor's inputs) finite
actions within `max_abs_action`. Ranking: agreement with the prompt's actions (negative MSE), or,
with a simulator configured, the score of a short rollout:
  * a MetaWorld / Robosuite task name (maa_core.envs): return of one episode of `steps` steps from
    the task's default configuration, + 1000 if it succeeds;
  * "go2": the MuJoCo Go2 (maa_core.go2.sim) from the stand pose, the walk-these-ways composition
    of `wtw_run_dir` (adaptation module) around the candidate: fraction of `steps` policy steps
    before the trunk falls or tilts past the robot config's limit (a candidate that falls at once
    scores 0 and is marked invalid);
  * "go2-walk": as "go2", and a candidate that stays up the whole rollout scores 1 + its forward
    speed along its initial heading (m/s, >= 0): among the ones that stand, the one that walks.
    Two rollouts (from the stand pose, and after standing 30 steps); the worse score counts.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from maa_core.errors import MaaError, check
from maa_core.specs import Actor, PolicySpec
from maa_core.trajectory import Trajectory


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
           rollout: Callable[[Actor], float] | None = None) -> Screening:
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
    if rollout is not None:
        for k in np.flatnonzero(valid):
            s = float(rollout(spec.unflatten(params[k]).eval()))
            if not np.isfinite(s) or (s <= 0.0 and getattr(rollout, "zero_is_invalid", False)):
                valid[k], score[k], reasons[k] = False, -np.inf, "failed the simulator rollout"
            else:
                score[k] = s
    return Screening(valid, score, reasons)


def make_rollout(name: str, steps: int, spec: PolicySpec, wtw_run_dir: str = "") -> Callable[[Actor], float]:
    """The rollout scorer `name` names (see the module doc); MaaError when it cannot be built."""
    check(steps >= 1, f"sim_screen_steps must be >= 1, got {steps}")
    if name == "go2":
        return _Go2Rollout(steps, spec, wtw_run_dir)
    if name == "go2-walk":
        return _Go2WalkRollout(steps, spec, wtw_run_dir)
    return _TaskRollout(name, steps, spec)


class _TaskRollout:
    zero_is_invalid = False

    def __init__(self, task: str, steps: int, spec: PolicySpec):
        try:
            from maa_core.envs import make_env
            self.env = make_env(task, seed=0, max_episode_steps=steps)
        except MaaError:
            raise
        except Exception as e:  # unknown task names surface as library errors of several kinds
            raise MaaError(f"sim_screen {task!r}: cannot build the simulator ({type(e).__name__}: {e})") from None
        check((self.env.obs_dim, self.env.act_dim) == (spec.obs_dim, spec.act_dim),
              f"sim_screen {task!r}: env is {self.env.obs_dim} -> {self.env.act_dim}, actors are {spec.obs_dim} -> {spec.act_dim}")
        self.steps = steps

    def __call__(self, actor: Actor) -> float:
        from maa_core.envs import rollout
        ro = rollout(self.env, actor.act, None, max_steps=self.steps)
        return float(ro.ret) + (1000.0 if ro.success else 0.0)


class _Go2Rollout:
    zero_is_invalid = True

    def __init__(self, steps: int, spec: PolicySpec, wtw_run_dir: str):
        from maa_core.go2.sim.env import WtwSimEnv
        from maa_core.go2.wtw import PolicyRunner, load_wtw_run
        check(bool(wtw_run_dir), "sim_screen 'go2': the wtw_run_dir parameter is empty")
        run = load_wtw_run(wtw_run_dir)
        check(spec.obs_dim == run.config.actor_in_dim and spec.act_dim == run.config.num_actions,
              f"sim_screen 'go2': actors are {spec.obs_dim} -> {spec.act_dim}, the run needs "
              f"{run.config.actor_in_dim} -> {run.config.num_actions}")
        self.env = WtwSimEnv("go2", run.config)
        self.runner = PolicyRunner(self.env.builder, run.adaptation)
        self.steps = steps
        self.max_tilt = self.env.cfg.safety.max_tilt_rad
        self.bound = self.env.cfg.safety.max_abs_action

    def __call__(self, actor: Actor, warmup_steps: int = 0) -> float:
        from maa_core.go2.safety import tilt_angle
        self.env.reset("stand")
        for _ in range(warmup_steps):  # standing at the policy gains before the actor takes over
            self.env.step(np.zeros(self.env.wtw.num_actions))
        h0 = float(self.env.sim.base_position()[2])
        self._start, self._quat0 = self.env.sim.base_position(), self.env.sim.data.qpos[3:7].copy()
        for t in range(self.steps):
            a = self.runner.run(actor)
            if not np.isfinite(a).all() or np.abs(a).max() > self.bound:
                return t / self.steps
            self.env.step(a)
            if (self.env.sim.base_position()[2] < 0.5 * h0
                    or tilt_angle(self.env.state.quat) > self.max_tilt):
                return t / self.steps
        return 1.0


class _Go2WalkRollout(_Go2Rollout):
    # two starts, the worse one counts: straight from the stand pose (as the controller's STAND_UP -> RUN) and
    # after standing 30 policy steps (as the students were trained); marginal actors walk from one and not the other
    warmups = (0, 30)

    def __call__(self, actor: Actor) -> float:
        return min(self._walk(actor, w) for w in self.warmups)

    def _walk(self, actor: Actor, warmup_steps: int) -> float:
        survived = super().__call__(actor, warmup_steps)
        if survived < 1.0:
            return survived
        pos = self.env.sim.base_position()
        w, x, y, z = self._quat0
        heading = np.array([1 - 2 * (y * y + z * z), 2 * (x * y + w * z)])
        heading /= max(np.linalg.norm(heading), 1e-9)
        speed = float((pos[:2] - self._start[:2]) @ heading) / (self.steps * self.env.wtw.dt)
        return 1.0 + max(0.0, speed)
