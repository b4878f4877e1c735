"""Walking rollouts on the in-process simulated Go2, judged by `verdict.py` (forward speed, falls,
step frequency from foot contacts). Used by the data path, the benchmark and the demo, so every one
of them measures a walk the same way."""
from __future__ import annotations

import numpy as np
import torch

from .verdict import WalkCriteria, WalkResult, forward_lateral, heading, step_frequency

__all__ = ["LatentFiller", "WalkCriteria", "WalkResult", "step_frequency", "walk", "walk_actor"]


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
         inputs: bool = False, record_from: float = 0.0, course=None) -> WalkResult:
    """Stand for `crit.warmup_steps`, then run `policy` for `seconds` on a `WtwSimEnv`.

    `policy(x)` maps the actor input (1, 2102) tensor to a (12,) action; `expert` (a `GaitExpert`),
    when given, labels every visited input (and drives when `policy` is None). Gaussian
    `action_noise` perturbs the executed action (DAgger / noise-injection data). `record` keeps the
    controller's step rows from `record_from` seconds on (steady walking, like a recorded prompt;
    the whole walk when it fell before). `course` (segments, `course.py`) sets the observation's
    velocity command each tick (what a commanded expert and a student both read); without it the
    command slots stay as they are."""
    env.reset("stand")
    filler = LatentFiller(env.builder, adaptation)
    zero = np.zeros(env.wtw.num_actions)
    for _ in range(crit.warmup_steps):
        env.step(zero)
    if expert is not None:
        expert.reset()
    d, sim = env.sim.data, env.sim
    head = heading(d.qpos[3:7])
    x0 = d.qpos[0:2].copy()
    n = int(round(seconds / env.wtw.dt))
    cmds = None
    env.builder.set_velocity(0.0, 0.0, 0.0)   # no course: a zero command, whatever the last walk left
    if course is not None:
        from .commands import course_commands

        cmds = course_commands(course, env.wtw.dt, n)
    obs, acts, ins, labels, contacts = [], [], [], [], np.zeros((n, 4), dtype=bool)
    fell, steps = False, 0
    first_rec = int(round(record_from / env.wtw.dt))
    steady_k = int(round(crit.steady_from / env.wtw.dt))
    x_steady = None
    for k in range(n):
        if cmds is not None:
            env.builder.set_velocity(*cmds[k])
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
        if crit.fell(d.qpos[2], d.qpos[3:7]):
            fell = True
            break
    forward, lateral = forward_lateral(d.qpos[0:2] - x0, head)
    res = WalkResult(steps * env.wtw.dt, forward, lateral, fell, step_frequency(contacts[:steps], env.wtw.dt))
    if x_steady is not None and steps > steady_k:
        res.steady_speed = forward_lateral(d.qpos[0:2] - x_steady, head)[0] / ((steps - steady_k) * env.wtw.dt)
    if record:  # from `record_from` on; the whole walk when it fell before that
        keep = slice(first_rec, None) if len(obs) > first_rec else slice(None)
        res.observations, res.actions = np.asarray(obs[keep], np.float32), np.asarray(acts[keep], np.float32)
    if inputs:
        res.inputs, res.labels = np.asarray(ins, np.float32), np.asarray(labels, np.float32)
    return res



def walk_actor(actor, wtw_run_dir: str, seconds: float, record_poses: bool = False, vx: float = 0.6):
    """A (generated) actor walking `seconds` in the in-process sim, after standing `warmup_steps`,
    commanded straight ahead at `vx` m/s. Returns (WalkResult, poses) with poses (T, 19) = base
    position, quaternion, motor q (or None)."""
    from .commands import Segment
    from .sim.env import make_env

    env, adaptation = make_env(wtw_run_dir)
    poses: list[np.ndarray] = []
    sim = env.sim

    def policy(x):
        if record_poses:
            d = sim.data
            poses.append(np.concatenate([d.qpos[0:7], d.qpos[sim.qadr]]))
        with torch.inference_mode():
            return actor(x)[0].numpy()
    res = walk(env, adaptation, policy, seconds, course=(Segment("straight", seconds, vx=vx),))
    return res, (np.asarray(poses) if record_poses else None)
