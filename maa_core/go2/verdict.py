"""What counts as a walk, defined once: when the robot has fallen, its forward speed and sideways
drift along its initial heading, its step frequency, and whether it walks. The in-process walk
(`walk.py`), the screening scorer (`scoring.py`), the logged walk of the ROS path
(`metrics_from_log`), the benchmarks, the demo and the tests all judge with these."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import check
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

    def fell(self, height: float, quat_wxyz) -> bool:
        """The trunk is below `min_height` or rolled / pitched past `max_tilt`."""
        r, p, _ = quat_to_rpy(quat_wxyz)
        return bool(height < self.min_height or abs(r) > self.max_tilt or abs(p) > self.max_tilt)

    def fell_many(self, heights: np.ndarray, quats_wxyz: np.ndarray) -> np.ndarray:
        """`fell` for N trunks at once: heights (N,), quaternions (N, 4) -> (N,) bool."""
        w, x, y, z = np.asarray(quats_wxyz, dtype=float).T
        roll = np.arctan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))   # gait.quat_to_rpy, column-wise
        pitch = np.arcsin(np.clip(2 * (w * y - z * x), -1.0, 1.0))
        return (np.asarray(heights) < self.min_height) | (np.abs(roll) > self.max_tilt) | (np.abs(pitch) > self.max_tilt)

    def walks(self, fell: bool, speed: float) -> bool:
        return (not fell) and speed >= self.min_speed


def heading(quat_wxyz) -> np.ndarray:
    """Unit vector (x, y) of the trunk's yaw: the direction forward speed is measured along."""
    _, _, yaw = quat_to_rpy(quat_wxyz)
    return np.array([math.cos(yaw), math.sin(yaw)])


def forward_lateral(displacement_xy, head: np.ndarray) -> tuple[float, float]:
    """(forward, sideways-left) components of a planar displacement along heading `head`."""
    d = np.asarray(displacement_xy, dtype=float)[:2]
    return float(d @ head), float(d @ np.array([-head[1], head[0]]))


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
        return crit.walks(self.fell, self.speed)

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


def metrics_from_log(t, pos, quat, foot, start: float, seconds: float, crit: WalkCriteria = WalkCriteria()) -> dict:
    """Forward speed, fall and step frequency of the logged walk in [start, start + seconds] (sim time)."""
    t = np.asarray(t)
    sel = np.flatnonzero((t >= start) & (t <= start + seconds))
    check(len(sel) >= 2, f"walk log: no samples between t={start:.2f} s and t={start + seconds:.2f} s")
    fell_at = next((i for i in sel if crit.fell(pos[i][2], quat[i])), None)
    end = sel[-1] if fell_at is None else fell_at
    sel = sel[sel <= end]
    head = heading(quat[sel[0]])
    forward, lateral = forward_lateral(pos[sel[-1], :2] - pos[sel[0], :2], head)
    dur = float(t[sel[-1]] - t[sel[0]])
    dt = dur / max(len(sel) - 1, 1)
    steady = sel[t[sel] >= t[sel[0]] + crit.steady_from]
    steady_speed = (forward_lateral(pos[steady[-1], :2] - pos[steady[0], :2], head)[0] / float(t[steady[-1]] - t[steady[0]])
                    if len(steady) > 1 else 0.0)
    return {"speed": round(forward / dur, 4) if dur > 0 else 0.0, "steady_speed": round(steady_speed, 4),
            "fell": fell_at is not None,
            "seconds": round(dur, 3), "step_frequency": round(step_frequency(foot[sel] > crit.contact_force, dt), 4),
            "lateral": round(lateral, 4)}
