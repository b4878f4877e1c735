"""Dataset of policy checkpoints with the trajectories they produced.

On disk, one directory per policy spec:
    manifest.json                 format, spec, shard list with sha256 and counts
    shard-000000.safetensors      records appended together (memory-mappable)
A shard holds `params` (N, P) and all its trajectories concatenated (`traj_*`), with per-record
metadata (key, task, success rate, source) as JSON in the safetensors header.

Appends are atomic: the shard is written to a temp file, fsynced and renamed, then the manifest
is replaced the same way, under a file lock so several worker processes can append. A writer
killed between the two renames leaves a complete shard the manifest does not list yet; the next
writer adopts it, so a SIGKILL loses at most the shard being written.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save as st_save

from .errors import MaaError, check
from .files import expect, get_field, loads_json, positive_int, read_json, read_safetensors_header
from .specs import PolicySpec, get_spec
from .trajectory import Trajectory

FORMAT = "maa-dataset/1"
MANIFEST = "manifest.json"


@dataclass
class PolicyRecord:
    params: np.ndarray  # (P,) float32, flat in spec order
    task: str
    trajectories: list[Trajectory]
    success_rate: float = math.nan  # evaluated success rate of this checkpoint
    source: dict = field(default_factory=dict)  # run, seed, step, method, ...
    key: str = ""  # unique within a dataset; used to resume collection without duplicates
    spec: str = ""  # spec name; filled in by the writer

    def __post_init__(self):
        self.params = np.asarray(self.params, dtype=np.float32)
        if not self.key:
            s = self.source
            self.key = f"{self.task}/{s.get('run', '')}/{s.get('seed', '')}/{s.get('step', '')}"


def _fsync_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def encode_shard(records: list[PolicyRecord], spec: PolicySpec) -> bytes:
    trajs = [(ri, t) for ri, r in enumerate(records) for t in r.trajectories]
    lengths = [len(t) for _, t in trajs]
    tensors = {
        "params": np.stack([r.params for r in records]).astype(np.float32),
        "traj_offsets": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        "traj_record": np.array([ri for ri, _ in trajs], dtype=np.int64),
        "traj_states": (np.concatenate([t.states for _, t in trajs]) if trajs else np.zeros((0, spec.obs_dim))).astype(np.float32),
        "traj_actions": (np.concatenate([t.actions for _, t in trajs]) if trajs else np.zeros((0, spec.act_dim))).astype(np.float32),
        "traj_has_success": np.array([t.success is not None for _, t in trajs], dtype=np.uint8),
        "traj_success": (np.concatenate([t.success if t.success is not None else np.zeros(len(t), bool) for _, t in trajs])
                         if trajs else np.zeros(0)).astype(np.uint8),
    }
    meta = [{"key": r.key, "task": r.task, "success_rate": None if math.isnan(r.success_rate) else float(r.success_rate),
             "source": r.source, "spec": spec.name} for r in records]
    return st_save(tensors, metadata={"format": FORMAT, "spec": spec.name, "records": json.dumps(meta)})


class Shard:
    """A read-only, memory-mapped shard. The header (dtypes, shapes, sizes, record metadata) is checked
    before the file is mapped; `expect` (spec, trajectory state size) checks the tensors' widths."""

    def __init__(self, path: Path, spec: PolicySpec | None = None, traj_obs_dim: int | None = None):
        self.path = path
        if not path.is_file():
            raise MaaError(f"{path}: shard file is missing")
        try:
            infos, md, _ = read_safetensors_header(path, dtypes=("F32", "I64", "U8"))
        except MaaError as e:
            raise MaaError(f"{path}: not a readable safetensors shard ({str(e).removeprefix(f'{path}: ')})") from None
        check("records" in md, f"{path}: shard header lacks valid 'records' metadata")
        meta = loads_json(md["records"], f"{path}: 'records' metadata")
        check(isinstance(meta, list), f"{path}: 'records' metadata is {type(meta).__name__}, expected a list")
        for i, m in enumerate(meta):
            w = f"{path}: record {i}"
            get_field(m, "key", str, w)
            get_field(m, "task", str, w)
            sr = m.get("success_rate")
            check(sr is None or (expect(sr, float, f"{w}: 'success_rate'") >= 0 and sr <= 1),
                  f"{w}: success_rate {sr!r}, expected null or a number in [0, 1]")
            expect(m.get("source", {}), dict, f"{w}: 'source'")
        self.meta: list[dict] = meta
        need = {"params", "traj_offsets", "traj_record", "traj_states", "traj_actions", "traj_has_success", "traj_success"}
        missing = need - set(infos)
        check(not missing, f"{path}: shard lacks tensors {sorted(missing)}")
        _check_shard_shapes(path, {k: v.shape for k, v in infos.items()}, len(meta), spec, traj_obs_dim)
        try:
            self._f = safe_open(str(path), framework="numpy")
            self._t = {k: self._f.get_tensor(k) for k in self._f.keys()}
        except (SafetensorError, OSError) as e:
            raise MaaError(f"{path}: not a readable safetensors shard ({str(e).splitlines()[0]})") from None
        o = self._t["traj_offsets"]
        check(len(o) == 0 or (o[0] == 0 and bool((np.diff(o) >= 0).all()) and o[-1] == len(self._t["traj_states"])),
              f"{path}: traj_offsets are not increasing from 0 to the number of trajectory steps")
        r = self._t["traj_record"]
        check(bool(((r >= 0) & (r < len(meta))).all()), f"{path}: traj_record points outside the shard's {len(meta)} records")

    def __len__(self) -> int:
        return len(self.meta)

    @property
    def params(self) -> np.ndarray:
        return self._t["params"]

    def trajectory(self, j: int) -> Trajectory:
        o = self._t["traj_offsets"]
        sl = slice(int(o[j]), int(o[j + 1]))
        succ = self._t["traj_success"][sl].astype(bool) if self._t["traj_has_success"][j] else None
        return Trajectory(self._t["traj_states"][sl], self._t["traj_actions"][sl], succ)

    def record(self, i: int) -> PolicyRecord:
        m = self.meta[i]
        js = np.flatnonzero(self._t["traj_record"] == i)
        sr = m.get("success_rate")
        return PolicyRecord(self.params[i], m["task"], [self.trajectory(int(j)) for j in js],
                            math.nan if sr is None else sr, m.get("source", {}), m["key"], m.get("spec", ""))


