"""Simulated Go2 on DDS: steps MuJoCo in real time at the robot's rate, publishes LowState_ on
rt/lowstate (joint q/dq/tau, IMU quaternion/gyro/accelerometer, foot forces, tick, CRC), applies the
latest CRC-valid LowCmd_ from rt/lowcmd as PD targets clamped to the motor torque limits, and
publishes the ground-truth body pose as SportModeState_ on rt/sportmodestate (sim only). As on the
robot, each LowState_ carries the remote's newest rt/wirelesscontroller sample in `wireless_remote`.

Run: `python -m maa_core.go2.sim.bridge --domain 1 --interface lo` (or `maa go2-sim`)."""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np

from ...errors import MaaError, exit_code
from ..config import load_robot_config
from ..dds import NUM_MOTORS, TOPIC_JOYSTICK, TOPIC_LOWCMD, TOPIC_LOWSTATE, TOPIC_SPORTSTATE, init_dds
from ..state import LowState, MotorCommand, pack_remote

log = logging.getLogger("maa.go2.sim")


class SimBridge:
    def __init__(self, cfg="go2", domain: int = 1, interface: str = "lo", pose: str = "lie",
                 publish_every: int | None = None, realtime: bool = True):
        from .env import Go2Sim  # MuJoCo + torch: only when a bridge is built
        self.cfg = load_robot_config(cfg)
        self.sim = Go2Sim(self.cfg)
        self.sim.reset(pose)
        self.domain, self.interface, self.realtime = domain, interface, realtime
        self.publish_every = int(publish_every or self.cfg.sim.get("publish_every", 1))
        self.body_every = max(1, int(round(1.0 / (float(self.cfg.sim.get("body_state_hz", 50.0)) * self.sim.dt))))
        self._cmd, self._cmd_new, self._cmd_lock = MotorCommand(), False, threading.Lock()
        self._cmd.enabled = False  # motors off until the first valid command
        self._stop = threading.Event()
        self.stats = {"steps": 0, "published": 0, "cmds": 0, "bad_crc": 0, "late_steps": 0, "wall_s": 0.0, "sim_s": 0.0}

    # -- DDS -------------------------------------------------------------------------------
    def open(self) -> "SimBridge":
        from unitree_sdk2py.core.channel import ChannelPublisher, ChannelSubscriber
        from unitree_sdk2py.idl.default import unitree_go_msg_dds__LowState_, unitree_go_msg_dds__SportModeState_
        from unitree_sdk2py.idl.unitree_go.msg.dds_ import LowCmd_, LowState_, SportModeState_, WirelessController_
        from unitree_sdk2py.utils.crc import CRC
        init_dds(self.domain, self.interface)
        self._crc = CRC()
        self._state_msg = unitree_go_msg_dds__LowState_()
        self._state_msg.head[0], self._state_msg.head[1] = self.cfg.control.head
        self._state_msg.level_flag = self.cfg.control.level_flag
        self._body_msg = unitree_go_msg_dds__SportModeState_()
        self._pub = ChannelPublisher(TOPIC_LOWSTATE, LowState_)
        self._pub.Init()
        self._body_pub = ChannelPublisher(TOPIC_SPORTSTATE, SportModeState_)
        self._body_pub.Init()
        self._sub = ChannelSubscriber(TOPIC_LOWCMD, LowCmd_)
        self._sub.Init(self._on_lowcmd, 0)
        # the remote: as the robot does, every LowState_ carries the newest rt/wirelesscontroller sample
        self._remote = list(pack_remote(0, 0.0, 0.0, 0.0, 0.0))
        self._remote_sub = ChannelSubscriber(TOPIC_JOYSTICK, WirelessController_)
        self._remote_sub.Init(self._on_remote, 0)
        return self

    def _on_remote(self, msg) -> None:
        self._remote = list(pack_remote(msg.keys, msg.lx, msg.ly, msg.rx, msg.ry))  # one assignment: no lock

    def _on_lowcmd(self, msg) -> None:
        # the robot drops commands whose CRC does not match; so does the simulator
        if self._crc.Crc(msg) != msg.crc:
            self.stats["bad_crc"] += 1
            return
        with self._cmd_lock:
            c = self._cmd
            for i in range(NUM_MOTORS):
                m = msg.motor_cmd[i]
                c.q[i], c.dq[i], c.kp[i], c.kd[i], c.tau[i] = m.q, m.dq, m.kp, m.kd, m.tau
            c.enabled = msg.motor_cmd[0].mode != 0
            self._cmd_new = True
            self.stats["cmds"] += 1

    def _publish_state(self, st: LowState) -> None:
        msg = self._state_msg
        for i in range(NUM_MOTORS):
            m = msg.motor_state[i]
            m.mode, m.q, m.dq, m.tau_est = 1, float(st.q[i]), float(st.dq[i]), float(st.tau[i])
        imu = msg.imu_state
        imu.quaternion = [float(x) for x in st.quat]
        imu.gyroscope = [float(x) for x in st.gyro]
        imu.accelerometer = [float(x) for x in st.accel]
        w, x, y, z = st.quat
        imu.rpy = [float(np.arctan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))),
                   float(np.arcsin(np.clip(2 * (w * y - z * x), -1, 1))),
                   float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))]
        msg.foot_force = [int(np.clip(f, -32768, 32767)) for f in st.foot_force]
        msg.wireless_remote = self._remote
        msg.tick = st.tick
        msg.crc = self._crc.Crc(msg)
        self._pub.Write(msg)
        self.stats["published"] += 1

    def _publish_body(self) -> None:
        b = self._body_msg
        b.position = [float(v) for v in self.sim.base_position()]
        b.velocity = [float(v) for v in self.sim.base_velocity()]
        b.body_height = float(b.position[2])
        t = self.sim.time
        b.stamp.sec, b.stamp.nanosec = int(t), int((t % 1.0) * 1e9)
        self._body_pub.Write(b)

    # -- loop ------------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    def run(self, duration_s: float | None = None, frame_cb=None, frame_every_s: float = 1 / 30,
            exit_with_parent: bool = False) -> dict:
        """Step until stop() (or duration). frame_cb(sim) is called every frame_every_s of sim time."""
        sim, st, local = self.sim, LowState(), MotorCommand()
        local.enabled = False
        dt = sim.dt
        frame_every = max(1, int(round(frame_every_s / dt)))
        parent = os.getppid()
        t0 = time.perf_counter()
        k = 0
        while not self._stop.is_set() and (duration_s is None or k * dt < duration_s):
            with self._cmd_lock:
                if self._cmd_new:
                    local.copy_from(self._cmd)
                    self._cmd_new = False
                    sim.apply(local)
            sim.step()
            k += 1
            if k % self.publish_every == 0:
                self._publish_state(sim.read(st))
            if k % self.body_every == 0:
                self._publish_body()
            if frame_cb is not None and k % frame_every == 0:
                frame_cb(sim)
            if exit_with_parent and k % 250 == 0 and os.getppid() != parent:
                break
            if self.realtime:
                ahead = t0 + k * dt - time.perf_counter()
                if ahead > 0:
                    time.sleep(ahead)
                elif ahead < -dt:
                    self.stats["late_steps"] += 1
        wall = time.perf_counter() - t0
        self.stats.update(steps=k, wall_s=wall, sim_s=k * dt, rtf=(k * dt / wall) if wall > 0 else 0.0)
        return self.stats


