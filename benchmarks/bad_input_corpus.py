"""Bad-input corpus for the command line (issue #14): damaged files and arguments -> `maa` / `maa-ros`.

    nice -n 5 .venv/bin/python benchmarks/bad_input_corpus.py [--json OUT.json] [--only SUBSTR]

Builds valid fixtures (a tiny untrained generator, a dataset, an actor file, prompt files, mcap and
sqlite3 bags) in a temp folder, damages copies of them, runs each case as a subprocess and reports per
case: exit code, stderr lines, whether a traceback appeared, and the verdict:

    clean      refused with exactly one line `maa: error: ...` (or `maa-ros: error:`) and exit 2
    traceback  a Python traceback on stderr
    accepted   exit 0 where the input should have been refused
    noisy      exit 2 but more than one stderr line
    internal   exit 1 with one line `maa: internal error: ...` (the last-resort handler: a bug, not a refusal)
    side       refused, but something was written or changed that must not be (partial file, overwrite)
    other      any other exit code / output
Each case takes a fresh copy of the fixtures, so cases do not see one another's damage.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PY = sys.executable
MAA = [PY, "-m", "maa_core"]
MAA_ROS = [PY, "-m", "maa_ros.launcher"]
TIMEOUT_S = 300  # a case that is wrongly accepted may start real work (training, evaluation)


# -- fixtures --------------------------------------------------------------------------------
def build_fixtures(root: Path) -> None:
    import numpy as np

    from maa_core.actor_io import ActorBlob
    from maa_core.dataset import DatasetWriter, PolicyRecord
    from maa_core.pipeline import PolicyGenerator
    from maa_core.prompts import write_prompts_to_bag
    from maa_core.specs import get_spec
    from maa_core.trajectory import Trajectory, save_trajectory

    rng = np.random.default_rng(0)
    spec = get_spec("metaworld-sac")

    def traj(T=40):
        return Trajectory(rng.standard_normal((T, 39)) * 0.1, rng.uniform(-1, 1, (T, 4)), np.arange(T) > T // 2)

    PolicyGenerator.untrained(spec, preset="tiny", device="cpu").save_pretrained(root / "gen")
    recs = [PolicyRecord(rng.standard_normal(spec.num_params) * 0.05, task, [traj()], 1.0,
                         {"run": f"{task}-0", "seed": 0, "step": i}) for i, task in enumerate(["reach", "reach", "door-open", "door-open"])]
    DatasetWriter(root / "ds", spec).append(recs[:2])
    DatasetWriter(root / "ds", spec).append(recs[2:])
    ActorBlob(spec, rng.standard_normal(spec.num_params).astype(np.float32) * 0.05, "g1", "p1").save(root / "actor.safetensors")
    save_trajectory(root / "prompt.npz", traj())
    write_prompts_to_bag(root / "bag_mcap", [traj(), traj()], storage="mcap")
    write_prompts_to_bag(root / "bag_sqlite", [traj(), traj()], storage="sqlite3")
    (root / "cfg.yaml").write_text("train_diffusion:\n  steps: 5\n")


# -- damage helpers ----------------------------------------------------------------------------
def st_bytes(header: dict | bytes, payload: bytes = b"") -> bytes:
    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + payload


def actor_header(path: Path) -> tuple[dict, bytes]:
    b = path.read_bytes()
    n = struct.unpack("<Q", b[:8])[0]
    return json.loads(b[8:8 + n]), b[8 + n:]


def with_spec(root: Path, mutate) -> Path:
    """The fixture actor with its spec metadata mutated (checksum and tensor left as they are)."""
    h, payload = actor_header(root / "actor.safetensors")
    spec = json.loads(h["__metadata__"]["spec"])
    mutate(spec)
    h["__metadata__"]["spec"] = json.dumps(spec)
    out = root / "bad_actor.safetensors"
    out.write_bytes(st_bytes(h, payload))
    return out


def zero_param_actor(root: Path) -> Path:
    """An actor whose spec has 0 parameters, with a matching empty tensor and checksum."""
    import hashlib

    h, _ = actor_header(root / "actor.safetensors")
    spec = json.loads(h["__metadata__"]["spec"])
    spec.update(obs_dim=0, act_dim=0)
    for l in spec["trunk"]:
        l.update(in_dim=0, out_dim=0)
    for _, l in spec["heads"]:
        l.update(in_dim=0, out_dim=0)
    md = {**h["__metadata__"], "spec": json.dumps(spec), "checksum": hashlib.sha256(b"").hexdigest()}
    out = root / "zero.safetensors"
    out.write_bytes(st_bytes({"__metadata__": md, "params": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}}))
    return out


def flip(path: Path, offset_frac: float = 0.5, bit: int = 0x10) -> None:
    b = bytearray(path.read_bytes())
    b[int(len(b) * offset_frac)] ^= bit
    path.write_bytes(bytes(b))


def first_shard(ds: Path) -> Path:
    return sorted(ds.glob("shard-*.safetensors"))[0]


def set_manifest(ds: Path, fn) -> None:
    p = ds / "manifest.json"
    m = json.loads(p.read_text())
    m = fn(m)
    p.write_text(json.dumps(m))


def shard_meta(ds: Path, fn) -> None:
    """Rewrites the first shard's 'records' metadata and fixes the manifest checksum (a valid file, bad content)."""
    import hashlib

    sh = first_shard(ds)
    b = sh.read_bytes()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    recs = json.loads(h["__metadata__"]["records"])
    h["__metadata__"]["records"] = json.dumps(fn(recs))
    hb = json.dumps(h).encode()
    hb += b" " * (-len(hb) % 8)
    sh.write_bytes(struct.pack("<Q", len(hb)) + hb + b[8 + n:])
    set_manifest(ds, lambda m: {**m, "shards": [{**s, "sha256": hashlib.sha256(sh.read_bytes()).hexdigest()}
                                               if s["file"] == sh.name else s for s in m["shards"]]})