def _check_shard_shapes(path: Path, shapes: dict, n_records: int, spec: PolicySpec | None, traj_obs_dim: int | None) -> None:
    """Tensor shapes of a shard agree with one another (and with the dataset's spec when given)."""
    p, off, rec, st, ac, hs, su = (shapes[k] for k in ("params", "traj_offsets", "traj_record", "traj_states",
                                                      "traj_actions", "traj_has_success", "traj_success"))
    check(len(p) == 2 and p[0] == n_records, f"{path}: {p[0] if p else 0} parameter rows but {n_records} records")
    if spec is not None:
        check(p[1] == spec.num_params, f"{path}: params have {p[1]} columns, spec {spec.name} has {spec.num_params} parameters")
    n_traj = rec[0] if len(rec) == 1 else -1
    check(n_traj >= 0 and off == (n_traj + 1,) and hs == (n_traj,),
          f"{path}: trajectory index tensors disagree (traj_offsets {off}, traj_record {rec}, traj_has_success {hs})")
    check(len(st) == 2 and len(ac) == 2 and st[0] == ac[0] and su == (st[0],),
          f"{path}: trajectory tensors disagree (states {st}, actions {ac}, success {su})")
    if spec is not None and st[0] > 0:
        check(st[1] == (traj_obs_dim or spec.obs_dim) and ac[1] == spec.act_dim,
              f"{path}: trajectories are {st[1]} -> {ac[1]}, the dataset expects {traj_obs_dim or spec.obs_dim} -> {spec.act_dim}")


