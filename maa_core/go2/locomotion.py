"""ROS-free pieces of the Go2 locomotion job, shared by `maa demo`, the benchmark and the tests:
held-out prompts, the generator engine configured as the generator node configures it, walking a
generated actor in the in-process simulator, walk metrics from logged poses, and the plot / GIF.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import MaaError, check
from .gait import LEG_NAMES, LegKinematics, quat_to_rpy
from .walk import WalkCriteria, step_frequency


@dataclass
class HeldoutPrompt:
    key: str
    trajectory: object        # Trajectory: (T, 70) observations, (T, 12) actions, no success signal
    speed: float              # the walk's measured forward speed (m/s)
    step_frequency: float     # its touchdowns per foot per second (Hz)


def heldout_prompts(data_dir, task: str | None = None) -> list[HeldoutPrompt]:
    """Prompt records of the held-out runs (gaits no training run has), in key order."""
    from ..collect.locomotion import HELDOUT_TASK
    from ..dataset import PolicyDataset

    ds = PolicyDataset(Path(data_dir) / "prompts")
    out = [HeldoutPrompt(r.key, r.trajectories[0], float(r.source["speed"]), float(r.source["step_frequency"]))
           for r in ds if r.task == (task or HELDOUT_TASK) and r.trajectories]
    check(out, f"{data_dir}: no held-out prompts (task {task or HELDOUT_TASK})")
    return sorted(out, key=lambda p: p.key)


def make_engine(gen, wtw_run_dir: str, num_candidates: int = 8, seed: int = 0, screen_steps: int = 200,
                sim_screen: str = "go2-walk"):
    """The generator node's engine with its Go2 screening (maa_ros/generation.py, screening.py:
    neither imports ROS): K candidates, the best by a MuJoCo rollout (survival, then forward speed)."""
    from maa_ros.generation import Engine
    from maa_ros.screening import make_rollout

    from .config import load_robot_config

    cfg = load_robot_config("go2")
    rollout = make_rollout(sim_screen, screen_steps, gen.spec, wtw_run_dir)
    return Engine(gen, num_candidates, seed, True, cfg.safety.max_abs_action, rollout=rollout)


def walk_actor(actor, wtw_run_dir: str, seconds: float, record_poses: bool = False):
    """A (generated) actor walking `seconds` in the in-process sim, after standing `warmup_steps`.
    Returns (WalkResult, poses) with poses (T, 19) = base position, quaternion, motor q (or None)."""
    import torch

    from ..collect.locomotion import make_env
    from .walk import walk

    env, adaptation = make_env(wtw_run_dir)
    poses: list[np.ndarray] = []
    sim = env.sim

    def policy(x):
        if record_poses:
            d = sim.data
            poses.append(np.concatenate([d.qpos[0:7], d.qpos[sim.qadr]]))
        with torch.inference_mode():
            return actor(x)[0].numpy()
    res = walk(env, adaptation, policy, seconds)
    return res, (np.asarray(poses) if record_poses else None)


# -- metrics from logged poses (the ROS path) ----------------------------------------------------
def metrics_from_log(t, pos, quat, foot, start: float, seconds: float, crit: WalkCriteria = WalkCriteria()) -> dict:
    """Forward speed, fall and step frequency of the logged walk in [start, start + seconds] (sim time)."""
    t = np.asarray(t)
    sel = np.flatnonzero((t >= start) & (t <= start + seconds))
    check(len(sel) >= 2, f"walk log: no samples between t={start:.2f} s and t={start + seconds:.2f} s")
    fell_at = None
    for i in sel:
        r, p, _ = quat_to_rpy(quat[i])
        if pos[i][2] < crit.min_height or abs(r) > crit.max_tilt or abs(p) > crit.max_tilt:
            fell_at = i
            break
    end = sel[-1] if fell_at is None else fell_at
    sel = sel[sel <= end]
    _, _, yaw0 = quat_to_rpy(quat[sel[0]])
    heading = np.array([math.cos(yaw0), math.sin(yaw0)])
    disp = pos[sel[-1], :2] - pos[sel[0], :2]
    dur = float(t[sel[-1]] - t[sel[0]])
    dt = dur / max(len(sel) - 1, 1)
    steady = sel[t[sel] >= t[sel[0]] + crit.steady_from]
    steady_speed = (float((pos[steady[-1], :2] - pos[steady[0], :2]) @ heading) / float(t[steady[-1]] - t[steady[0]])
                    if len(steady) > 1 else 0.0)
    return {"speed": round(float(disp @ heading) / dur, 4) if dur > 0 else 0.0, "steady_speed": round(steady_speed, 4),
            "fell": fell_at is not None,
            "seconds": round(dur, 3), "step_frequency": round(step_frequency(foot[sel] > crit.contact_force, dt), 4),
            "lateral": round(float(disp @ np.array([-heading[1], heading[0]])), 4)}


# -- plot and animation --------------------------------------------------------------------------
def _quat_matrix(q) -> np.ndarray:
    w, x, y, z = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def stick_points(pose: np.ndarray, cfg, joints) -> list[np.ndarray]:
    """World points of each leg (hip, knee, foot) for a pose row (base pos, quat, motor q)."""
    pos, R = pose[0:3], _quat_matrix(pose[3:7])
    qp = joints.to_policy(pose[7:19]).reshape(4, 3)
    legs = []
    for i, name in enumerate(LEG_NAMES):
        k = LegKinematics(cfg, name)
        h, th, _ = qp[i]
        hip = k.hip
        thigh_root = hip + np.array([0.0, k.y0 * math.cos(h), k.y0 * math.sin(h)])
        knee_local = np.array([-k.l1 * math.sin(th), 0.0, -k.l1 * math.cos(th)])
        knee = thigh_root + np.array([knee_local[0], -knee_local[2] * math.sin(h), knee_local[2] * math.cos(h)])
        foot = k.forward(qp[i])
        legs.append(np.array([pos + R @ p for p in (hip, knee, foot)]))
    return legs


def write_plot(path, t, pos, title: str, speed_target: float | None = None) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.asarray(t) - t[0]
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.6))
    ax[0].plot(t, pos[:, 0] - pos[0, 0], label="forward x")
    ax[0].plot(t, pos[:, 1] - pos[0, 1], label="lateral y")
    ax[0].set_xlabel("time (s)"), ax[0].set_ylabel("m"), ax[0].legend(), ax[0].set_title("base position")
    v = np.gradient(pos[:, 0], t) if len(t) > 2 else np.zeros(len(t))
    k = max(1, int(round(0.5 / max(np.median(np.diff(t)), 1e-3))))
    ax[1].plot(t, np.convolve(v, np.ones(k) / k, mode="same"), label="forward speed (0.5 s mean)")
    ax[1].axhline(0.4, color="r", ls="--", lw=1, label="0.4 m/s")
    if speed_target is not None:
        ax[1].axhline(speed_target, color="g", ls=":", lw=1, label="prompt speed")
    ax[1].set_xlabel("time (s)"), ax[1].set_ylabel("m/s"), ax[1].legend(fontsize=8), ax[1].set_title("speed")
    ax[2].plot(t, pos[:, 2])
    ax[2].set_xlabel("time (s)"), ax[2].set_ylabel("m"), ax[2].set_title("trunk height")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def write_gif(path, poses: np.ndarray, dt: float, seconds: float, fps: int = 12) -> Path:
    """Side-view stick animation (x-z) of the last `seconds` of `poses`, camera following the trunk.
    (MuJoCo's renderer needs EGL/OSMesa, which this machine lacks; this needs only matplotlib.)"""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation, PillowWriter

    from .config import load_robot_config
    from .joints import JointMap

    if len(poses) == 0:
        raise MaaError("walk animation: no poses recorded")
    cfg = load_robot_config("go2")
    joints = JointMap.from_config(cfg)
    every = max(1, int(round(1.0 / (fps * dt))))
    rows = poses[-int(round(seconds / dt)):][::every]
    fig, ax = plt.subplots(figsize=(5, 3))
    colors = {"FL": "tab:blue", "FR": "tab:cyan", "RL": "tab:red", "RR": "tab:orange"}

    def draw(i):
        ax.clear()
        p = rows[i]
        legs = stick_points(p, cfg, joints)
        hips = np.array([l[0] for l in legs])
        ax.plot(hips[[0, 2], 0], hips[[0, 2], 2], "k-", lw=5)
        for name, l in zip(LEG_NAMES, legs):
            ax.plot(l[:, 0], l[:, 2], "-o", color=colors[name], lw=2, ms=3)
        x0 = p[0]
        ax.axhline(0.0, color="0.4")
        for gx in np.arange(math.floor(x0 - 1), x0 + 1, 0.25):
            ax.plot([gx, gx], [-0.02, 0.0], color="0.4", lw=1)
        ax.set_xlim(x0 - 0.6, x0 + 0.6)
        ax.set_ylim(-0.05, 0.5)
        ax.set_aspect("equal")
        ax.set_title(f"simulated Go2, side view (x = {x0:.2f} m)", fontsize=9)
        return []
    anim = FuncAnimation(fig, draw, frames=len(rows), blit=False)
    anim.save(str(path), writer=PillowWriter(fps=fps))
    plt.close(fig)
    return Path(path)


def record_prompt_bag(path, seed: int, wtw_run_dir: str, topic: str = "/maa/prompt") -> dict:
    """Writes the clean expert walk of gait `seed` (a seed no training run uses) as a one-prompt
    ROS 2 bag: rows [70-value observation | 12 actions], exactly the controller's maa/go2/steps rows,
    from `record_from` seconds on. A `prompt.json` beside it says what the walk was."""
    import json

    from ..collect.locomotion import LocoDistillConfig, distill_locomotion_run
    from ..prompts import write_prompts_to_bag

    got = []
    distill_locomotion_run(seed, 0, 1, {"wtw_dir": wtw_run_dir}, emit_prompt=got.append)
    check(len(got) == 1, "prompt bag: the expert walk produced no prompt")
    item = got[0]
    path = Path(path)
    check(not path.exists(), f"{path}: already exists")
    write_prompts_to_bag(path, [item.trajectories[0]], topic=topic)
    c = LocoDistillConfig()
    meta = {"description": f"expert trot, gait seed {seed}, {len(item.trajectories[0])} steps of steady walking",
            "seed": seed, "speed": item.extra["steady_speed"], "step_frequency": item.extra["step_frequency"],
            "gait": item.extra["gait"], "recorded_from_s": c.record_from, "topic": topic}
    (path / "prompt.json").write_text(json.dumps(meta, indent=1))
    return meta
