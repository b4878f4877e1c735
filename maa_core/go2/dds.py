"""Robot interface over unitree_sdk2py (CycloneDDS): rt/lowstate in, rt/lowcmd out, rt/wirelesscontroller in.

The same class drives the real Go2 and the simulated one (maa_core.go2.sim.bridge); nothing here
knows which. The controller's tick only copies numbers in and out of preallocated buffers: DDS
callbacks fill the state on the middleware's thread, and a sender thread serializes, CRCs and
writes each LowCmd_, so no DDS call or CRC runs inside the tick."""
from __future__ import annotations

import logging
import os
import threading
import time

import numpy as np

from ..errors import MaaError, check
from .config import RobotConfig, load_robot_config
from .state import NUM_MOTORS, Joystick, LowState, MotorCommand

log = logging.getLogger("maa.go2.dds")

TOPIC_LOWSTATE = "rt/lowstate"
TOPIC_LOWCMD = "rt/lowcmd"
TOPIC_JOYSTICK = "rt/wirelesscontroller"
TOPIC_SPORTSTATE = "rt/sportmodestate"
NUM_MOTOR_SLOTS = 20     # LowCmd_ carries 20 motor slots; the Go2 uses the first 12
POS_STOP = 2.146e9       # SDK "no position loop" value for an unused slot
VEL_STOP = 16000.0

_factory = {"domain": None, "interface": None}
_keepalive: list = []  # DDS readers of closed interfaces (see Go2DdsRobot.close)
_factory_lock = threading.Lock()


def init_dds(domain: int, interface: str | None, rt_priority: int = 0) -> None:
    """ChannelFactoryInitialize is process-global: initialize once, refuse a different domain later.

    rt_priority > 0: CycloneDDS's threads (which run our rt/lowstate callback) are created under
    SCHED_FIFO so a busy machine cannot delay state reception into a false stale-state fault."""
    from unitree_sdk2py.core.channel import ChannelFactoryInitialize
    with _factory_lock:
        if _factory["domain"] is None:
            raised = False
            if rt_priority > 0:
                try:  # threads inherit the creating thread's policy; restore ours afterwards
                    os.sched_setscheduler(threading.get_native_id(), os.SCHED_FIFO, os.sched_param(rt_priority))
                    raised = True
                except (OSError, AttributeError) as e:
                    log.warning("DDS threads run without real-time priority (%s)", e)
            try:
                ChannelFactoryInitialize(int(domain), interface)
            finally:
                if raised:
                    os.sched_setscheduler(threading.get_native_id(), os.SCHED_OTHER, os.sched_param(0))
            _factory.update(domain=int(domain), interface=interface)
        else:
            check(_factory["domain"] == int(domain) and _factory["interface"] == interface,
                  f"DDS already initialized on domain {_factory['domain']} / {_factory['interface']} in this process; "
                  f"cannot switch to {domain} / {interface}")


def new_lowcmd(cfg: RobotConfig):
    """A LowCmd_ with the Go2 header and level flag, and every slot in the safe 'no loop' state."""
    from unitree_sdk2py.idl.default import unitree_go_msg_dds__LowCmd_
    msg = unitree_go_msg_dds__LowCmd_()
    msg.head[0], msg.head[1] = cfg.control.head
    msg.level_flag = cfg.control.level_flag
    msg.gpio = 0
    for m in msg.motor_cmd:
        m.mode, m.q, m.dq, m.kp, m.kd, m.tau = 0, POS_STOP, VEL_STOP, 0.0, 0.0, 0.0
    return msg


def fill_lowcmd(msg, cmd: MotorCommand, motor_mode: int, crc) -> None:
    for i in range(NUM_MOTORS):
        m = msg.motor_cmd[i]
        m.mode = motor_mode if cmd.enabled else 0
        m.q, m.dq, m.kp = float(cmd.q[i]), float(cmd.dq[i]), float(cmd.kp[i])
        m.kd, m.tau = float(cmd.kd[i]), float(cmd.tau[i])
    msg.crc = crc.Crc(msg)


def lowstate_to(msg, out: LowState, stamp: float) -> None:
    ms = msg.motor_state
    for i in range(NUM_MOTORS):
        m = ms[i]
        out.q[i], out.dq[i], out.tau[i] = m.q, m.dq, m.tau_est
    imu = msg.imu_state
    out.quat[:] = imu.quaternion
    out.gyro[:] = imu.gyroscope
    out.accel[:] = imu.accelerometer
    out.foot_force[:] = msg.foot_force
    out.tick = msg.tick
    out.stamp = stamp


