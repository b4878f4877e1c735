"""One walk through the full ROS path on the simulated Go2:

    prompt bag ─► maa_bag_player ─► maa_generator (K candidates, Go2 sim screening) ─► maa/actor
      ─► maa_go2_controller (backend sim: MuJoCo Go2 behind a loopback DDS bridge) ─► robot walks

The graph is started with `maa-ros launch go2_generate` (the same nodes `ros2 launch` starts). An
observer process logs the robot over its DDS topics (ground-truth pose, IMU, foot forces, command
gains); this process listens on ROS for the published actor, the controller's executed steps and
its diagnostics (swap latency). The walk is judged in simulated time from the first RUN command.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from maa_core.errors import MaaError, check

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class GraphWalkConfig:
    generator_dir: str
    prompt_bag: str
    wtw_run_dir: str
    spec: str = "go2-walk"            # the controller's actor spec
    seconds: float = 20.0             # walk length judged (simulated time from the first RUN command)
    num_candidates: int = 8
    seed: int = 0
    screen: bool = True               # generator node: validity screening + ranking by a sim rollout
    sim_screen: str = "go2-walk"      # the rollout scorer (maa_ros/screening.py)
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


def _params_file(cfg: GraphWalkConfig, path: Path) -> Path:
    p = yaml.safe_load((REPO / "config" / "go2.yaml").read_text())
    p["maa_generator"]["ros__parameters"].update(
        generator_dir=str(cfg.generator_dir), num_candidates=cfg.num_candidates, seed=cfg.seed, screen=cfg.screen,
        sim_screen=cfg.sim_screen if cfg.screen else "", sim_screen_steps=cfg.sim_screen_steps, wtw_run_dir=str(cfg.wtw_run_dir))
    p["maa_go2_controller"]["ros__parameters"].update(
        spec=cfg.spec, enable_on_start=False, dds_domain=cfg.dds_domain, wtw_run_dir=str(cfg.wtw_run_dir))
    path.write_text(yaml.safe_dump(p))
    return path


def _status_value(status, key: str):
    for kv in status.values:
        if kv.key == key:
            return kv.value
    return None


def run_graph_walk(cfg: GraphWalkConfig, work_dir, progress=print) -> GraphWalk:
    from maa_core.go2.config import load_robot_config
    from maa_core.go2.locomotion import metrics_from_log

    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    check(Path(cfg.prompt_bag).is_dir(), f"{cfg.prompt_bag}: no such prompt bag folder")
    check((Path(cfg.generator_dir) / "generator.json").is_file(), f"{cfg.generator_dir}: not a generator folder")
    params = _params_file(cfg, work / "ros_params.yaml")
    robot = load_robot_config("go2")
    old_domain = os.environ.get("ROS_DOMAIN_ID")
    os.environ["ROS_DOMAIN_ID"] = str(cfg.ros_domain)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    obs_file = work / "observer.npz"
    obs_file.unlink(missing_ok=True)
    total = cfg.start_timeout_s + cfg.seconds + cfg.margin_s + 30
    observer = subprocess.Popen([sys.executable, "-m", "maa_core.go2.sim.observer", "--domain", str(cfg.dds_domain),
                                 "--out", str(obs_file), "--seconds", str(total)], env=env, cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=open(work / "observer.log", "w"))
    launch_log = work / "launch.log"
    graph = subprocess.Popen([sys.executable, "-m", "maa_ros.launcher", "launch", "go2_generate", "backend:=sim",
                              f"wtw_run_dir:={cfg.wtw_run_dir}", f"generator_dir:={cfg.generator_dir}",
                              f"prompt_bag:={cfg.prompt_bag}", f"config:={params}", "recorder:=false"],
                             env=env, cwd=REPO, stdout=open(launch_log, "w"), stderr=subprocess.STDOUT)
    from .client import GraphClient
    from . import qos

    client = GraphClient("maa_demo_go2")
    try:
        client.subscribe_prompts("maa/go2/steps", qos.STATE)
        t0 = time.monotonic()
        progress("      graph started (generator, controller + simulated Go2, bag player); waiting for an actor")
        actors = client.wait_actors(1, cfg.start_timeout_s)
        if not actors:
            raise MaaError(f"no actor published within {cfg.start_timeout_s:.0f} s; see {launch_log}")
        progress(f"      actor published {actors[0][0] - t0:.1f} s after start; waiting for the controller to run it")
        st = client.wait_diagnostic(lambda s: s.name.endswith("maa_go2_controller") and
                                    _status_value(s, "swap_latency_ms") is not None, 60)
        if st is None:
            raise MaaError(f"the controller did not report running the actor; see {launch_log}")
        swap_ms = float(_status_value(st, "swap_latency_ms"))
        gen_st = client.wait_diagnostic(lambda s: s.name.endswith("maa_generator") and
                                        _status_value(s, "prompt_to_actor_ms") is not None, 5)
        gen_s = float(_status_value(gen_st, "prompt_to_actor_ms")) / 1e3 if gen_st is not None else float("nan")
        # stand up and run (DAMP -> STAND_UP -> RUN with the active actor), as an operator would with
        # ~/enable; a fault before RUN (e.g. a stale lowstate while the machine is busy) is retried
        steps = client.prompts["maa/go2/steps"]
        for attempt in range(cfg.enable_attempts):
            client.set_bool("/maa_go2_controller/enable", True)
            t_en = time.monotonic()
            while not steps and time.monotonic() - t_en < cfg.run_timeout_s:
                time.sleep(0.1)
            if steps:
                break
            progress(f"      the robot is not running after enable (attempt {attempt + 1}); enabling again")
        if not steps:
            raise MaaError(f"the controller never ran the actor after {cfg.enable_attempts} enables; see {launch_log}")
        n_steps = int(round(cfg.seconds * robot.control.rate_hz))
        end = time.monotonic() + cfg.seconds / 0.5 + cfg.margin_s   # a real-time factor down to 0.5
        progress(f"      swap latency {swap_ms:.1f} ms; standing up, then walking {cfg.seconds:.0f} s")
        while time.monotonic() < end and len(client.prompts["maa/go2/steps"]) < n_steps + 25:
            time.sleep(0.2)
            if graph.poll() is not None:
                raise MaaError(f"the graph exited (code {graph.returncode}); see {launch_log}")
        actor = actors[0][1]
    finally:
        graph.send_signal(signal.SIGINT)
        try:
            graph.wait(40)
        except subprocess.TimeoutExpired:
            graph.kill()
        observer.send_signal(signal.SIGTERM)
        try:
            observer.wait(20)
        except subprocess.TimeoutExpired:
            observer.kill()
        client.close()
        if old_domain is None:
            os.environ.pop("ROS_DOMAIN_ID", None)
        else:
            os.environ["ROS_DOMAIN_ID"] = old_domain
    check(obs_file.is_file(), f"observer wrote no log; see {work / 'observer.log'}")
    z = dict(np.load(obs_file))
    # the longest stretch of RUN gains (an enable retried after a fault leaves a shorter one before it)
    is_run = np.isclose(z["kp"], robot.control.kp).astype(int)
    check(is_run.any(), f"the robot never ran the actor (no RUN gains in the log); see {launch_log}")
    edges = np.flatnonzero(np.diff(np.concatenate([[0], is_run, [0]])))
    starts, stops = edges[0::2], edges[1::2]
    start = float(z["t"][starts[np.argmax(stops - starts)]])
    m = metrics_from_log(z["t"], z["pos"], z["quat"], z["foot"], start, cfg.seconds)
    return GraphWalk(m, actor, swap_ms, gen_s, z, start)
