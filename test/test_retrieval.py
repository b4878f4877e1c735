"""Retrieval as a serving mode (maa_core/serving/retrieval.py): the index in a generator folder, the
engine's `retrieve` / `auto` modes, `maa index` and `maa generate --mode`, refusals."""
import numpy as np
import pytest
import torch

from maa_core.actor_io import ActorBlob
from maa_core.cli import main
from maa_core.dataset import DatasetWriter, PolicyDataset, PolicyRecord
from maa_core.errors import MaaError
from maa_core.evaluation.baselines import retrieve
from maa_core.evaluation.sources import PromptItem
from maa_core.files import read_safetensors_header
from maa_core.pipeline import PolicyGenerator
from maa_core.serving import retrieval
from maa_core.serving.engine import Engine
from maa_core.trajectory import Trajectory, save_trajectory

SPEC = "metaworld-sac"  # 39 -> 4; token groups layer0 (5,120 values, here the shared frozen layer) and layer1
N_CKPT, T = 8, 24


def traj(seed: int) -> Trajectory:
    rng = np.random.default_rng(seed)
    return Trajectory(rng.standard_normal((T, 39)), rng.uniform(-1, 1, (T, 4)), np.arange(T) >= T // 2)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny dataset (8 checkpoints sharing layer0, 1-2 trajectories each) and an untrained generator
    whose autoencoder treats layer0 as constant, saved with its index."""
    root = tmp_path_factory.mktemp("retrieval")
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    gen = PolicyGenerator.untrained(SPEC, preset="tiny", device="cpu", **{"autoencoder.constant_groups": ["layer0"]})
    params = rng.standard_normal((N_CKPT, gen.spec.num_params)).astype(np.float32) * 0.1
    params[:, :5120] = params[0, :5120]  # the frozen first layer every run shares
    recs = [PolicyRecord(params[i], "A" if i < 4 else "B", [traj(10 * i + j) for j in range(1 + i % 2)], 1.0,
                         {"run": "toy", "seed": 0, "step": i}) for i in range(N_CKPT)]
    DatasetWriter(root / "data", SPEC).append(recs)
    gen.autoencoder.fit_param_norm(torch.as_tensor(params))  # what training does: layer0 is the mean, bit-exact
    ds = PolicyDataset(root / "data")
    gen.save_pretrained(root / "gen", retrieval_dataset=ds)
    gen.save_pretrained(root / "bare")  # the same generator, no index
    served = PolicyGenerator.from_pretrained(root / "gen", device="cpu")
    return {"root": root, "gen": served, "ds": ds, "params": params, "keys": [r.key for r in ds],
            "index": retrieval.load_index(root / "gen", served)}


def test_retrieve_returns_the_nearest_checkpoint_exactly(world, tmp_path, capsys):
    gen, idx, params = world["gen"], world["index"], world["params"]
    # only the coded parameters are stored; layer0 comes back from the generator bit for bit
    header, _, _ = read_safetensors_header(world["root"] / "gen" / retrieval.INDEX_FILE)
    assert header["params"].shape == (N_CKPT, gen.spec.num_params - 5120)
    assert np.array_equal(idx.params, params) and len(idx.cond) == sum(1 + i % 2 for i in range(N_CKPT))
    eng = Engine(gen, num_candidates=4, do_screen=False, mode="retrieve", retrieval=idx)
    for i in (0, 3, 5):  # a training prompt: its own checkpoint, exactly
        r = eng.generate(f"p{i}", traj(10 * i))
        assert np.array_equal(r.blob.params, params[i])
        assert r.blob.extra["source"] == "retrieved" and r.blob.extra["nearest_key"] == world["keys"][i]
        assert r.blob.extra["nearest_distance"] < 1e-5 and r.blob.extra["num_candidates"] == 1
    # the evaluation baseline uses the same search
    got, tasks = retrieve(gen, idx, [PromptItem("x", "B", traj(50))])
    assert np.array_equal(got[0], params[5]) and tasks == ["B"]
    # the CLI: one actor per prompt, the checkpoint's parameters
    save_trajectory(tmp_path / "p3.npz", traj(30))
    assert main(["generate", str(world["root"] / "gen"), "--prompt", str(tmp_path / "p3.npz"), "--mode", "retrieve",
                 "--out", str(tmp_path / "out")]) == 0
    assert "1 of 1 prompts retrieved" in capsys.readouterr().out
    blob = ActorBlob.load(tmp_path / "out" / "p3-0.safetensors")
    assert np.array_equal(blob.params, params[3]) and blob.extra["source"] == "retrieved"


def test_auto_switches_at_the_threshold(world):
    gen, idx = world["gen"], world["index"]
    # the default threshold: half the median distance from a row to its nearest other checkpoint
    assert idx.threshold == pytest.approx(0.5 * np.median(retrieval.neighbour_distances(idx.cond, idx.record)))
    assert 0 < idx.threshold < 2
    near = traj(20)
    near = Trajectory(near.states + 0.3 * np.random.default_rng(1).standard_normal(near.states.shape), near.actions,
                      near.success)
    d = idx.match(gen, [near])[0].distance
    assert d > 1e-4  # away from the training prompt, still nearest to checkpoint 2
    for threshold, source in ((1.01 * d, "retrieved"), (0.99 * d, "generated")):
        eng = Engine(gen, num_candidates=3, do_screen=False, mode="auto", retrieval=idx, retrieval_threshold=threshold)
        r = eng.generate("p", near)
        assert r.blob.extra["source"] == source and r.blob.extra["nearest_key"] == world["keys"][2]
        assert r.blob.extra["num_candidates"] == (1 if source == "retrieved" else 3)
        assert np.array_equal(r.blob.params, world["params"][2]) == (source == "retrieved")
    # auto embeds the prompt once: what it generates beyond the threshold is `generate` on the prompt, bit for bit
    eng = Engine(gen, num_candidates=3, do_screen=False, mode="auto", retrieval=idx, retrieval_threshold=0.99 * d)
    calls = []
    real = gen.embedding.condition_from_trajectories
    gen.embedding.condition_from_trajectories = lambda t: calls.append(1) or real(t)
    try:
        params, source = eng.candidates(near, seed=5)
    finally:
        del gen.embedding.condition_from_trajectories
    assert len(calls) == 1 and source["source"] == "generated"
    assert np.array_equal(params, gen.generate([near], num_policies=3, seed=5).params[0])
    a, b = idx.match_conditions(gen.condition([near]))[0], idx.match(gen, [near])[0]
    # the same match; the distance through another batching of the embedding differs by BLAS rounding
    assert (a.checkpoint, a.key) == (b.checkpoint, b.key) and a.distance == pytest.approx(b.distance, abs=1e-5)


class _Prefers:
    """A scorer that ranks an actor by closeness of its parameters to `target` (a stand-in for a
    rollout's verdict, so the test knows which candidate must win)."""
    zero_is_invalid = False

    def __init__(self, spec, target):
        self.spec, self.target = spec, np.asarray(target, np.float32)

    def __call__(self, actor):
        return -float(np.linalg.norm(self.spec.flatten(actor).detach().numpy() - self.target))


def test_auto_beyond_the_threshold_screens_the_nearest_checkpoint_beside_the_samples(world):
    gen, idx = world["gen"], world["index"]
    near = traj(20)
    near = Trajectory(near.states + 0.3 * np.random.default_rng(1).standard_normal(near.states.shape), near.actions,
                      near.success)
    d = idx.match(gen, [near])[0].distance
    samples = gen.generate([near], num_policies=3, seed=0).params[0]
    # the screening prefers the checkpoint: it is served, exactly, as retrieved
    eng = Engine(gen, num_candidates=3, mode="auto", retrieval=idx, retrieval_threshold=0.99 * d,
                 scorer=_Prefers(gen.spec, world["params"][2]))
    r = eng.generate("p", near)
    assert r.blob.extra["source"] == "retrieved" and r.blob.extra["num_candidates"] == 4
    assert r.blob.extra["candidate"] == 3 and np.array_equal(r.blob.params, world["params"][2])
    # it prefers a sample: that sample, as generated, the nearest checkpoint still reported
    eng = Engine(gen, num_candidates=3, mode="auto", retrieval=idx, retrieval_threshold=0.99 * d,
                 scorer=_Prefers(gen.spec, samples[1]))
    r = eng.generate("p", near)
    assert r.blob.extra["source"] == "generated" and r.blob.extra["candidate"] == 1
    assert np.array_equal(r.blob.params, samples[1]) and r.blob.extra["nearest_key"] == world["keys"][2]


def test_index_of_another_generator_is_refused(world, tmp_path, capsys):
    folder = tmp_path / "other"
    PolicyGenerator.untrained("robosuite-sac", preset="tiny", device="cpu").save_pretrained(folder)
    (folder / retrieval.INDEX_FILE).write_bytes((world["root"] / "gen" / retrieval.INDEX_FILE).read_bytes())
    with pytest.raises(MaaError, match="does not match the generator: it has spec 'metaworld-sac', the generator 'robosuite-sac'"):
        retrieval.load_index(folder, PolicyGenerator.from_pretrained(folder, device="cpu"))
    # same spec and dims, another embedding (a retrained generator): refused too, from the CLI as one line
    torch.manual_seed(1)
    retrained = tmp_path / "retrained"
    PolicyGenerator.untrained(SPEC, preset="tiny", device="cpu").save_pretrained(retrained)
    (retrained / retrieval.INDEX_FILE).write_bytes((world["root"] / "gen" / retrieval.INDEX_FILE).read_bytes())
    save_trajectory(tmp_path / "p.npz", traj(0))
    assert main(["generate", str(retrained), "--prompt", str(tmp_path / "p.npz"), "--mode", "auto",
                 "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "maa: error: --mode auto:" in err and "another embedding" in err


def test_cli_without_index_one_line_exit_2_and_maa_index(world, tmp_path, capsys):
    bare = world["root"] / "bare"
    save_trajectory(tmp_path / "p.npz", traj(0))
    assert main(["generate", str(bare), "--prompt", str(tmp_path / "p.npz"), "--mode", "retrieve",
                 "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("maa: error: --mode retrieve:") and "no retrieval index" in err
    assert not (tmp_path / "out").exists()
    # maa index builds it (float16: smaller, parameters within float16 rounding), refuses to overwrite
    assert main(["index", str(bare), "--dataset", str(world["root"] / "data"), "--dtype", "float16"]) == 0
    f16 = retrieval.load_index(bare, world["gen"])
    assert np.allclose(f16.params, world["params"], rtol=1e-3, atol=1e-4) and f16.threshold == pytest.approx(world["index"].threshold)
    size = (bare / retrieval.INDEX_FILE).stat().st_size
    assert size < 0.6 * (world["root"] / "gen" / retrieval.INDEX_FILE).stat().st_size
    capsys.readouterr()
    assert main(["index", str(bare), "--dataset", str(world["root"] / "data")]) == 2
    assert "exists already; pass --force" in capsys.readouterr().err
    assert main(["index", str(bare), "--dataset", str(world["root"] / "data"), "--force", "--threshold", "0.25"]) == 0
    assert retrieval.load_index(bare, world["gen"]).threshold == 0.25
    assert main(["generate", str(bare), "--prompt", str(tmp_path / "p.npz"), "--mode", "retrieve", "-k", "2",
                 "--out", str(tmp_path / "o2")]) == 2
    assert "one actor per prompt" in capsys.readouterr().err
    (bare / retrieval.INDEX_FILE).unlink()


def test_launch_argument_mode_reaches_the_generator_node():
    from maa_ros import launch_spec

    gen = lambda args: next(n for n in launch_spec.build("go2_generate", args) if n.name == "maa_generator")  # noqa: E731
    assert gen({"mode": "auto"}).parameters["mode"] == "auto"
    assert "mode" not in gen({}).parameters  # empty: the parameter file's (config/go2.yaml: generate)
    with pytest.raises(MaaError, match="expected one of"):
        launch_spec.build("go2_generate", {"mode": "nearest"})


# one pytest-xdist worker runs this file: its module fixtures are built once
pytestmark = pytest.mark.xdist_group("test_retrieval")
