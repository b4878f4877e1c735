"""Environments: task maps, the fixed-configuration / random-configuration protocol, evaluation, Robosuite layout."""
import numpy as np
import pytest
import torch

from maa_core.envs import (PAPER_TASKS, SEEN_TASKS, UNSEEN_TASKS, MetaWorldEnv, NumpyPolicy, evaluate_actor,
                           evaluate_policy, make_env, metaworld_id, robosuite_env_name, random_configs, rollout, training_config)
from maa_core.errors import MaaError
from maa_core.specs import get_spec


def test_paper_task_lists_map_to_v3_ids():
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS
    from metaworld.policies import ENV_POLICY_MAP

    assert len(SEEN_TASKS) == 10 and len(UNSEEN_TASKS) == 9
    for short, v3 in PAPER_TASKS.items():
        assert v3 in ALL_V3_ENVIRONMENTS and v3 in ENV_POLICY_MAP
        assert metaworld_id(short) == metaworld_id(v3) == v3
    with pytest.raises(MaaError, match="unknown MetaWorld task 'reach-v9'"):
        metaworld_id("reach-v9")


def test_fixed_training_config_and_seeded_random_configs():
    a, b, c = training_config("door-open", 1), training_config("door-open", 1), training_config("door-open", 2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    env = MetaWorldEnv("door-open", seed=1)
    o1, o2 = env.reset(a), env.reset(a)
    assert o1.shape == (39,) and o1.dtype == np.float32 and np.array_equal(o1, o2)
    r1, r2 = random_configs("door-open", 5, seed=7), random_configs("door-open", 5, seed=7)
    assert len(r1) == 5 and all(np.array_equal(x, y) for x, y in zip(r1, r2))
    lo, hi = env.config_space
    assert all(((x >= lo) & (x <= hi)).all() for x in r1)
    assert not np.array_equal(random_configs("door-open", 5, seed=8)[0], r1[0])
    assert not np.array_equal(env.reset(r1[0]), env.reset(r1[1]))


def test_expert_rollout_records_full_episode_with_success_flags():
    env = MetaWorldEnv("reach", seed=0)
    ro = rollout(env, env.expert(), env.train_config)
    t = ro.trajectory.validate(39, 4)
    assert len(t) == 500 and ro.success and 0 < t.first_success == ro.first_success < 500
    res = evaluate_policy(env.expert(), env, random_configs("reach", 5, 0))
    assert res.success_rate == 1.0 and len(res.trajectories) == 5


def test_rollout_can_end_soon_after_success():
    env = MetaWorldEnv("reach", seed=0)
    full = rollout(env, env.expert(), env.train_config)
    short = rollout(env, env.expert(), env.train_config, stop_after_success=5)
    assert short.first_success == full.first_success and len(short.trajectory) == full.first_success + 6
    np.testing.assert_array_equal(short.trajectory.states, full.trajectory.states[:len(short.trajectory)])


def test_evaluate_actor_protocol_is_reproducible_and_numpy_matches_torch():
    spec = get_spec("metaworld-sac")
    torch.manual_seed(0)
    actor = spec.build()
    obs = torch.randn(32, 39)
    np.testing.assert_allclose(NumpyPolicy(actor)(obs.numpy()), actor(obs).detach().numpy(), atol=1e-5)
    r1 = evaluate_actor(actor, "reach", n_configs=5, seed=3, max_episode_steps=50)
    r2 = evaluate_actor(actor, "reach-v3", n_configs=5, seed=3, max_episode_steps=50)
    assert len(r1.trajectories) == 5 and len(r1.first_success) == 5 and 0.0 <= r1.success_rate <= 1.0
    assert r1.returns == r2.returns
    assert all(np.array_equal(a.states, b.states) for a, b in zip(r1.trajectories, r2.trajectories))
    assert set(r1.summary()) >= {"success_rate", "mean_return", "mean_first_success"}


@pytest.mark.parametrize("robot", ["Panda", "Sawyer"])
@pytest.mark.slow
def test_robosuite_state_and_action_sizes(robot):
    for task in ("door", "lift", "nut-assembly"):
        env = make_env(task, robot=robot, seed=0)
        assert (env.obs_dim, env.act_dim) == (41, 8) == (get_spec("robosuite-sac").obs_dim, get_spec("robosuite-sac").act_dim)
        o = env.reset()
        assert o.shape == (41,) and np.isfinite(o).all()
        o2, r, s, done = env.step(np.zeros(8))
        assert o2.shape == (41,) and isinstance(s, bool) and not done
        assert np.array_equal(env.reset(5), env.reset(5))  # a configuration is reproducible
        env.close()


def test_robosuite_bad_robot_is_a_clear_error():
    with pytest.raises(MaaError, match="unknown Robosuite robot 'Pandaa'"):
        make_env("lift", robot="Pandaa")
    with pytest.raises(MaaError, match="needs a 7-DoF arm"):
        make_env("lift", robot="UR5e")  # a real robot, but 6-DoF: no 8-dim action layout
    with pytest.raises(MaaError, match="unknown Robosuite task"):
        robosuite_env_name("stack")
