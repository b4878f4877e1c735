"""The three models must actually learn (small budgets, real training code, CPU)."""
import numpy as np
import pytest
import torch

from maa_core.config import GeneratorConfig
from maa_core.pipeline import PolicyGenerator
from maa_core.train import TrainerOptions, TrainingData, train_autoencoder, train_diffusion, train_embedding
from maa_core.trajectory import Trajectory
from toy_policies import GOALS, SPEC, expert, make_records, obs_of


def opts(tmp_path):
    return TrainerOptions(run_dir=tmp_path, progress=False, resume=False)


@pytest.fixture(scope="module")
def toy_records():
    return make_records(tasks=("A", "B"), seeds=range(2), traj_per_ckpt=1)


def test_autoencoder_reconstructs_trained_checkpoints(tmp_path, toy_records):
    params, _, _ = toy_records
    cfg = GeneratorConfig.preset_named("tiny", **{"train_autoencoder.steps": 400})
    gen = PolicyGenerator.untrained(SPEC, preset="tiny", **{"train_autoencoder.steps": 400})
    ae = gen.autoencoder
    x = torch.as_tensor(params)
    train_autoencoder(ae, x, cfg, opts(tmp_path))
    with torch.no_grad():
        rec = ae.latents_to_params(ae.params_to_latents(x))
    # the spread between checkpoints is what the AE must capture: error well below it
    spread = (x - x.mean(0)).norm(dim=1).mean()
    err = (rec - x).norm(dim=1).mean()
    assert err < 0.2 * spread, (err, spread)
    # decoded networks act like the originals on held-out states
    obs = torch.as_tensor(obs_of(np.random.default_rng(5).uniform(-1, 1, (256, 4)), GOALS["A"]))
    mse = [((SPEC.unflatten(r)(obs) - SPEC.unflatten(o)(obs)) ** 2).mean().item() for r, o in zip(rec, x)]
    act_var = torch.as_tensor(expert(obs.numpy())).var().item()
    assert max(mse) < 0.05 * act_var, (max(mse), act_var)


def test_constant_group_is_not_coded_and_decodes_exactly(tmp_path, toy_records):
    """A layer all checkpoints share (frozen) gets no token and comes back bit for bit."""
    from maa_core.train import constant_groups

    params = torch.as_tensor(toy_records[0]).clone()
    g0 = SPEC.token_groups()[0]
    params[:, g0.start:g0.stop] = params[0, g0.start:g0.stop]  # freeze layer0 across the dataset
    const = constant_groups(SPEC, params)
    assert const == (g0.name,)
    overrides = {"train_autoencoder.steps": 400, "autoencoder.constant_groups": const}
    cfg = GeneratorConfig.preset_named("tiny", **overrides)
    gen = PolicyGenerator.untrained(SPEC, preset="tiny", **overrides)
    assert gen.autoencoder.num_tokens == len(SPEC.token_groups()) - 1
    train_autoencoder(gen.autoencoder, params, cfg, opts(tmp_path))
    with torch.no_grad():
        rec = gen.autoencoder.latents_to_params(gen.autoencoder.params_to_latents(params))
        rand = gen.autoencoder.latents_to_params(torch.randn(3, gen.autoencoder.num_tokens, cfg.autoencoder.token_dim))
    assert torch.equal(rec[:, g0.start:g0.stop], params[:, g0.start:g0.stop])
    assert torch.equal(rand[:, g0.start:g0.stop], params[:3, g0.start:g0.stop])  # whatever the latent
    rest = slice(g0.stop, None)
    spread = (params[:, rest] - params[:, rest].mean(0)).norm(dim=1).mean()
    assert (rec[:, rest] - params[:, rest]).norm(dim=1).mean() < 0.2 * spread
    # the choice travels with the saved generator
    gen.save_pretrained(tmp_path / "gen")
    again = PolicyGenerator.from_pretrained(tmp_path / "gen", device="cpu")
    assert again.config.autoencoder.constant_groups == const and again.autoencoder.num_tokens == gen.autoencoder.num_tokens


def _random_goal_trajectories(n, seed):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        goal, p = rng.uniform(-1, 1, 4), rng.uniform(-1, 1, (1, 4))
        S, A = [], []
        for _ in range(30):
            o = obs_of(p, goal)
            a = np.clip(expert(o) + 0.1 * rng.standard_normal((1, 4)), -1, 1)
            S.append(o[0]), A.append(a[0])
            p = p + 0.1 * a
        out.append((i, Trajectory(np.array(S), np.array(A), np.arange(30) >= 20)))
    return out


