"""Recording a Go2 run as one mcap file (ROS 2 message types, CDR, the `ros2` mcap profile), and
reading it back. No ROS needed on either side: `maa prompt` / `maa generate --bag` / `maa plot`
read what the controller recorded.

Topics of a recording::

    /maa/steps          std_msgs/Float32MultiArray  RUN ticks: one row [observation | action] in the
                                                    prompt layout (T = 1), what the node's steps topic sends
    /maa/record/tick    std_msgs/Float64MultiArray  every executed tick, one row in groups (TICK_GROUPS):
                                                    tick, time, mode, command (vx, vy, yaw rate), IMU quat,
                                                    observation, action, compute_s
    /maa/record/event   diagnostic_msgs/DiagnosticStatus  controller events: safety transitions (name
                                                    "transition", values from / to / reason), swaps,
                                                    reverts, refusals, faults; values tick and time
    /maa/record/pose    geometry_msgs/PoseStamped   optional ground truth (the simulator's base pose)

Threads: `on_tick` / `on_event` run on the controller's dispatcher thread (telemetry.py), never on
the loop; they only `put_nowait` into a bounded queue, so a slow disk drops samples (counted in
`dropped`) and never holds the dispatcher or the loop. The writer thread serializes and writes.

Crash safety: the writer finishes a chunk every `flush_s` (mcap `Writer.flush`), so a crash loses
at most the last `flush_s` of samples plus what sat in the queue; the file then lacks its summary,
and the reader takes every complete chunk with one warning line. `close()` writes the counts as
metadata `maa.recording` and the summary."""
from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import MaaError, check
from ..prompts import PROMPT_MSGTYPE, McapFile, _typestore, pack
from ..trajectory import Trajectory
from .safety import Mode

log = logging.getLogger("maa.go2.recording")

STEPS_TOPIC = "/maa/steps"
TICK_TOPIC = "/maa/record/tick"
EVENT_TOPIC = "/maa/record/event"
POSE_TOPIC = "/maa/record/pose"
TICK_MSGTYPE = "std_msgs/msg/Float64MultiArray"
EVENT_MSGTYPE = "diagnostic_msgs/msg/DiagnosticStatus"
POSE_MSGTYPE = "geometry_msgs/msg/PoseStamped"
EVENT_LEVEL = {"fault": 2, "revert": 1, "refused": 1}  # DiagnosticStatus level; others OK (0)


def tick_groups(obs_dim: int, act_dim: int) -> tuple[tuple[str, int], ...]:
    """Column groups of a /maa/record/tick row (its layout dims after "T", as in the prompt layout)."""
    return (("tick", 1), ("time", 1), ("mode", 1), ("command", 3), ("quat", 4), ("observation", obs_dim),
            ("action", act_dim), ("compute_s", 1))


@dataclass(frozen=True)
class RecorderConfig:
    queue_size: int = 4096      # samples waiting for the writer: ~80 s of 50 Hz ticks before drops
    flush_s: float = 1.0        # a chunk is finished at least this often: what a crash can lose
    chunk_bytes: int = 1 << 20  # or when it holds this much (mcap chunk size)
    compression: str = "zstd"   # zstd | lz4 | none (per chunk)

    def __post_init__(self):
        check(self.queue_size >= 1, f"recorder queue_size {self.queue_size}: must be >= 1")
        check(self.flush_s > 0, f"recorder flush_s {self.flush_s}: must be > 0")
        check(self.compression in ("zstd", "lz4", "none"), f"recorder compression {self.compression!r}: expected zstd, lz4 or none")


def _ns(t: float) -> int:
    return max(0, int(round(float(t) * 1e9)))


