"""Velocity-command schedules for the Go2: a `Segment` holds one body-frame command (vx, vy, yaw
rate) for a while; a schedule is a tuple of them. Random schedules (`random_course`) drive the
students' training walks, `PROMPT_COURSE` the walks a prompt shows, `course_commands` samples a
schedule per policy tick. The judged 40 s course and its table are in `course.py`."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import check


@dataclass(frozen=True)
class Segment:
    name: str
    seconds: float
    vx: float = 0.0        # m/s forward (body frame)
    vy: float = 0.0        # m/s to the left
    yaw_rate: float = 0.0  # rad/s counter-clockwise

    def __post_init__(self):
        vals = (self.seconds, self.vx, self.vy, self.yaw_rate)
        check(all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in vals),
              f"course segment {self.name!r}: seconds, vx, vy, yaw_rate must be finite numbers")
        check(self.seconds > 0, f"course segment {self.name!r}: seconds must be > 0, got {self.seconds}")

    @property
    def command(self) -> tuple[float, float, float]:
        return (float(self.vx), float(self.vy), float(self.yaw_rate))


# what a prompt shows: the recorded walk of a checkpoint (and of a prompt run's expert) follows this
# one command, so prompts differ by gait style, not by what the operator asked for
PROMPT_COURSE = (Segment("forward", 7.0, vx=0.6),)


@dataclass(frozen=True)
class CommandBox:
    """The velocity commands students learn (issue #15) and random training schedules draw from."""
    vx: tuple = (-0.8, 1.2)          # m/s
    vy: tuple = (-0.5, 0.5)          # m/s
    yaw_rate: tuple = (-1.5, 1.5)    # rad/s
    segment_s: tuple = (1.5, 3.0)    # how long each command is held
    kinds: tuple = ("forward", "backward", "backward", "lateral", "turn", "arc", "stop", "mixed")  # drawn uniformly:
                                     # backward twice (students are least stable there: no heading in the obs)


def random_course(rng: np.random.Generator, seconds: float, box: CommandBox = CommandBox()) -> tuple[Segment, ...]:
    """A random command schedule of `seconds`: steps between commands of the kinds in `box`
    (forward, backward, sideways, turns in place, arcs, stops, and any mix), each held a while.
    Deterministic in `rng`. The expert ramps between them at its own rate."""
    out, t = [], 0.0
    lo_vx, hi_vx = box.vx
    while t < seconds - 1e-9:
        kind = box.kinds[int(rng.integers(len(box.kinds)))]
        dur = min(float(rng.uniform(*box.segment_s)), seconds - t)
        side = 1.0 if rng.random() < 0.5 else -1.0
        vx = vy = wz = 0.0
        if kind == "forward":
            vx = float(rng.uniform(0.3, hi_vx))
        elif kind == "backward":
            vx = float(rng.uniform(lo_vx, -0.2))
        elif kind == "lateral":
            vy = side * float(rng.uniform(0.2, box.vy[1]))
        elif kind == "turn":
            wz = side * float(rng.uniform(0.5, box.yaw_rate[1]))
        elif kind == "arc":
            vx, wz = float(rng.uniform(0.3, min(hi_vx, 0.9))), side * float(rng.uniform(0.3, 1.2))
        elif kind == "mixed":
            vx, vy, wz = (float(rng.uniform(*box.vx)), float(rng.uniform(*box.vy)), float(rng.uniform(*box.yaw_rate)))
        out.append(Segment(kind, dur, vx=vx, vy=vy, yaw_rate=wz))
        t += dur
    return tuple(out)


def course_commands(course, dt: float, n: int) -> np.ndarray:
    """(n, 3) per-tick (vx, vy, yaw rate) of `course` sampled every `dt`; the last command holds."""
    out = np.zeros((n, 3))
    k = 0
    for seg in course:
        m = int(round(seg.seconds / dt))
        out[k:k + m] = seg.command
        k += m
        if k >= n:
            break
    if 0 < k < n:
        out[k:] = course[-1].command
    return out
