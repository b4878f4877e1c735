import json
import multiprocessing as mp
import os
import signal

import numpy as np
import pytest

from maa_core.dataset import DatasetWriter, PolicyDataset, PolicyRecord
from maa_core.errors import MaaError
from maa_core.specs import get_spec
from maa_core.trajectory import Trajectory

SPEC = get_spec("metaworld-sac")


def rec(i, T=30, task="reach"):
    rng = np.random.default_rng(i)
    t = Trajectory(rng.standard_normal((T, 39)), rng.standard_normal((T, 4)), np.arange(T) > T // 2)
    return PolicyRecord(rng.standard_normal(SPEC.num_params), task, [t, t], 1.0, {"run": "r", "seed": i, "step": 5000})


def test_append_read_round_trip(tmp_path):
    w = DatasetWriter(tmp_path, SPEC)
    recs = [rec(i) for i in range(5)]
    assert w.append(recs[:3]) == 3
    assert w.append(recs[3:]) == 2
    ds = PolicyDataset(tmp_path, verify=True)
    assert len(ds) == 5 and ds.tasks() == ["reach"]
    for a, b in zip(recs, ds):
        assert np.array_equal(a.params, b.params) and a.key == b.key
        assert len(b.trajectories) == 2
        assert np.array_equal(a.trajectories[0].states, b.trajectories[0].states)
        assert b.trajectories[0].first_success == 16
    assert ds.params().shape == (5, SPEC.num_params)


def test_appending_again_skips_duplicates(tmp_path):
    w = DatasetWriter(tmp_path, SPEC)
    w.append([rec(0), rec(1)])
    assert w.append([rec(1), rec(2)]) == 1
    assert len(PolicyDataset(tmp_path)) == 3


def test_dataset_owned_by_another_spec(tmp_path):
    DatasetWriter(tmp_path, SPEC).append([rec(0)])
    with pytest.raises(MaaError, match="belongs to spec 'metaworld-sac'"):
        DatasetWriter(tmp_path, "robosuite-sac")


def test_bad_records_are_rejected_and_nothing_written(tmp_path):
    w = DatasetWriter(tmp_path, SPEC)
    w.append([rec(0)])
    bad = rec(1)
    bad.params[3] = np.nan
    with pytest.raises(MaaError, match="NaN"):
        w.append([bad])
    bad = rec(2)
    bad.trajectories[0] = Trajectory(np.zeros((5, 38)), np.zeros((5, 4)))
    with pytest.raises(MaaError, match="states have 38 dims, expected 39"):
        w.append([bad])
    assert len(PolicyDataset(tmp_path, verify=True)) == 1


def test_tampered_and_truncated_shards(tmp_path):
    DatasetWriter(tmp_path, SPEC).append([rec(0), rec(1)])
    shard = next(tmp_path.glob("shard-*.safetensors"))
    data = bytearray(shard.read_bytes())
    data[-5] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(MaaError, match="checksum mismatch"):
        PolicyDataset(tmp_path, verify=True)
    # without verify=True the checksum is checked when a shard is first used (training, evaluation)
    with pytest.raises(MaaError, match="checksum mismatch"):
        PolicyDataset(tmp_path)[0]
    with pytest.raises(MaaError, match="checksum mismatch"):
        PolicyDataset(tmp_path).params()
    shard.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(MaaError, match="checksum mismatch"):
        PolicyDataset(tmp_path)[0]
    with pytest.raises(MaaError, match="not a readable safetensors shard"):  # the writer side opens shards unverified
        DatasetWriter(tmp_path, SPEC)


def test_manifest_problems(tmp_path):
    with pytest.raises(MaaError, match="no manifest.json"):
        PolicyDataset(tmp_path)
    DatasetWriter(tmp_path, SPEC)
    man = json.loads((tmp_path / "manifest.json").read_text())
    del man["shards"]
    (tmp_path / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(MaaError, match="missing key 'shards'"):
        PolicyDataset(tmp_path)


def test_empty_dataset(tmp_path):
    DatasetWriter(tmp_path, SPEC)
    with pytest.raises(MaaError, match="empty"):
        PolicyDataset(tmp_path).params()


def _writer_loop(root, start):
    w = DatasetWriter(root, SPEC)
    i = start
    while True:
        w.append([rec(i)])
        i += 1


def test_sigkill_mid_append_never_corrupts(tmp_path):
    ctx = mp.get_context("spawn")
    DatasetWriter(tmp_path, SPEC).append([rec(0)])
    p = ctx.Process(target=_writer_loop, args=(str(tmp_path), 1))
    p.start()
    # let it write for a while, then kill it at an arbitrary point
    import time
    deadline = time.time() + 20
    while len(PolicyDataset(tmp_path)) < 6 and time.time() < deadline:
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)
    p.join()
    before = len(PolicyDataset(tmp_path, verify=True))
    assert before >= 6
    w = DatasetWriter(tmp_path, SPEC)  # recovers: drops temp files, adopts complete orphan shards
    ds = PolicyDataset(tmp_path, verify=True)
    keys = [m["key"] for m in ds.meta()]
    assert len(keys) == len(set(keys)) >= before
    assert not list(tmp_path.glob(".*.tmp"))
    w.append([rec(len(keys) + 100)])
    assert len(PolicyDataset(tmp_path, verify=True)) == len(keys) + 1