class Recorder:
    """Writes ticks, events and poses to a new mcap file `path` from its own thread."""

    def __init__(self, path, obs_dim: int = 70, act_dim: int = 12, cfg: RecorderConfig = RecorderConfig(),
                 info: dict | None = None):
        from mcap.writer import CompressionType, Writer

        self.path, self.cfg = Path(path), cfg
        check(not self.path.exists(), f"{self.path}: exists already, a recording goes to a new file")
        check(self.path.parent.is_dir(), f"{self.path.parent}: no such folder for the recording")
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        self._groups = tick_groups(self.obs_dim, self.act_dim)
        self._width = sum(n for _, n in self._groups)
        self._q: queue.Queue = queue.Queue(cfg.queue_size)
        self.dropped = {"tick": 0, "event": 0, "pose": 0}
        self.written = {"tick": 0, "step": 0, "event": 0, "pose": 0}
        self.error = ""
        self._closed = False
        self._io_lock = threading.Lock()  # held by the writer around each write (a stalled disk holds it)
        ts = self._ts = _typestore()
        self._f = open(self.path, "xb")
        comp = {"zstd": CompressionType.ZSTD, "lz4": CompressionType.LZ4, "none": CompressionType.NONE}[cfg.compression]
        self._w = Writer(self._f, chunk_size=cfg.chunk_bytes, compression=comp)
        self._w.start(profile="ros2", library="maa")
        self._chan = {}
        for topic, msgtype in ((STEPS_TOPIC, PROMPT_MSGTYPE), (TICK_TOPIC, TICK_MSGTYPE),
                               (EVENT_TOPIC, EVENT_MSGTYPE), (POSE_TOPIC, POSE_MSGTYPE)):
            sid = self._w.register_schema(msgtype, "ros2msg", ts.generate_msgdef(msgtype, ros_version=2)[0].encode())
            self._chan[topic] = self._w.register_channel(topic, "cdr", sid)
        self._w.add_metadata("maa.recording.start", {k: str(v) for k, v in {
            "obs_dim": self.obs_dim, "act_dim": self.act_dim, "wall_time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            **(info or {})}.items()})
        T = ts.types
        self._f64, self._f32 = T[TICK_MSGTYPE], T[PROMPT_MSGTYPE]
        self._layout, self._dim = T["std_msgs/msg/MultiArrayLayout"], T["std_msgs/msg/MultiArrayDimension"]
        self._status, self._kv = T[EVENT_MSGTYPE], T["diagnostic_msgs/msg/KeyValue"]
        self._pose_cls, self._header, self._stamp = T[POSE_MSGTYPE], T["std_msgs/msg/Header"], T["builtin_interfaces/msg/Time"]
        self._pose_parts = T["geometry_msgs/msg/Pose"], T["geometry_msgs/msg/Point"], T["geometry_msgs/msg/Quaternion"]
        w = self._width
        self._tick_layout = self._layout(dim=[self._dim(label="T", size=1, stride=w)]
                                         + [self._dim(label=l, size=n, stride=w) for l, n in self._groups], data_offset=0)
        self._thread = threading.Thread(target=self._run, name="go2-recorder", daemon=True)
        self._thread.start()

    # -- producers (any thread; the controller's dispatcher) -------------------------------------
    def tick(self, tick: int, t: float, mode, command, quat, observation, action, compute_s: float = 0.0) -> bool:
        """Queues one executed tick (copied). False: the queue was full, the tick is dropped and counted."""
        m = int(mode if not isinstance(mode, str) else Mode[mode])
        row = np.empty(self._width)
        row[0], row[1], row[2] = tick, t, m
        row[3:6] = command
        row[6:10] = quat if quat is not None else np.nan
        o = 10 + self.obs_dim
        row[10:o] = observation
        row[o:o + self.act_dim] = action
        row[-1] = compute_s
        return self._put("tick", row)

    def on_tick(self, rec) -> None:
        """Controller tick listener (telemetry.TickRecord)."""
        self.tick(rec.tick, rec.time, rec.mode, rec.command, rec.quat, rec.observation, rec.action, rec.compute_s)

    def on_event(self, ev) -> None:
        """Controller event listener (telemetry.ControllerEvent)."""
        data = {k: v for k, v in ev.data.items() if isinstance(v, (str, int, float, bool))}
        self._put("event", (ev.kind, float(ev.time), int(ev.tick), str(ev.message), data))

    def pose(self, t: float, pos, quat) -> bool:
        """Ground truth base pose (e.g. the simulator's): position (3), quaternion w, x, y, z."""
        return self._put("pose", (float(t), np.array(pos, dtype=float), np.array(quat, dtype=float)))

    def _put(self, kind: str, item) -> bool:
        if self._closed:
            return False
        try:
            self._q.put_nowait((kind, item))
            return True
        except queue.Full:
            self.dropped[kind] += 1
            return False

    # -- the writer thread ---------------------------------------------------------------------
    def _run(self) -> None:
        last_flush = time.monotonic()
        while True:
            try:
                item = self._q.get(timeout=self.cfg.flush_s)
            except queue.Empty:
                item = ()
            if item is None:
                break
            if item and not self.error:
                try:
                    with self._io_lock:
                        self._write(*item)
                except Exception as e:  # disk full, ...: stop writing, keep counting; the loop never sees it
                    self.error = f"{type(e).__name__}: {e}"
                    log.error("maa: error: recording %s: %s (later samples are dropped)", self.path, self.error)
            if item and self.error:
                self.dropped[item[0]] += 1
            if time.monotonic() - last_flush >= self.cfg.flush_s and not self.error:
                try:
                    with self._io_lock:
                        self._w.flush()  # finishes the open chunk: a crash after this loses nothing before
                except Exception as e:
                    self.error = f"{type(e).__name__}: {e}"
                last_flush = time.monotonic()

    def _write(self, kind: str, item) -> None:
        ts, w = self._ts, self._w
        if kind == "tick":
            row = item
            t_ns = _ns(row[1])
            w.add_message(self._chan[TICK_TOPIC], log_time=t_ns, publish_time=t_ns, sequence=self.written["tick"],
                          data=bytes(ts.serialize_cdr(self._f64(layout=self._tick_layout, data=row), TICK_MSGTYPE)))
            self.written["tick"] += 1
            if int(row[2]) == Mode.RUN:
                o = 10 + self.obs_dim
                step = Trajectory(row[10:o][None].astype(np.float32), row[o:o + self.act_dim][None].astype(np.float32))
                lay, data = pack(step)
                msg = self._f32(layout=self._layout(dim=[self._dim(label=l, size=s, stride=st) for l, s, st in lay.dims()],
                                                    data_offset=0), data=data)
                w.add_message(self._chan[STEPS_TOPIC], log_time=t_ns, publish_time=t_ns, sequence=self.written["step"],
                              data=bytes(ts.serialize_cdr(msg, PROMPT_MSGTYPE)))
                self.written["step"] += 1
        elif kind == "event":
            ev_kind, t, tick, message, data = item
            values = [self._kv(key=k, value=str(v)) for k, v in {"tick": tick, "time": repr(t), **data}.items()]
            msg = self._status(level=EVENT_LEVEL.get(ev_kind, 0), name=ev_kind, message=message, hardware_id="go2",
                               values=values)
            w.add_message(self._chan[EVENT_TOPIC], log_time=_ns(t), publish_time=_ns(t), sequence=self.written["event"],
                          data=bytes(ts.serialize_cdr(msg, EVENT_MSGTYPE)))
            self.written["event"] += 1
        else:
            t, pos, quat = item
            Pose, Point, Quat = self._pose_parts
            ns = _ns(t)
            msg = self._pose_cls(header=self._header(stamp=self._stamp(sec=ns // 10**9, nanosec=ns % 10**9), frame_id="world"),
                                 pose=Pose(position=Point(x=pos[0], y=pos[1], z=pos[2]),
                                           orientation=Quat(w=quat[0], x=quat[1], y=quat[2], z=quat[3])))
            w.add_message(self._chan[POSE_TOPIC], log_time=ns, publish_time=ns, sequence=self.written["pose"],
                          data=bytes(ts.serialize_cdr(msg, POSE_MSGTYPE)))
            self.written["pose"] += 1

    def close(self, timeout: float = 10.0) -> dict:
        """Writes what is queued, the counts (metadata `maa.recording`) and the summary; returns the counts."""
        if self._closed:
            return self.summary()
        self._closed = True
        self._q.put(None)  # blocks only while the queue is full, and the writer is draining it
        self._thread.join(timeout)
        try:
            if not self.error:
                self._w.add_metadata("maa.recording", {k: str(v) for k, v in self.summary().items()})
                self._w.finish()
        finally:
            self._f.close()
        return self.summary()

    def summary(self) -> dict:
        return {**{f"{k}s": v for k, v in self.written.items()}, **{f"dropped_{k}s": v for k, v in self.dropped.items()},
                "error": self.error}

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -- reading a recording -----------------------------------------------------------------------
@dataclass
class Recording:
    """A recording, read back: per tick arrays (N rows), the events, the optional poses."""
    path: Path
    tick: np.ndarray
    t: np.ndarray
    mode: np.ndarray          # Mode values
    command: np.ndarray       # (N, 3) vx, vy, yaw rate as commanded
    quat: np.ndarray          # (N, 4) IMU w, x, y, z
    observation: np.ndarray   # (N, obs_dim) float32
    action: np.ndarray        # (N, act_dim) float32
    compute_s: np.ndarray
    events: list = field(default_factory=list)       # dicts: kind, time, tick, message, level, values
    pose_t: np.ndarray = field(default_factory=lambda: np.zeros(0))
    pose_pos: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    pose_quat: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    metadata: dict = field(default_factory=dict)
    complete: bool = True     # False: the file ends early (a crash); `warning` says where

    @property
    def transitions(self) -> list:
        return [e for e in self.events if e["kind"] == "transition"]


def read_recording(path) -> Recording:
    """Reads a recording (mcap file) written by `Recorder`; a file cut short yields its complete
    chunks with one warning line; what is not a recording is refused with one line (MaaError)."""
    path = Path(path)
    ts = _typestore()
    f = McapFile(path)
    rows, events, poses = [], [], []
    groups = None
    for topic, msgtype, _t, raw in f.messages():
        if topic == TICK_TOPIC and msgtype == TICK_MSGTYPE:
            msg = _decode(ts, raw, msgtype, f"{path.name}:{topic}[{len(rows)}]")
            dims = [(d.label, int(d.size)) for d in msg.layout.dim]
            if groups is None:
                want = tick_groups(0, 0)
                ok = (len(dims) == len(want) + 1 and dims[0][0] == "T"
                      and all(l == wl and (n == wn or wl in ("observation", "action")) for (l, n), (wl, wn) in zip(dims[1:], want)))
                check(ok, f"{path.name}:{topic}: layout {dims} is not a tick row")
                groups = dims[1:]
            data = np.asarray(msg.data, dtype=float)
            check(data.size == sum(n for _, n in groups), f"{path.name}:{topic}[{len(rows)}]: {data.size} values, layout says "
                  f"{sum(n for _, n in groups)}")
            rows.append(data)
        elif topic == EVENT_TOPIC and msgtype == EVENT_MSGTYPE:
            msg = _decode(ts, raw, msgtype, f"{path.name}:{topic}[{len(events)}]")
            vals = {kv.key: kv.value for kv in msg.values}
            events.append({"kind": msg.name, "message": msg.message, "level": int(msg.level),
                           "time": float(vals.pop("time", "nan")), "tick": int(vals.pop("tick", "-1")), "values": vals})
        elif topic == POSE_TOPIC and msgtype == POSE_MSGTYPE:
            msg = _decode(ts, raw, msgtype, f"{path.name}:{topic}[{len(poses)}]")
            p, q, s = msg.pose.position, msg.pose.orientation, msg.header.stamp
            poses.append((s.sec + 1e-9 * s.nanosec, p.x, p.y, p.z, q.w, q.x, q.y, q.z))
    check(rows, f"{path}: no {TICK_TOPIC} ticks; not a maa recording (topics: {', '.join(sorted(f.topics)) or 'none'})")
    a = np.stack(rows)
    cols, i = {}, 0
    for name, n in groups:
        cols[name], i = a[:, i:i + n], i + n
    pz = np.array(poses).reshape(-1, 8)
    return Recording(path, cols["tick"][:, 0].astype(np.int64), cols["time"][:, 0], cols["mode"][:, 0].astype(int),
                     cols["command"], cols["quat"], cols["observation"].astype(np.float32),
                     cols["action"].astype(np.float32), cols["compute_s"][:, 0], events,
                     pz[:, 0], pz[:, 1:4], pz[:, 4:8], f.metadata, f.complete)


def _decode(ts, raw, msgtype: str, where: str):
    try:
        return ts.deserialize_cdr(raw, msgtype)
    except Exception as e:  # any decoder error is a bad message: one line, no traceback
        raise MaaError(f"{where}: not a {msgtype} message ({type(e).__name__}: {e})") from None
