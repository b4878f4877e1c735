"""Robosuite data path (real robosuite): DAgger students of the scripted experts learn, a recipe's
shared base student is trained once per root, the evaluation suite switches robots with the same dims."""
import json

import numpy as np
import pytest
import yaml

from maa_core.collect import plan_jobs, with_shared_base
from maa_core.collect.distill import distill_run
from maa_core.dataset import PolicyDataset
from maa_core.errors import MaaError
from maa_core.evaluation.runner import MetaWorldSuite, RobosuiteSuite, suite_for

pytestmark = pytest.mark.xdist_group("robosuite")


def test_lift_student_learns_by_dagger_from_a_random_start():
    """The untrained student (the step-0 prompt) fails; DAgger on the expert's labels makes it lift
    the cube in its configuration (first success ~120 updates on this run; the budget is 25x that)."""
    saved, prompts = [], []
    r = distill_run("lift", 0, 2, 1, {"max_rounds": 30, "stop_after_success": 10}, emit_checkpoint=saved.append,
                    emit_prompt=prompts.append, spec_name="robosuite-sac")
    assert prompts[0].step == 0 and prompts[0].success_rate == 0.0
    assert r["checkpoints"] == 2 and [e.success_rate for e in saved] == [1.0, 1.0]
    t = saved[0].trajectories[0]
    assert t.states.shape[1] == 41 and t.actions.shape[1] == 8
    assert len(t) == t.first_success + 11  # the rollout ended 10 steps after its success
    assert saved[0].extra["env_id"] == "Lift/Panda"


def test_shared_base_recipe_trains_the_base_once_and_runs_start_from_it(tmp_path, capsys):
    from maa_core.cli import main

    recipe = {"spec": "robosuite-sac", "method": "distill",
              "shared_base": {"configs_per_task": 1, "rounds": 1, "updates_per_round": 50, "stop_after_success": 0,
                              "max_episode_steps": 60},
              "distill": {"demos": 1, "prompt_steps": [0], "max_episode_steps": 60},
              "groups": [{"tasks": ["lift"], "seeds": 1, "prompts_per_run": 1}]}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    out = tmp_path / "ds"
    assert main(["collect", "--config", str(path), "--out", str(out), "--quiet"]) == 0
    base = np.load(out / "base.npy")
    prompt = next(iter(PolicyDataset(out / "prompts")))
    np.testing.assert_array_equal(prompt.params, base)  # the step-0 prompt is the base itself
    stamp = (out / "base.npy").stat().st_mtime_ns
    assert main(["collect", "--config", str(path), "--out", str(out), "--quiet"]) == 0
    assert (out / "base.npy").stat().st_mtime_ns == stamp
    # bad settings: one line, before any work
    capsys.readouterr()
    path.write_text(yaml.safe_dump({**recipe, "shared_base": {"rounds_typo": 2}}))
    assert main(["collect", "--config", str(path), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "shared_base: unknown settings ['rounds_typo']" in err[0]
    assert not (tmp_path / "x").exists()
    with pytest.raises(MaaError, match="method distill, not 'sac'"):
        with_shared_base({**recipe, "method": "sac"}, out)
    jobs = plan_jobs(with_shared_base(recipe, out))
    assert json.loads(jobs[0].cfg)["base"] == str(out / "base.npy")


def test_suite_switches_robot_with_the_same_dims_and_refuses_mixes():
    assert isinstance(suite_for(["reach", "window-open"]), MetaWorldSuite)
    s = suite_for(["lift", "Door"])
    assert isinstance(s, RobosuiteSuite) and s.robot == "Sawyer" and s.task_name("Door") == "door"
    assert suite_for(["lift"], "Panda").robot == "Panda"
    assert s.dims("lift") == (41, 8)
    c = s.configs("lift", 5, 0)
    assert c == s.configs("lift", 5, 0) and c != s.configs("lift", 5, 1) and min(c) > 1000
    with pytest.raises(MaaError, match="mix Robosuite and MetaWorld"):
        suite_for(["lift", "reach"])
    with pytest.raises(MaaError, match="for Robosuite tasks only"):
        suite_for(["reach"], "Sawyer")
    with pytest.raises(MaaError, match="unknown Robosuite task 'stack'"):
        s.task_name("stack")


@pytest.mark.slow
def test_generator_trained_on_a_tiny_lift_set_beats_an_untrained_network(tmp_path):
    """Records of two DAgger runs from a shared base -> a tiny generator -> actors prompted by one
    run's trajectory lift the cube in that run's placement; an untrained network does not."""
    import torch

    from maa_core.collect.distill import SharedBaseConfig, train_shared_base
    from maa_core.config import GeneratorConfig
    from maa_core.envs import NumpyPolicy, evaluate_actor
    from maa_core.specs import get_spec
    from maa_core.train import TrainerOptions, TrainingData, train_generator

    spec = get_spec("robosuite-sac")
    base = tmp_path / "base.npy"
    np.save(base, train_shared_base(["lift"], spec.name, SharedBaseConfig(configs_per_task=4, rounds=4, noise=0.3,
                                                                          updates_per_round=1000, report=False)))
    saved = {}
    for seed in (0, 1):
        saved[seed] = []
        r = distill_run("lift", seed, 6, 0, {"base": str(base), "lr": [1e-4, 5e-4], "max_rounds": 60,
                                             "stop_after_success": 10}, emit_checkpoint=saved[seed].append,
                        spec_name=spec.name)
        assert r["checkpoints"] == 6, r
    emitted = saved[0] + saved[1]
    params = np.stack([e.params for e in emitted])
    trajs = [(i, e.trajectories[0]) for i, e in enumerate(emitted)]
    cfg = GeneratorConfig.preset_named("tiny", **{"train_diffusion.steps": 1000})
    gen = train_generator(TrainingData.from_records(params, trajs, cfg, 41, 8), spec, 41, 8, cfg,
                          TrainerOptions(run_dir=tmp_path / "run", progress=False, resume=False))
    k, placement = 8, [0]  # run 0's own placement (training config = seed)
    out = gen.generate(saved[0][-1].trajectories[0], num_policies=k, seed=0)
    won = sum(evaluate_actor(NumpyPolicy(out.actor(0, i)), "lift", configs=placement, robot="Panda",
                             keep_trajectories=False).success_rate for i in range(k))
    torch.manual_seed(0)
    untrained = sum(evaluate_actor(spec.build(), "lift", configs=placement, robot="Panda",
                                   keep_trajectories=False).success_rate for _ in range(2))
    assert untrained == 0 and won >= 2, (won, untrained)  # passed at >= 3 once; the margin was not measured
