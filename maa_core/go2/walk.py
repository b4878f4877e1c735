"""Walking rollouts on the in-process simulated Go2 and the numbers that say whether a gait walks:
forward speed, falls, step frequency from foot contacts. Used by the data path, the benchmark and
the demo, so every one of them measures a walk the same way."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from .gait import quat_to_rpy


@dataclass(frozen=True)
class WalkCriteria:
    """What counts as walking (issue #7 acceptance)."""
    min_speed: float = 0.4        # m/s forward, averaged over the whole rollout
    max_tilt: float = 0.8         # rad of roll or pitch: beyond it the robot has fallen (= safety.max_tilt_rad)
    min_height: float = 0.15      # m: trunk lower than this has fallen
    contact_force: float = 1.0    # touch-sensor value above which a foot is in contact
    warmup_steps: int = 30        # policy steps of standing (action 0) before the gait starts: fills the history
    steady_from: float = 2.0      # s: the steady speed (gait match) is measured from here on, after speeding up


@dataclass
class WalkResult:
    seconds: float                # simulated time walked (shorter than asked when it fell)
    distance: float               # forward displacement (m, along the initial heading)
    lateral: float                # sideways displacement (m)
    fell: bool
    step_frequency: float         # touchdowns per foot per second (Hz)
    steady_speed: float = 0.0     # forward speed from `steady_from` on (m/s; the gait's cruising speed)
    observations: np.ndarray = field(repr=False, default=None)   # (T, 70) what the controller streams
    actions: np.ndarray = field(repr=False, default=None)        # (T, 12) raw actions executed
    inputs: np.ndarray = field(repr=False, default=None)         # (T, 2102) actor inputs (history ‖ latent)
    labels: np.ndarray = field(repr=False, default=None)         # (T, 12) expert actions at those inputs

    @property
    def speed(self) -> float:
        return self.distance / self.seconds if self.seconds > 0 else 0.0

    def walks(self, crit: WalkCriteria = WalkCriteria()) -> bool:
        return not self.fell and self.speed >= crit.min_speed

    def summary(self) -> dict:
        return {"speed": round(self.speed, 4), "steady_speed": round(self.steady_speed, 4),
                "fell": bool(self.fell), "seconds": round(self.seconds, 3),
                "step_frequency": round(self.step_frequency, 4), "lateral": round(self.lateral, 4)}


def step_frequency(contacts: np.ndarray, dt: float) -> float:
    """Touchdowns (no contact -> contact) per foot per second from a (T, 4) boolean contact log."""
    if len(contacts) < 2:
        return 0.0
    c = np.asarray(contacts, dtype=bool)
    touchdowns = np.logical_and(~c[:-1], c[1:]).sum(axis=0)
    return float(touchdowns.mean() / (dt * (len(c) - 1)))


class LatentFiller:
    """Writes the adaptation module's latent into the builder's actor input (as `PolicyRunner` does)."""

    def __init__(self, builder, adaptation: torch.nn.Module):
        self.x = torch.from_numpy(builder.input).view(1, -1)
        self.hist = self.x[:, : builder.wtw.history_dim]
        self.latent = self.x[:, builder.wtw.history_dim:]
        self.adaptation = adaptation

    def fill(self) -> None:
        with torch.inference_mode():
            self.latent.copy_(self.adaptation(self.hist))


def walk(env, adaptation, policy, seconds: float, crit: WalkCriteria = WalkCriteria(), expert=None,
         action_noise: float = 0.0, rng: np.random.Generator | None = None, record: bool = False,
         inputs: bool = False, record_from: float = 0.0) -> WalkResult:
    """Stand for `crit.warmup_steps`, then run `policy` for `seconds` on a `WtwSimEnv`.

    `policy(x)` maps the actor input (1, 2102) tensor to a (12,) action; `expert` (a `GaitExpert`),
    when given, labels every visited input (and drives when `policy` is None). Gaussian
    `action_noise` perturbs the executed action (DAgger / noise-injection data). `record` keeps the
    controller's step rows from `record_from` seconds on (steady walking, like a recorded prompt;
    the whole walk when it fell before)."""
    env.reset("stand")
    filler = LatentFiller(env.builder, adaptation)
    zero = np.zeros(env.wtw.num_actions)
    for _ in range(crit.warmup_steps):
        env.step(zero)
    if expert is not None:
        expert.reset()
    d, sim = env.sim.data, env.sim
    _, _, yaw0 = quat_to_rpy(d.qpos[3:7])
    heading = np.array([math.cos(yaw0), math.sin(yaw0)])
    x0 = d.qpos[0:2].copy()
    n = int(round(seconds / env.wtw.dt))
    obs, acts, ins, labels, contacts = [], [], [], [], np.zeros((n, 4), dtype=bool)
    fell, steps = False, 0
    first_rec = int(round(record_from / env.wtw.dt))
    steady_k = int(round(crit.steady_from / env.wtw.dt))
    x_steady = None
    for k in range(n):
        filler.fill()
        label = expert.act() if expert is not None else None
        if policy is not None:
            with torch.inference_mode():
                a = np.asarray(policy(filler.x), dtype=np.float64).reshape(-1)
        else:
            a = label.copy()
        if inputs:
            ins.append(env.builder.input.copy())
            labels.append(label)
        if action_noise > 0.0:
            a = a + rng.normal(0.0, action_noise, a.shape)
        if record:  # one row of the controller's steps topic: the observation it acted on, the action
            obs.append(env.builder.obs.copy())
            acts.append(np.clip(a, -env.wtw.clip_actions, env.wtw.clip_actions).astype(np.float32))
        if k == steady_k:
            x_steady = d.qpos[0:2].copy()
        env.step(a)
        contacts[k] = d.sensordata[sim._feet] > crit.contact_force
        steps = k + 1
        r, p, _ = quat_to_rpy(d.qpos[3:7])
        if d.qpos[2] < crit.min_height or abs(r) > crit.max_tilt or abs(p) > crit.max_tilt:
            fell = True
            break
    disp = d.qpos[0:2] - x0
    res = WalkResult(steps * env.wtw.dt, float(disp @ heading), float(disp @ np.array([-heading[1], heading[0]])),
                     fell, step_frequency(contacts[:steps], env.wtw.dt))
    if x_steady is not None and steps > steady_k:
        res.steady_speed = float((d.qpos[0:2] - x_steady) @ heading) / ((steps - steady_k) * env.wtw.dt)
    if record:  # from `record_from` on; the whole walk when it fell before that
        keep = slice(first_rec, None) if len(obs) > first_rec else slice(None)
        res.observations, res.actions = np.asarray(obs[keep], np.float32), np.asarray(acts[keep], np.float32)
    if inputs:
        res.inputs, res.labels = np.asarray(ins, np.float32), np.asarray(labels, np.float32)
    return res

