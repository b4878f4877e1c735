"""The Go2 command course: the 40 s course of issue #15 (`COURSE`, segments of `commands.py`), and
the per-segment tracking table (commanded vs achieved vx, vy, yaw rate, RMSE, falls, drift) of one
walk along a course, in-process (`run_course`) or from a logged walk (`judge_course`). The
benchmark (benchmarks/bench_go2_course.py), the demo, the screening and the tests use this one
definition.

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
from .commands import Segment, course_commands
from .heading import HeadingHold, HeadingHoldConfig, yaw_of


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
    lateral_m: float = math.nan      # its sideways part: the integrated body-frame vy error (m, + = left)
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

    @property
    def completed(self) -> bool:
        """Every segment reached and no fall."""
        return not self.fell and all(s.reached for s in self.segments)

    def mean_rmse(self) -> list:
        """Mean per-segment RMSE of vx, vy, yaw rate over the segments reached (NaN when none)."""
        r = [s.rmse for s in self.segments if s.reached]
        return [float(np.nanmean([x[j] for x in r])) if r else math.nan for j in range(3)]

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


def judge_course(t: np.ndarray, pos: np.ndarray, quat: np.ndarray, course, fell_at: float | None = None,
                 settle_s: float = 1.0, period_s: float | None = None) -> CourseResult:
    """The tracking table of one walk along `course` from sampled trunk poses: sample times `t` (s,
    from the start of the course), positions `pos` (N, 3, world) and quaternions `quat` (N, 4, wxyz).
    Velocities are finite differences between samples (body frame of the heading; world yaw rate),
    averaged over one gait period `period_s` for the RMSE (module docstring). `fell_at`: the time
    the robot fell (None: it did not). The in-process course and the ROS path's observer log both
    are judged here."""
    t, pos, quat = np.asarray(t, float), np.asarray(pos, float), np.asarray(quat, float)
    out = CourseResult()
    if len(t) < 2:
        out.fell = fell_at is not None
        out.segments = [SegmentResult(g.name, g.command, reached=False) for g in course]
        return out
    dt = np.diff(t)
    yaw = np.array([yaw_of(q) for q in quat])
    dyaw = (np.diff(yaw) + math.pi) % (2 * math.pi) - math.pi
    vw = np.diff(pos[:, :2], axis=0) / dt[:, None]
    ym = yaw[:-1] + 0.5 * dyaw                      # heading halfway through each interval
    c, s = np.cos(ym), np.sin(ym)
    v = np.stack([c * vw[:, 0] + s * vw[:, 1], -s * vw[:, 0] + c * vw[:, 1], dyaw / dt], axis=1)
    tm = t[1:]
    period = period_s if period_s else float(np.median(dt))
    window = max(1, int(round(period / float(np.median(dt)))))
    csum = np.concatenate([np.zeros((1, 3)), np.cumsum(v, axis=0)])
    i = np.arange(1, len(v) + 1)
    lo = np.maximum(i - window, 0)
    avg = (csum[i] - csum[lo]) / (i - lo)[:, None]   # trailing mean over one period (shorter at the start)
    end = t[-1] if fell_at is None else fell_at
    t0 = 0.0
    for g in course:
        res = SegmentResult(g.name, g.command)
        out.segments.append(res)
        if t0 >= end or out.fell:
            res.reached = False
            t0 += g.seconds
            continue
        sel = (tm > t0 + settle_s) & (tm <= min(t0 + g.seconds, end))
        if fell_at is not None and t0 <= fell_at < t0 + g.seconds:
            res.fell = out.fell = True
        if sel.any():
            cmd = np.array(g.command)
            res.achieved = tuple(float(x) for x in v[sel].mean(axis=0))
            res.rmse = tuple(float(x) for x in np.sqrt(((avg[sel] - cmd) ** 2).mean(axis=0)))
            e, d = v[sel, :2] - cmd[:2], dt[sel]
            cs, sn = c[sel], s[sel]
            drift = np.array([(d * (cs * e[:, 0] - sn * e[:, 1])).sum(), (d * (sn * e[:, 0] + cs * e[:, 1])).sum()])
            res.drift_m, res.heading_drift = float(np.hypot(*drift)), float((d * (v[sel, 2] - cmd[2])).sum())
            res.lateral_m = float((d * e[:, 1]).sum())
        t0 += g.seconds
    out.seconds = float(end - t[0])
    return out


def run_course(env, course=COURSE, expert=None, policy=None, adaptation=None,
               hold: HeadingHoldConfig | None = None, cfg: CourseConfig = CourseConfig()) -> CourseResult:
    """One walk of `course` on a `WtwSimEnv`. The command goes into the observation's command slots
    (`env.builder.set_velocity`) each tick, after `hold` (a heading hold, as the controller applies
    it) when given. Driven by `policy(x)` (actor input -> action, needs `adaptation` for the latent)
    or else by `expert` (a `GaitExpert(env, params, commanded=True)`). Judged by `judge_course`."""
    from .verdict import WalkCriteria
    from .walk import LatentFiller

    check(policy is not None or expert is not None, "run_course: give a policy or an expert")
    check(policy is None or adaptation is not None, "run_course: a policy needs the adaptation module")
    if expert is not None and not getattr(expert, "commanded", False):
        raise MaaError("run_course: the expert must be commanded (GaitExpert(..., commanded=True))")
    crit = WalkCriteria(min_height=cfg.min_height, max_tilt=cfg.max_tilt)
    dt = env.wtw.dt
    env.builder.set_velocity(0.0, 0.0, 0.0)
    env.reset("stand")
    zero = np.zeros(env.wtw.num_actions)
    for _ in range(cfg.warmup_steps):
        env.step(zero)
    if expert is not None:
        expert.reset()
    filler = LatentFiller(env.builder, adaptation) if policy is not None else None
    heading = HeadingHold(hold, dt) if hold is not None else None
    d = env.sim.data
    n = int(round(sum(g.seconds for g in course) / dt))
    cmds = course_commands(course, dt, n)
    ts, pos, quat = [0.0], [d.qpos[0:3].copy()], [d.qpos[3:7].copy()]
    fell_at = None
    for k in range(n):
        vx, vy, wz = cmds[k]
        if heading is not None:
            wz = heading.update(wz, yaw_of(env.state.quat))
        env.builder.set_velocity(vx, vy, wz)
        if filler is not None:
            filler.fill()
            a = np.asarray(policy(filler.x), dtype=np.float64).reshape(-1)
        else:
            a = expert.act()
        env.step(a)
        ts.append((k + 1) * dt)
        pos.append(d.qpos[0:3].copy())
        quat.append(d.qpos[3:7].copy())
        if crit.fell(d.qpos[2], d.qpos[3:7]):
            fell_at = (k + 1) * dt
            break
    period = 1.0 / float(env.builder.commands[4])
    return judge_course(np.array(ts), np.array(pos), np.array(quat), course, fell_at, cfg.settle_s, period)
