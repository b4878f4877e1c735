"""Bad input never reaches a traceback (issue #14): one test per class of damaged input, through the real
CLI entry (`maa_core.cli.main`), each asserting exit 2 and exactly one stderr line naming the file; plus
the limits of maa_core/files.py (refusals happen before anything the file asks for is allocated)."""
import hashlib
import json
import shutil
import sqlite3
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest

from maa_core.actor_io import ActorBlob
from maa_core.cli import main
from maa_core.dataset import DatasetWriter, PolicyRecord
from maa_core.errors import MaaError
from maa_core.files import json_depth, load_npz, loads_json, parse_safetensors_header, read_safetensors_header
from maa_core.pipeline import PolicyGenerator
from maa_core.prompts import read_prompts_from_bag, write_prompts_to_bag
from maa_core.specs import Layer, PolicySpec, get_spec
from maa_core.trajectory import Trajectory, save_trajectory

SPEC = get_spec("metaworld-sac")


def _traj(rng, T=40):
    return Trajectory(rng.standard_normal((T, 39)) * 0.1, rng.uniform(-1, 1, (T, 4)), np.arange(T) > T // 2)


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    """Valid inputs: a tiny untrained generator, a dataset, an actor, a prompt file, an mcap and a sqlite3 bag."""
    root = tmp_path_factory.mktemp("ref")
    rng = np.random.default_rng(0)
    PolicyGenerator.untrained(SPEC, preset="tiny", device="cpu").save_pretrained(root / "gen")
    recs = [PolicyRecord(rng.standard_normal(SPEC.num_params) * 0.05, t, [_traj(rng)], 1.0, {"run": t, "seed": 0, "step": i})
            for i, t in enumerate(["reach", "door-open"])]
    DatasetWriter(root / "ds", SPEC).append(recs)
    ActorBlob(SPEC, rng.standard_normal(SPEC.num_params).astype(np.float32) * 0.05, "g", "p").save(root / "actor.safetensors")
    save_trajectory(root / "prompt.npz", _traj(rng))
    write_prompts_to_bag(root / "bag_mcap", [_traj(rng), _traj(rng)], storage="mcap")
    write_prompts_to_bag(root / "bag_sqlite", [_traj(rng), _traj(rng)], storage="sqlite3")
    return root


@pytest.fixture
def w(ref, tmp_path):
    """A fresh copy of the valid inputs, to damage."""
    shutil.copytree(ref, tmp_path / "w")
    return tmp_path / "w"


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch):
    monkeypatch.delenv("MAA_DEBUG", raising=False)


def refused(capsys, argv, names, fragment=""):
    """Runs `maa argv`; asserts exit 2 and exactly one stderr line `maa: error: ...` naming `names`."""
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("maa: error: "), (rc, err[-3000:])
    for n in names if isinstance(names, (list, tuple)) else [names]:
        assert str(n) in lines[0], (n, lines[0])
    assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def st_bytes(header, payload=b""):
    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + payload


def split(path):
    b = path.read_bytes()
    n = struct.unpack("<Q", b[:8])[0]
    return json.loads(b[8:8 + n]), b[8 + n:]


def edit_json(path, fn):
    path.write_text(json.dumps(fn(json.loads(path.read_text()))))


# -- classes of bad input through the CLI ---------------------------------------------------------
def test_damaged_json_files(w, capsys):
    gj, man = w / "gen" / "generator.json", w / "ds" / "manifest.json"
    good_gen, good_man = gj.read_text(), man.read_text()
    gen_cases = [("{not json", "not valid JSON"), ("[1, 2]", "expected a JSON object"),
                 (json.dumps({k: v for k, v in json.loads(good_gen).items() if k != "spec"}), "missing key 'spec'"),
                 (json.dumps({**json.loads(good_gen), "spec": "metaworld-sac"}), "spec: expected a mapping"),
                 (json.dumps({**json.loads(good_gen), "config": 3}), "expected a mapping"),
                 (json.dumps({**json.loads(good_gen), "obs_dim": "x"}), "'obs_dim': expected an integer"),
                 ('{"a": ' * 5000 + "1" + "}" * 5000, "nested 5000 deep")]
    for text, frag in gen_cases:
        gj.write_text(text)
        refused(capsys, ["info", w / "gen"], gj, frag)
    gj.write_bytes(bytes(range(256)))
    refused(capsys, ["generate", w / "gen", "--prompt", w / "prompt.npz", "--out", w / "o"], gj, "not UTF-8")
    gj.write_text(good_gen)
    for fn, frag in [(lambda m: {**m, "shards": 3}, "'shards': expected a list"),
                     (lambda m: {**m, "shards": [{**s, "records": "many"} for s in m["shards"]]}, "'records': expected an integer"),
                     (lambda m: {**m, "shards": [{**s, "file": "../x.safetensors"} for s in m["shards"]]}, "inside the dataset folder")]:
        man.write_text(good_man)
        edit_json(man, fn)
        refused(capsys, ["info", w / "ds"], man, frag)
    assert not (w / "o").exists()


