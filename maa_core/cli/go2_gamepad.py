"""`maa go2-gamepad`: a stand-in for the Go2's remote on rt/wirelesscontroller (scripted presses and
sticks, or a keyboard remote), for the simulated Go2."""
from __future__ import annotations


def add_parser(sub, name):
    p = sub.add_parser(name, help="send the Go2 remote's keys and sticks (rt/wirelesscontroller) to the simulated Go2")
    from ..go2.sim.remote import add_arguments
    add_arguments(p)
    return p


def run(args) -> int:
    from ..go2.sim.remote import run_remote
    return run_remote(args)
