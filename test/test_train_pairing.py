"""GeneratorConfig.diffusion_pairing: which checkpoint(s) each trajectory is paired with for the diffusion model."""
import numpy as np
import pytest
import torch

from maa_core.config import GeneratorConfig
from maa_core.dataset import DatasetWriter, PolicyDataset, PolicyRecord
from maa_core.errors import MaaError
from maa_core.pipeline import PolicyGenerator
from maa_core.train import TrainerOptions, TrainingData, train_diffusion
from maa_core.trajectory import Trajectory
from toy_policies import SPEC

CFG = GeneratorConfig.preset_named("tiny", **{"embedding.n_steps": 10, "embedding.m_states": 2})


def _traj(rng, T=12):
    return Trajectory(rng.standard_normal((T, 39)).astype(np.float32), rng.uniform(-1, 1, (T, 4)).astype(np.float32),
                      np.arange(T) >= T - 3)


def _rec(rng, run, step, kind):
    src = {"run": run, "step": step, "kind": kind} if run else {}
    return PolicyRecord(rng.standard_normal(SPEC.num_params).astype(np.float32), "t", [_traj(rng)],
                        1.0 if kind == "checkpoint" else 0.0, src, key=f"{kind}/{run}/{step}")


@pytest.fixture()
def toy_root(tmp_path):
    rng = np.random.default_rng(0)
    cks = [_rec(rng, r, s, "checkpoint") for r in ("r0", "r1") for s in (100, 200, 300)] + [_rec(rng, "", 5, "checkpoint")]
    prompts = [_rec(rng, "r0", 0, "prompt"), _rec(rng, "r0", 250, "prompt"), _rec(rng, "r1", 0, "prompt"),
               _rec(rng, "r9", 0, "prompt")]  # r9: a run without checkpoints (e.g. an unseen task)
    DatasetWriter(tmp_path / "checkpoints", SPEC).append(cks)
    DatasetWriter(tmp_path / "prompts", SPEC).append(prompts)
    return PolicyDataset(tmp_path / "checkpoints"), PolicyDataset(tmp_path / "prompts")


def _pair_set(data):
    return {(int(j), int(i)) for j, i in data.diffusion_pairs()}


def test_own_pairing_is_each_trajectory_with_its_checkpoint(toy_root):
    ck, prompts = toy_root
    data = TrainingData.from_dataset(ck, CFG)
    assert _pair_set(data) == {(j, j) for j in range(7)}
    with pytest.raises(MaaError, match="diffusion_pairing 'run'"):
        TrainingData.from_dataset(ck, CFG, prompts)
    with pytest.raises(MaaError, match="choose from"):
        TrainingData.from_dataset(ck, GeneratorConfig.preset_named("tiny", diffusion_pairing="best"))


def test_run_pairing_targets_same_run_checkpoints_at_or_after_the_step(toy_root):
    ck, prompts = toy_root
    keys = [m["key"] for m in ck.meta()]
    idx = {k.split("/", 1)[1]: i for i, k in enumerate(keys)}  # "r0/200" -> checkpoint index
    cfg = GeneratorConfig.preset_named("tiny", **{"embedding.n_steps": 10, "embedding.m_states": 2,
                                                  "diffusion_pairing": "run"})
    data = TrainingData.from_dataset(ck, cfg, prompts, exclude_runs={"r1"})
    # 7 checkpoint trajectories + prompts r0@0 and r0@250 (r1 excluded, r9 has no checkpoints)
    assert len(data.h_in) == 9 and data.traj_record.tolist() == list(range(7)) + [-1, -1]
    want = set()
    for r in ("r0", "r1"):
        for s in (100, 200, 300):
            want |= {(idx[f"{r}/{s}"], idx[f"{r}/{t}"]) for t in (100, 200, 300) if t >= s}
    want.add((idx["/5"], idx["/5"]))  # a record without a run keeps its own checkpoint
    want |= {(7, idx[f"r0/{t}"]) for t in (100, 200, 300)} | {(8, idx["r0/300"])}
    assert _pair_set(data) == want and len(data.diffusion_pairs()) == len(want)
    # the prompt windows are the prompts' own trajectories
    assert torch.equal(data.h_in[7, 0, :, :39], torch.as_tensor(prompts[0].trajectories[0].states[:10]))


@pytest.mark.slow
def test_run_pairing_maps_a_prompt_to_its_runs_checkpoints(tmp_path):
    """Two runs; a run's prompts (sub-optimal behaviour) have conditions unlike its checkpoints' trajectories.
    Trained "own", the diffusion model never sees such a condition; trained "run", it maps it to the run's checkpoints."""
    gen = PolicyGenerator(SPEC, 39, 4, CFG, device="cpu")
    T, D, C = gen.autoencoder.num_tokens, CFG.autoencoder.token_dim, CFG.embedding.cond_dim
    g = torch.Generator().manual_seed(0)
    modes = [torch.randn(T, D, generator=g) for _ in range(2)]  # latent of each run's (good) checkpoints
    ck_cond = [torch.randn(C, generator=g) for _ in range(2)]  # condition of each run's checkpoint trajectories
    pr_cond = [torch.randn(C, generator=g) for _ in range(2)]  # condition of each run's prompts
    n, k = 32, 8  # checkpoints per run (one trajectory each), prompts per run
    latents = torch.cat([m + 0.05 * torch.randn(n, T, D, generator=g) for m in modes])
    conds = torch.cat([c + 0.1 * torch.randn(n, C, generator=g) for c in ck_cond] +
                      [c + 0.1 * torch.randn(k, C, generator=g) for c in pr_cond])
    rng = np.random.default_rng(0)
    trajs = [(i, _traj(rng)) for i in range(2 * n)] + [(-1, _traj(rng)) for _ in range(2 * k)]
    params = np.zeros((2 * n, SPEC.num_params), np.float32)
    runs = [list(range(0, n)), list(range(n, 2 * n))]
    own = TrainingData.from_records(params, trajs[:2 * n], CFG, 39, 4)
    run = TrainingData.from_records(params, trajs, CFG, 39, 4,
                                    targets=[runs[i // n] for i in range(2 * n)] + [runs[j // k] for j in range(2 * k)])
    assert len(run.diffusion_pairs()) == 2 * n * n + 2 * k * n
    cfg = GeneratorConfig.preset_named("tiny", **{"train_diffusion.steps": 400})
    dist = {}
    for name, data in (("own", own), ("run", run)):
        pairs = data.diffusion_pairs()  # exactly how train_generator builds the diffusion set
        unet = PolicyGenerator(SPEC, 39, 4, cfg, device="cpu").unet
        train_diffusion(unet, latents[pairs[:, 1]], conds[pairs[:, 0]], cfg,
                        TrainerOptions(run_dir=tmp_path / name, progress=False, resume=False))
        gen.unet = unet
        dist[name] = [(gen.sample_latents(pr_cond[r][None], num_policies=8, seed=1) - modes[r]).flatten(1).norm(dim=1).mean().item()
                      for r in range(2)]
    gap = (modes[0] - modes[1]).norm().item()
    assert max(dist["run"]) < 0.25 * gap, (dist, gap)
    assert max(dist["run"]) < 0.5 * min(dist["own"]), (dist, gap)
