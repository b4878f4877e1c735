"""Safety supervisor: the DAMP -> STAND_UP -> RUN -> DAMP state machine and the fault checks that
send the robot to DAMP (stale lowstate, body tilt, joint limits, sustained torque saturation).

DAMP (kp 0, small kd) is the safe state: it is the start state, and every fault, stop and
e-stop lands there. Each transition is kept with its reason and logged."""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from .config import RobotConfig
from .state import LowState

log = logging.getLogger("maa.go2.safety")


class Mode(IntEnum):
    DAMP = 0
    STAND_UP = 1   # interpolate to the stand pose, then hold it
    RUN = 2        # the active actor drives the joints


@dataclass(frozen=True)
class Transition:
    time: float
    tick: int
    old: Mode
    new: Mode
    reason: str


def tilt_angle(quat_wxyz: np.ndarray) -> float:
    """Angle between the body z axis and world z."""
    w, x, y, z = quat_wxyz
    cos_tilt = 1.0 - 2.0 * (x * x + y * y)
    return math.acos(max(-1.0, min(1.0, cos_tilt)))


class Supervisor:
    def __init__(self, cfg: RobotConfig):
        self.cfg = cfg
        s = cfg.safety
        self.lower = cfg.joint_lower - s.joint_limit_margin
        self.upper = cfg.joint_upper + s.joint_limit_margin
        self.torque_threshold = cfg.torque_limit * s.torque_saturation_fraction
        self.mode = Mode.DAMP
        self.reason = "start"
        self.saturated_ticks = 0
        self.stand_start_q = np.zeros(len(cfg.stand_pose))
        self.stand_start_t = 0.0
        self.transitions: list[Transition] = []

    def transition(self, new: Mode, reason: str, now: float, tick: int, q: np.ndarray | None = None) -> Transition | None:
        if new == self.mode and new == Mode.DAMP:
            return None  # already safe; keep the first reason
        t = Transition(now, tick, self.mode, new, reason)
        self.mode, self.reason = new, reason
        self.saturated_ticks = 0
        if new == Mode.STAND_UP and q is not None:
            np.copyto(self.stand_start_q, q)
            self.stand_start_t = now
        self.transitions.append(t)
        log.warning("%s -> %s at tick %d: %s", t.old.name, t.new.name, tick, reason)
        return t

    def check(self, st: LowState, now: float) -> str | None:
        """A fault reason, or None. Called every tick while not in DAMP."""
        s = self.cfg.safety
        age = now - st.stamp
        if age > s.stale_state_s:
            return f"stale lowstate ({age * 1000:.0f} ms old > {s.stale_state_s * 1000:.0f} ms)"
        tilt = tilt_angle(st.quat)
        if tilt > s.max_tilt_rad:
            return f"body tilt {tilt:.2f} rad > {s.max_tilt_rad:.2f}"
        bad = (st.q < self.lower) | (st.q > self.upper)
        if bad.any():
            i = int(np.argmax(bad))
            return f"joint limit: {self.cfg.motor_joints[i]} at {st.q[i]:.3f} rad outside [{self.lower[i]:.3f}, {self.upper[i]:.3f}]"
        if (np.abs(st.tau) > self.torque_threshold).any():
            self.saturated_ticks += 1
            if self.saturated_ticks >= s.torque_saturation_ticks:
                i = int(np.argmax(np.abs(st.tau) / self.torque_threshold))
                return f"torque limit: {self.cfg.motor_joints[i]} saturated ({st.tau[i]:.1f} N·m) for {self.saturated_ticks} ticks"
        else:
            self.saturated_ticks = 0
        return None

    def stand_target(self, now: float, out: np.ndarray) -> bool:
        """Interpolated stand-up target into `out`; True once the stand pose is reached."""
        a = min(1.0, (now - self.stand_start_t) / max(self.cfg.stand.duration_s, 1e-6))
        np.subtract(self.cfg.stand_pose, self.stand_start_q, out=out)
        out *= a
        out += self.stand_start_q
        return a >= 1.0