class _Recorder:
    """Frames to an mp4 (OpenCV) and/or the last one to a PNG; disabled with one message if GL is missing."""

    def __init__(self, video: str | None, png: str | None, fps: float):
        self.video, self.png, self.fps = video, png, fps
        self.writer, self.last, self.ok = None, None, True

    def __call__(self, sim) -> None:
        if not self.ok:
            return
        try:
            frame = sim.render()
        except MaaError as e:
            print(f"maa go2-sim: {e}; continuing without rendering", file=sys.stderr)
            self.ok = False
            return
        self.last = frame
        if self.video:
            if self.writer is None:
                self.writer = self._open_video(frame.shape)
                if self.writer is None:
                    self.video = None
                    return
            self.writer.write(frame[:, :, ::-1])  # OpenCV wants BGR

    def _open_video(self, shape):
        try:
            import cv2
        except ImportError:
            print("maa go2-sim: video needs OpenCV (pip install opencv-python-headless); saving PNG only", file=sys.stderr)
            return None
        w = cv2.VideoWriter(self.video, cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (shape[1], shape[0]))
        if not w.isOpened():
            print(f"maa go2-sim: cannot write video {self.video}; saving PNG only", file=sys.stderr)
            return None
        return w

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
        if self.png and self.last is not None:
            from PIL import Image
            Image.fromarray(self.last).save(self.png)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--robot", default="go2", help="robot config name (go2, go1) or YAML path")
    p.add_argument("--domain", type=int, default=1, help="DDS domain id (the real robot uses 0)")
    p.add_argument("--interface", default="lo", help="network interface for DDS")
    p.add_argument("--pose", choices=("lie", "stand"), default="lie", help="initial pose")
    p.add_argument("--duration", type=float, default=None, help="seconds of sim time, then exit (default: run until killed)")
    p.add_argument("--publish-every", type=int, default=None, help="publish lowstate every n physics steps")
    p.add_argument("--no-realtime", action="store_true", help="step as fast as possible")
    p.add_argument("--video", default=None, help="record an mp4 (needs MUJOCO_GL=egl or osmesa)")
    p.add_argument("--png", default=None, help="save the last rendered frame as PNG")
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--stats", default=None, help="write run statistics (real-time factor, counts) to this JSON file")
    p.add_argument("--rt-priority", type=int, default=0,
                   help="SCHED_FIFO priority for the stepping thread: the sim stands in for hardware, keep it on time")
    p.add_argument("--exit-with-parent", action="store_true", help="stop when the parent process dies (tests)")


def run_bridge(args) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    bridge = SimBridge(args.robot, args.domain, args.interface, args.pose, args.publish_every, not args.no_realtime)
    rec = _Recorder(args.video, args.png, args.fps) if (args.video or args.png) else None
    signal.signal(signal.SIGTERM, lambda *_: bridge.stop())
    signal.signal(signal.SIGINT, lambda *_: bridge.stop())
    if args.rt_priority > 0:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(args.rt_priority))
        except (OSError, AttributeError) as e:
            print(f"maa go2-sim: no real-time priority ({e}); stepping at normal priority", file=sys.stderr)
    bridge.open()
    print(f"maa go2-sim: {bridge.cfg.name} on DDS domain {args.domain} / {args.interface}, "
          f"dt {bridge.sim.dt * 1000:.1f} ms", flush=True)
    try:
        stats = bridge.run(args.duration, rec, 1.0 / args.fps, args.exit_with_parent)
    finally:
        if rec:
            rec.close()
        bridge.sim.close()  # free the GL context before interpreter teardown
    if args.stats:
        Path(args.stats).write_text(json.dumps(stats))
    print(f"maa go2-sim: {json.dumps(stats)}", flush=True)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m maa_core.go2.sim.bridge", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    args = p.parse_args(argv)
    try:
        return run_bridge(args)
    except MaaError as e:
        return exit_code(e, 'maa go2-sim')


if __name__ == "__main__":
    sys.exit(main())