def test_damaged_dataset_shards(w, capsys):
    shard = next((w / "ds").glob("shard-*.safetensors"))
    h, data = split(shard)
    recs = json.loads(h["__metadata__"]["records"])
    # a record without 'task' (the checksum in the manifest made to match, so the content check is what refuses)
    h["__metadata__"]["records"] = json.dumps([{k: v for k, v in r.items() if k != "task"} for r in recs])
    shard.write_bytes(st_bytes(h, data))
    edit_json(w / "ds" / "manifest.json", lambda m: {**m, "shards": [{**s, "sha256": hashlib.sha256(shard.read_bytes()).hexdigest()} for s in m["shards"]]})
    refused(capsys, ["info", w / "ds"], shard, "missing key 'task'")
    refused(capsys, ["train", w / "ds", "--out", w / "g2", "--preset", "tiny", "--no-progress"], shard, "missing key 'task'")
    shard.write_bytes(st_bytes({"params": {"dtype": "F32", "shape": [1 << 21, 1 << 21], "data_offsets": [0, 1 << 44]}}))
    refused(capsys, ["info", w / "ds"], shard)  # checksum mismatch: a shard is verified before it is used


def test_tampered_shard_is_refused_before_training_generation_or_evaluation(w, capsys):
    shard = next((w / "ds").glob("shard-*.safetensors"))
    b = bytearray(shard.read_bytes())
    b[-100] ^= 0x01  # one parameter bit: a valid file whose checksum no longer matches the manifest
    shard.write_bytes(bytes(b))
    for argv in (["train", w / "ds", "--out", w / "g2", "--preset", "tiny", "--no-progress", "--accelerator", "cpu"],
                 ["generate", w / "gen", "--dataset", w / "ds", "--out", w / "o"],
                 ["eval", w / "gen", "--dataset", w / "ds", "--configs", "1", "--max-steps", "5", "--workers", "1",
                  "--no-novelty", "--no-progress", "--out", w / "ev"]):
        refused(capsys, argv, shard, "checksum mismatch")
    assert not (w / "g2").exists() and not (w / "o").exists()


