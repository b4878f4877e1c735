"""Prompt trajectories as `std_msgs/Float32MultiArray` data, and ROS 2 bags of them. No ROS needed.

Wire layout of one prompt (row-major, `data_offset` 0)::

    layout.dim[0] = {label: "T",       size: T,           stride: T * W}
    layout.dim[1] = {label: "state",   size: obs_dim,     stride: W}
    layout.dim[2] = {label: "action",  size: act_dim,     stride: W}
    layout.dim[3] = {label: "success", size: 1 or 0,      stride: W}
    data          = T rows of [state (obs_dim) | action (act_dim) | success (0.0/1.0, if size 1)]

with W = obs_dim + act_dim + success size. dim[0].stride is the total number of values, as the
MultiArray convention has it; dims 1-3 are the column groups of one row, each striding a row.
A message with T = 1 is one control step: the prompt recorder concatenates those into windows.

A prompt's id is derived from its content (`prompt_id`), so the same trajectory has the same id
whether it came from a topic, a bag or a file.

Bags are read and written with `rosbags` (sqlite3 and mcap storage), so `maa generate --bag` runs
on machines without ROS.
"""
from __future__ import annotations

import hashlib
import logging
import sqlite3
import struct
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from .errors import MaaError, check
from .trajectory import Trajectory

PROMPT_MSGTYPE = "std_msgs/msg/Float32MultiArray"
DEFAULT_TOPIC = "/maa/prompt"
LABELS = ("T", "state", "action", "success")
DEFAULT_MAX_VALUES = 1 << 22  # 4 Mi floats (16 MiB): refuses absurd prompts before allocating
# States and actions are scaled robot quantities (|x| < 100 in every recording we have); a bit flip in a
# float's exponent makes values like 1e38. Larger values are refused as implausible, not used.
MAX_ABS_VALUE = 1e6
BAG_DIGEST_KEY = "maa.sha256:"  # + topic: rosbag2 custom_data entry written by write_prompts_to_bag

log = logging.getLogger("maa.prompts")


@dataclass(frozen=True)
class PromptLayout:
    T: int
    obs_dim: int
    act_dim: int
    has_success: bool

    @property
    def width(self) -> int:
        return self.obs_dim + self.act_dim + int(self.has_success)

    @property
    def num_values(self) -> int:
        return self.T * self.width

    def dims(self) -> list[tuple[str, int, int]]:
        """(label, size, stride) per `MultiArrayDimension`, in order."""
        w = self.width
        return [("T", self.T, self.T * w), ("state", self.obs_dim, w), ("action", self.act_dim, w),
                ("success", int(self.has_success), w)]

    @classmethod
    def from_dims(cls, dims: Sequence[tuple[str, int, int]], num_values: int, data_offset: int = 0,
                  where: str = "prompt", max_values: int | None = DEFAULT_MAX_VALUES) -> "PromptLayout":
        """Checks a received layout against the wire layout above and the data length."""
        dims = [(str(l), int(s), int(st)) for l, s, st in dims]
        labels = tuple(l for l, _, _ in dims)
        check(labels == LABELS, f"{where}: layout labels {list(labels)}, expected {list(LABELS)}")
        check(data_offset == 0, f"{where}: layout data_offset {data_offset}, expected 0")
        (_, T, total), (_, obs, w1), (_, act, w2), (_, succ, w3) = dims
        check(T > 0 and obs > 0 and act > 0, f"{where}: layout sizes T={T} state={obs} action={act} must be positive")
        check(succ in (0, 1), f"{where}: layout success size {succ}, expected 0 or 1")
        lay = cls(T, obs, act, bool(succ))
        if max_values is not None:
            check(lay.num_values <= max_values, f"{where}: {lay.num_values} values exceeds the limit of {max_values}")
        check((total, w1, w2, w3) == (lay.num_values, lay.width, lay.width, lay.width),
              f"{where}: layout strides ({total}, {w1}, {w2}, {w3}) do not match T={T} x width {lay.width}")
        check(num_values == lay.num_values, f"{where}: {num_values} values, layout says {T} x {lay.width} = {lay.num_values}")
        return lay


def pack(traj: Trajectory) -> tuple[PromptLayout, np.ndarray]:
    """Trajectory -> (layout, flat float32 data)."""
    traj.validate(where="prompt")
    lay = PromptLayout(len(traj), traj.states.shape[1], traj.actions.shape[1], traj.success is not None)
    cols = [traj.states, traj.actions]
    if traj.success is not None:
        cols.append(traj.success.astype(np.float32)[:, None])
    return lay, np.ascontiguousarray(np.concatenate(cols, axis=1), dtype=np.float32).reshape(-1)


