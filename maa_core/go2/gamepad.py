"""The operator's gamepad (the Go2's wireless remote, rt/wirelesscontroller) read once per tick:
key chords -> the controller's mode requests, sticks -> the velocity command.

Chords (config `joystick`, defaults after Unitree's own low-level examples): damp (L2+B) acts while
held, from any mode; stand (L2+A) and run (START) act once per press. A chord counts when one sample
held all its keys (`Joystick.held`), not when the samples of one tick did between them. Sticks drive the velocity only
while deflected past the dead zone; when they return to centre (or the remote falls silent) the
velocity goes to 0 once and `set_command` / cmd_vel drive again. A sample with a NaN or Inf stick is
ignored (sticks, stand and run), counted in `rejected` and logged once; its damp chord still damps,
since DAMP is the safe side of a corrupt message."""
from __future__ import annotations

import logging
import math
from enum import IntEnum

from .config import JoystickConfig
from .state import Joystick

log = logging.getLogger("maa.go2.gamepad")


class Press(IntEnum):
    NONE = 0
    DAMP = 1   # damp chord held
    STAND = 2  # stand chord pressed (edge)
    RUN = 3    # run chord pressed (edge)


def chord_name(keys) -> str:
    return "+".join(keys)


def _scale(s: float, lo: float, hi: float, deadzone: float) -> float:
    """Stick value in [-1, 1] -> [lo, hi]: 0 inside the dead zone, full deflection at the limit on
    either side (the limits need not be symmetric), continuous at the dead zone's edge."""
    a = min(abs(s), 1.0)
    if a <= deadzone:
        return 0.0
    a = (a - deadzone) / (1.0 - deadzone)
    return a * hi if s > 0 else a * lo


class Gamepad:
    """The chord edges and stick takeover between ticks. `update(joy, now)` -> the `Press` of this
    tick; `velocity` is then the (vx, vy, yaw_rate) the sticks command this tick, or None when they
    leave the command alone."""

    def __init__(self, cfg: JoystickConfig, command_limits: dict):
        self.cfg, self.limits = cfg, command_limits
        self.damp_mask, self.stand_mask, self.run_mask = (Joystick.mask(k) for k in (cfg.damp_keys, cfg.stand_keys, cfg.run_keys))
        self._stand_down = self._run_down = False
        self._driving = False        # the sticks drove the velocity last tick
        self._rejected_stamp = None  # stamp of the last rejected sample (counted once, not every tick)
        self.rejected = 0
        self.velocity = None

    def update(self, joy: Joystick, now: float) -> Press:
        self.velocity = None
        damp = joy.held(self.damp_mask)
        if not (math.isfinite(joy.lx) and math.isfinite(joy.ly) and math.isfinite(joy.rx) and math.isfinite(joy.ry)):
            if joy.stamp != self._rejected_stamp:  # the reader hands the same sample again until a new one arrives
                self._rejected_stamp = joy.stamp
                self.rejected += 1
                if self.rejected == 1:
                    log.warning("gamepad: sample with non-finite sticks (lx %s, ly %s, rx %s, ry %s) ignored; later ones "
                                "are counted in diagnostics gamepad_rejected, not logged", joy.lx, joy.ly, joy.rx, joy.ry)
            return Press.DAMP if damp else Press.NONE  # chord edges wait for a good sample
        stand = joy.held(self.stand_mask)
        run = joy.held(self.run_mask)
        press = Press.NONE
        if damp:
            press = Press.DAMP
        elif stand and not self._stand_down:
            press = Press.STAND
        elif run and not self._run_down:
            press = Press.RUN
        self._stand_down, self._run_down = stand, run
        if self.cfg.velocity_from_sticks:
            self._sticks(joy, now)
        return press

    def _sticks(self, joy: Joystick, now: float) -> None:
        c, lim = self.cfg, self.limits
        dz = c.stick_deadzone
        fresh = now - joy.stamp <= c.stick_timeout_s
        if fresh and max(abs(joy.lx), abs(joy.ly), abs(joy.rx)) > dz:
            # remote axes: ly forward, lx right, rx right; the body frame: vx forward, vy left, yaw rate counter-clockwise
            self.velocity = (_scale(joy.ly, *lim["vx"], dz), _scale(-joy.lx, *lim["vy"], dz),
                             _scale(-joy.rx, *lim["yaw_rate"], dz))
            self._driving = True
        elif self._driving:
            self.velocity = (0.0, 0.0, 0.0)
            self._driving = False
