"""Heading hold: with the operator's yaw-rate command at ~0, keep the heading the robot had when the
operator stopped turning. Actors cannot observe their heading (the walk-these-ways observation has
gravity, joints and commands, no yaw), so a walk that should go straight slowly turns; the controller
closes that loop from the IMU yaw of LowState, feeding a small yaw-rate correction into the command
the actor reads (`Controller._tick`, robot config `heading_hold`)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import check


@dataclass(frozen=True)
class HeadingHoldConfig:
    enabled: bool = False       # off by default: actors trained with a zero yaw-rate slot ignore or misread it
    kp: float = 1.0             # yaw-rate command per rad of heading error (1/s)
    ki: float = 0.2             # ... per rad s of accumulated heading error (1/s^2): a steady turning bias
    max_rate: float = 0.5       # bound on the correction (rad/s): a hold never spins the robot
    max_integral: float = 0.5   # bound on the accumulated error (rad s): no wind-up while the robot is held
    deadband: float = 0.05      # |commanded yaw rate| at or below this (rad/s) counts as "hold the heading"
    capture_s: float = 0.5      # the heading held is the one this long after the command fell to ~0: a walker
                                # slows its turn over ~0.5 s (1.5 rad/s at 3 rad/s^2); a target taken at once
                                # is ~20 deg behind, and turning back to it cost the expert 0.33 rad/s of yaw RMSE

    def __post_init__(self):
        check(all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
                  for v in (self.kp, self.ki, self.max_rate, self.max_integral, self.deadband, self.capture_s)),
              f"heading_hold: gains and bounds must be finite and >= 0 (kp {self.kp}, ki {self.ki}, "
              f"max_rate {self.max_rate}, max_integral {self.max_integral}, deadband {self.deadband}, "
              f"capture_s {self.capture_s})")


def wrap(a: float) -> float:
    """An angle in [-pi, pi)."""
    return (a + math.pi) % (2 * math.pi) - math.pi


def yaw_of(quat_wxyz) -> float:
    """Heading (rad) of a body quaternion (w, x, y, z)."""
    w, x, y, z = quat_wxyz
    return math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


class HeadingHold:
    """`update(yaw_rate_cmd, yaw)` -> the yaw-rate command to send, once per control tick of `dt` s.

    While the operator turns (|command| > deadband) the command passes through and the target is
    forgotten; `capture_s` into a ~zero command (the robot has stopped turning) the current heading
    becomes the target and a PI on the heading error (bounded) replaces the command."""

    def __init__(self, cfg: HeadingHoldConfig, dt: float):
        check(dt > 0, f"heading hold: dt must be > 0, got {dt}")
        self.cfg, self.dt = cfg, float(dt)
        self.reset()

    def reset(self) -> None:
        """Forget the target heading (the next hold starts from wherever the robot points then)."""
        self.target: float | None = None
        self.integral = 0.0
        self.settling = 0.0     # s of ~zero command so far, before the target is taken

    def update(self, yaw_rate_cmd: float, yaw: float) -> float:
        c = self.cfg
        if not c.enabled or abs(yaw_rate_cmd) > c.deadband:
            self.reset()
            return yaw_rate_cmd
        if self.target is None:
            if self.settling < c.capture_s - 1e-9:
                self.settling += self.dt
                return yaw_rate_cmd
            self.target = yaw
        err = wrap(self.target - yaw)
        self.integral = min(c.max_integral, max(-c.max_integral, self.integral + err * self.dt))
        return min(c.max_rate, max(-c.max_rate, c.kp * err + c.ki * self.integral))