class Go2DdsRobot:
    """`read_state(out)`, `read_joystick(out)`, `send(cmd)`; start with `open()`, end with `close()`."""

    def __init__(self, cfg: RobotConfig | str = "go2", domain: int | None = None, interface: str | None = None,
                 release_sport_mode: bool | None = None, clock=time.monotonic):
        self.cfg = load_robot_config(cfg)
        self.domain = self.cfg.dds.domain if domain is None else int(domain)
        self.interface = self.cfg.dds.interface if interface is None else interface
        self.release_sport = self.cfg.dds.release_sport_mode if release_sport_mode is None else release_sport_mode
        self.clock = clock
        self.sender_rt_priority = self.cfg.control.helper_rt_priority
        self._state, self._joy = LowState(), Joystick()
        self._state_lock, self._joy_lock = threading.Lock(), threading.Lock()
        self._cmd, self._cmd_lock = MotorCommand(), threading.Lock()
        self._cmd_event = threading.Event()
        self._stop = threading.Event()
        self.states_received = 0
        self.cmds_sent = 0
        self._sender = None
        self._subs = []
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------
    def open(self) -> "Go2DdsRobot":
        from unitree_sdk2py.core.channel import ChannelPublisher, ChannelSubscriber
        from unitree_sdk2py.idl.unitree_go.msg.dds_ import LowCmd_, LowState_, WirelessController_
        from unitree_sdk2py.utils.crc import CRC
        init_dds(self.domain, self.interface, self.cfg.dds.rt_priority)
        if self.release_sport:
            self.release_sport_mode()
        self._crc = CRC()
        self._msg = new_lowcmd(self.cfg)
        self._pub = ChannelPublisher(TOPIC_LOWCMD, LowCmd_)
        self._pub.Init()
        sub = ChannelSubscriber(TOPIC_LOWSTATE, LowState_)
        sub.Init(self._on_lowstate, 0)
        joy = ChannelSubscriber(TOPIC_JOYSTICK, WirelessController_)
        joy.Init(self._on_joystick, 0)
        self._subs = [sub, joy]
        self._sender = threading.Thread(target=self._send_loop, name="go2-lowcmd", daemon=True)
        self._sender.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._cmd_event.set()
        if self._sender is not None:
            self._sender.join(timeout=1.0)
        # Readers are not deleted: tearing down a cyclonedds reader while its listener may still fire
        # crashes the process. They stay referenced (module-level) and their callbacks turn into no-ops.
        self._closed = True
        _keepalive.extend(self._subs)
        self._subs = []

    def release_sport_mode(self, timeout_s: float = 10.0) -> None:
        """Real Go2: ask the motion switcher to release the built-in sport controller, which would
        otherwise fight our low-level commands. Waits until no mode is active."""
        from unitree_sdk2py.comm.motion_switcher.motion_switcher_client import MotionSwitcherClient
        client = MotionSwitcherClient()
        client.SetTimeout(3.0)
        client.Init()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            code, result = client.CheckMode()
            if code == 0 and not (result or {}).get("name"):
                log.info("sport mode released")
                return
            log.info("releasing sport mode (current: %s, code %s)", (result or {}).get("name"), code)
            client.ReleaseMode()
            time.sleep(1.0)
        raise MaaError(f"motion switcher: sport mode still active after {timeout_s:.0f} s; "
                       f"is the robot on domain {self.domain} / {self.interface}?")

    # -- DDS callbacks (middleware thread) -------------------------------------------------
    def _on_lowstate(self, msg) -> None:
        if self._closed:
            return
        now = self.clock()
        with self._state_lock:
            lowstate_to(msg, self._state, now)
            self.states_received += 1

    def _on_joystick(self, msg) -> None:
        if self._closed:
            return
        now = self.clock()
        with self._joy_lock:
            j = self._joy
            j.lx, j.ly, j.rx, j.ry, j.keys, j.stamp = msg.lx, msg.ly, msg.rx, msg.ry, msg.keys, now

    # -- tick-side API (copies only) -------------------------------------------------------
    def read_state(self, out: LowState) -> bool:
        with self._state_lock:
            out.copy_from(self._state)
        return out.stamp > -np.inf

    def read_joystick(self, out: Joystick) -> bool:
        with self._joy_lock:
            out.copy_from(self._joy)
        return out.stamp > -np.inf

    def send(self, cmd: MotorCommand) -> None:
        with self._cmd_lock:
            self._cmd.copy_from(cmd)
        self._cmd_event.set()

    # -- sender thread ---------------------------------------------------------------------
    def _send_loop(self) -> None:
        if self.sender_rt_priority > 0:  # see Controller._validator: a preempted GIL holder stalls the loop
            try:
                os.sched_setscheduler(threading.get_native_id(), os.SCHED_FIFO, os.sched_param(self.sender_rt_priority))
            except (OSError, AttributeError) as e:
                log.warning("lowcmd sender runs without real-time priority (%s)", e)
        local = MotorCommand()
        while not self._stop.is_set():
            self._cmd_event.wait()
            self._cmd_event.clear()
            if self._stop.is_set():
                break
            with self._cmd_lock:
                local.copy_from(self._cmd)
            fill_lowcmd(self._msg, local, self.cfg.control.motor_mode, self._crc)
            if self._pub.Write(self._msg):
                self.cmds_sent += 1
