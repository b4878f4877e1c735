"""Evaluation (maa_core.evaluation, `maa eval`): metrics, the protocol on real MetaWorld, a real
end-to-end learning check through the runner, and bad input."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from maa_core.errors import MaaError
from maa_core.evaluation.metrics import group_average, qualified_rate, summarize_task, top_k_mean
from maa_core.evaluation.novelty import centered_nearest, cosine, nearest_cosine
from maa_core.evaluation.runner import EvalSettings, evaluate_params
from maa_core.evaluation.sources import PromptItem, add_action_noise
from maa_core.evaluation.study import StudyConfig, generate_params, run_study
from maa_core.pipeline import PolicyGenerator
from maa_core.specs import get_spec
from maa_core.trajectory import Trajectory, save_trajectory

MW = get_spec("metaworld-sac")
FAST = EvalSettings(n_configs=2, max_episode_steps=100, workers=1, progress=False)


# -- metrics: hand-made inputs ------------------------------------------------------------------
def test_top_k_and_qualified_arithmetic():
    rates = [1.0, 0.2, 0.8, 0.0, 0.6, 1.0]
    assert top_k_mean(rates, 5) == pytest.approx((1 + 1 + 0.8 + 0.6 + 0.2) / 5)
    assert top_k_mean(rates, 10) == pytest.approx(3.6 / 6)  # fewer than k: all of them
    assert top_k_mean(rates, 1) == 1.0
    assert qualified_rate(rates) == pytest.approx(2 / 6)
    assert qualified_rate([0.99, 0.8]) == 0.0
    s = summarize_task("t", [1.0, 0.0, 0.5, 0.5, 0.2, 0.4], ["a", "a", "b", "b", "c", "c"], returns=[1, 2, 3, 4, 5, 6],
                       first_success=[10, -1, 20, None, 30, -1], seen=False)
    assert (s.prompts, s.policies) == (3, 6)
    assert s.mean == pytest.approx(np.mean([0.5, 0.5, 0.3])) and s.std == pytest.approx(np.std([0.5, 0.5, 0.3]))
    assert s.qualified == pytest.approx(1 / 6) and s.top5 == pytest.approx((1 + 0.5 + 0.5 + 0.4 + 0.2) / 5)
    assert s.mean_return == 3.5 and s.mean_first_success == 20.0
    g = group_average([s, summarize_task("u", [1.0], ["x"])])
    assert g["tasks"] == 2 and g["qualified"] == pytest.approx((1 / 6 + 1) / 2)
    with pytest.raises(MaaError, match=r"\[0, 1\]"):
        top_k_mean([1.5], 5)
    with pytest.raises(MaaError, match="no success rates"):
        qualified_rate([])


def test_novelty_cosine_and_action_noise():
    a = np.array([[1.0, 0, 0], [0, 2.0, 0]])
    assert cosine(a, np.array([[2.0, 0, 0], [0, 0, 1.0]])).tolist() == pytest.approx([1.0, 0.0])
    best, idx = nearest_cosine(a, np.array([[0, 1.0, 1.0], [3.0, 0.1, 0]]))
    assert idx.tolist() == [1, 0] and best[1] == pytest.approx(1 / 2 ** 0.5)
    t = Trajectory(np.ones((400, 39)), np.zeros((400, 4)), np.zeros(400, bool))
    items = [PromptItem("p", "reach", t)]
    # checkpoints that share a large base (as frozen layers do): the paper's cosine is ~1 for a copy and
    # for a point far off every checkpoint alike; the centered cosine and the distance ratio tell them apart
    rng = np.random.default_rng(0)
    base = np.concatenate([np.full(500, 3.0), np.zeros(20)])
    bank = base + np.concatenate([np.zeros((30, 500)), rng.normal(0, 0.1, (30, 20))], axis=1)
    novel = base + np.concatenate([np.zeros(500), rng.normal(0, 1.0, 20)])
    assert nearest_cosine(novel, bank)[0][0] > 0.99 and nearest_cosine(bank[3], bank)[0][0] == pytest.approx(1.0)
    cos, ratio = centered_nearest(np.stack([bank[3], novel, bank.mean(0)]), bank)
    assert cos[0] == pytest.approx(1.0) and ratio[0] == pytest.approx(0.0, abs=1e-6)   # a copy
    assert cos[1] < 0.6 and ratio[1] > 3.0                                             # far off the bank
    assert ratio[2] < 2.0   # the bank's average: no nearer to any checkpoint than ~1 spacing, yet not a copy
    with pytest.raises(MaaError, match="at least 2"):
        centered_nearest(novel, bank[:1])
    n1, n2 = add_action_noise(items, 0.1, seed=3), add_action_noise(items, 0.1, seed=3)
    assert np.array_equal(n1[0].trajectory.actions, n2[0].trajectory.actions)  # seeded
    assert np.array_equal(n1[0].trajectory.states, t.states) and not np.array_equal(n1[0].trajectory.actions, t.actions)
    assert n1[0].trajectory.actions.std() == pytest.approx(0.1, rel=0.05)
    assert not np.array_equal(add_action_noise(items, 0.1, seed=4)[0].trajectory.actions, n1[0].trajectory.actions)


# -- the protocol on real MetaWorld -------------------------------------------------------------
def reach_controller() -> np.ndarray:
    """A known-good metaworld-sac actor built by hand: action = tanh(5 (goal - hand)), gripper 0.
    Layer 1 (ELU) carries goal - hand + 10 (positive, so ELU is the identity), layer 2 (ReLU) copies it,
    the mean head removes the offset and applies the gain. obs[0:3] is the hand, obs[36:39] the goal."""
    actor = MW.build()
    bias = 10.0
    with torch.no_grad():
        for m in actor.modules():
            if isinstance(m, torch.nn.Linear):
                m.weight.zero_(), m.bias.zero_()
        l1, l2 = actor.trunk[0], actor.trunk[2]
        for i in range(3):
            l1.weight[i, 36 + i], l1.weight[i, i], l1.bias[i] = 1.0, -1.0, bias
            l2.weight[i, i], l2.bias[i] = 1.0, 0.0
            actor.heads["mean"].weight[i, i], actor.heads["mean"].bias[i] = 5.0, -5.0 * bias
    return MW.flatten(actor).numpy()


def random_actor(seed: int) -> np.ndarray:
    torch.manual_seed(seed)
    return MW.flatten(MW.build()).detach().numpy()


def test_known_good_policy_scores_one_and_random_network_zero():
    settings = EvalSettings(n_configs=5, max_episode_steps=200, workers=1, progress=False)
    good, *rand = evaluate_params(MW, np.stack([reach_controller(), random_actor(1), random_actor(2)]),
                                  ["reach"] * 3, settings)
    assert good.success_rate == 1.0 and len(good.episode_success) == 5 and 0 < good.first_success < 200
    assert all(r.success_rate == 0.0 for r in rand)
    assert good.mean_return > max(r.mean_return for r in rand)


def test_evaluation_is_deterministic_for_any_worker_count():
    rng = np.random.default_rng(0)
    good = reach_controller()
    params = np.stack([good, good + rng.normal(0, 0.02, good.shape).astype(np.float32), random_actor(3)])
    tasks = ["reach", "reach-v3", "button-press"]
    a = evaluate_params(MW, params, tasks, FAST)
    b = evaluate_params(MW, params, tasks, FAST)
    c = evaluate_params(MW, params, tasks, EvalSettings(**{**FAST.__dict__, "workers": 2}))
    assert a == b == c  # success, returns (floats, exactly), first-success steps
    assert len({s.mean_return for s in a}) == 3  # the three policies really differ
    other = evaluate_params(MW, params[:1], tasks[:1], EvalSettings(**{**FAST.__dict__, "seed": 1}))
    assert other[0].mean_return != a[0].mean_return  # the seed picks the configurations


# -- a generator trained on two toy tasks, through the runner ------------------------------------
@pytest.mark.slow
def test_generator_prompted_with_task_a_succeeds_on_a_not_b(tmp_path):
    """The learning end to end (records -> trained generator -> actors) and the study runner on top of it:
    a held-out, noisy prompt from task A yields actors that solve A and not B, and vice versa."""
    from toy_policies import GOALS, SPEC, ToySuite, make_records, rollout, success_rate

    from maa_core.config import GeneratorConfig
    from maa_core.train import TrainerOptions, TrainingData, train_generator

    params, trajs, task_of = make_records(tasks=("A", "B"), seeds=range(3), traj_per_ckpt=2)
    cfg = GeneratorConfig.preset_named("tiny", **{"embedding.n_steps": 20, "train_diffusion.steps": 1000})
    gen = train_generator(TrainingData.from_records(params, trajs, cfg, 39, 4), SPEC, 39, 4, cfg,
                          TrainerOptions(run_dir=tmp_path, progress=False, resume=False))
    suite, settings, k = ToySuite(), EvalSettings(n_configs=5, workers=1, progress=False), 8
    prompts = []
    for task in ("A", "B"):  # held-out, noisy prompts from a new start
        i = task_of.index(task)
        src = SPEC.unflatten(torch.as_tensor(params[i]))
        prompts.append(PromptItem(f"{task}-0", task, rollout(src, GOALS[task], start=np.full(4, 0.1), action_noise=0.3, seed=9),
                                  source_params=params[i]))
    gen_params = generate_params(gen, prompts, k, seed=0)
    for j, (task, other) in enumerate((("A", "B"), ("B", "A"))):
        own = np.mean([s.success_rate for s in evaluate_params(SPEC, gen_params[j], [task] * k, settings, suite)])
        cross = np.mean([s.success_rate for s in evaluate_params(SPEC, gen_params[j], [other] * k, settings, suite)])
        assert own >= 0.6 and own > cross + 0.5, (task, own, cross)
    # the same, through the generator's own output object and the toy's rollout (no evaluation runner)
    for j, (task, other) in enumerate((("A", "B"), ("B", "A"))):
        out = gen.generate(prompts[j].trajectory, num_policies=k, seed=0)
        own = np.mean([success_rate(out.actor(0, i), GOALS[task]) for i in range(k)])
        cross = np.mean([success_rate(out.actor(0, i), GOALS[other]) for i in range(k)])
        assert own >= 0.6 and cross <= 0.1, (task, own, cross)
    res = run_study(gen, prompts, StudyConfig(num_policies=k, eval=settings, baselines=("bc",)), suite=suite)
    gen_rows = {r["task"]: r for r in res["methods"]["generated"]["tasks"]}
    assert gen_rows["A"]["policies"] == k and gen_rows["A"]["top5"] >= 0.6
    assert res["methods"]["generated"]["all"]["novelty"]["cos_prompt_policy"]["n"] == 2 * k
    assert set(res["methods"]) == {"generated", "bc"}


# -- bad input ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gens(tmp_path_factory):
    root = tmp_path_factory.mktemp("gens")
    PolicyGenerator.untrained("metaworld-sac", preset="tiny", device="cpu").save_pretrained(root / "mw")
    PolicyGenerator.untrained("robosuite-sac", preset="tiny", device="cpu").save_pretrained(root / "rs")
    rng = np.random.default_rng(0)
    save_trajectory(root / "mw.npz", Trajectory(rng.normal(size=(30, 39)), rng.uniform(-1, 1, (30, 4)), np.zeros(30, bool)))
    save_trajectory(root / "rs.npz", Trajectory(rng.normal(size=(30, 41)), rng.uniform(-1, 1, (30, 8))))
    s = rng.normal(size=(30, 39))
    s[3, 5] = np.nan
    np.savez(root / "nan.npz", states=s, actions=rng.uniform(-1, 1, (30, 4)))
    return root


def test_library_rejects_bad_input(gens):
    gen = PolicyGenerator.from_pretrained(gens / "mw", device="cpu")
    t = Trajectory(np.zeros((30, 39)), np.zeros((30, 4)))
    with pytest.raises(MaaError, match="unknown MetaWorld task 'fly-to-the-moon'"):
        run_study(gen, [PromptItem("p", "fly-to-the-moon", t)])
    with pytest.raises(MaaError, match=r"spec 'robosuite-sac' is 41 -> 8, but task 'reach'"):
        evaluate_params(get_spec("robosuite-sac"), np.zeros((1, get_spec("robosuite-sac").num_params)), ["reach"], FAST)
    bad = Trajectory(np.full((30, 39), np.nan), np.zeros((30, 4)))
    with pytest.raises(MaaError, match="prompt p: states contain NaN"):
        run_study(gen, [PromptItem("p", "reach", bad)])
    with pytest.raises(MaaError, match="NaN or Inf"):
        evaluate_params(MW, np.full((1, MW.num_params), np.nan), ["reach"], FAST)


def maa(*args):
    return subprocess.run([sys.executable, "-m", "maa_core", "eval", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONWARNINGS": "ignore"})


@pytest.mark.parametrize("case, expect", [
    ("unknown-task", "unknown MetaWorld task 'fly-to-the-moon'"),
    ("spec-mismatch", "spec 'robosuite-sac' is 41 -> 8, but task 'reach' has observations of 39 and actions of 4"),
    ("nan", "states contain NaN or Inf"),
    ("no-task", "give --task"),
    ("robot-for-metaworld", "a robot is chosen for Robosuite tasks only"),
    ("unknown-robot", "unknown Robosuite robot 'R2D2'"),
    ("robot-dims", "Robosuite robot UR5e: action has 7 dims"),
])
def test_cli_bad_input_one_line_exit_2(gens, tmp_path, capsys, case, expect):
    from maa_core.cli import main

    gen, prompt, task, robot = {"unknown-task": ("mw", "mw.npz", "fly-to-the-moon", None),
                                "spec-mismatch": ("rs", "rs.npz", "reach", None), "nan": ("mw", "nan.npz", "reach", None),
                                "no-task": ("mw", "mw.npz", None, None), "robot-for-metaworld": ("mw", "mw.npz", "reach", "Sawyer"),
                                "unknown-robot": ("rs", "rs.npz", "lift", "R2D2"), "robot-dims": ("rs", "rs.npz", "lift", "UR5e")}[case]
    argv = ["eval", str(gens / gen), "--prompt", str(gens / prompt), *(["--task", task] if task else []),
            *(["--robot", robot] if robot else []), "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("maa: error:") and expect in lines[0], lines
    assert not (tmp_path / "o").exists()


def test_cli_writes_json_markdown_and_figures(gens, tmp_path):
    out = tmp_path / "o"
    p = maa(gens / "mw", "--prompt", gens / "mw.npz", "--task", "reach", "-k", "2", "--configs", "1", "--max-steps", "30",
            "--workers", "1", "--action-noise", "0.1", "--baselines", "bc", "--bc-steps", "5", "--no-progress", "--out", out)
    assert p.returncode == 0, p.stderr[-2000:]
    res = json.loads((out / "results.json").read_text())
    assert set(res["methods"]) == {"generated", "generated (action noise 0.1)", "bc"}
    assert len(res["methods"]["generated"]["policies"]) == 2 and res["methods"]["generated"]["seen"]["tasks"] == 1
    assert "| reach | seen |" in (out / "report.md").read_text()
    for f in ("tasks_top5.png", "tasks_mean.png", "success_hist.png"):
        assert (out / f).stat().st_size > 1000


# -- parameter-space baselines (noised retrieval, average of checkpoints) and the side-by-side report --
@pytest.fixture(scope="module")
def ckpt_world(tmp_path_factory):
    """8 randomly initialised metaworld-sac actors (tasks A/B of the toy suite), one toy rollout each, an
    untrained tiny generator and 4 prompts: noisy rollouts of 4 of the checkpoints."""
    from toy_policies import GOALS, rollout

    from maa_core.dataset import DatasetWriter, PolicyDataset, PolicyRecord

    root = tmp_path_factory.mktemp("ckpts")
    params = np.stack([random_actor(100 + i) for i in range(8)])
    tasks = ["A" if i < 4 else "B" for i in range(8)]
    recs = [PolicyRecord(params[i], tasks[i], [rollout(MW.unflatten(torch.as_tensor(params[i])), GOALS[tasks[i]], seed=i)],
                         0.0, {"run": "toy", "seed": i, "step": 0}) for i in range(8)]
    DatasetWriter(root / "ckpt", "metaworld-sac").append(recs)
    torch.manual_seed(0)
    gen = PolicyGenerator.untrained("metaworld-sac", preset="tiny", device="cpu")
    prompts = [PromptItem(f"p{i}", tasks[i], rollout(MW.unflatten(torch.as_tensor(params[i])), GOALS[tasks[i]],
                                                     action_noise=0.2, seed=50 + i), source_params=params[i])
               for i in (0, 2, 5, 7)]
    return {"gen": gen, "ds": PolicyDataset(root / "ckpt"), "params": params, "prompts": prompts}


def test_noised_retrieval_and_average_in_parameter_space(ckpt_world):
    from maa_core.evaluation.baselines import (NoiseConfig, average_of_nearest, build_retrieval_index, layer_rms,
                                               layer_slices, noised_retrieval, retrieve)

    gen, prompts, params = ckpt_world["gen"], ckpt_world["prompts"], ckpt_world["params"]
    index = build_retrieval_index(gen, ckpt_world["ds"])
    base, _ = retrieve(gen, index, prompts)
    zero, info = noised_retrieval(gen, index, prompts, 3, NoiseConfig(scale=0.0))
    assert zero.shape == (4, 3, MW.num_params) and np.array_equal(zero, np.repeat(base[:, None], 3, 1))
    assert all(q["std"] == 0.0 for q in info["per_prompt"])
    # a fixed relative scale: every layer's realised distance to the checkpoint is 5 % of its RMS (within 10 %)
    noisy, info = noised_retrieval(gen, index, prompts, 3, NoiseConfig(scale=0.05), seed=1)
    rel = layer_rms(noisy - base[:, None], MW) / layer_rms(base, MW)[:, None]
    assert rel.shape == (4, 3, len(layer_slices(MW))) and np.allclose(rel, 0.05, rtol=0.1), rel
    assert [q["relative"] for q in info["per_prompt"]] == pytest.approx([0.05] * 4)
    again, _ = noised_retrieval(gen, index, prompts, 3, NoiseConfig(scale=0.05), seed=1)
    assert np.array_equal(again, noisy)  # seeded
    # the default: the generator's own spread. "Generated" policies 0.03 (per value) off a training checkpoint
    # in layer trunk.0 and 0.01 elsewhere -> noised checkpoints as far from their base, layer by layer
    rng = np.random.default_rng(0)
    sl0 = layer_slices(MW)[0][1]
    offset = rng.normal(0, 0.01, (4, 2, MW.num_params))
    offset[..., sl0] *= 3
    generated = (params[[1, 3, 4, 6]][:, None] + offset).astype(np.float32)
    matched, info = noised_retrieval(gen, index, prompts, 2, NoiseConfig(), generated=generated, seed=2)
    want = layer_rms(generated - params[[1, 3, 4, 6]][:, None], MW)
    got = layer_rms(matched - base[:, None], MW)
    assert np.allclose(got, want, rtol=0.1), (got, want)
    assert info["scale"] is None and info["per_prompt"][0]["std_per_layer"]["trunk.0"] == pytest.approx(0.03, rel=0.1)
    # average of the k nearest checkpoints: k = 1 is retrieval, bit for bit
    one, rows = average_of_nearest(gen, index, prompts, 1)
    assert rows.shape == (4, 1) and np.array_equal(one, base)
    three, rows = average_of_nearest(gen, index, prompts, 3)
    assert np.allclose(three, params[rows].mean(1), atol=1e-6) and not np.allclose(three, base)
    assert average_of_nearest(gen, index, prompts, 50)[1].shape == (4, 8)  # at most every checkpoint
    with pytest.raises(MaaError, match="noise scale must be a number >= 0"):
        noised_retrieval(gen, index, prompts, 1, NoiseConfig(scale=-0.1))
    with pytest.raises(MaaError, match="needs its policies"):
        noised_retrieval(gen, index, prompts, 1, NoiseConfig())


def test_study_scores_every_method_side_by_side(ckpt_world, tmp_path):
    from toy_policies import ToySuite

    from maa_core.evaluation.baselines import BCConfig
    from maa_core.evaluation.report import markdown, method_rows

    baselines = ("retrieval", "noised-retrieval", "average", "bc")
    cfg = StudyConfig(num_policies=2, baselines=baselines, average_k=3, bc=BCConfig(steps=5),
                      eval=EvalSettings(n_configs=1, max_episode_steps=40, workers=1, progress=False))
    res = run_study(ckpt_world["gen"], ckpt_world["prompts"], cfg, ckpt_world["ds"], suite=ToySuite())
    assert list(res["methods"]) == ["generated", *baselines]
    m = res["methods"]
    assert [len(m[b]["policies"]) for b in m] == [8, 4, 8, 4, 4]  # noised retrieval draws K per prompt
    for name, meth in m.items():  # novelty of every method, against the checkpoints and the prompt's policy
        assert all(r["cos_nearest_checkpoint"] is not None and r["cos_prompt_policy"] is not None
                   for r in meth["policies"]), name
    assert all(r["cos_nearest_checkpoint"] == pytest.approx(1.0, abs=1e-5) and r["nearest_distance_ratio"] < 1e-3
               for r in m["retrieval"]["policies"])
    # default noise: the generator's spread, recorded per prompt and per policy
    noise = m["noised-retrieval"]["noise"]
    assert noise["scale"] is None and len(noise["per_prompt"]) == 4 and all(q["std"] > 0 for q in noise["per_prompt"])
    assert m["noised-retrieval"]["policies"][0]["noise_std"] == noise["per_prompt"][0]["std"]
    assert m["average"]["k"] == 3
    rows = method_rows(res)
    assert [r["method"] for r in rows] == ["generated", *baselines]
    assert {"top5", "top10", "qualified", "mean", "cos→nearest ckpt", "cos→prompt policy"} <= set(rows[0])
    assert rows[1]["cos→nearest ckpt"] == "1.000" and rows[2]["policies/prompt"] == "2"
    md = markdown(res)
    for b in ("generated", *baselines):
        assert f"\n| {b} | " in md.split("## Summary")[0], b


@pytest.mark.parametrize("extra, expect", [
    (["--baselines", "retrieval,oracle"], "unknown baseline 'oracle'"),
    (["--baselines", "average", "--average-k", "0"], "--average-k must be >= 1, got 0"),
    (["--baselines", "noised-retrieval", "--noise-scale", "-0.1"], "--noise-scale must be a number >= 0, got -0.1"),
    (["--noise-scale", "0.05"], "--noise-scale is for --baselines noised-retrieval"),
])
def test_cli_bad_baseline_options_one_line_exit_2(gens, tmp_path, capsys, extra, expect):
    from maa_core.cli import main

    argv = ["eval", str(gens / "mw"), "--prompt", str(gens / "mw.npz"), "--task", "reach", *extra, "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("maa: error:") and expect in lines[0], lines
    assert not (tmp_path / "o").exists()


# one pytest-xdist worker runs this file: its module fixtures are built once
pytestmark = pytest.mark.xdist_group("test_eval")