def unpack(lay: PromptLayout, data, where: str = "prompt") -> Trajectory:
    """(layout, flat data) -> validated Trajectory (MaaError on NaN/Inf or a success flag not 0/1)."""
    a = np.asarray(data, dtype=np.float32).reshape(lay.T, lay.width)
    finite = np.isfinite(a)
    check(bool((np.abs(a[finite]) <= MAX_ABS_VALUE).all()),
          f"{where}: values up to {float(np.abs(a[finite]).max()):.3g}, implausible for a prompt (limit {MAX_ABS_VALUE:g})")
    o, p = lay.obs_dim, lay.obs_dim + lay.act_dim
    success = None
    if lay.has_success:
        s = a[:, p]
        check(bool(np.isin(s, (0.0, 1.0)).all()), f"{where}: success column must hold 0 or 1")
        success = s > 0.5
    return Trajectory(a[:, :o].copy(), a[:, o:p].copy(), success).validate(where=where)


def prompt_id(traj: Trajectory) -> str:
    lay, data = pack(traj)
    h = hashlib.sha256(repr(lay.dims()).encode())
    h.update(data.tobytes())
    return "p-" + h.hexdigest()[:16]


# -- duck-typed message conversion (rclpy messages and rosbags dataclasses alike) -------------
def to_message(traj: Trajectory, array_cls, dim_cls, as_data=lambda a: a):
    """Trajectory -> a Float32MultiArray built from the given classes. `as_data` adapts the numpy
    data to what the message type wants (rclpy: array.array('f'); rosbags: the ndarray itself)."""
    lay, data = pack(traj)
    msg = array_cls()
    msg.layout.dim = [dim_cls(label=l, size=s, stride=st) for l, s, st in lay.dims()]
    msg.layout.data_offset = 0
    msg.data = as_data(data)
    return msg


def from_message(msg, where: str = "prompt", max_values: int | None = DEFAULT_MAX_VALUES) -> Trajectory:
    """Float32MultiArray (either flavour) -> Trajectory; MaaError with one line on any defect."""
    try:
        dims = [(d.label, d.size, d.stride) for d in msg.layout.dim]
        offset = msg.layout.data_offset
        data = np.asarray(msg.data, dtype=np.float32)
    except (AttributeError, TypeError, ValueError) as e:
        raise MaaError(f"{where}: not a Float32MultiArray ({e})") from None
    lay = PromptLayout.from_dims(dims, data.size, offset, where=where, max_values=max_values)
    return unpack(lay, data, where=where)


# -- windows over a step stream --------------------------------------------------------------
class Windower:
    """Cuts fixed-length windows out of a stream of steps (or chunks of steps).

    Every `stride` new steps, once `window` steps are buffered, `push` yields the last `window`
    steps as one Trajectory. A change of dimensions restarts the buffer.
    """

    def __init__(self, window: int, stride: int | None = None):
        check(window >= 1, f"window must be >= 1, got {window}")
        self.window = int(window)
        self.stride = int(stride or window)
        check(self.stride >= 1, f"stride must be >= 1, got {self.stride}")
        self._rows: deque = deque(maxlen=self.window)
        self._dims = None
        self._since = 0

    def reset(self) -> None:
        self._rows.clear()
        self._since = 0

    def push(self, chunk: Trajectory) -> Iterator[Trajectory]:
        dims = (chunk.states.shape[1], chunk.actions.shape[1], chunk.success is not None)
        if dims != self._dims:
            self.reset()
            self._dims = dims
        for t in range(len(chunk)):
            self._rows.append((chunk.states[t], chunk.actions[t], None if chunk.success is None else chunk.success[t]))
            self._since += 1
            if len(self._rows) == self.window and self._since >= self.stride:
                self._since = 0
                s, a, f = zip(*self._rows)
                yield Trajectory(np.stack(s), np.stack(a), np.array(f, dtype=bool) if dims[2] else None)


# -- bags --------------------------------------------------------------------------------------
def _typestore():
    from rosbags.typesys import Stores, get_typestore
    for name in ("ROS2_JAZZY", "ROS2_HUMBLE", "LATEST"):
        if hasattr(Stores, name):
            return get_typestore(getattr(Stores, name))
    raise MaaError("rosbags: no ROS 2 type store available")  # pragma: no cover