def test_damaged_actor_files(w, capsys):
    h, data = split(w / "actor.safetensors")
    md = h["__metadata__"]
    spec = json.loads(md["spec"])
    zero = json.loads(json.dumps(spec))
    zero.update(obs_dim=0, act_dim=0)
    for l in zero["trunk"] + [hd[1] for hd in zero["heads"]]:
        l.update(in_dim=0, out_dim=0)
    neg = json.loads(json.dumps(spec))
    neg["trunk"][0]["out_dim"] = -128
    cases = {
        "nested": (st_bytes(b'{"a":' * 100000 + b"1" + b"}" * 100000, data), "nested"),
        "nested-spec": (st_bytes({**h, "__metadata__": {**md, "spec": "[" * 100000 + "]" * 100000}}, data), "nested"),
        "bf16": (st_bytes({**h, "params": {**h["params"], "dtype": "BF16", "shape": [len(data) // 2]}}, data), "dtype 'BF16'"),
        "extra": (st_bytes({**h, "__metadata__": {**md, "extra": "{"}}, data), "'extra' metadata: not valid JSON"),
        "terabytes": (st_bytes({**h, "params": {"dtype": "F32", "shape": [1 << 40], "data_offsets": [0, 1 << 42]}}, data), "data_offsets"),
        "zero-params": (st_bytes({"__metadata__": {**md, "spec": json.dumps(zero), "checksum": hashlib.sha256(b"").hexdigest()},
                                  "params": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}}), "obs_dim is 0"),
        "negative-dim": (st_bytes({**h, "__metadata__": {**md, "spec": json.dumps(neg)}}, data), "is -128"),
        "empty": (b"", "too short"),
    }
    for name, (blob, frag) in cases.items():
        p = w / f"{name}.safetensors"
        p.write_bytes(blob)
        refused(capsys, ["info", p], p, frag)
    refused(capsys, ["export", w / "nested.safetensors", "--out", w / "e"], w / "nested.safetensors")
    assert not (w / "e").exists()


def test_damaged_prompt_files(w, capsys):
    hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000, 39), }"
    hdr += " " * (-(len(hdr) + 11) % 64) + "\n"
    with zipfile.ZipFile(w / "huge.npz", "w") as z:  # a states array claiming 156 TB
        z.writestr("states.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + b"\0" * 64)
    (w / "empty.npz").write_bytes(b"")
    (w / "trunc.npz").write_bytes((w / "prompt.npz").read_bytes()[:-200])
    np.savez(w / "obj.npz", states=np.array([{"a": 1}] * 40, dtype=object), actions=np.zeros((40, 4)))
    for name, frag in [("huge", "the limit is"), ("empty", "not a readable"), ("trunc", "not a readable"), ("obj", "no pickled")]:
        p = w / f"{name}.npz"
        refused(capsys, ["generate", w / "gen", "--prompt", p, "--out", w / "o"], p, frag)
    assert not (w / "o").exists()


def _first_value_offset(bag_file, ref_bag):
    """Offset of the first prompt's float data in a bag file (found by content)."""
    (_, t0), = read_prompts_from_bag(ref_bag)[:1]
    raw = bag_file.read_bytes()
    off = raw.find(t0.states[0, :4].astype(np.float32).tobytes())
    assert off > 0
    return off


def test_damaged_bags(w, ref, capsys):
    gen_argv = lambda bag: ["generate", w / "gen", "--bag", bag, "--out", w / "o"]  # noqa: E731
    mcap = next((w / "bag_mcap").glob("*.mcap"))
    good = mcap.read_bytes()
    # message bytes changed: the digest write_prompts_to_bag stores in metadata.yaml no longer matches
    off = _first_value_offset(mcap, ref / "bag_mcap")
    b = bytearray(good)
    b[off] ^= 0x01
    mcap.write_bytes(bytes(b))
    refused(capsys, gen_argv(w / "bag_mcap"), w / "bag_mcap", "do not match the checksum")
    # a bag without that digest (recorded by another tool): an exponent bit flip is refused as implausible
    meta = w / "bag_mcap" / "metadata.yaml"
    meta.write_text(meta.read_text().replace("maa.sha256:/maa/prompt", "other"))
    b = bytearray(good)
    b[off + 3] ^= 0x40
    mcap.write_bytes(bytes(b))
    refused(capsys, gen_argv(w / "bag_mcap"), "bag_mcap", "implausible")
    meta.write_bytes(bytes(range(256)))
    refused(capsys, gen_argv(w / "bag_mcap"), meta, "not UTF-8")
    meta.unlink()
    refused(capsys, gen_argv(w / "bag_mcap"), w / "bag_mcap", "no metadata.yaml")
    db = next((w / "bag_sqlite").glob("*.db3"))
    raw = bytearray(db.read_bytes())
    page = struct.unpack(">H", raw[16:18])[0]
    for at in range(page, len(raw), page):  # every b-tree page header after the first page overwritten
        raw[at:at + 8] = b"\xff" * 8
    db.write_bytes(bytes(raw))
    refused(capsys, gen_argv(w / "bag_sqlite"), db, "sqlite3")
    assert not (w / "o").exists()


def test_sqlite_bag_with_changed_message_is_refused(w, capsys):
    db = next((w / "bag_sqlite").glob("*.db3"))
    con = sqlite3.connect(db)
    (mid, data), = con.execute("SELECT id, data FROM messages ORDER BY id LIMIT 1").fetchall()
    d = bytearray(data)
    d[len(d) // 2] ^= 0x01
    con.execute("UPDATE messages SET data = ? WHERE id = ?", (bytes(d), mid))
    con.commit()
    con.close()
    refused(capsys, ["generate", w / "gen", "--bag", w / "bag_sqlite", "--out", w / "o"], "bag_sqlite", "do not match the checksum")


def test_config_values_of_the_wrong_type_or_range(w, capsys):
    (w / "bin.yaml").write_bytes(bytes(range(256)) * 4)
    refused(capsys, ["train", w / "ds", "--out", w / "g2", "--config", w / "bin.yaml"], w / "bin.yaml", "not UTF-8")
    base = ["train", w / "ds", "--out", w / "g2", "--preset", "tiny", "--no-progress"]
    for kv, frag in [("train_diffusion.steps=-1", "out of range"), ("diffusion.beta_schedule=bogus", "choose from"),
                     ("autoencoder.token_dim=abc", "expected an integer"), ("embedding.mode=bogus", "choose from"),
                     ("train_autoencoder.lr=[1,2]", "expected a number"), ("autoencoder.hidden_dim=1000000000", "out of range")]:
        refused(capsys, base + ["--set", kv], kv.split("=")[0].split(".")[-1], frag)
    assert not (w / "g2").exists()


def test_bad_arguments(w, ref, capsys):
    refused(capsys, ["generate", w / "gen", "--prompt", w / "prompt.npz", "--out", w / "o", "--device", "bogus"], "bogus", "--device")
    refused(capsys, ["generate", w / "gen", "--prompt", w / "prompt.npz", "--out", w / "prompt.npz"], w / "prompt.npz", "not a folder")
    refused(capsys, ["export", w / "actor.safetensors", "--out", w / "prompt.npz"], w / "prompt.npz", "not a folder")
    refused(capsys, ["train", w / "ds", "--out", w / "prompt.npz", "--preset", "tiny"], w / "prompt.npz", "not a folder")
    refused(capsys, ["eval", w / "gen", "--prompt", w / "prompt.npz", "--task", "reach", "--out", w / "ev", "--device", "bogus"], "bogus")
    assert (w / "prompt.npz").read_bytes() == (ref / "prompt.npz").read_bytes() and not (w / "o").exists()


def test_nothing_partial_and_nothing_overwritten_silently(w, ref, capsys):
    # generate onto an existing actor file: refused (before generating), --force overwrites
    (w / "o").mkdir()
    mine = w / "o" / "prompt-0.safetensors"
    mine.write_bytes(b"mine")
    refused(capsys, ["generate", w / "gen", "--prompt", w / "prompt.npz", "--out", w / "o"], mine, "--force")
    assert mine.read_bytes() == b"mine"
    assert main(["generate", str(w / "gen"), "--prompt", str(w / "prompt.npz"), "--out", str(w / "o"), "--force"]) == 0
    ActorBlob.load(mine)
    # export: an existing file is not replaced; an export that cannot complete leaves nothing behind
    (w / "e").mkdir()
    (w / "e" / "actor.safetensors").write_bytes(b"mine")
    refused(capsys, ["export", w / "actor.safetensors", "--out", w / "e", "--no-torchscript"], w / "e" / "actor.safetensors", "--force")
    assert (w / "e" / "actor.safetensors").read_bytes() == b"mine"
    (w / "e" / "actor.safetensors").unlink()
    (w / "e" / "actor.pt").mkdir()
    refused(capsys, ["export", w / "actor.safetensors", "--out", w / "e"], w / "e" / "actor.pt")
    assert sorted(p.name for p in (w / "e").iterdir()) == ["actor.pt"]
    # collect with a corrupt collect.json refuses before writing anything into the root
    (w / "c").mkdir()
    (w / "c" / "collect.json").write_text("{corrupt")
    refused(capsys, ["collect", "--tasks", "reach", "--seeds", "1", "--out", w / "c", "--quiet"], w / "c" / "collect.json", "not valid JSON")
    assert sorted(p.name for p in (w / "c").iterdir()) == ["collect.json"]


def test_internal_errors_are_one_line_exit_1_and_MAA_DEBUG_shows_the_traceback(w, capsys, monkeypatch):
    import maa_core.cli.info as info

    def broken(args):
        raise RuntimeError("a bug\nover two lines")
    monkeypatch.setattr(info, "run", broken)
    assert main(["info", "metaworld-sac"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("maa: internal error: RuntimeError: a bug over two lines"), lines
    monkeypatch.setenv("MAA_DEBUG", "1")
    with pytest.raises(RuntimeError):
        main(["info", "metaworld-sac"])


def _structure(spec):
    """A spec without its names: what the actor computes."""
    return (spec.obs_dim, spec.act_dim, spec.trunk, tuple(l for _, l in spec.heads),
            [n for n, _ in spec.heads].index(spec.action_head), spec.squash)


def test_every_damaged_actor_blob_raises_only_maa_error():
    """The decoder the Go2 validator thread uses: named decoder breakers and 400 random mutations."""
    from blob_mutations import malformed_blobs, mutate

    good = ActorBlob(SPEC, np.random.default_rng(1).standard_normal(SPEC.num_params).astype(np.float32) * 0.05, "g").to_bytes()
    rng = np.random.default_rng(0)
    blobs = list(malformed_blobs(good).items()) + [mutate(good, rng) for _ in range(400)]
    want = ActorBlob.from_bytes(good)
    refused_n = 0
    for name, data in blobs:
        try:
            b = ActorBlob.from_bytes(data)
        except MaaError:
            refused_n += 1
            continue
        # what is accepted computes the same function: the parameters are checksummed, and a flip that only
        # renames the spec or a head (header text outside the checksum) leaves layers, dims and squash as they
        # were (the Go2 validator refuses a spec whose name differs from the one it runs)
        assert np.array_equal(b.params, want.params) and _structure(b.spec) == _structure(want.spec), name
    assert refused_n >= 0.9 * len(blobs), refused_n


# -- limits of the parse module -------------------------------------------------------------------
def test_json_nesting_is_refused_without_recursion():
    deep = "[" * 200000 + "]" * 200000
    assert json_depth(deep) == 200000 and json_depth('{"a": "[[[[", "b": [1]}') == 2
    with pytest.raises(MaaError, match="nested 200000 deep"):
        loads_json(deep, "x")
    with pytest.raises(MaaError, match="not UTF-8"):
        loads_json(b"\xff\xfe", "x")
    with pytest.raises(MaaError, match="x: expected JSON text, got int"):
        loads_json(7, "x")
    # the depth is computed only for texts with more openers than the limit: both sides of that shortcut
    assert loads_json("[" * 8 + "]" * 8, "x", max_depth=8) == [[[[[[[[]]]]]]]]
    with pytest.raises(MaaError, match="nested 9 deep, the limit is 8"):
        loads_json("[" * 9 + "]" * 9, "x", max_depth=8)
    assert loads_json('{"a": "' + "[" * 50 + '", "b": [1]}', "x", max_depth=8) == {"a": "[" * 50, "b": [1]}


def test_safetensors_header_asking_for_terabytes_is_refused_without_allocating(tmp_path):
    header = json.dumps({"t": {"dtype": "F32", "shape": [1 << 20, 1 << 20], "data_offsets": [0, 1 << 42]}}).encode()
    blob = struct.pack("<Q", len(header)) + header + b"\0" * 64
    tracemalloc.start()
    with pytest.raises(MaaError, match="do not lie within"):
        parse_safetensors_header(blob, len(blob), "t")
    # a header length of 2**50 is refused from the first 8 bytes: nothing more is read
    p = tmp_path / "h.safetensors"
    p.write_bytes(struct.pack("<Q", 1 << 50) + b"{}")
    with pytest.raises(MaaError, match="exceeds the limit"):
        read_safetensors_header(p)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1 << 20, peak
    # shape x dtype must equal the bytes the offsets span; unknown dtypes are refused
    for t, frag in [({"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}, "is 12 bytes"),
                    ({"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}, "dtype 'BF16'"),
                    ({"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}, "non-negative")]:
        h = json.dumps({"t": t}).encode()
        b = struct.pack("<Q", len(h)) + h + b"\0" * 16
        with pytest.raises(MaaError, match=frag):
            parse_safetensors_header(b, len(b), "t")


def test_npz_member_asking_for_terabytes_is_refused_without_allocating(tmp_path):
    hdr = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000, 1000), }"
    hdr += " " * (-(len(hdr) + 11) % 64) + "\n"
    with zipfile.ZipFile(tmp_path / "h.npz", "w") as z:
        z.writestr("states.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + b"\0" * 64)
    tracemalloc.start()
    with pytest.raises(MaaError, match="the limit is"):
        load_npz(tmp_path / "h.npz")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1 << 20, peak


def test_policy_spec_refuses_non_positive_and_absurd_dims():
    with pytest.raises(MaaError, match="obs_dim is 0"):
        PolicySpec("z", 0, 4, (Layer(0, 8),), (("mean", Layer(8, 4)),))
    with pytest.raises(MaaError, match="out_dim is -3"):
        PolicySpec("n", 4, 4, (Layer(4, -3),), (("mean", Layer(-3, 4)),))
    with pytest.raises(MaaError, match="exceeds the limit"):  # refused before any tensor is built
        PolicySpec("big", 1 << 19, 4, (Layer(1 << 19, 1 << 19),), (("mean", Layer(1 << 19, 4)),))
    with pytest.raises(MaaError, match="expected an integer"):
        PolicySpec.from_dict({**SPEC.to_dict(), "obs_dim": "39"})


# one pytest-xdist worker runs this file: its module fixtures are built once
pytestmark = pytest.mark.xdist_group("test_bad_input")
