"""Watches a simulated Go2 over DDS and logs what is needed to judge a walk from outside the
controller: the ground-truth body position (rt/sportmodestate, sim time), the IMU quaternion, joint
angles and foot forces (rt/lowstate) and the gains of the commands (rt/lowcmd: RUN starts when kp
becomes the policy's kp). Runs as its own process (the DDS factory is process-global).

    python -m maa_core.go2.sim.observer --domain 1 --interface lo --out walk.npz --seconds 60
Stops after --seconds of wall time, on SIGINT/SIGTERM, or when its parent exits; writes the .npz then."""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time

import numpy as np

from ...errors import MaaError, exit_code
from ..dds import TOPIC_LOWCMD, TOPIC_LOWSTATE, TOPIC_SPORTSTATE, init_dds


class Observer:
    def __init__(self, domain: int, interface: str):
        self.domain, self.interface = domain, interface
        self.lock = threading.Lock()
        self.q, self.quat, self.foot = np.zeros(12), np.array([1.0, 0, 0, 0]), np.zeros(4)
        self.kp = 0.0
        self.rows: list[np.ndarray] = []  # t, pos(3), vel(3), quat(4), q(12), foot(4), kp

    def open(self) -> "Observer":
        from unitree_sdk2py.core.channel import ChannelSubscriber
        from unitree_sdk2py.idl.unitree_go.msg.dds_ import LowCmd_, LowState_, SportModeState_
        init_dds(self.domain, self.interface)
        self._subs = []
        for topic, typ, cb in ((TOPIC_LOWSTATE, LowState_, self._on_low), (TOPIC_LOWCMD, LowCmd_, self._on_cmd),
                               (TOPIC_SPORTSTATE, SportModeState_, self._on_body)):
            s = ChannelSubscriber(topic, typ)
            s.Init(cb, 1)
            self._subs.append(s)
        return self

    def _on_low(self, msg) -> None:
        with self.lock:
            for i in range(12):
                self.q[i] = msg.motor_state[i].q
            self.quat[:] = msg.imu_state.quaternion
            self.foot[:] = msg.foot_force

    def _on_cmd(self, msg) -> None:
        self.kp = float(msg.motor_cmd[0].kp)

    def _on_body(self, msg) -> None:
        t = msg.stamp.sec + 1e-9 * msg.stamp.nanosec
        with self.lock:
            self.rows.append(np.concatenate([[t], msg.position, msg.velocity, self.quat, self.q, self.foot, [self.kp]]))

    def save(self, path: str) -> int:
        with self.lock:
            rows = np.asarray(self.rows, dtype=np.float64).reshape(-1, 28)
        tmp = f"{path}.tmp.npz"
        np.savez(tmp, t=rows[:, 0], pos=rows[:, 1:4], vel=rows[:, 4:7], quat=rows[:, 7:11], q=rows[:, 11:23],
                 foot=rows[:, 23:27], kp=rows[:, 27])
        os.replace(tmp, path)
        return len(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m maa_core.go2.sim.observer", description=__doc__.splitlines()[0])
    ap.add_argument("--domain", type=int, default=1)
    ap.add_argument("--interface", default="lo")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seconds", type=float, default=120.0)
    a = ap.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        obs = Observer(a.domain, a.interface).open()
    except MaaError as e:
        return exit_code(e)
    parent, end = os.getppid(), time.monotonic() + a.seconds
    while not stop.is_set() and time.monotonic() < end and os.getppid() == parent:
        stop.wait(0.1)
    n = obs.save(a.out)
    print(f"observer: {n} samples -> {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
