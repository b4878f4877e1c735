"""Lock-step Go2 screening (issue #16): all candidates' rollouts at once decide as one at a time does,
and a candidate that falls stops costing simulation. Real MuJoCo, the shipped generator and
adaptation module."""
import numpy as np
import pytest
import torch

from maa_core.go2.inference import StackedMlp
from maa_core.go2.verdict import WalkCriteria
from maa_core.pipeline import PolicyGenerator
from maa_core.prompts import read_prompts_from_bag
from maa_core.serving.scorers import make_scorer
from maa_core.serving.screening import screen

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]
STEPS = 120  # policy steps (2.4 s): long enough for a perturbed actor to fall, short for the suite


@pytest.fixture(scope="module")
def candidates():
    """3 generated candidates for the shipped prompt, one perturbed to fall mid-rollout (at step 50-70
    when measured), one scaled to fail at once."""
    gen = PolicyGenerator.from_pretrained(REPO / "models" / "go2-walk", device="cpu")
    _, prompt = read_prompts_from_bag(REPO / "bags" / "go2-walk")[0]
    params = gen.generate([prompt], num_policies=3, seed=0).params[0]
    noise = np.random.default_rng(0).normal(0.0, 0.05, params.shape[1]).astype(np.float32)
    params = np.concatenate([params, [params[0] + noise, params[0] * 3.0]])
    return gen.spec, params, prompt


def test_stacked_mlp_and_fell_many_match_one_by_one(candidates):
    spec, params, _ = candidates
    actors = [spec.unflatten(p).eval() for p in params]
    x = torch.randn(len(actors), 2, spec.obs_dim)
    with torch.no_grad():
        want = torch.stack([a(x[k]) for k, a in enumerate(actors)])
    got = StackedMlp.of(actors)(x)
    assert got.shape == want.shape and torch.allclose(got, want, rtol=1e-4, atol=1e-4)
    crit, rng = WalkCriteria(), np.random.default_rng(1)
    q = rng.normal(size=(64, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    h = rng.uniform(0.05, 0.4, 64)
    assert list(crit.fell_many(h, q)) == [crit.fell(hi, qi) for hi, qi in zip(h, q)]
    assert 0 < crit.fell_many(h, q).sum() < 64  # both verdicts occur


def test_lockstep_screening_decides_as_sequential_and_stops_the_fallen(candidates):
    spec, params, prompt = candidates
    scorer = make_scorer("go2-walk", STEPS, spec, "")
    actors = [spec.unflatten(p).eval() for p in params]
    seq = np.array([scorer(a) for a in actors])
    scorer.threads = 2  # the pipelined tick: two groups of candidates, whatever the machine has
    scorer.halving = None  # the same rollouts as one at a time (halving: its own test below)
    lock = scorer.score_all(actors)
    # the fixture's cases happened: walkers stay up, the perturbed one falls mid-way, the scaled one at once
    assert (seq[:3] > 1.0).all() and 0.1 < seq[3] < 1.0 and seq[4] < 0.1, seq
    # same verdicts: who stays up, where the fallen fell (float32 summation order differs: 2 steps of
    # slack), the walkers' speed scores within 1e-3 (measured 1e-6 apart), so the same winner
    assert ((seq >= 1.0) == (lock >= 1.0)).all()
    assert np.abs(seq - lock)[seq < 1.0].max() <= 2.0 / STEPS
    assert np.abs(seq - lock)[seq >= 1.0].max() < 1e-3, (seq, lock)
    assert np.argmax(seq) == np.argmax(lock)
    # early stop: a candidate's worlds (2 starts) stop at the step its first one failed
    fail_steps = np.where(lock < 1.0, np.round(lock * STEPS) + 1, STEPS)
    assert scorer.last_world_steps == 2 * fail_steps.sum() < 2 * STEPS * len(actors)
    # one thread (one group) decides the same
    scorer.threads = 1
    one = scorer.score_all(actors)
    assert ((one >= 1.0) == (lock >= 1.0)).all() and np.argmax(one) == np.argmax(lock)
    assert np.abs(one - lock)[lock < 1.0].max() <= 2.0 / STEPS  # other batches: as against sequential above
    assert np.abs(one - lock)[lock >= 1.0].max() < 1e-3, (one, lock)
    # screening takes the batched path and keeps its semantics: the scaled one is invalid, the best wins
    sc = screen(spec, params, prompt, 20.0, scorer)
    assert list(sc.valid) == [True, True, True, True, False] and sc.best == int(np.argmax(seq))
    np.testing.assert_allclose(sc.score[:4], lock[:4])


# one pytest-xdist worker runs this file: its module fixtures are built once
pytestmark = pytest.mark.xdist_group("test_go2_screening")


def test_halving_cuts_the_worst_trackers_and_keeps_the_semantics(candidates):
    """Successive halving: at the cut the worse-tracking standing half scores PRUNED_SCORE (1.0) and costs
    no more simulation; the ones kept finish as without halving; fallen ones are unaffected."""
    from maa_core.go2.scoring import PRUNED_SCORE, Halving

    spec, params, _ = candidates
    actors = [spec.unflatten(p).eval() for p in params]
    full = make_scorer("go2-walk", STEPS, spec, "")
    full.halving = None
    base = full.score_all(actors)
    cut_at = 0.5
    halved = make_scorer("go2-walk", STEPS, spec, "")
    halved.halving = Halving(at=(cut_at,), keep=0.5, min_keep=1)
    got = halved.score_all(actors)
    cut_step = int(round(cut_at * STEPS))
    standing = [k for k in range(len(actors)) if base[k] >= 1.0 or round(base[k] * STEPS) >= cut_step]
    kept = [k for k in standing if got[k] != PRUNED_SCORE]
    assert len(kept) == max(1, int(np.ceil(0.5 * len(standing)))) < len(standing), (base, got)
    # the kept ones score as they did without halving (same rollouts), the fallen-before-the-cut too
    np.testing.assert_allclose(got[kept], base[kept], rtol=0, atol=1e-3)
    early = [k for k in range(len(actors)) if k not in standing]
    np.testing.assert_allclose(got[early], base[early], atol=2.0 / STEPS)
    # cut candidates stop costing simulation
    assert halved.last_world_steps < full.last_world_steps
    # a keep fraction of 1 is no halving at all
    halved.halving = Halving(at=(cut_at,), keep=1.0, min_keep=1)
    np.testing.assert_allclose(halved.score_all(actors), base, atol=1e-3)
