"""Robot interface over unitree_sdk2py (CycloneDDS): rt/lowstate in, rt/lowcmd out, rt/wirelesscontroller in.

The same class drives the real Go2 and the simulated one (maa_core.go2.sim.bridge); nothing here
knows which. No Python runs per received message: rt/lowstate (500 Hz) and rt/wirelesscontroller
are listener-less KeepLast readers that CycloneDDS fills in C, and the controller's tick takes the
newest sample once at its start (`read_state`: a non-blocking take of the raw CDR bytes and one
fixed-offset struct unpack; ~5 µs warm, ~0.1 ms cold after the tick's sleep on the shared VM, where
the IDL deserializer takes ~0.3 ms warm). A sender thread serializes, CRCs and writes each LowCmd_,
so no serialization or CRC runs inside the tick.

Receive times for the stale-state watchdog: a polled sample arrived somewhere between the previous
poll and this one. `ArrivalClock` places it inside that window from its source timestamp (offset to
our clock = the windowed minimum of poll time - source time, i.e. the fastest recent delivery), so
`LowState.stamp` tracks the arrival time like a per-message callback's clock() did, also when the
loop polls late."""
from __future__ import annotations

import logging
import operator
import os
import struct
import threading
import time

import numpy as np

from ..errors import MaaError, check
from .config import RobotConfig, load_robot_config
from .state import NUM_MOTORS, REMOTE_BYTES, REMOTE_OFFSETS, Joystick, LowState, MotorCommand, unpack_remote

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

    rt_priority > 0: CycloneDDS's threads (which receive rt/lowstate into the reader's cache) are
    created under SCHED_FIFO so a busy machine cannot delay state reception into a false stale-state fault."""
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


class ArrivalClock:
    """Estimated receive time (our clock) of a sample found by a poll at `poll_t`, given its source
    timestamp and the previous poll's time `prev_t`: the sample arrived in (prev_t, poll_t]; inside
    that window it is placed at source time + offset, where offset is the minimum of (poll time -
    source time) over the last `window_s` (the fastest recent delivery; the two clocks need not be
    synchronized, and a window keeps drift and clock steps from accumulating). Clamping to the
    window keeps a stepped source clock from making a sample look older than one poll period or
    newer than the poll."""

    def __init__(self, window_s: float = 1.0):
        self.half = window_s / 2
        self._cur = self._prev = np.inf
        self._rotated = -np.inf

    def stamp(self, source_s: float, poll_t: float, prev_t: float) -> float:
        d = poll_t - source_s
        if poll_t - self._rotated >= self.half:
            self._prev, self._cur, self._rotated = self._cur, np.inf, poll_t
        if d < self._cur:
            self._cur = d
        est = source_s + min(self._cur, self._prev)
        return min(poll_t, max(est, prev_t))


class LowStateParser:
    """LowState_ CDR bytes -> LowState by fixed byte offsets (one struct.unpack_from, no IDL objects).
    The offsets are found by serializing a probe message with a distinct value in every field used;
    `parse` returns False for a sample of another size or encoding (the caller then falls back to the
    IDL deserializer)."""

    def __init__(self):
        from unitree_sdk2py.idl.default import unitree_go_msg_dds__LowState_
        m = unitree_go_msg_dds__LowState_()
        f32 = []  # (setter, value): q, dq, tau_est of motors 0..11, quaternion, gyroscope, accelerometer
        for k, attr in enumerate(("q", "dq", "tau_est")):
            for i in range(NUM_MOTORS):
                f32.append(((m.motor_state[i], attr, None), 1.0e6 + 1000 * k + i))
        for k, attr in enumerate(("quaternion", "gyroscope", "accelerometer")):
            for j in range(4 if attr == "quaternion" else 3):
                f32.append(((m.imu_state, attr, j), 2.0e6 + 1000 * k + j))
        for (obj, attr, j), v in f32:
            if j is None:
                setattr(obj, attr, v)
            else:
                getattr(obj, attr)[j] = v
        m.foot_force = [0x3A51 + j for j in range(4)]
        m.tick = 0x5EC7A11D
        remote_marker = bytes(range(0xC0, 0xC0 + REMOTE_BYTES))
        m.wireless_remote = list(remote_marker)
        raw = m.serialize()
        starts = [self._find(raw, np.float32(v).astype("<f4").tobytes()) for _, v in f32]
        starts += [self._find(raw, np.int16(0x3A51 + j).astype("<i2").tobytes()) for j in range(4)]
        remote_at = self._find(raw, remote_marker)
        starts += [remote_at + REMOTE_OFFSETS[k] for k in ("lx", "ly", "rx", "ry")]
        starts.append(self._find(raw, np.uint32(0x5EC7A11D).astype("<u4").tobytes()))
        starts.append(remote_at + REMOTE_OFFSETS["keys"])
        # LowState.buf order (q, dq, tau, quat, gyro, accel, foot_force, remote sticks), then tick, remote keys
        kinds = ["f"] * len(f32) + ["h"] * 4 + ["f"] * 4 + ["I", "H"]
        check([n for _, n in LowState.LAYOUT] == [NUM_MOTORS] * 3 + [4, 3, 3, 4, 4], "LowState layout changed")
        # one struct.unpack_from over the fields in byte order (pad bytes between), then back to buf order
        order = sorted(range(len(kinds)), key=starts.__getitem__)
        fmt, pos = "<", 0
        for i in order:
            check(starts[i] >= pos, "LowState_ layout probe: overlapping fields")
            fmt += (f"{starts[i] - pos}x" if starts[i] > pos else "") + kinds[i]
            pos = starts[i] + struct.calcsize(kinds[i])
        self._struct = struct.Struct(fmt)
        self._reorder = operator.itemgetter(*[order.index(i) for i in range(len(kinds))])
        self._n = len(kinds) - 2
        self.size, self.header = len(raw), bytes(raw[:4])

    @staticmethod
    def _find(raw: bytes, pat: bytes) -> int:
        i = raw.find(pat)
        check(i >= 0 and raw.find(pat, i + 1) < 0, "LowState_ layout probe: a marker value is not unique")
        return i

    def parse(self, data: bytes, out: LowState) -> bool:
        if len(data) != self.size or data[:4] != self.header:
            return False
        # struct + one numpy assignment: after the tick's 20 ms sleep every call runs cold (~10 µs per
        # numpy call on this VM), so fewer, simpler calls beat a numpy gather
        v = self._reorder(self._struct.unpack_from(data))
        out.buf[:] = v[:self._n]
        out.tick, out.remote_keys = v[self._n], v[self._n + 1]
        return True


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
    out.remote_keys, *sticks = unpack_remote(bytes(msg.wireless_remote))
    out.remote[:] = sticks


JOY_DEPTH = Joystick.MAX_SAMPLES  # joystick samples kept between two ticks (the remote sends at most a few hundred Hz)


def _participant(domain: int):
    """The DomainParticipant that unitree_sdk2py's ChannelFactory created (its channels and ours then
    share one participant); a new one on the same domain if the SDK's internals differ."""
    from unitree_sdk2py.core.channel import ChannelFactory
    p = getattr(ChannelFactory, "_ChannelFactory__participant", None)
    if p is None:
        from cyclonedds.domain import DomainParticipant
        p = DomainParticipant(domain)
    return p


