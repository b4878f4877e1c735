"""Pictures of a Go2 walk: position / speed / height plot, top-down path plot, and a side-view
stick-figure GIF (matplotlib only: the fallback when MuJoCo cannot render the video, sim/render.py)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import MaaError
from .gait import LEG_NAMES, LegKinematics


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


def commanded_path(t, cmd, start_xy, start_yaw: float) -> np.ndarray:
    """(N, 2) world x-y path of body-frame velocity commands (N, 3: vx, vy, yaw rate) held between
    the times `t`, integrated from a start position and heading: where a perfect tracker would go."""
    t, cmd = np.asarray(t, dtype=float), np.asarray(cmd, dtype=float).reshape(-1, 3)
    dt = np.diff(t, prepend=t[0])
    yaw = start_yaw + np.cumsum(cmd[:, 2] * dt)
    c, s = np.cos(yaw), np.sin(yaw)
    v = np.stack([c * cmd[:, 0] - s * cmd[:, 1], s * cmd[:, 0] + c * cmd[:, 1]], axis=1)
    return np.asarray(start_xy, dtype=float)[:2] + np.cumsum(v * dt[:, None], axis=0)


def write_path_plot(path, t, pos, quat, title: str, commanded: np.ndarray | None = None,
                    command_label: str = "commanded", arrow_every_s: float = 2.0) -> Path:
    """Top-down x-y of the base over the run, an arrow for the heading every `arrow_every_s`, and
    the commanded path (N, 2) beside it when there is one."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .sim.render import heading

    t, pos = np.asarray(t, dtype=float), np.asarray(pos, dtype=float)
    if len(t) == 0:
        raise MaaError("path plot: no poses recorded")
    xy = pos[:, :2] - pos[0, :2]
    yaw = heading(quat)
    fig, ax = plt.subplots(figsize=(5.5, 5.0))
    if commanded is not None:
        cp = np.asarray(commanded, dtype=float) - pos[0, :2]
        ax.plot(cp[:, 0], cp[:, 1], "--", color="tab:green", lw=1.5, label=command_label)
    ax.plot(xy[:, 0], xy[:, 1], color="tab:blue", lw=2, label="achieved (base)")
    marks = np.minimum(np.searchsorted(t, np.arange(t[0], t[-1] + 1e-9, arrow_every_s)), len(t) - 1)
    span = max(float(np.ptp(xy[:, 0])), float(np.ptp(xy[:, 1])), 0.5)
    ax.quiver(xy[marks, 0], xy[marks, 1], np.cos(yaw[marks]), np.sin(yaw[marks]), color="tab:blue",
              angles="xy", scale_units="xy", scale=1.0 / (0.06 * span), width=0.006,
              label=f"heading every {arrow_every_s:g} s")
    ax.plot(*xy[0], "o", color="k", ms=6, label="start")
    ax.plot(*xy[-1], "s", color="tab:red", ms=6, label=f"end ({t[-1] - t[0]:.0f} s)")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("x (m)"), ax.set_ylabel("y (m)"), ax.grid(alpha=0.3), ax.legend(fontsize=8, loc="best")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def write_gif(path, poses: np.ndarray, dt: float, seconds: float, fps: int = 12) -> Path:
    """Side-view stick animation (x-z) of the last `seconds` of `poses`, camera following the trunk.
    (The fallback for machines where MuJoCo cannot render: it needs only matplotlib.)"""
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


def write_tracking_plot(path, t, mode, command, quat, title: str, pose_t=None, pose_pos=None) -> Path:
    """Command tracking over a recorded run: commanded vx / vy (and the achieved body-frame speeds when
    ground-truth poses exist), commanded yaw rate beside the IMU's (d/dt of its heading); the
    controller's mode shaded underneath (STAND_UP light, RUN none, DAMP grey)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .sim.render import heading

    t, command = np.asarray(t, dtype=float), np.asarray(command, dtype=float)
    if len(t) == 0:
        raise MaaError("tracking plot: no ticks recorded")
    t0 = t[0]
    yaw = np.unwrap(heading(np.asarray(quat, dtype=float)))
    yaw_rate = np.gradient(yaw, t) if len(t) > 2 else np.zeros(len(t))
    fig, ax = plt.subplots(1, 2, figsize=(12, 3.6))
    for a in ax:  # mode spans (0 DAMP, 1 STAND_UP, 2 RUN: safety.Mode)
        mode = np.asarray(mode)
        edges = np.flatnonzero(np.diff(mode)) + 1
        for lo, hi in zip(np.r_[0, edges], np.r_[edges, len(mode)]):
            shade = {0: "0.85", 1: "0.94"}.get(int(mode[lo]))
            if shade:
                a.axvspan(t[lo] - t0, t[hi - 1] - t0, color=shade, lw=0)
    ax[0].plot(t - t0, command[:, 0], "--", color="tab:blue", label="vx commanded")
    ax[0].plot(t - t0, command[:, 1], "--", color="tab:orange", label="vy commanded")
    if pose_t is not None and len(pose_t) > 2:
        pt, pp = np.asarray(pose_t, dtype=float), np.asarray(pose_pos, dtype=float)
        v = np.gradient(pp[:, :2], pt, axis=0)
        h = np.interp(pt, t, yaw)
        c, s = np.cos(h), np.sin(h)
        k = max(1, int(round(0.5 / max(float(np.median(np.diff(pt))), 1e-3))))
        smooth = np.ones(k) / k
        ax[0].plot(pt - t0, np.convolve(c * v[:, 0] + s * v[:, 1], smooth, mode="same"), color="tab:blue", label="vx (0.5 s mean)")
        ax[0].plot(pt - t0, np.convolve(-s * v[:, 0] + c * v[:, 1], smooth, mode="same"), color="tab:orange", label="vy (0.5 s mean)")
    ax[0].set_xlabel("time (s)"), ax[0].set_ylabel("m/s"), ax[0].legend(fontsize=8), ax[0].set_title("body velocity")
    ax[1].plot(t - t0, command[:, 2], "--", color="tab:green", label="yaw rate commanded")
    ax[1].plot(t - t0, yaw_rate, color="tab:green", lw=1, label="yaw rate (IMU)")
    ax[1].set_xlabel("time (s)"), ax[1].set_ylabel("rad/s"), ax[1].legend(fontsize=8), ax[1].set_title("turning")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)