def nested_json(depth: int) -> bytes:
    return b'{"__metadata__": {"x": ' + b"[" * depth + b"]" * depth + b"}}"


FAST_TRAIN = ["--preset", "tiny", "--no-progress", "--set", "train_autoencoder.steps=2", "--set", "train_embedding.steps=2",
              "--set", "train_diffusion.steps=2", "--set", "embedding.n_steps=10", "--accelerator", "cpu"]


# -- cases -------------------------------------------------------------------------------------
@dataclass
class Case:
    name: str
    prepare: Callable[[Path], list[str]]  # fixture root (a fresh copy) -> command
    expect: str = "refuse"  # "refuse": exit 2 + one line; "accept": exit 0
    after: Callable[[Path], str] | None = None  # -> "" if the side effects are right, else what is wrong
    env: dict = field(default_factory=dict)


def _gen(root, fn):
    p = root / "gen" / "generator.json"
    p.write_text(fn(p.read_text()))
    return root / "gen"


def _gen_meta(root, fn):
    return _gen(root, lambda s: json.dumps(fn(json.loads(s))))


def _npz_member_huge(root):
    """A zip whose states.npy header claims (10**12, 39) float32: ~156 TB."""
    import zipfile

    hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000, 39), }"
    hdr = hdr + " " * (-(len(hdr) + 11) % 64) + "\n"
    npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + b"\x00" * 64
    p = root / "huge.npz"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("states.npy", npy)
        z.writestr("actions.npy", npy)
    return p


def _npz_object(root):
    import numpy as np

    p = root / "obj.npz"
    np.savez(p, states=np.array([{"a": 1}] * 40, dtype=object), actions=np.zeros((40, 4)))
    return p


def _bag_meta_gone(root):
    (root / "bag_mcap" / "metadata.yaml").unlink()
    return root / "bag_mcap"


def _bag_flip_data(root):
    """Overwrites bytes inside the message data of the mcap file (the float payload of the first message)."""
    f = next((root / "bag_mcap").glob("*.mcap"))
    b = bytearray(f.read_bytes())
    # the first prompt's float data: find the (T=40 x 44) layout's dims, data follows; flip mid-file
    for i in range(4000, 4064):
        b[i] ^= 0x01
    f.write_bytes(bytes(b))
    return root / "bag_mcap"


def _bag_flip_exponent(root):
    f = next((root / "bag_mcap").glob("*.mcap"))
    b = bytearray(f.read_bytes())
    b[6003] ^= 0x40  # the high exponent bit of a float32 (little endian: the 4th byte of a value)
    f.write_bytes(bytes(b))
    return root / "bag_mcap"


def _sqlite_corrupt(root):
    f = next((root / "bag_sqlite").glob("*.db3"))
    b = bytearray(f.read_bytes())
    page = struct.unpack(">H", b[16:18])[0]
    for at in range(page, len(b), page):  # the header of every page after the first
        b[at:at + 8] = b"\xff" * 8
    f.write_bytes(bytes(b))
    return root / "bag_sqlite"


