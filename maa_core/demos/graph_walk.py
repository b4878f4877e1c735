"""One walk through the full ROS path on the simulated Go2, the ROS-free half:

    prompt bag ─► maa_bag_player ─► maa_generator (K candidates, Go2 sim screening) ─► maa/actor
      ─► maa_go2_controller (backend sim: MuJoCo Go2 behind a loopback DDS bridge) ─► robot walks

What to run (`GraphWalkConfig`), what came back (`GraphWalk`), the nodes' parameter file, and the
verdict from the observer's DDS log. The half that starts the graph and listens on ROS is
`maa_ros/go2_walk.py`; maa_core reaches it through the `maa.commands` entry point group
(`graph_walker()`), never by importing maa_ros.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import MaaError, check

ENTRY_POINTS = "maa.commands"        # setup.py entry_points group of the ROS package's parts maa_core uses
GRAPH_WALK = "go2-graph-walk"        # its entry: run_graph_walk(GraphWalkConfig, work_dir, progress) -> GraphWalk


@dataclass(frozen=True)
class GraphWalkConfig:
    generator_dir: str
    prompt_bag: str
    wtw_run_dir: str
    accept_adaptation_mismatch: bool = False  # the controller runs actors trained with another module
    spec: str = "go2-walk"            # the controller's actor spec
    seconds: float = 20.0             # walk length judged (simulated time from the first RUN command) ...
    straight_vx: float = 0.6          # ... walking straight at this commanded speed (cmd_vel), unless
    course: tuple = ()                # a command course (go2/course.py segments) is given: then its length
    num_candidates: int = 8
    seed: int = 0
    mode: str = "generate"            # generator node: generate | retrieve | auto (README, "Retrieval as a serving mode")
    screen: bool = True               # generator node: validity screening + ranking by a sim rollout
    sim_screen: str = "go2-walk"      # the scorer (maa_core/serving/scorers.py)
    sim_screen_steps: int = 200
    ros_domain: int = 77              # ROS_DOMAIN_ID of the graph
    dds_domain: int = 3               # Unitree DDS domain of the simulated robot (loopback)
    start_timeout_s: float = 240.0    # graph start + generation until the actor is published
    run_timeout_s: float = 15.0       # enable -> first RUN tick (stand-up takes stand.duration_s)
    enable_attempts: int = 3
    margin_s: float = 8.0             # extra wall time after the judged walk (real-time factor < 1)


@dataclass
class GraphWalk:
    metrics: dict
    actor: bytes                      # the actor blob the generator published
    swap_latency_ms: float            # controller: actor message to first tick running it
    generation_s: float               # generator: prompt to published actor (K candidates + screening)
    log: dict = field(repr=False, default_factory=dict)   # observer arrays (t, pos, vel, quat, q, foot, kp)
    run_start: float = 0.0            # sim time of the first RUN command
    course: object = None             # go2.course.CourseResult of the walk (commanded vs achieved)


def walk_course(cfg: GraphWalkConfig) -> tuple:
    """The command course the walk drives over cmd_vel: `cfg.course`, or straight at `straight_vx`."""
    from ..go2.commands import Segment

    return tuple(cfg.course) or (Segment("straight", cfg.seconds, vx=cfg.straight_vx),)


def params_file(cfg: GraphWalkConfig, path: Path) -> Path:
    """The package's config/go2.yaml with this walk's generator and controller settings."""
    import yaml

    from ..resources import package_path

    p = yaml.safe_load(package_path("config", "go2.yaml").read_text())
    p["maa_generator"]["ros__parameters"].update(
        generator_dir=str(cfg.generator_dir), num_candidates=cfg.num_candidates, seed=cfg.seed, screen=cfg.screen, mode=cfg.mode,
        sim_screen=cfg.sim_screen if cfg.screen else "", sim_screen_steps=cfg.sim_screen_steps, wtw_run_dir=str(cfg.wtw_run_dir))
    p["maa_go2_controller"]["ros__parameters"].update(
        spec=cfg.spec, enable_on_start=False, dds_domain=cfg.dds_domain, wtw_run_dir=str(cfg.wtw_run_dir),
        accept_adaptation_mismatch=bool(cfg.accept_adaptation_mismatch))
    # the generator subscribes to prompts only once loaded (14 s seen at load 6): a 10 s wait played the
    # bag to nobody and the walk waited for an actor that never came
    p["maa_bag_player"]["ros__parameters"].update(wait_timeout=float(cfg.start_timeout_s))
    path.write_text(yaml.safe_dump(p))
    return path


def judge_log(z: dict, run_kp: float, seconds: float, where: str, settle_s: float = 0.0) -> tuple[dict, float]:
    """(walk metrics, sim time the walk started) from the observer's log: the longest stretch of RUN
    gains (an enable retried after a fault leaves a shorter one before it), judged by go2.verdict.
    The walk starts `settle_s` into that stretch: the controller stands at the policy gains that long
    before its first RUN tick (StandConfig.settle_s), and the course's commands start with that tick.
    `judge_log_course` gives the same walk's course table."""
    from ..go2.verdict import metrics_from_log

    is_run = np.isclose(z["kp"], run_kp).astype(int)
    check(is_run.any(), f"the robot never ran the actor (no RUN gains in the log); see {where}")
    edges = np.flatnonzero(np.diff(np.concatenate([[0], is_run, [0]])))
    starts, stops = edges[0::2], edges[1::2]
    start = float(z["t"][starts[np.argmax(stops - starts)]]) + float(settle_s)
    return metrics_from_log(z["t"], z["pos"], z["quat"], z["foot"], start, seconds), start


def judge_log_course(z: dict, start: float, course, period_s: float | None = None):
    """The course table (`go2.course.judge_course`) of the walk in the observer's log from `start`."""
    from ..go2.course import judge_course
    from ..go2.verdict import WalkCriteria

    t = np.asarray(z["t"], float)
    total = sum(g.seconds for g in course)
    sel = (t >= start) & (t <= start + total + 1e-6)
    pos, quat = np.asarray(z["pos"])[sel], np.asarray(z["quat"])[sel]
    crit = WalkCriteria()
    fell = [i for i in range(len(pos)) if crit.fell(pos[i, 2], quat[i])]
    fell_at = float(t[sel][fell[0]] - start) if fell else None
    return judge_course(t[sel] - start, pos, quat, course, fell_at, period_s=period_s)


def graph_walker():
    """run_graph_walk of the installed ROS package, found by its entry point."""
    from importlib.metadata import entry_points

    found = [e for e in entry_points(group=ENTRY_POINTS) if e.name == GRAPH_WALK]
    if not found:
        raise MaaError(f"the Go2 demo needs the ROS package's {GRAPH_WALK!r} (entry point group {ENTRY_POINTS!r}), "
                       f"which is not installed: run `pip install --no-deps -e .` (or colcon build) in the checkout")
    try:
        return found[0].load()
    except ImportError as e:  # maa_ros is there, its ROS dependencies (rclpy, ...) are not
        raise MaaError(f"the Go2 demo needs ROS 2 (rclpy) for {found[0].value}: {e}") from None