def _read_manifest(root: Path) -> dict:
    path = root / MANIFEST
    if not path.exists():
        raise MaaError(f"{root}: no {MANIFEST} (not a maa dataset directory)")
    man = read_json(path, "dataset manifest")
    check(isinstance(man, dict), f"{path}: expected a JSON object, got {type(man).__name__}")
    for k in ("format", "spec", "shards"):
        check(k in man, f"{path}: missing key {k!r}")
    check(man["format"] == FORMAT, f"{path}: format {man['format']!r}, expected {FORMAT!r}")
    expect(man["spec"], dict, f"{path}: 'spec'")
    expect(man["shards"], list, f"{path}: 'shards'")
    if "traj_obs_dim" in man:
        positive_int(man["traj_obs_dim"], f"{path}: 'traj_obs_dim'")
    for i, s in enumerate(man["shards"]):
        w = f"{path}: shards[{i}]"
        for k in ("file", "sha256", "records"):
            check(isinstance(s, dict) and k in s, f"{w} missing key {k!r}")
        f = expect(s["file"], str, f"{w}: 'file'")
        check(f == Path(f).name and f not in ("", ".", "..") and f.endswith(".safetensors"),
              f"{w}: file {f!r}, expected a .safetensors file name inside the dataset folder")
        check(isinstance(s["sha256"], str) and len(s["sha256"]) == 64, f"{w}: 'sha256' must be 64 hex digits")
        check(expect(s["records"], int, f"{w}: 'records'") >= 0, f"{w}: records {s['records']}, expected >= 0")
        if "trajectories" in s:
            check(expect(s["trajectories"], int, f"{w}: 'trajectories'") >= 0, f"{w}: trajectories {s['trajectories']}, expected >= 0")
    return man


class PolicyDataset:
    """Read side. Shards are opened lazily and memory-mapped."""

    def __init__(self, root, verify: bool = False):
        """Every shard's checksum is verified when the shard is first opened (once per shard);
        `verify=True` verifies them all up front."""
        self.root = Path(root)
        self.manifest = _read_manifest(self.root)
        self.spec = PolicySpec.from_dict(self.manifest["spec"], f"{self.root / MANIFEST}: spec")
        # trajectories may use another state layout than the actor input (locomotion: the 70-value
        # observation the controller streams, while the actor reads a 2102-value history)
        self.traj_obs_dim = int(self.manifest.get("traj_obs_dim", self.spec.obs_dim))
        self._shards: dict[int, Shard] = {}
        self._verified: set[str] = set()
        counts = [int(s["records"]) for s in self.manifest["shards"]]
        self._starts = np.concatenate([[0], np.cumsum(counts)]).astype(int)
        if verify:
            self.verify()

    def __len__(self) -> int:
        return int(self._starts[-1])

    def shard(self, k: int) -> Shard:
        if k not in self._shards:
            entry = self.manifest["shards"][k]
            self._verify_entry(entry)
            sh = Shard(self.root / entry["file"], self.spec, self.traj_obs_dim)
            check(len(sh) == int(entry["records"]), f"{sh.path}: {len(sh)} records, manifest says {entry['records']}")
            self._shards[k] = sh
        return self._shards[k]

    def __getitem__(self, i: int) -> PolicyRecord:
        if not 0 <= i < len(self):
            raise IndexError(i)
        k = int(np.searchsorted(self._starts, i, side="right") - 1)
        rec = self.shard(k).record(i - int(self._starts[k]))
        return rec

    def __iter__(self):
        for k in range(len(self.manifest["shards"])):
            sh = self.shard(k)
            for i in range(len(sh)):
                yield sh.record(i)

    def params(self) -> np.ndarray:
        if len(self) == 0:
            raise MaaError(f"{self.root}: dataset is empty")
        out = np.concatenate([self.shard(k).params for k in range(len(self.manifest["shards"]))])
        check(np.isfinite(out).all(), f"{self.root}: parameters contain NaN or Inf")
        return out

    def meta(self) -> list[dict]:
        return [m for k in range(len(self.manifest["shards"])) for m in self.shard(k).meta]

    def keys(self) -> set[str]:
        return {m["key"] for m in self.meta()}

    def tasks(self) -> list[str]:
        return sorted({m["task"] for m in self.meta()})

    def verify(self) -> None:
        """Checksums of every shard against the manifest; raises MaaError on the first mismatch."""
        for entry in self.manifest["shards"]:
            self._verify_entry(entry)

    def _verify_entry(self, entry: dict) -> None:
        if entry["file"] in self._verified:
            return
        p = self.root / entry["file"]
        check(p.is_file(), f"{p}: shard listed in the manifest is missing")
        check(_sha256(p) == entry["sha256"], f"{p}: checksum mismatch (file truncated or modified)")
        self._verified.add(entry["file"])