def _sqlite_value(root):
    """A well-formed sqlite3 bag whose message data was changed in place (the database stays consistent)."""
    f = next((root / "bag_sqlite").glob("*.db3"))
    con = sqlite3.connect(f)
    (mid, data), = con.execute("SELECT id, data FROM messages ORDER BY id LIMIT 1").fetchall()
    d = bytearray(data)
    d[len(d) // 2] ^= 0x40
    con.execute("UPDATE messages SET data = ? WHERE id = ?", (bytes(d), mid))
    con.commit()
    con.close()
    return root / "bag_sqlite"


def _tamper_shard(root):
    sh = first_shard(root / "ds")
    b = bytearray(sh.read_bytes())
    b[-100] ^= 0x01  # a parameter bit: still a valid file, checksum no longer matches
    sh.write_bytes(bytes(b))
    return root / "ds"


def _unchanged(path_fn, content_fn):
    def after(root):
        p = path_fn(root)
        return "" if p.is_file() and p.read_bytes() == content_fn(root) else f"{p.name} was overwritten"
    return after


def _no_new_files(folder_fn, allowed=()):
    def after(root):
        d = folder_fn(root)
        extra = sorted(p.name for p in d.iterdir() if p.name not in allowed) if d.exists() else []
        return f"left behind: {extra}" if extra else ""
    return after


def cases() -> list[Case]:
    C = []
    add = lambda *a, **k: C.append(Case(*a, **k))  # noqa: E731
    # generator folders
    add("info: generator.json not JSON", lambda r: MAA + ["info", _gen(r, lambda s: "{not json")])
    add("info: generator.json a list", lambda r: MAA + ["info", _gen(r, lambda s: "[1, 2]")])
    add("info: generator.json without spec", lambda r: MAA + ["info", _gen_meta(r, lambda m: {k: v for k, v in m.items() if k != "spec"})])
    add("info: generator.json spec a string", lambda r: MAA + ["info", _gen_meta(r, lambda m: {**m, "spec": "metaworld-sac"})])
    add("info: generator.json config a number", lambda r: MAA + ["info", _gen_meta(r, lambda m: {**m, "config": 3})])
    add("info: generator.json binary", lambda r: (((r / "gen" / "generator.json").write_bytes(os.urandom(512))), MAA + ["info", r / "gen"])[1])
    add("generate: generator.json not JSON", lambda r: MAA + ["generate", _gen(r, lambda s: "{not json"), "--prompt", r / "prompt.npz", "--out", r / "o"])
    add("generate: generator.json a list", lambda r: MAA + ["generate", _gen(r, lambda s: "[]"), "--prompt", r / "prompt.npz", "--out", r / "o"])
    add("generate: generator obs_dim a string", lambda r: MAA + ["generate", _gen_meta(r, lambda m: {**m, "obs_dim": "x"}), "--prompt", r / "prompt.npz", "--out", r / "o"])
    add("generate: generator obs_dim -5", lambda r: MAA + ["generate", _gen_meta(r, lambda m: {**m, "obs_dim": -5}), "--prompt", r / "prompt.npz", "--out", r / "o"])
    add("generate: generator config beta_schedule bogus", lambda r: MAA + ["generate", _gen_meta(r, lambda m: {**m, "config": {**m["config"], "diffusion": {**m["config"]["diffusion"], "beta_schedule": "bogus"}}}), "--prompt", r / "prompt.npz", "--out", r / "o"])
    add("generate: generator config token_dim 0", lambda r: MAA + ["generate", _gen_meta(r, lambda m: {**m, "config": {**m["config"], "autoencoder": {**m["config"]["autoencoder"], "token_dim": 0}}}), "--prompt", r / "prompt.npz", "--out", r / "o"])
    add("generate: unet.safetensors truncated", lambda r: ((r / "gen" / "unet.safetensors").write_bytes((r / "gen" / "unet.safetensors").read_bytes()[:300]), MAA + ["generate", r / "gen", "--prompt", r / "prompt.npz", "--out", r / "o"])[1])
    add("generate: unet.safetensors header asks for terabytes", lambda r: ((r / "gen" / "unet.safetensors").write_bytes(st_bytes({"w": {"dtype": "F32", "shape": [1 << 20, 1 << 20], "data_offsets": [0, 1 << 42]}})), MAA + ["generate", r / "gen", "--prompt", r / "prompt.npz", "--out", r / "o"])[1])
    add("generate: unet.safetensors header length huge", lambda r: ((r / "gen" / "unet.safetensors").write_bytes(struct.pack("<Q", 1 << 50) + b"{}"), MAA + ["generate", r / "gen", "--prompt", r / "prompt.npz", "--out", r / "o"])[1])
    add("generate: shard index weight_map a list", lambda r: ((r / "gen" / "unet.safetensors").unlink(), (r / "gen" / "unet.safetensors.index.json").write_text('{"weight_map": [1]}'), MAA + ["generate", r / "gen", "--prompt", r / "prompt.npz", "--out", r / "o"])[2])
    add("generate: scheduler config missing", lambda r: (shutil.rmtree(r / "gen" / "scheduler"), MAA + ["generate", r / "gen", "--prompt", r / "prompt.npz", "--out", r / "o"])[1], expect="accept")
    # datasets
    add("info: manifest not JSON", lambda r: ((r / "ds" / "manifest.json").write_text("{"), MAA + ["info", r / "ds"])[1])
    add("info: manifest a list", lambda r: ((r / "ds" / "manifest.json").write_text("[]"), MAA + ["info", r / "ds"])[1])
    add("info: manifest shards a number", lambda r: (set_manifest(r / "ds", lambda m: {**m, "shards": 3}), MAA + ["info", r / "ds"])[1])
    add("info: manifest shards[0] a string", lambda r: (set_manifest(r / "ds", lambda m: {**m, "shards": ["x"]}), MAA + ["info", r / "ds"])[1])
    add("info: manifest records a string", lambda r: (set_manifest(r / "ds", lambda m: {**m, "shards": [{**s, "records": "many"} for s in m["shards"]]}), MAA + ["info", r / "ds"])[1])
    add("info: manifest records -1", lambda r: (set_manifest(r / "ds", lambda m: {**m, "shards": [{**s, "records": -1} for s in m["shards"]]}), MAA + ["info", r / "ds"])[1])
    add("info: manifest file escapes the folder", lambda r: (set_manifest(r / "ds", lambda m: {**m, "shards": [{**s, "file": "../../../etc/passwd"} for s in m["shards"]]}), MAA + ["info", r / "ds"])[1])
    add("info: manifest spec a string", lambda r: (set_manifest(r / "ds", lambda m: {**m, "spec": "metaworld-sac"}), MAA + ["info", r / "ds"])[1])
    add("info: record without task", lambda r: (shard_meta(r / "ds", lambda rs: [{k: v for k, v in x.items() if k != "task"} for x in rs]), MAA + ["info", r / "ds"])[1])
    add("info: records metadata a dict", lambda r: (shard_meta(r / "ds", lambda rs: {"a": 1}), MAA + ["info", r / "ds"])[1])
    add("info: shard truncated", lambda r: (first_shard(r / "ds").write_bytes(first_shard(r / "ds").read_bytes()[:500]), MAA + ["info", r / "ds"])[1])
    add("info: shard header asks for terabytes", lambda r: (first_shard(r / "ds").write_bytes(st_bytes({"params": {"dtype": "F32", "shape": [1 << 21, 1 << 21], "data_offsets": [0, 1 << 44]}})), MAA + ["info", r / "ds"])[1])
    add("info --verify: tampered shard", lambda r: MAA + ["info", _tamper_shard(r), "--verify"])
    add("generate --dataset: tampered shard", lambda r: MAA + ["generate", r / "gen", "--dataset", _tamper_shard(r), "--out", r / "o"])
    add("train: tampered shard", lambda r: MAA + ["train", _tamper_shard(r), "--out", r / "g2", *FAST_TRAIN])
    add("train: record without task", lambda r: (shard_meta(r / "ds", lambda rs: [{k: v for k, v in x.items() if k != "task"} for x in rs]), MAA + ["train", r / "ds", "--out", r / "g2", *FAST_TRAIN])[1])
    add("eval --dataset: tampered shard", lambda r: MAA + ["eval", r / "gen", "--dataset", _tamper_shard(r), "--configs", "1", "--max-steps", "5", "--workers", "1", "--no-novelty", "--no-progress", "--out", r / "ev"])
    # actor files
    add("info: actor spec with 0 parameters", lambda r: MAA + ["info", with_spec(r, lambda s: (s.update(obs_dim=0), s["trunk"][0].update(in_dim=0, out_dim=0), s["trunk"][1].update(in_dim=0, out_dim=0), [h[1].update(in_dim=0, out_dim=0) for h in s["heads"]], s.update(act_dim=0)))])
    add("info: actor spec with 0 parameters (empty tensor)", lambda r: MAA + ["info", zero_param_actor(r)])
    add("export: actor spec with 0 parameters", lambda r: MAA + ["export", zero_param_actor(r), "--out", r / "e"])
    add("info: actor spec with negative dims", lambda r: MAA + ["info", with_spec(r, lambda s: (s.update(obs_dim=-39), s["trunk"][0].update(in_dim=-39)))])
    add("info: actor spec a list", lambda r: MAA + ["info", with_spec(r, lambda s: s.clear())])
    add("info: actor header nested 100000 deep", lambda r: ((r / "a.safetensors").write_bytes(st_bytes(nested_json(100000))), MAA + ["info", r / "a.safetensors"])[1])
    add("info: actor spec JSON nested 100000 deep", lambda r: (lambda h, p: ((r / "a.safetensors").write_bytes(st_bytes({**h, "__metadata__": {**h["__metadata__"], "spec": "[" * 100000 + "]" * 100000}}, p)), MAA + ["info", r / "a.safetensors"])[1])(*actor_header(r / "actor.safetensors")))
    add("info: actor header invalid JSON", lambda r: ((r / "a.safetensors").write_bytes(st_bytes(b"{\"params\": {")), MAA + ["info", r / "a.safetensors"])[1])
    add("info: actor header invalid UTF-8", lambda r: ((r / "a.safetensors").write_bytes(st_bytes(b"\xff\xfe" * 8)), MAA + ["info", r / "a.safetensors"])[1])
    add("info: actor dtype BF16", lambda r: (lambda h, p: ((r / "a.safetensors").write_bytes(st_bytes({**h, "params": {**h["params"], "dtype": "BF16", "shape": [len(p) // 2]}}, p)), MAA + ["info", r / "a.safetensors"])[1])(*actor_header(r / "actor.safetensors")))
    add("info: actor dtype F64", lambda r: (lambda h, p: ((r / "a.safetensors").write_bytes(st_bytes({**h, "params": {**h["params"], "dtype": "F64", "shape": [len(p) // 8]}}, p)), MAA + ["info", r / "a.safetensors"])[1])(*actor_header(r / "actor.safetensors")))
    add("info: actor header length 2**60", lambda r: ((r / "a.safetensors").write_bytes(struct.pack("<Q", 1 << 60) + b"{}"), MAA + ["info", r / "a.safetensors"])[1])
    add("info: actor tensor asks for terabytes", lambda r: (lambda h, p: ((r / "a.safetensors").write_bytes(st_bytes({**h, "params": {"dtype": "F32", "shape": [1 << 40], "data_offsets": [0, 1 << 42]}}, p)), MAA + ["info", r / "a.safetensors"])[1])(*actor_header(r / "actor.safetensors")))
    add("info: actor metadata a list", lambda r: (lambda h, p: ((r / "a.safetensors").write_bytes(st_bytes({**h, "__metadata__": [1]}, p)), MAA + ["info", r / "a.safetensors"])[1])(*actor_header(r / "actor.safetensors")))
    add("info: actor extra not JSON", lambda r: (lambda h, p: ((r / "a.safetensors").write_bytes(st_bytes({**h, "__metadata__": {**h["__metadata__"], "extra": "{"}}, p)), MAA + ["info", r / "a.safetensors"])[1])(*actor_header(r / "actor.safetensors")))
    add("info: actor truncated", lambda r: ((r / "a.safetensors").write_bytes((r / "actor.safetensors").read_bytes()[:-1000]), MAA + ["info", r / "a.safetensors"])[1])
    add("info: actor empty file", lambda r: ((r / "a.safetensors").write_bytes(b""), MAA + ["info", r / "a.safetensors"])[1])
    add("info: actor bit-flipped params", lambda r: (flip(r / "actor.safetensors", 0.8, 0x01), MAA + ["info", r / "actor.safetensors"])[1])
    add("info: actor a directory", lambda r: ((r / "d.safetensors").mkdir(), MAA + ["export", r / "d.safetensors", "--out", r / "e"])[1])
    add("export: actor header nested", lambda r: ((r / "a.safetensors").write_bytes(st_bytes(nested_json(100000))), MAA + ["export", r / "a.safetensors", "--out", r / "e"])[1])
    # prompt files
    add("generate: prompt .npz empty", lambda r: ((r / "p.npz").write_bytes(b""), MAA + ["generate", r / "gen", "--prompt", r / "p.npz", "--out", r / "o"])[1])
    add("generate: prompt .npz truncated zip", lambda r: ((r / "p.npz").write_bytes((r / "prompt.npz").read_bytes()[:-200]), MAA + ["generate", r / "gen", "--prompt", r / "p.npz", "--out", r / "o"])[1])
    add("generate: prompt .npz member claims 156 TB", lambda r: MAA + ["generate", r / "gen", "--prompt", _npz_member_huge(r), "--out", r / "o"])
    add("generate: prompt .npz object arrays", lambda r: MAA + ["generate", r / "gen", "--prompt", _npz_object(r), "--out", r / "o"])
    add("generate: prompt .npz a directory", lambda r: ((r / "d.npz").mkdir(), MAA + ["generate", r / "gen", "--prompt", r / "d.npz", "--out", r / "o"])[1])
    add("generate: prompt states 1-D", lambda r: (__import__("numpy").savez(r / "p.npz", states=__import__("numpy").zeros(40), actions=__import__("numpy").zeros((40, 4))), MAA + ["generate", r / "gen", "--prompt", r / "p.npz", "--out", r / "o"])[1])
    add("generate: prompt success a string array", lambda r: (__import__("numpy").savez(r / "p.npz", states=__import__("numpy").zeros((40, 39)), actions=__import__("numpy").zeros((40, 4)), success=__import__("numpy").array(["yes"] * 40)), MAA + ["generate", r / "gen", "--prompt", r / "p.npz", "--out", r / "o"])[1])
    # bags
    add("generate: bag folder without metadata", lambda r: MAA + ["generate", r / "gen", "--bag", _bag_meta_gone(r), "--out", r / "o"])
    add("generate: bag metadata.yaml binary", lambda r: ((r / "bag_mcap" / "metadata.yaml").write_bytes(os.urandom(300)), MAA + ["generate", r / "gen", "--bag", r / "bag_mcap", "--out", r / "o"])[1])
    add("generate: bag metadata.yaml a list", lambda r: ((r / "bag_mcap" / "metadata.yaml").write_text("[1, 2]\n"), MAA + ["generate", r / "gen", "--bag", r / "bag_mcap", "--out", r / "o"])[1])
    add("generate: bag mcap data bytes flipped", lambda r: MAA + ["generate", r / "gen", "--bag", _bag_flip_data(r), "--out", r / "o"])
    add("generate: bag mcap float exponent flipped", lambda r: MAA + ["generate", r / "gen", "--bag", _bag_flip_exponent(r), "--out", r / "o"])
    add("generate: bag mcap truncated", lambda r: (lambda f: (f.write_bytes(f.read_bytes()[:3000]), MAA + ["generate", r / "gen", "--bag", r / "bag_mcap", "--out", r / "o"])[1])(next((r / "bag_mcap").glob("*.mcap"))))
    add("generate: bag mcap file missing", lambda r: ((next((r / "bag_mcap").glob("*.mcap"))).unlink(), MAA + ["generate", r / "gen", "--bag", r / "bag_mcap", "--out", r / "o"])[1])
    add("generate: bag sqlite3 pages overwritten", lambda r: MAA + ["generate", r / "gen", "--bag", _sqlite_corrupt(r), "--out", r / "o"])
    add("generate: bag sqlite3 message value changed", lambda r: MAA + ["generate", r / "gen", "--bag", _sqlite_value(r), "--out", r / "o"])
    add("generate: bag is a file", lambda r: MAA + ["generate", r / "gen", "--bag", r / "prompt.npz", "--out", r / "o"])
    # configs and --set
    add("train: config file binary", lambda r: ((r / "bin.yaml").write_bytes(bytes(range(256)) * 4), MAA + ["train", r / "ds", "--out", r / "g2", "--config", r / "bin.yaml", "--no-progress"])[1])
    add("train: config file a list", lambda r: ((r / "l.yaml").write_text("- 1\n- 2\n"), MAA + ["train", r / "ds", "--out", r / "g2", "--config", r / "l.yaml", "--no-progress"])[1])
    add("train: config section a number", lambda r: ((r / "l.yaml").write_text("autoencoder: 3\n"), MAA + ["train", r / "ds", "--out", r / "g2", "--config", r / "l.yaml", "--no-progress"])[1])
    add("train: config file a directory", lambda r: MAA + ["train", r / "ds", "--out", r / "g2", "--config", r / "gen", "--no-progress"])
    for kv in ["train_diffusion.steps=-1", "diffusion.beta_schedule=bogus", "autoencoder.token_dim=abc", "embedding.mode=bogus",
               "train_autoencoder.lr=[1,2]", "diffusion.channels=5", "embedding.n_steps=0", "diffusion.prediction_type=noise",
               "train_embedding.batch_size=2.5", "autoencoder.latent_noise=-1", "diffusion_pairing=nope", "seed=x",
               "diffusion.ema_decay=2", "train_diffusion.betas=[0.9]"]:
        add(f"train: --set {kv}", lambda r, kv=kv: MAA + ["train", r / "ds", "--out", r / "g2", *FAST_TRAIN, "--set", kv])
    # outputs
    add("generate: --out an existing file", lambda r: MAA + ["generate", r / "gen", "--prompt", r / "prompt.npz", "--out", r / "prompt.npz"],
        after=_unchanged(lambda r: r / "prompt.npz", lambda r: (REF / "prompt.npz").read_bytes()))
    add("generate: overwrites an existing actor", lambda r: ((r / "o").mkdir(), shutil.copy(r / "actor.safetensors", r / "o" / "prompt-0.safetensors"), MAA + ["generate", r / "gen", "--prompt", r / "prompt.npz", "--out", r / "o"])[2],
        after=_unchanged(lambda r: r / "o" / "prompt-0.safetensors", lambda r: (REF / "actor.safetensors").read_bytes()))
    add("generate: --device bogus", lambda r: MAA + ["generate", r / "gen", "--prompt", r / "prompt.npz", "--out", r / "o", "--device", "bogus"])
    add("generate: -k 0", lambda r: MAA + ["generate", r / "gen", "--prompt", r / "prompt.npz", "--out", r / "o", "-k", "0"])
    add("generate: --limit -1", lambda r: MAA + ["generate", r / "gen", "--prompt", r / "prompt.npz", "--out", r / "o", "--limit", "-1"])
    add("export: --out an existing file", lambda r: MAA + ["export", r / "actor.safetensors", "--out", r / "prompt.npz"])
    add("export: fails midway (actor.pt is a folder)", lambda r: ((r / "e").mkdir(), (r / "e" / "actor.pt").mkdir(), MAA + ["export", r / "actor.safetensors", "--out", r / "e"])[2],
        after=_no_new_files(lambda r: r / "e", allowed=("actor.pt",)))
    add("export: overwrites an existing export", lambda r: ((r / "e").mkdir(), (r / "e" / "actor.safetensors").write_bytes(b"mine"), MAA + ["export", r / "actor.safetensors", "--out", r / "e", "--no-torchscript"])[2],
        after=lambda r: "" if (r / "e" / "actor.safetensors").read_bytes() == b"mine" else "actor.safetensors overwritten")
    add("export: --name with a slash", lambda r: MAA + ["export", r / "actor.safetensors", "--out", r / "e", "--name", "../../x"])
    add("train: --out an existing file", lambda r: MAA + ["train", r / "ds", "--out", r / "prompt.npz", *FAST_TRAIN])
    add("eval: --device bogus", lambda r: MAA + ["eval", r / "gen", "--prompt", r / "prompt.npz", "--task", "reach", "--device", "bogus", "--out", r / "ev"])
    add("eval: --prompt empty npz", lambda r: ((r / "p.npz").write_bytes(b""), MAA + ["eval", r / "gen", "--prompt", r / "p.npz", "--task", "reach", "--out", r / "ev"])[1])
    add("eval: --out an existing file", lambda r: MAA + ["eval", r / "gen", "--prompt", r / "prompt.npz", "--task", "reach", "--configs", "1", "--max-steps", "5", "--workers", "1", "--no-novelty", "--no-progress", "--out", r / "prompt.npz"])
    # collect
    add("collect: corrupt collect.json", lambda r: ((r / "c").mkdir(), (r / "c" / "collect.json").write_text("{corrupt"), MAA + ["collect", "--tasks", "reach", "--seeds", "1", "--out", r / "c", "--quiet"])[2],
        after=_no_new_files(lambda r: r / "c", allowed=("collect.json",)))
    add("collect: collect.json a list", lambda r: ((r / "c").mkdir(), (r / "c" / "collect.json").write_text("[]"), MAA + ["collect", "--tasks", "reach", "--seeds", "1", "--out", r / "c", "--quiet"])[2],
        after=_no_new_files(lambda r: r / "c", allowed=("collect.json",)))
    add("collect: recipe binary", lambda r: ((r / "bin.yaml").write_bytes(bytes(range(256)) * 4), MAA + ["collect", "--config", r / "bin.yaml", "--out", r / "c"])[1])
    add("collect: recipe a list", lambda r: ((r / "l.yaml").write_text("- 1\n"), MAA + ["collect", "--config", r / "l.yaml", "--out", r / "c"])[1])
    add("collect: --out an existing file", lambda r: MAA + ["collect", "--tasks", "reach", "--seeds", "1", "--out", r / "prompt.npz", "--quiet"])
    add("collect: --seeds garbage", lambda r: MAA + ["collect", "--tasks", "reach", "--seeds", "a-b-c", "--out", r / "c", "--dry-run"])
    # maa-ros
    add("maa-ros: unknown graph", lambda r: MAA_ROS + ["launch", "nope", "--dry-run"])
    add("maa-ros: --grace abc", lambda r: MAA_ROS + ["launch", "go2_generate", "--grace", "abc", "--dry-run"])
    add("maa-ros: config a missing file", lambda r: MAA_ROS + ["launch", "go2_generate", f"config:={r / 'nope.yaml'}", "--dry-run"])
    add("maa-ros: unknown argument", lambda r: MAA_ROS + ["launch", "go2_generate", "bogus:=1", "--dry-run"])
    add("maa-ros: bad generator.json (dry run)", lambda r: MAA_ROS + ["launch", "go2_generate", f"generator_dir:={_gen(r, lambda s: '[')}", "--dry-run"], expect="accept")
    add("maa-ros: backend bogus", lambda r: MAA_ROS + ["launch", "go2_generate", "backend:=bogus", "--dry-run"])
    return C


REF: Path = Path()


def classify(case: Case, rc: int, err: str, side: str) -> str:
    lines = [l for l in err.strip().splitlines() if l.strip()]
    if "Traceback (most recent call last)" in err:
        return "traceback"
    if case.expect == "accept":
        return "clean" if rc == 0 and not side else ("side" if side else "other")
    if rc == 0:
        return "accepted"
    if rc == 2 and len(lines) == 1 and ": error: " in lines[0]:
        return "side" if side else "clean"
    if rc == 2:
        return "noisy"
    if rc == 1 and len(lines) == 1 and "internal error" in lines[0]:
        return "internal"
    return "other"


def main() -> int:
    global REF
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", type=Path, help="write per-case results here")
    ap.add_argument("--only", default="", help="run the cases whose name contains this")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="maa-bad-"))
    REF = work / "ref"
    REF.mkdir()
    t0 = time.time()
    build_fixtures(REF)
    print(f"fixtures in {time.time() - t0:.1f}s ({REF})", flush=True)
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    env.pop("MAA_DEBUG", None)
    rows = []
    for i, case in enumerate(c for c in cases() if args.only in c.name):
        root = work / f"case{i:03d}"
        shutil.copytree(REF, root)
        try:
            cmd = [str(x) for x in case.prepare(root)]
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, cwd=root, env={**env, **case.env})
            rc, err = p.returncode, p.stderr
        except subprocess.TimeoutExpired as e:
            rc, err = -9, (e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")) + "\n(timed out)"
        side = case.after(root) if case.after else ""
        verdict = classify(case, rc, err, side)
        lines = [l for l in err.strip().splitlines() if l.strip()]
        first = lines[0][:150] if lines else ""
        last = lines[-1][:150] if lines else ""
        rows.append({"case": case.name, "expect": case.expect, "rc": rc, "stderr_lines": len(lines),
                     "traceback": "Traceback (most recent call last)" in err, "verdict": verdict, "side": side,
                     "first": first, "last": last})
        print(f"{verdict:9s} rc={rc:<3d} lines={len(lines):<3d} {case.name}: {last if verdict != 'clean' else first}"
              + (f" [{side}]" if side else ""), flush=True)
        shutil.rmtree(root, ignore_errors=True)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["verdict"]] = counts.get(r["verdict"], 0) + 1
    print(f"\n{len(rows)} cases in {time.time() - t0:.0f}s: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if args.json:
        args.json.write_text(json.dumps({"counts": counts, "cases": rows}, indent=1))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
