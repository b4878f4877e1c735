"""PolicyGenerator: generation, persistence, determinism, bad input."""
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from maa_core.errors import MaaError
from maa_core.pipeline import PolicyGenerator
from maa_core.trajectory import Trajectory


@pytest.fixture(scope="module")
def gen():
    torch.manual_seed(0)
    return PolicyGenerator.untrained("metaworld-sac", preset="tiny", device="cpu")


def prompt(T=40, seed=0):
    rng = np.random.default_rng(seed)
    return Trajectory(rng.standard_normal((T, 39)), rng.uniform(-1, 1, (T, 4)), np.arange(T) > 30)


def test_generate_shapes_and_actors(gen):
    out = gen.generate([prompt(), prompt(seed=1)], num_policies=3, seed=0)
    assert out.params.shape == (2, 3, 22664) and out.params.dtype == np.float32
    a = out.actor(1, 2)
    assert a(torch.zeros(5, 39)).shape == (5, 4)
    # different samples for the same prompt differ
    assert not np.allclose(out.params[0, 0], out.params[0, 1])


def test_deterministic_under_seed(gen):
    a = gen.generate(prompt(), num_policies=2, seed=7).params
    b = gen.generate(prompt(), num_policies=2, seed=7).params
    c = gen.generate(prompt(), num_policies=2, seed=8).params
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_save_load_round_trip(gen, tmp_path):
    gen.save_pretrained(tmp_path / "g")
    g2 = PolicyGenerator.from_pretrained(tmp_path / "g", device="cpu")
    assert g2.spec == gen.spec and g2.config == gen.config
    assert np.array_equal(g2.generate(prompt(), 4, seed=3).params, gen.generate(prompt(), 4, seed=3).params)


def test_float16_shards_round_trip(gen, tmp_path):
    """The shipping copy: every file under the shard limit, normalizers exact, generation within float16 error;
    a missing shard is named; re-saving in one file removes the shards."""
    limit = 3 * 2 ** 20
    d = gen.save_pretrained(tmp_path / "g", dtype=torch.float16, max_shard_bytes=limit)
    shards = sorted(d.glob("*-of-*.safetensors"))
    assert len(shards) > 3 and all(f.stat().st_size <= limit + 4096 for f in shards)  # + safetensors header
    assert not (d / "autoencoder.safetensors").exists() and (d / "autoencoder.safetensors.index.json").is_file()
    assert load_file(str(shards[0])) and all(v.dtype in (torch.float16, torch.float32) for v in load_file(str(shards[0])).values())
    g2 = PolicyGenerator.from_pretrained(d, device="cpu")
    assert torch.equal(g2.autoencoder.param_norm.mean, gen.autoencoder.param_norm.mean)
    assert g2.autoencoder.encoders[next(iter(g2.autoencoder.encoders))][0].weight.dtype == torch.float32
    a, b = gen.generate(prompt(), 4, seed=3).params, g2.generate(prompt(), 4, seed=3).params
    assert not np.array_equal(a, b) and np.abs(a - b).max() < 0.02 * np.abs(a).max()
    gone = next(f for f in shards if f.name.startswith("unet-"))
    gone.unlink()
    with pytest.raises(MaaError, match=f"{gone.name}: missing"):
        PolicyGenerator.from_pretrained(d)
    gen.save_pretrained(d)
    assert not list(d.glob("*-of-*.safetensors")) and not list(d.glob("*.index.json"))
    assert np.array_equal(PolicyGenerator.from_pretrained(d, device="cpu").generate(prompt(), 4, seed=3).params, a)


@pytest.mark.parametrize("bad,msg", [
    (Trajectory(np.zeros((40, 38)), np.zeros((40, 4))), "states have 38 dims, expected 39"),
    (Trajectory(np.zeros((40, 39)), np.zeros((40, 3))), "actions have 3 dims, expected 4"),
    (Trajectory(np.full((40, 39), np.nan), np.zeros((40, 4))), "states contain NaN"),
    (Trajectory(np.zeros((40, 39)), np.full((40, 4), np.inf)), "actions contain NaN or Inf"),
    (Trajectory(np.zeros((3, 39)), np.zeros((3, 4))), "needs at least 10"),
])
def test_bad_prompts(gen, bad, msg):
    with pytest.raises(MaaError, match=msg):
        gen.generate(bad)


def test_bad_generator_folders(gen, tmp_path):
    with pytest.raises(MaaError, match="no such generator folder"):
        PolicyGenerator.from_pretrained(tmp_path / "missing")
    d = gen.save_pretrained(tmp_path / "g")
    # truncated weights
    p = d / "unet.safetensors"
    p.write_bytes(p.read_bytes()[:100])
    with pytest.raises(MaaError, match="unet.safetensors: not a readable safetensors file"):
        PolicyGenerator.from_pretrained(d)
    # NaN weights
    d = gen.save_pretrained(tmp_path / "g2")
    sd = load_file(str(d / "autoencoder.safetensors"))
    k = next(iter(sd))
    sd[k][...] = float("nan")
    save_file(sd, str(d / "autoencoder.safetensors"))
    with pytest.raises(MaaError, match="contains NaN or Inf"):
        PolicyGenerator.from_pretrained(d)
    # config that does not match the weights
    d = gen.save_pretrained(tmp_path / "g3")
    meta = json.loads((d / "generator.json").read_text())
    meta["config"]["autoencoder"]["token_dim"] = 48
    (d / "generator.json").write_text(json.dumps(meta))
    with pytest.raises(MaaError, match="config expects"):
        PolicyGenerator.from_pretrained(d)
    # missing key
    del meta["spec"]
    (d / "generator.json").write_text(json.dumps(meta))
    with pytest.raises(MaaError, match="missing key 'spec'"):
        PolicyGenerator.from_pretrained(d)


# one pytest-xdist worker runs this file: its module fixtures are built once
pytestmark = pytest.mark.xdist_group("test_pipeline")