def test_infonce_drops_and_matches_above_chance(tmp_path):
    cfg = GeneratorConfig.preset_named("tiny", **{"train_embedding.steps": 300})
    trajs = _random_goal_trajectories(256, seed=0)
    data = TrainingData.from_records(np.zeros((256, SPEC.num_params), np.float32), trajs, cfg, 39, 4)
    gen = PolicyGenerator(SPEC, 39, 4, cfg, device="cpu")
    emb = gen.embedding
    emb.fit_normalizers(data.states, data.actions)
    held = TrainingData.from_records(np.zeros((64, SPEC.num_params), np.float32), _random_goal_trajectories(64, seed=1), cfg, 39, 4)

    def evaluate():
        with torch.no_grad():
            h, v = emb.embed_pair(held.h_in[:, 0], held.v_in[:, 0])
            return emb.info_nce(h, v)

    loss0, acc0 = evaluate()
    train_embedding(emb, data, cfg, opts(tmp_path))
    loss1, acc1 = evaluate()
    assert loss1 < 0.7 * loss0, (loss0, loss1)
    assert acc1 > 10 / 64, acc1  # chance is 1/64


def test_diffusion_learns_conditional_modes(tmp_path):
    cfg = GeneratorConfig.preset_named("tiny", **{"train_diffusion.steps": 800})
    gen = PolicyGenerator(SPEC, 39, 4, cfg, device="cpu")
    T, D, C = gen.autoencoder.num_tokens, cfg.autoencoder.token_dim, cfg.embedding.cond_dim
    g = torch.Generator().manual_seed(0)
    modes = {"A": torch.randn(T, D, generator=g), "B": torch.randn(T, D, generator=g)}
    conds = {"A": torch.randn(C, generator=g), "B": torch.randn(C, generator=g)}
    lat = torch.cat([modes[k] + 0.05 * torch.randn(256, T, D, generator=g) for k in "AB"])
    cond = torch.cat([conds[k].expand(256, C) for k in "AB"])
    train_diffusion(gen.unet, lat, cond, cfg, opts(tmp_path))
    for k, other in (("A", "B"), ("B", "A")):
        z = gen.sample_latents(conds[k][None], num_policies=16, seed=1)
        d_own = (z - modes[k]).flatten(1).norm(dim=1)
        d_other = (z - modes[other]).flatten(1).norm(dim=1)
        assert (d_own < d_other).all()
        assert d_own.mean() < 0.25 * (modes["A"] - modes["B"]).norm()


@pytest.mark.slow
def test_cond_noise_keeps_the_condition(tmp_path):
    """Condition noise in training (diffusion.cond_noise) must not wash the prompt out: a condition off
    the training ones, near A, still samples A's mode, not a mix of A and B. (Its benefit, actors for
    unseen gaits that walk, is measured on the Go2 in BENCHMARKS.md; this toy cannot show it.)"""
    cond_noise = 1.0
    cfg = GeneratorConfig.preset_named("tiny", **{"train_diffusion.steps": 800, "diffusion.cond_noise": cond_noise,
                                                  "diffusion.prediction_type": "v_prediction"})
    gen = PolicyGenerator(SPEC, 39, 4, cfg, device="cpu")
    T, D, C = gen.autoencoder.num_tokens, cfg.autoencoder.token_dim, cfg.embedding.cond_dim
    g = torch.Generator().manual_seed(0)
    modes = [torch.randn(T, D, generator=g), torch.randn(T, D, generator=g)]
    conds = [torch.randn(C, generator=g), torch.randn(C, generator=g)]
    lat = torch.cat([m + 0.05 * torch.randn(256, T, D, generator=g) for m in modes])
    cond = torch.cat([c.expand(256, C) for c in conds])
    train_diffusion(gen.unet, lat, cond, cfg, opts(tmp_path))
    off = torch.randn(C, generator=g)
    query = conds[0] + 0.4 * (conds[1] - conds[0]).norm() * off / off.norm()  # nearer A than B, off both
    z = gen.sample_latents(query[None], num_policies=32, seed=1)
    on_a = ((z - modes[0]).flatten(1).norm(dim=1) < 0.25 * (modes[0] - modes[1]).norm()).float().mean().item()
    assert on_a >= 0.75, on_a
