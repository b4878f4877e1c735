"""Collection: the CPU path qualifies on reach, SAC learns, 1 vs 2 workers agree, kill -9 resumes, bad input."""
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from maa_core.collect import Job, load_recipe, plan_jobs, prepare_root, run_job, run_jobs
from maa_core.dataset import DatasetWriter, PolicyDataset
from maa_core.envs import evaluate_actor, training_config
from maa_core.errors import MaaError
from maa_core.specs import get_spec

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "config" / "dataset_tiny.yaml"


def _records(root: Path) -> dict:
    out = {}
    for kind in ("checkpoints", "prompts"):
        ds = PolicyDataset(root / kind, verify=True)
        keys = [m["key"] for m in ds.meta()]
        assert len(keys) == len(set(keys)), f"duplicate keys in {kind}"
        for r in ds:
            out[(kind, r.key)] = r
    return out


def test_distilled_checkpoint_qualifies_on_reach_and_reloads(tmp_path):
    job = Job("reach", 0, "distill", checkpoints=2, prompts=2, cfg=json.dumps({"demos": 2, "prompt_steps": [0, 20]}))
    prepare_root(tmp_path, [job])
    s = run_job(job, str(tmp_path))
    assert s["checkpoints"] == 2 and s["prompts"] == 2 and s["updates"] <= 2000  # a small budget
    ck = PolicyDataset(tmp_path / "checkpoints", verify=True)
    pr = PolicyDataset(tmp_path / "prompts", verify=True)
    assert len(ck) == 2 and len(pr) == 2 and ck.spec.name == "metaworld-sac"
    rec = ck[0]
    assert rec.task == "reach" and rec.success_rate == 1.0
    assert {"run", "seed", "step", "method"} <= set(rec.source) and rec.source["method"] == "distill"
    t = rec.trajectories[0]
    assert len(t) == 500 and t.first_success >= 0
    # the reloaded checkpoint reproduces its success and its trajectory on the run's configuration
    actor = get_spec("metaworld-sac").unflatten(rec.params)
    res = evaluate_actor(actor, "reach", configs=[training_config("reach", 0)])
    assert res.success_rate == 1.0
    np.testing.assert_array_equal(res.trajectories[0].states, t.states)
    np.testing.assert_array_equal(res.trajectories[0].success, t.success)
    assert all(len(r.trajectories[0]) == 500 for r in pr)  # prompts: full episodes, success flags kept
    assert pr[0].source["step"] == 0


@pytest.mark.slow
def test_sac_return_rises_on_reach():
    from maa_core.collect.sac import sac_run

    cfg = dict(total_steps=1500, start_steps=300, update_after=300, eval_every=300, max_episode_steps=100,
               batch_size=128, prompt_steps=600)
    prompts = []
    s = sac_run("reach", 0, 5, 2, cfg, None, prompts.append)
    tr = [r for _, r in s["test_returns"]]
    assert len(tr) >= 4
    assert max(tr[1:]) > tr[0] * 1.2, tr  # the test return rises measurably from the untrained actor's
    assert len(prompts) == 2 and len(prompts[0].trajectories[0]) == 100


@pytest.mark.slow
def test_two_workers_give_the_same_records_as_one(tmp_path):
    jobs = plan_jobs(load_recipe(TINY))
    run_jobs(jobs, tmp_path / "w1", workers=1)
    run_jobs(jobs, tmp_path / "w2", workers=2)
    a, b = _records(tmp_path / "w1"), _records(tmp_path / "w2")
    assert set(a) == set(b) and len([k for k in a if k[0] == "checkpoints"]) == 4
    for k in a:
        np.testing.assert_array_equal(a[k].params, b[k].params)
        assert a[k].source == b[k].source and a[k].success_rate == b[k].success_rate
        for x, y in zip(a[k].trajectories, b[k].trajectories):
            np.testing.assert_array_equal(x.states, y.states)
            np.testing.assert_array_equal(x.actions, y.actions)
            np.testing.assert_array_equal(x.success, y.success)


def test_a_failing_job_stops_the_queue_with_its_error(tmp_path):
    """One job fails (its base student is missing): the error comes back at once, the queued jobs are
    dropped instead of running silently first, and a fixed rerun collects them."""
    cfg = {"demos": 2, "prompt_steps": [0]}
    bad = Job("button-press", 0, "distill", 1, 1, json.dumps({**cfg, "base": str(tmp_path / "missing.npy")}))
    good = [Job("reach", s, "distill", 1, 1, json.dumps(cfg)) for s in range(1, 17)]
    root = tmp_path / "ds"
    with pytest.raises(MaaError, match="base student .*missing.npy not found"):
        run_jobs([bad, *good], root, workers=2)
    # the jobs already running or handed to a worker finish (2-4 of them, more on a loaded machine, where the
    # failing worker starts late); the queue behind them is dropped
    assert len(list((root / "jobs").glob("*.json"))) <= 8
    run_jobs(good, root, workers=2)
    assert len(list((root / "jobs").glob("*.json"))) == 16


