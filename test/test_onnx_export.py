"""ONNX export of generated actors (`maa export --onnx`, maa_core/onnx_export.py): the ONNX model
computes what the torch actor computes (onnxruntime and onnx's reference evaluator), on random
inputs and on a recorded Go2 observation; the CLI writes it atomically and never overwrites."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from maa_core.actor_io import ActorBlob
from maa_core.onnx_export import actor_onnx_model, export_onnx, run_onnx
from maa_core.resources import package_path
from maa_core.specs import get_spec

REPO = Path(__file__).resolve().parents[1]
TOL = 1e-4  # float32 with another summation order, relative to max(1, |action|): measured <= 1.3e-6 on the
            # 1.2 M-parameter go2-wtw body, 1.0e-5 absolute on go2-walk actions of magnitude 9, 1.6e-5 on another
            # x86 CPU (other BLAS kernels); an export mistake (a layer, an activation, a scale) is off by O(0.1-1)


def close(got, ref) -> bool:
    return bool((np.abs(got - ref) <= TOL * np.maximum(1.0, np.abs(ref))).all())
ENGINES = ("onnxruntime", "reference")


@pytest.fixture(scope="module")
def generated():
    """Two actors the shipped go2-walk generator makes from the shipped prompt bag."""
    from maa_core.pipeline import PolicyGenerator
    from maa_core.prompts import read_prompts_from_bag

    gen = PolicyGenerator.from_pretrained(package_path("models", "go2-walk"), device="cpu")
    ((pid, prompt),) = read_prompts_from_bag(package_path("bags", "go2-walk"))
    out = gen.generate(prompt, num_policies=2, seed=0)
    blobs = [ActorBlob(gen.spec, out.params[0, k], generation_id=f"test-{k}", prompt_id=pid) for k in range(2)]
    return {"blobs": blobs, "prompt": prompt}


@pytest.fixture(scope="module")
def recorded_observation(generated, shared_dir):
    """The actor input the Go2 controller builds, from recorded steps: the last 30 observations of
    the shipped bag (oldest first) and the walk-these-ways adaptation module's latent of them."""
    from maa_core.go2.wtw import load_wtw_run

    run = load_wtw_run(shared_dir / "wtw")
    c = run.config
    hist = torch.from_numpy(generated["prompt"].states[-c.history_len:].astype(np.float32).reshape(1, -1))
    with torch.no_grad():
        latent = run.adaptation(hist)
    x = torch.cat([hist, latent], dim=1).numpy()
    assert x.shape == (1, c.actor_in_dim) and np.isfinite(x).all()
    return x


def _torch_actions(blob, x):
    with torch.no_grad():
        return blob.actor().eval()(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("engine", ENGINES)
def test_generated_actor_onnx_matches_torch(generated, recorded_observation, engine):
    blob = generated["blobs"][0]
    model = actor_onnx_model(blob)
    r = np.random.default_rng(0)
    for x in (r.normal(size=(64, blob.spec.obs_dim)).astype(np.float32), recorded_observation):
        ref = _torch_actions(blob, x)
        got = run_onnx(model, x, engine)
        assert got.shape == ref.shape == (len(x), blob.spec.act_dim)
        assert close(got, ref), (engine, np.abs(got - ref).max())
    # the two generated actors differ, and so do their ONNX models' actions (the weights are in the graph)
    other = run_onnx(actor_onnx_model(generated["blobs"][1]), recorded_observation, engine)
    assert np.abs(other - run_onnx(model, recorded_observation, engine)).max() > 1e-3


@pytest.mark.parametrize("spec_name", ["metaworld-sac", "go2-wtw"])
def test_every_builtin_layout_exports(spec_name):
    """Two heads, ELU/ReLU, tanh squash (SAC actors); the 1.2 M-parameter WTW body."""
    spec = get_spec(spec_name)
    r = np.random.default_rng(1)
    blob = ActorBlob(spec, (r.normal(size=spec.num_params) * 0.05).astype(np.float32), generation_id="g")
    x = r.normal(size=(16, spec.obs_dim)).astype(np.float32)
    got, ref = run_onnx(actor_onnx_model(blob), x), _torch_actions(blob, x)
    assert close(got, ref), np.abs(got - ref).max()
    if spec.squash == "tanh":
        assert np.abs(got).max() < 1.0


def _maa(*args):
    return subprocess.run([sys.executable, "-m", "maa_core", *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=REPO)


def test_cli_export_onnx_writes_atomically_and_never_overwrites(generated, tmp_path):
    import onnx

    blob = generated["blobs"][0]
    src = blob.save(tmp_path / "gen.safetensors")
    out = tmp_path / "export"
    r = _maa("export", src, "--out", out, "--onnx", "--no-torchscript")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["actor.onnx", "actor.safetensors", "actor.spec.json"]
    model = onnx.load(str(out / "actor.onnx"))
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["maa.checksum"] == blob.checksum and meta["maa.generation_id"] == "test-0"
    x = np.random.default_rng(2).normal(size=(4, blob.spec.obs_dim)).astype(np.float32)
    assert close(run_onnx(out / "actor.onnx", x), _torch_actions(blob, x))
    before = (out / "actor.onnx").read_bytes()
    r = _maa("export", src, "--out", out, "--onnx", "--no-torchscript")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("maa: error:") and "exists already" in lines[0], r.stderr
    assert (out / "actor.onnx").read_bytes() == before
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_export_onnx_function_refuses_to_overwrite(generated, tmp_path):
    from maa_core.errors import MaaError

    p = export_onnx(generated["blobs"][0], tmp_path / "a.onnx")
    with pytest.raises(MaaError, match="exists already"):
        export_onnx(generated["blobs"][1], p)
    export_onnx(generated["blobs"][1], p, overwrite=True)
    x = np.zeros((1, generated["blobs"][1].spec.obs_dim), np.float32)
    assert close(run_onnx(p, x), _torch_actions(generated["blobs"][1], x))
    assert sorted(q.name for q in tmp_path.iterdir()) == ["a.onnx"]


# one pytest-xdist worker runs this file: its module fixtures are built once
pytestmark = pytest.mark.xdist_group("test_onnx_export")
