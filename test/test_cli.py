"""The `maa` CLI end to end (train -> generate -> export -> info), DDP on 2 CPU processes, and bad input."""
import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from maa_core.dataset import DatasetWriter, PolicyRecord
from maa_core.trajectory import Trajectory, save_trajectory
from toy_policies import SPEC, make_records

FAST = ["--preset", "tiny", "--no-progress", "--set", "train_autoencoder.steps=20", "--set", "train_embedding.steps=20",
        "--set", "train_diffusion.steps=20", "--set", "embedding.n_steps=20"]


def maa(*args, check=True, cmd=None):
    p = subprocess.run(cmd or [sys.executable, "-m", "maa_core", *map(str, args)], capture_output=True, text=True,
                       timeout=600, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if check:
        assert p.returncode == 0, p.stderr[-3000:]
    return p


@pytest.fixture(scope="module")
def toy_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds")
    params, trajs, task_of = make_records(tasks=("A", "B"), seeds=range(1), traj_per_ckpt=1)
    recs = [PolicyRecord(p, task_of[i], [t for j, t in trajs if j == i], 1.0, {"run": "toy", "seed": 0, "step": i})
            for i, p in enumerate(params)]
    DatasetWriter(root / "data", SPEC).append(recs)
    save_trajectory(root / "prompt.npz", trajs[0][1])
    return root


@pytest.fixture(scope="module")
def trained(toy_dataset):
    out = toy_dataset / "gen"
    maa("train", toy_dataset / "data", "--out", out, *FAST)
    return out


def test_train_generate_export_info(trained, toy_dataset, tmp_path):
    maa("generate", trained, "--prompt", toy_dataset / "prompt.npz", "-k", "3", "--out", tmp_path / "actors")
    files = sorted((tmp_path / "actors").glob("*.safetensors"))
    assert len(files) == 3
    p = maa("export", files[0], "--out", tmp_path / "exp")
    assert (tmp_path / "exp" / "actor.pt").is_file() and "torchscript" in p.stdout
    assert "spec metaworld-sac" in maa("info", files[0]).stdout
    assert "2 checkpoints" not in maa("info", toy_dataset / "data").stdout  # counts are real
    assert "metaworld-sac" in maa("info", trained).stdout
    # prompts straight from a dataset
    maa("generate", trained, "--dataset", toy_dataset / "data", "--limit", "2", "--out", tmp_path / "a2")
    assert len(list((tmp_path / "a2").glob("*.safetensors"))) == 2


def test_resume_skips_finished_stages(trained, toy_dataset):
    p = maa("train", toy_dataset / "data", "--out", trained, *FAST)
    assert "max_steps" not in p.stderr + p.stdout  # nothing retrained
    # other settings into the same run directory: refused in one line, not resumed from the other run
    p = maa("train", toy_dataset / "data", "--out", trained, *FAST, "--set", "train_diffusion.steps=21", check=False)
    err = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(err) == 1 and "holds a training run of other data or settings" in err[0], err


@pytest.mark.slow
def test_ddp_two_cpu_processes(toy_dataset, tmp_path):
    out = tmp_path / "gen_ddp"
    torchrun = Path(sys.executable).with_name("torchrun")
    p = maa(cmd=[str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "maa_core", "train",
                 str(toy_dataset / "data"), "--out", str(out), "--accelerator", "cpu", "--devices", "2",
                 "--strategy", "ddp", *FAST])
    assert (out / "generator.json").is_file()
    log = p.stdout + p.stderr
    assert "MEMBER: 2/2" in log, log[-2000:]


def bad(args, msg, tmp_path, in_process=True):
    """The CLI refuses `args` with exit code 2 and one line naming `msg`. In-process by default (the same
    `main`, no interpreter start per case); the first case goes through a real process exit."""
    if in_process:
        from maa_core.cli import main
        err_buf = io.StringIO()
        with contextlib.redirect_stderr(err_buf), contextlib.redirect_stdout(io.StringIO()):
            try:
                rc = main([str(a) for a in args])
            except SystemExit as e:  # argparse's own refusals
                rc = e.code
        p = subprocess.CompletedProcess(args, rc, "", err_buf.getvalue())
    else:
        p = maa(*args, check=False)
    assert p.returncode == 2, (p.returncode, p.stderr[-2000:])
    err = p.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("maa: error:") and msg in err[0], p.stderr[-2000:]


def test_bad_input_exit_2(trained, toy_dataset, tmp_path):
    bad(["train", tmp_path / "nope", "--out", tmp_path / "g", "--no-progress"], "no manifest.json", tmp_path, in_process=False)
    empty = tmp_path / "empty"
    DatasetWriter(empty, SPEC)
    bad(["train", empty, "--out", tmp_path / "g", "--no-progress"], "empty", tmp_path)
    bad(["train", toy_dataset / "data", "--out", tmp_path / "g", "--preset", "huge"], "unknown preset", tmp_path)
    bad(["train", toy_dataset / "data", "--out", tmp_path / "g", "--set", "autoencoder.nope=1"], "unknown key", tmp_path)
    bad(["train", toy_dataset / "data", "--out", tmp_path / "g", "--prompts", toy_dataset / "data", "--no-progress"],
        "needs diffusion_pairing 'run'", tmp_path)
    np.savez(tmp_path / "p.npz", states=np.zeros((40, 38)), actions=np.zeros((40, 4)))
    bad(["generate", trained, "--prompt", tmp_path / "p.npz", "--out", tmp_path / "o"], "states have 38 dims, expected 39", tmp_path)
    np.savez(tmp_path / "n.npz", states=np.full((40, 39), np.nan), actions=np.zeros((40, 4)))
    bad(["generate", trained, "--prompt", tmp_path / "n.npz", "--out", tmp_path / "o"], "NaN", tmp_path)
    (tmp_path / "junk.npz").write_bytes(b"junk")
    bad(["generate", trained, "--prompt", tmp_path / "junk.npz", "--out", tmp_path / "o"], "not a readable .npz", tmp_path)
    bad(["generate", tmp_path, "--prompt", tmp_path / "p.npz", "--out", tmp_path / "o"], "not a generator folder", tmp_path)
    (tmp_path / "a.safetensors").write_bytes(b"\x00" * 20)
    bad(["export", tmp_path / "a.safetensors", "--out", tmp_path / "e"], "not a valid safetensors blob", tmp_path)
    # a dataset whose spec differs from the generator's
    other = tmp_path / "robo"
    rng = np.random.default_rng(0)
    DatasetWriter(other, "robosuite-sac").append([PolicyRecord(rng.standard_normal(23952), "door",
        [Trajectory(rng.standard_normal((40, 41)), rng.standard_normal((40, 8)))], 1.0, {"seed": 0})])
    bad(["generate", trained, "--dataset", other, "--out", tmp_path / "o"], "states have 41 dims, expected 39", tmp_path)
    assert not (tmp_path / "o").exists()  # nothing written on bad input


# one pytest-xdist worker runs this file: its module fixtures are built once
pytestmark = pytest.mark.xdist_group("test_cli")