@pytest.mark.slow
def test_kill9_mid_collection_then_resume(tmp_path):
    out = tmp_path / "ds"
    cmd = [sys.executable, "-m", "maa_core", "collect", "--tasks", "reach", "--seeds", "3",
           "--checkpoints-per-run", "3", "--prompts-per-run", "1", "--set", "demos=2", "--out", str(out), "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.Popen(cmd, cwd=REPO, env=env, start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    # kill once the first job is merged and the second has staged some records
    while time.time() < deadline and p.poll() is None:
        merged = list(out.glob("jobs/*.json"))
        staged = list(out.glob(".staging/*/checkpoints/shard-*.safetensors"))
        if merged and staged:
            break
        time.sleep(0.05)
    assert p.poll() is None, "collection finished before it could be killed"
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    assert list(out.glob(".staging/*/checkpoints/shard-*.safetensors"))  # killed mid-job, with staged records
    # what was there survives and verifies
    before = _records(out)
    assert len([k for k in before if k[0] == "checkpoints"]) >= 3
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    after = _records(out)
    assert set(before) <= set(after)
    ck = sorted(k[1] for k in after if k[0] == "checkpoints")
    assert len(ck) == 9 and len(set(ck)) == 9
    assert not (out / ".staging").exists()
    for k in before:
        np.testing.assert_array_equal(before[k].params, after[k].params)


def test_a_kill_after_the_marker_leaves_no_stage_behind(tmp_path):
    # SIGKILL between a job's done-marker and its cleanup: the rerun skips the job and drops its stage
    job = Job("reach", 0, "distill", 1, 0)
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / f"{job.id}.json").write_text('{"written": {"checkpoints": 1, "prompts": 0}}')
    (tmp_path / ".staging" / job.id / "checkpoints").mkdir(parents=True)
    (tmp_path / ".staging" / job.id / "checkpoints" / "shard-00000.safetensors").write_bytes(b"merged")
    other = tmp_path / ".staging" / "distill-reach-s1"
    other.mkdir()
    assert run_job(job, str(tmp_path))["skipped"]
    assert not (tmp_path / ".staging" / job.id).exists() and other.exists()  # another job's stage stays
    other.rmdir()
    assert run_job(job, str(tmp_path))["skipped"] and not (tmp_path / ".staging").exists()


def test_bad_input_and_full_disk(tmp_path, monkeypatch, capsys):
    from maa_core.cli import main

    assert main(["collect", "--tasks", "window-opn", "--out", str(tmp_path / "x")]) == 2
    assert "unknown MetaWorld task 'window-opn'" in capsys.readouterr().err
    with pytest.raises(MaaError, match="unknown method"):
        plan_jobs({"groups": [{"tasks": "reach", "method": "ppo", "checkpoints_per_run": 1}]})
    with pytest.raises(MaaError, match="unknown distill settings"):
        plan_jobs({"groups": [{"tasks": "reach", "checkpoints_per_run": 1, "distill": {"lr_typo": 1}}]})
    # a dataset directory owned by another spec
    DatasetWriter(tmp_path / "other" / "checkpoints", "robosuite-sac")
    job = Job("reach", 0, "distill", 1, 1, json.dumps({"demos": 2, "prompt_steps": [0]}))
    with pytest.raises(MaaError, match="belongs to spec 'robosuite-sac'"):
        prepare_root(tmp_path / "other", [job])
    # the same root with different hyper-parameters
    root = tmp_path / "ds"
    run_jobs([job], root)
    before = _records(root)
    job2 = Job("reach", 1, "distill", 1, 1, json.dumps({"demos": 3, "prompt_steps": [0]}))
    with pytest.raises(MaaError, match="different hyper-parameters"):
        prepare_root(root, [job2])
    # a full disk: a clear error, nothing already written lost, a rerun completes
    job3 = Job("reach", 1, "distill", 1, 1, job.cfg)
    import maa_core.dataset as dsm

    real = dsm._fsync_write

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(dsm, "_fsync_write", full)
    with pytest.raises(MaaError, match="disk full"):
        run_jobs([job, job3], root)
    monkeypatch.setattr(dsm, "_fsync_write", real)
    mid = _records(root)
    assert set(before) <= set(mid)
    run_jobs([job, job3], root)
    assert len([k for k in _records(root) if k[0] == "checkpoints"]) == 2


@pytest.mark.slow
def test_ray_runs_the_same_job_code(tmp_path):
    pytest.importorskip("ray")
    import ray

    job = Job("reach-wall", 0, "distill", 0, 2, json.dumps({"demos": 1, "prompt_steps": [0, 20]}))
    run_jobs([job], tmp_path / "inline")
    try:
        run_jobs([job], tmp_path / "ray", ray_address="local")
    finally:
        ray.shutdown()
    a, b = _records(tmp_path / "inline"), _records(tmp_path / "ray")
    assert set(a) == set(b) and len(a) == 2
    for k in a:
        np.testing.assert_array_equal(a[k].params, b[k].params)