def write_prompts_to_bag(path, items: Iterable, topic: str = DEFAULT_TOPIC, storage: str = "mcap",
                         start_ns: int = 1_000_000_000, period_ns: int = 100_000_000) -> Path:
    """Writes each trajectory as one Float32MultiArray message on `topic` into a new bag folder.

    `items`: Trajectories, or (prompt_id, Trajectory) pairs as `read_prompts_from_bag` returns them
    (ids are content-derived, so they are not stored separately).
    """
    from rosbags.rosbag2 import StoragePlugin, Writer, WriterError
    plugins = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
    check(storage in plugins, f"bag storage {storage!r}: expected one of {sorted(plugins)}")
    path = Path(path)
    check(not path.exists(), f"{path}: exists already, bags are written to a new folder")
    ts = _typestore()
    arr_cls, dim_cls = ts.types[PROMPT_MSGTYPE], ts.types["std_msgs/msg/MultiArrayDimension"]
    lay_cls = ts.types["std_msgs/msg/MultiArrayLayout"]
    trajs = [it[1] if isinstance(it, tuple) else it for it in items]
    try:
        writer = Writer(path, version=Writer.VERSION_LATEST, storage_plugin=plugins[storage])
    except TypeError:  # rosbags < 0.10: no version argument
        writer = Writer(path)
    try:
        with writer:
            conn = writer.add_connection(topic, PROMPT_MSGTYPE, typestore=ts)
            digest = hashlib.sha256()
            for i, traj in enumerate(trajs):
                lay, data = pack(traj)
                msg = arr_cls(layout=lay_cls(dim=[dim_cls(label=l, size=s, stride=st) for l, s, st in lay.dims()],
                                             data_offset=0), data=data)
                raw = ts.serialize_cdr(msg, PROMPT_MSGTYPE)
                digest.update(bytes(raw))
                writer.write(conn, start_ns + i * period_ns, raw)
            # mcap chunks written by rosbags carry no CRC: this digest is what detects changed message bytes
            writer.set_custom_data(BAG_DIGEST_KEY + topic, digest.hexdigest())
    except WriterError as e:
        raise MaaError(f"{path}: cannot write bag ({e})") from None
    return path


def read_prompts_from_bag(path, topic: str | None = None, window: int | None = None, stride: int | None = None,
                          max_values: int | None = DEFAULT_MAX_VALUES) -> list[tuple[str, Trajectory]]:
    """Prompts held by a ROS 2 bag (sqlite3 or mcap), in recording order: [(prompt_id, Trajectory)].

    `topic` None reads every Float32MultiArray topic. With `window`, messages are treated as a step
    stream per topic (e.g. the controller's recorded steps) and cut into windows of that length.
    A message that is not a prompt raises MaaError naming the bag, topic and message index.
    """
    path = Path(path)
    if path.is_file() and path.suffix == ".mcap":  # one mcap file (e.g. a controller recording): cut short is fine
        return _prompts_from_mcap_file(path, topic, window, stride, max_values)
    from rosbags.rosbag2 import Reader
    from rosbags.rosbag2.errors import ReaderError
    check_bag_folder(path)
    ts = _typestore()
    out: list[tuple[str, Trajectory]] = []
    try:
        with Reader(path) as reader:
            conns = [c for c in reader.connections if c.msgtype == PROMPT_MSGTYPE and (topic is None or c.topic == topic)]
            if not conns:
                _no_prompts(path, topic, {c.topic: c.msgtype for c in reader.connections})
            custom = getattr(getattr(reader.storage, "metadata", None), "custom", None) or {}
            digests = {t: hashlib.sha256() for t in {c.topic for c in conns} if BAG_DIGEST_KEY + t in custom}
            windowers = {t: Windower(window, stride) for t in {c.topic for c in conns}} if window else {}
            counts: dict[str, int] = {}
            for conn, _t, raw in reader.messages(connections=conns):
                i = counts[conn.topic] = counts.get(conn.topic, -1) + 1
                where = f"{path.name}:{conn.topic}[{i}]"
                if conn.topic in digests:
                    digests[conn.topic].update(bytes(raw))
                try:
                    msg = ts.deserialize_cdr(raw, conn.msgtype)
                except (ValueError, IndexError, KeyError, TypeError, UnicodeDecodeError, struct.error, AssertionError) as e:
                    raise MaaError(f"{where}: not a {conn.msgtype} message ({type(e).__name__}: {e})") from None
                traj = from_message(msg, where=where, max_values=max_values)
                for w in (windowers[conn.topic].push(traj) if window else [traj]):
                    out.append((prompt_id(w), w))
            for t, h in digests.items():
                check(h.hexdigest() == custom[BAG_DIGEST_KEY + t],
                      f"{path}: messages on {t} do not match the checksum in metadata.yaml (bag data modified or corrupt)")
    except ReaderError as e:
        raise MaaError(f"{path}: cannot read bag ({e})") from None
    except (OSError, sqlite3.DatabaseError, struct.error, EOFError) as e:
        raise MaaError(f"{path}: cannot read bag ({type(e).__name__}: {e})") from None
    return out


def _no_prompts(path, topic, found: dict):
    listed = sorted(f"{t} ({m})" for t, m in found.items())
    raise MaaError(f"{path}: no {PROMPT_MSGTYPE} messages" + (f" on {topic}" if topic else "")
                   + f"; topics: {', '.join(listed) or 'none'}")


