"""One walk through the full ROS path on the simulated Go2 (the rclpy half; the ROS-free half,
config, result and verdict, is maa_core/demos/graph_walk.py):

    prompt bag ─► maa_bag_player ─► maa_generator (K candidates, Go2 sim screening) ─► maa/actor
      ─► maa_go2_controller (backend sim: MuJoCo Go2 behind a loopback DDS bridge) ─► robot walks

The graph is started with `maa-ros launch go2_generate` (the same nodes `ros2 launch` starts). An
observer process logs the robot over its DDS topics (ground-truth pose, IMU, foot forces, command
gains); this process listens on ROS for the published actor, the controller's executed steps and
its diagnostics (swap latency). The walk is judged in simulated time from the first RUN command.
`maa demo go2` finds `run_graph_walk` through the `maa.commands` entry point `go2-graph-walk`.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

import maa_core
from maa_core.demos.graph_walk import GraphWalk, GraphWalkConfig, judge_log, judge_log_course, params_file, walk_course
from maa_core.errors import MaaError, check

__all__ = ["GraphWalk", "GraphWalkConfig", "run_graph_walk"]


def _child_env() -> dict:
    """Environment of the graph's processes: they import maa_core / maa_ros from where this process
    does (a checkout or an install), whatever their working directory."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    root = str(Path(maa_core.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def _status_value(status, key: str):
    for kv in status.values:
        if kv.key == key:
            return kv.value
    return None


def run_graph_walk(cfg: GraphWalkConfig, work_dir, progress=print) -> GraphWalk:
    from maa_core.go2.config import load_robot_config
    from maa_core.go2.commands import course_commands

    from . import qos
    from .client import GraphClient

    # paths go to other processes: absolute, so they mean the same there
    cfg = replace(cfg, **{k: str(Path(getattr(cfg, k)).resolve()) for k in ("generator_dir", "prompt_bag", "wtw_run_dir")
                          if getattr(cfg, k)})
    work = Path(work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    check(Path(cfg.prompt_bag).is_dir(), f"{cfg.prompt_bag}: no such prompt bag folder")
    check((Path(cfg.generator_dir) / "generator.json").is_file(), f"{cfg.generator_dir}: not a generator folder")
    params = params_file(cfg, work / "ros_params.yaml")
    robot = load_robot_config("go2")
    old_domain = os.environ.get("ROS_DOMAIN_ID")
    os.environ["ROS_DOMAIN_ID"] = str(cfg.ros_domain)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env = _child_env()
    obs_file = work / "observer.npz"
    obs_file.unlink(missing_ok=True)
    course = walk_course(cfg)
    seconds = sum(g.seconds for g in course)
    total = cfg.start_timeout_s + seconds + cfg.margin_s + 30
    observer = subprocess.Popen([sys.executable, "-m", "maa_core.go2.sim.observer", "--domain", str(cfg.dds_domain),
                                 "--out", str(obs_file), "--seconds", str(total)], env=env,
                                stdout=subprocess.DEVNULL, stderr=open(work / "observer.log", "w"))
    launch_log = work / "launch.log"
    graph = subprocess.Popen([sys.executable, "-m", "maa_ros.launcher", "launch", "go2_generate", "backend:=sim",
                              f"wtw_run_dir:={cfg.wtw_run_dir}", f"generator_dir:={cfg.generator_dir}",
                              f"prompt_bag:={cfg.prompt_bag}", f"config:={params}", "recorder:=false"],
                             env=env, stdout=open(launch_log, "w"), stderr=subprocess.STDOUT)

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
        n_steps = int(round(seconds * robot.control.rate_hz))
        end = time.monotonic() + seconds / 0.5 + cfg.margin_s   # a real-time factor down to 0.5
        progress(f"      swap latency {swap_ms:.1f} ms; standing up, then walking {seconds:.0f} s "
                 f"({len(course)} command segment{'s' if len(course) > 1 else ''} over cmd_vel)")
        # cmd_vel along the course, timed by the controller's executed steps (its clock, not ours)
        cmds = course_commands(course, 1.0 / robot.control.rate_hz, n_steps)
        while time.monotonic() < end and len(steps) < n_steps + 25:
            client.publish_twist(*cmds[min(len(steps), n_steps - 1)])
            time.sleep(0.05)
            if graph.poll() is not None:
                raise MaaError(f"the graph exited (code {graph.returncode}); see {launch_log}")
        client.publish_twist(0.0, 0.0, 0.0)
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
    m, start = judge_log(z, robot.control.kp, seconds, str(launch_log), robot.stand.settle_s)
    table = judge_log_course(z, start, course, 1.0 / robot.gait_command.frequency)
    return GraphWalk(m, actor, swap_ms, gen_s, z, start, table)
