"""The Go2 command course: segments of body-frame velocity commands (vx, vy, yaw rate) held for a
while each, and the per-segment tracking table (commanded vs achieved vx, vy, yaw rate, RMSE, falls,
drift) of one walk along it. The benchmark (benchmarks/bench_go2_course.py), the tests and, later,
the commandable students use this one definition.

How a segment is judged: from `settle_s` after its start (the command ramps and the gait settles)
to its end; achieved velocities are the trunk's planar velocity in its own heading frame and the
world yaw rate, each averaged over one gait period (a trot's within-stride surge and sway are not
tracking error). Drift: the achieved-minus-commanded body velocity integrated along the actual
heading over that window (m), and the yaw-rate error integrated likewise (rad)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from ..errors import MaaError, check
from .heading import HeadingHold, HeadingHoldConfig, yaw_of


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


# the 40 s course of issue #15: straight, an arc, turns in place, backward, sideways, stops between
COURSE = (
    Segment("forward", 6.0, vx=0.8),
    Segment("arc left", 6.0, vx=0.6, yaw_rate=1.0),
    Segment("turn left", 4.0, yaw_rate=1.5),
    Segment("turn right", 4.0, yaw_rate=-1.5),
    Segment("stop", 2.0),
    Segment("backward", 6.0, vx=-0.6),
    Segment("lateral left", 5.0, vy=0.4),
    Segment("lateral right", 4.0, vy=-0.4),
    Segment("stop", 3.0),
)


def parse_course(items, where: str = "course") -> tuple[Segment, ...]:
    """Segments from a list of maps ({name, seconds, vx, vy, yaw_rate}); one clear line on bad input."""
    check(isinstance(items, (list, tuple)) and len(items) > 0, f"{where}: expected a non-empty list of segments")
    known = {f.name for f in fields(Segment)}
    out = []
    for i, d in enumerate(items):
        check(isinstance(d, dict), f"{where}[{i}]: expected a map, got {type(d).__name__}")
        unknown = set(d) - known
        check(not unknown, f"{where}[{i}]: unknown key(s) {sorted(unknown)} (known: {sorted(known)})")
        check("seconds" in d, f"{where}[{i}]: seconds missing")
        out.append(Segment(**{"name": f"segment {i}", **d}))
    return tuple(out)


@dataclass
class SegmentResult:
    name: str
    command: tuple                   # (vx, vy, yaw rate) commanded
    achieved: tuple = (math.nan,) * 3  # mean achieved over the judged window
    rmse: tuple = (math.nan,) * 3    # RMSE of the gait-period-averaged velocity against the command
    drift_m: float = math.nan        # |integrated body-velocity error| (m)
    heading_drift: float = math.nan  # integrated yaw-rate error (rad)
    fell: bool = False
    reached: bool = True             # False: the robot fell in an earlier segment

    def row(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


@dataclass
class CourseResult:
    segments: list = field(default_factory=list)
    fell: bool = False
    seconds: float = 0.0             # simulated time walked

    def worst(self) -> dict:
        """Largest per-segment RMSE of vx, vy, yaw rate over the segments reached."""
        r = np.array([s.rmse for s in self.segments if s.reached and not s.fell] or [(math.nan,) * 3])
        return {"vx": float(np.nanmax(r[:, 0])), "vy": float(np.nanmax(r[:, 1])), "yaw_rate": float(np.nanmax(r[:, 2]))}

    def table(self) -> str:
        head = (f"{'segment':<14} {'cmd vx':>6} {'vy':>5} {'wz':>5} | {'got vx':>6} {'vy':>5} {'wz':>5} | "
                f"{'rmse vx':>7} {'vy':>5} {'wz':>5} | {'drift m':>7} {'yaw':>5} | fell")
        lines = [head, "-" * len(head)]
        for s in self.segments:
            if not s.reached:
                lines.append(f"{s.name:<14} {s.command[0]:6.2f} {s.command[1]:5.2f} {s.command[2]:5.2f} | (not reached)")
                continue
            a, e = s.achieved, s.rmse
            lines.append(f"{s.name:<14} {s.command[0]:6.2f} {s.command[1]:5.2f} {s.command[2]:5.2f} | "
                         f"{a[0]:6.2f} {a[1]:5.2f} {a[2]:5.2f} | {e[0]:7.3f} {e[1]:5.3f} {e[2]:5.3f} | "
                         f"{s.drift_m:7.2f} {s.heading_drift:5.2f} | {'FELL' if s.fell else 'no'}")
        return "\n".join(lines)


@dataclass(frozen=True)
class CourseConfig:
    settle_s: float = 1.0         # each segment is judged from this long after its start
    warmup_steps: int = 30        # policy steps standing (action 0) before the course, as in walk()
    min_height: float = 0.15      # fall criteria: = verdict.WalkCriteria
    max_tilt: float = 0.8


def run_course(env, course=COURSE, expert=None, policy=None, adaptation=None,
               hold: HeadingHoldConfig | None = None, cfg: CourseConfig = CourseConfig()) -> CourseResult:
    """One walk of `course` on a `WtwSimEnv`. The command goes into the observation's command slots
    (`env.builder.set_velocity`) each tick, after `hold` (a heading hold, as the controller applies
    it) when given. Driven by `policy(x)` (actor input -> action, needs `adaptation` for the latent)
    or else by `expert` (a `GaitExpert(env, params, commanded=True)`)."""
    from .verdict import WalkCriteria
    from .walk import LatentFiller

    check(policy is not None or expert is not None, "run_course: give a policy or an expert")
    check(policy is None or adaptation is not None, "run_course: a policy needs the adaptation module")
    if expert is not None and not getattr(expert, "commanded", False):
        raise MaaError("run_course: the expert must be commanded (GaitExpert(..., commanded=True))")
    crit = WalkCriteria(min_height=cfg.min_height, max_tilt=cfg.max_tilt)
    dt = env.wtw.dt
    env.reset("stand")
    env.builder.set_velocity(0.0, 0.0, 0.0)
    zero = np.zeros(env.wtw.num_actions)
    for _ in range(cfg.warmup_steps):
        env.step(zero)
    if expert is not None:
        expert.reset()
    filler = LatentFiller(env.builder, adaptation) if policy is not None else None
    heading = HeadingHold(hold, dt) if hold is not None else None
    d, sim = env.sim.data, env.sim
    window = max(1, int(round(1.0 / (float(env.builder.commands[4]) * dt))))  # one gait period
    recent = np.zeros((window, 3))
    out = CourseResult()
    n_total = 0
    for seg in course:
        res = SegmentResult(seg.name, seg.command)
        out.segments.append(res)
        if out.fell:
            res.reached = False
            continue
        n = int(round(seg.seconds / dt))
        first = int(round(cfg.settle_s / dt))
        got, err_sq, drift, head_drift = [], [], np.zeros(2), 0.0
        for k in range(n):
            vx, vy, wz = seg.command
            if heading is not None:
                wz = heading.update(wz, yaw_of(env.state.quat))
            env.builder.set_velocity(vx, vy, wz)
            if filler is not None:
                filler.fill()
                a = np.asarray(policy(filler.x), dtype=np.float64).reshape(-1)
            else:
                a = expert.act()
            env.step(a)
            yaw = yaw_of(d.qpos[3:7])
            c, s = math.cos(yaw), math.sin(yaw)
            v = np.array([c * d.qvel[0] + s * d.qvel[1], -s * d.qvel[0] + c * d.qvel[1],
                          float(d.xmat[sim.trunk_id].reshape(3, 3)[2] @ d.qvel[3:6])])  # world yaw rate
            recent[n_total % window] = v
            n_total += 1
            if k >= first:
                avg = recent.mean(axis=0) if n_total >= window else recent[:n_total].mean(axis=0)
                got.append(v)
                err_sq.append((avg - np.array(seg.command)) ** 2)
                e = v[:2] - np.array(seg.command[:2])
                drift += dt * np.array([c * e[0] - s * e[1], s * e[0] + c * e[1]])
                head_drift += dt * (v[2] - seg.command[2])
            if crit.fell(d.qpos[2], d.qpos[3:7]):
                res.fell = out.fell = True
                break
        out.seconds += (k + 1) * dt
        if got:
            res.achieved = tuple(float(x) for x in np.mean(got, axis=0))
            res.rmse = tuple(float(x) for x in np.sqrt(np.mean(err_sq, axis=0)))
            res.drift_m, res.heading_drift = float(np.hypot(*drift)), float(head_drift)
    return out