def _prompts_from_mcap_file(path: Path, topic, window, stride, max_values) -> list[tuple[str, Trajectory]]:
    ts = _typestore()
    f = McapFile(path)
    out: list[tuple[str, Trajectory]] = []
    windowers: dict = {}
    counts: dict[str, int] = {}
    for t, msgtype, _stamp, raw in f.messages():
        if msgtype != PROMPT_MSGTYPE or (topic is not None and t != topic):
            continue
        i = counts[t] = counts.get(t, -1) + 1
        where = f"{path.name}:{t}[{i}]"
        try:
            msg = ts.deserialize_cdr(raw, msgtype)
        except (ValueError, IndexError, KeyError, TypeError, UnicodeDecodeError, struct.error, AssertionError) as e:
            raise MaaError(f"{where}: not a {msgtype} message ({type(e).__name__}: {e})") from None
        traj = from_message(msg, where=where, max_values=max_values)
        steps = windowers.setdefault(t, Windower(window, stride)).push(traj) if window else [traj]
        out.extend((prompt_id(w), w) for w in steps)
    if not counts:
        _no_prompts(path, topic, f.topics)
    return out


class McapFile:
    """One .mcap file read front to back (the `mcap` library's stream reader, chunk CRCs checked), so
    a file cut short (a recorder that crashed) yields every complete chunk: `messages()` then logs one
    warning line and sets `complete` False. A file that is not mcap at all is refused (MaaError)."""

    def __init__(self, path):
        self.path = Path(path)
        check(self.path.is_file(), f"{self.path}: no such file")
        self.topics: dict[str, str] = {}   # topic -> message type, as channels are met
        self.metadata: dict[str, dict] = {}
        self.complete = False
        self.warning = ""

    def messages(self) -> Iterator[tuple[str, str, int, bytes]]:
        """(topic, message type, log time ns, CDR bytes) in file order."""
        from mcap.exceptions import EndOfFile, InvalidMagic
        from mcap.records import Channel, Footer, Message, Metadata, Schema
        from mcap.stream_reader import StreamReader

        schemas: dict[int, str] = {}
        chans: dict[int, tuple[str, str]] = {}
        n = 0
        try:
            with open(self.path, "rb") as fh:
                for rec in StreamReader(fh, validate_crcs=True).records:
                    if isinstance(rec, Message):
                        if rec.channel_id in chans:
                            n += 1
                            yield (*chans[rec.channel_id], rec.log_time, rec.data)
                    elif isinstance(rec, Channel):
                        chans[rec.id] = (rec.topic, schemas.get(rec.schema_id, ""))
                        self.topics[rec.topic] = chans[rec.id][1]
                    elif isinstance(rec, Schema):
                        schemas[rec.id] = rec.name
                    elif isinstance(rec, Metadata):
                        self.metadata[rec.name] = dict(rec.metadata)
                    elif isinstance(rec, Footer):
                        self.complete = True
        except InvalidMagic:
            raise MaaError(f"{self.path}: not an mcap file") from None
        except OSError as e:
            raise MaaError(f"{self.path}: cannot read ({e})") from None
        except Exception as e:  # cut short or damaged from here on: what came before stands
            why = "ends early" if isinstance(e, EndOfFile) else f"damaged ({type(e).__name__}: {' '.join(str(e).split())[:120]})"
            if n == 0 and not self.topics:
                raise MaaError(f"{self.path}: {why} before any message (not a readable recording)") from None
            self.warning = f"{self.path}: {why}; read the {n} messages of its complete chunks (the recording was not closed)"
            log.warning("maa: warning: %s", self.warning)


def check_bag_folder(path: Path) -> None:
    """What can be checked before rosbags opens a bag: the folder, its metadata.yaml (a mapping),
    and the integrity of every sqlite3 file (`PRAGMA integrity_check`: overwritten pages)."""
    from .files import read_yaml_mapping

    check(path.exists(), f"{path}: no such bag")
    if not path.is_dir():
        return  # a single .mcap / .db3 file: rosbags reads it without metadata
    meta = path / "metadata.yaml"
    check(meta.is_file(), f"{path}: no metadata.yaml (not a rosbag2 folder)")
    try:
        info = read_yaml_mapping(meta, "bag metadata file").get("rosbag2_bagfile_information")
    except MaaError as e:
        raise MaaError(f"{path}: cannot read bag ({e})") from None
    check(isinstance(info, dict), f"{path}: cannot read bag ({meta.name} lacks a 'rosbag2_bagfile_information' mapping)")
    for db in sorted(path.glob("*.db3")):
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            try:
                result = con.execute("PRAGMA integrity_check").fetchall()
            finally:
                con.close()
        except sqlite3.DatabaseError as e:
            raise MaaError(f"{db}: not a readable sqlite3 bag file ({e})") from None
        check(result == [("ok",)], f"{db}: sqlite3 integrity check failed ({str(result[0][0])[:120] if result else 'no result'})")