class _PollingReader:
    """A listener-less CycloneDDS reader (KeepLast(depth), otherwise the SDK's default reader QoS, as
    `ChannelSubscriber.Init(handler=None)` creates) that the caller polls with a non-blocking take.
    Reception runs entirely in CycloneDDS's C threads; Python runs only when the tick takes."""

    def __init__(self, domain: int, topic: str, idl_type, depth: int):
        from cyclonedds.qos import Policy, Qos
        from cyclonedds.sub import DataReader
        from cyclonedds.topic import Topic
        part = _participant(domain)
        self.type = idl_type
        self.name = topic
        self.topic = Topic(part, topic, idl_type)
        self.reader = DataReader(part, self.topic, Qos(Policy.History.KeepLast(depth)))
        self.depth = depth
        self.failures = 0
        try:
            from cyclonedds._clayer import ddspy_take
            self._take = ddspy_take  # (bytes, SampleInfo) pairs, no deserialization
        except ImportError:  # pragma: no cover - other cyclonedds builds: serialize back what take() decoded
            self._take = None

    def take_raw(self) -> list:
        """[(cdr_bytes, SampleInfo)], oldest first; [] when nothing arrived since the last take."""
        if self._take is not None:
            ret = self._take(self.reader._ref, self.depth)
            if isinstance(ret, int):
                if not self.failures:
                    log.warning("%s: take failed (DDS return code %d); counting in .failures", self.name, ret)
                self.failures += 1
                return []
            return ret
        return [(s.serialize(), s.sample_info) for s in self.reader.take(self.depth) if hasattr(s, "sample_info")]

    def deserialize(self, data: bytes):
        return self.type.deserialize(data)


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
        self._state_reader = self._joy_reader = None
        self._state_polled = -np.inf  # time of the previous take of rt/lowstate
        self._arrival = ArrivalClock()
        self._joy_newest_keys = 0
        self._remote_in_state = self.cfg.joystick.source == "lowstate"
        self._parser = None
        self._cmd, self._cmd_lock = MotorCommand(), threading.Lock()
        self._cmd_event = threading.Event()
        self._stop = threading.Event()
        self.states_received = 0   # samples taken (the newest at each poll; older ones are overwritten in DDS)
        self.states_deserialized = 0  # of those, parsed by the IDL deserializer (unexpected size/encoding)
        self.cmds_sent = 0
        self._sender = None
        self._subs = []
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------
    def open(self) -> "Go2DdsRobot":
        from unitree_sdk2py.core.channel import ChannelPublisher
        from unitree_sdk2py.idl.unitree_go.msg.dds_ import LowCmd_, LowState_, WirelessController_
        from unitree_sdk2py.utils.crc import CRC
        init_dds(self.domain, self.interface, self.cfg.dds.rt_priority)
        if self.release_sport:
            self.release_sport_mode()
        self._crc = CRC()
        self._msg = new_lowcmd(self.cfg)
        self._pub = ChannelPublisher(TOPIC_LOWCMD, LowCmd_)
        self._pub.Init()
        self._parser = LowStateParser()
        # depth 1: the reader holds only the newest state; joystick: the samples since the last tick
        self._state_reader = _PollingReader(self.domain, TOPIC_LOWSTATE, LowState_, depth=1)
        self._joy_reader = None if self._remote_in_state else _PollingReader(
            self.domain, TOPIC_JOYSTICK, WirelessController_, depth=JOY_DEPTH)
        self._subs = [r for r in (self._state_reader, self._joy_reader) if r is not None]
        self._sender = threading.Thread(target=self._send_loop, name="go2-lowcmd", daemon=True)
        self._sender.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._cmd_event.set()
        if self._sender is not None:
            self._sender.join(timeout=1.0)
        # Readers are not deleted (a read_state racing the teardown would use a freed reader); they stay
        # referenced (module-level), reads after close return the last state.
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

    # -- tick-side API (non-blocking take of the newest sample, then copies) -------------------
    def read_state(self, out: LowState) -> bool:
        """The newest rt/lowstate into `out` (the previous one again if none arrived since the last
        call); False while no state has ever arrived."""
        with self._state_lock:
            if not self._closed and self._state_reader is not None:
                self._poll_state()
            out.copy_from(self._state)
        return out.stamp > -np.inf

    def _poll_state(self) -> None:
        samples = self._state_reader.take_raw()
        now = self.clock()
        prev, self._state_polled = self._state_polled, now
        for data, info in reversed(samples):  # newest valid sample
            if not info.valid_data:
                continue
            st = self._state
            if not self._parser.parse(data, st):
                if not self.states_deserialized:
                    log.warning("rt/lowstate: %d-byte sample with header %s, expected %d bytes / %s; using the "
                                "IDL deserializer (~0.3 ms per tick)", len(data), bytes(data[:4]).hex(),
                                self._parser.size, self._parser.header.hex())
                lowstate_to(self._state_reader.deserialize(data), st, 0.0)
                self.states_deserialized += 1
            st.stamp = self._arrival.stamp(info.source_timestamp * 1e-9, now, prev)
            self.states_received += 1
            return

    def read_joystick(self, out: Joystick) -> bool:
        """The newest rt/wirelesscontroller sticks. `keys`: the OR of the samples that arrived since the
        last call, so a key pressed and released between two ticks (an e-stop tap) is still seen once,
        and `sample_keys[:n_samples]` each of them (chords are matched per sample); with no new sample,
        the newest sample's keys. With `joystick.source: lowstate`, the remote inside the newest
        rt/lowstate (taken by `read_state`) instead: one sample per tick, stamped as that state."""
        if self._remote_in_state:
            with self._state_lock:
                st, j = self._state, self._joy
                if st.stamp > -np.inf:
                    j.lx, j.ly, j.rx, j.ry = (float(v) for v in st.remote)
                    j.keys = j.sample_keys[0] = st.remote_keys
                    j.n_samples, j.stamp = 1, st.stamp
                out.copy_from(j)
            return out.stamp > -np.inf
        with self._joy_lock:
            if not self._closed and self._joy_reader is not None:
                samples = self._joy_reader.take_raw()
                j = self._joy
                if samples:
                    now, keys, newest, n = self.clock(), 0, None, 0
                    for data, info in samples:
                        if info.valid_data:
                            newest = self._joy_reader.deserialize(data)
                            keys |= newest.keys
                            j.sample_keys[n] = newest.keys
                            n += 1
                    if newest is not None:
                        j.lx, j.ly, j.rx, j.ry, j.keys, j.stamp = newest.lx, newest.ly, newest.rx, newest.ry, keys, now
                        j.n_samples = n
                        self._joy_newest_keys = newest.keys
                else:
                    j.keys = j.sample_keys[0] = self._joy_newest_keys
                    j.n_samples = 1
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
