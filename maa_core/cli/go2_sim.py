"""`maa go2-sim`: the simulated Go2 on DDS (rt/lowstate, rt/lowcmd), for running the controller against it."""
from __future__ import annotations


def add_parser(sub, name):
    p = sub.add_parser(name, help="run the simulated Go2 (MuJoCo) behind the robot's DDS topics")
    from ..go2.sim.bridge import add_arguments
    add_arguments(p)
    return p


def run(args) -> int:
    from ..go2.sim.bridge import run_bridge
    return run_bridge(args)