class DatasetWriter:
    """Append side. Safe for several processes appending to one directory."""

    def __init__(self, root, spec, traj_obs_dim: int | None = None):
        """`traj_obs_dim`: state size of the stored trajectories when it differs from the spec's input."""
        self.root = Path(root)
        self.spec = get_spec(spec)
        self.traj_obs_dim = int(traj_obs_dim or self.spec.obs_dim)
        self.root.mkdir(parents=True, exist_ok=True)
        with self._locked():
            if (self.root / MANIFEST).exists():
                man = _read_manifest(self.root)
                theirs = PolicySpec.from_dict(man["spec"])
                if theirs.to_dict() != self.spec.to_dict():
                    raise MaaError(f"{self.root}: dataset belongs to spec {theirs.name!r}, not {self.spec.name!r}")
                have = int(man.get("traj_obs_dim", theirs.obs_dim))
                if have != self.traj_obs_dim:
                    raise MaaError(f"{self.root}: dataset stores {have}-dim trajectory states, not {self.traj_obs_dim}")
                self._recover(man)
            else:
                man = {"format": FORMAT, "spec": self.spec.to_dict(), "shards": []}
                if self.traj_obs_dim != self.spec.obs_dim:
                    man["traj_obs_dim"] = self.traj_obs_dim
                _fsync_write(self.root / MANIFEST, json.dumps(man, indent=1).encode())

    @contextmanager
    def _locked(self):
        with open(self.root / ".lock", "a") as lf:
            fcntl.flock(lf, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lf, fcntl.LOCK_UN)

    def _recover(self, man: dict) -> None:
        """Drop temp files of killed writers; adopt complete shards the manifest missed."""
        for p in self.root.glob(".*.tmp"):
            p.unlink(missing_ok=True)
        listed = {s["file"] for s in man["shards"]}
        known = set()
        for s in man["shards"]:
            known |= {m["key"] for m in Shard(self.root / s["file"]).meta}
        changed = False
        for p in sorted(self.root.glob("shard-*.safetensors")):
            if p.name in listed:
                continue
            try:
                sh = Shard(p)
            except MaaError:
                p.unlink()  # incomplete: its writer died mid-write (cannot happen after rename, but be safe)
                continue
            if {m["key"] for m in sh.meta} & known:
                p.unlink()
                continue
            man["shards"].append({"file": p.name, "sha256": _sha256(p), "records": len(sh),
                                  "trajectories": int(len(sh._t["traj_record"]))})
            known |= {m["key"] for m in sh.meta}
            changed = True
        if changed:
            _fsync_write(self.root / MANIFEST, json.dumps(man, indent=1).encode())

    def keys(self) -> set[str]:
        return PolicyDataset(self.root).keys()

    def append(self, records: list[PolicyRecord]) -> int:
        """Validates and writes records as one new shard. Returns the number written (duplicates skipped)."""
        if not records:
            return 0
        for r in records:
            where = f"record {r.key!r}"
            check(r.params.shape == (self.spec.num_params,),
                  f"{where}: params have shape {r.params.shape}, spec {self.spec.name} expects ({self.spec.num_params},)")
            check(np.isfinite(r.params).all(), f"{where}: params contain NaN or Inf")
            for j, t in enumerate(r.trajectories):
                t.validate(self.traj_obs_dim, self.spec.act_dim, where=f"{where} trajectory {j}")
            r.spec = self.spec.name
        with self._locked():
            man = _read_manifest(self.root)
            existing = set()
            for s in man["shards"]:
                existing |= {m["key"] for m in Shard(self.root / s["file"]).meta}
            records = [r for r in records if r.key not in existing]
            if len({r.key for r in records}) != len(records):
                raise MaaError("records: duplicate keys within one append")
            if not records:
                return 0
            n = 1 + max([int(s["file"][6:12]) for s in man["shards"]] +
                        [int(p.name[6:12]) for p in self.root.glob("shard-*.safetensors")] + [-1])
            path = self.root / f"shard-{n:06d}.safetensors"
            _fsync_write(path, encode_shard(records, self.spec))
            man["shards"].append({"file": path.name, "sha256": _sha256(path), "records": len(records),
                                  "trajectories": sum(len(r.trajectories) for r in records)})
            _fsync_write(self.root / MANIFEST, json.dumps(man, indent=1).encode())
        return len(records)
