"""Scripted Robosuite experts (real robosuite): they solve Lift on both robots, act in the 41 -> 8
layout, the wrapper's action really is JOINT_POSITION delta + gripper, and the Sawyer's joint 0 moves."""
import numpy as np
import pytest

from maa_core.envs import make_env
from maa_core.envs.robosuite_env import _SortedChoice
from maa_core.envs.robosuite_experts import EXPERTS, ExpertGains, make_expert
from maa_core.errors import MaaError

LIFT_STEPS = 250  # the expert lifts in ~100-110 steps on either robot (BENCHMARKS.md, Robosuite scripted experts)


@pytest.mark.parametrize("robot", ["Panda", "Sawyer"])
def test_lift_expert_solves_seeded_configs(robot):
    env = make_env("lift", robot=robot, seed=0)
    assert (env.obs_dim, env.act_dim) == (41, 8)
    expert = env.expert()
    wins = 0
    for config in (0, 1, 2):
        obs = env.reset(config)
        for _ in range(LIFT_STEPS):
            a = expert(obs)
            assert a.shape == (8,) and np.all(np.abs(a) <= 1.0)
            obs, _, success, _ = env.step(a)
            assert obs.shape == (41,)
            if success:
                wins += 1
                break
    env.close()
    assert wins >= 2, f"{robot}: expert lifted the cube in {wins}/3 configurations"


def test_door_expert_opens_a_seeded_door_on_panda():
    """One configuration (the suite's budget allows one 500-step Door episode): config 3 opens in ~395
    steps, the horizon leaves ~100 steps of margin (10 configurations: BENCHMARKS.md)."""
    env = make_env("door", robot="Panda", seed=0)
    expert = env.expert()
    obs = env.reset(3)
    opened_at = None
    for t in range(env.max_episode_steps):
        obs, _, success, _ = env.step(expert(obs))
        if success:
            opened_at = t
            break
    hinge = float(obs[39])
    env.close()
    assert opened_at is not None, f"Panda Door config 3: not opened in 500 steps (hinge {hinge:.3f} rad, success 0.3)"


def test_sawyer_joint0_follows_a_commanded_delta():
    """The wrapper excludes the Sawyer's l0 / arm-base contact (MuJoCo's parent filter skips bodies welded
    to the world); with it, friction held joint 0 still (0.0001 rad in 40 full-scale steps)."""
    env = make_env("lift", robot="Sawyer", seed=0)
    rs = env._env
    assert ("robot0_right_l0", "robot0_right_arm_base_link") in env.base_excludes
    m, d = rs.sim.model._model, rs.sim.data._data
    l0, base = m.body("robot0_right_l0").id, m.body("robot0_right_arm_base_link").id
    q = rs.robots[0]._ref_joint_pos_indexes
    env.reset(0)
    q0 = d.qpos[q].copy()
    for _ in range(40):
        env.step(np.r_[1.0, np.zeros(7)])  # joint 0 only, full scale
        assert not any({m.geom_bodyid[c.geom1], m.geom_bodyid[c.geom2]} == {l0, base} for c in d.contact[:d.ncon])
    dq = d.qpos[q] - q0
    env.close()
    assert dq[0] > 0.2, f"Sawyer joint 0 moved {dq[0]:.4f} rad in 40 steps"  # measured 0.31 (0.009 rad/step cap)


@pytest.mark.parametrize("robot", ["Panda", "Sawyer"])
def test_action_is_joint_position_delta_plus_gripper(robot):
    env = make_env("lift", robot=robot, seed=0)
    r = env._env.robots[0]
    arm = r.part_controllers["right"]
    assert type(arm).__name__ == "JointPositionController" and arm.input_type == "delta"
    np.testing.assert_allclose(arm.output_max, 0.05)
    assert dict(r.composite_controller._action_split_indexes) == {"right": (0, 7), "right_gripper": (7, 8)}
    env.close()


def test_expert_table_and_gains():
    assert set(EXPERTS) == {"Lift", "Door", "NutAssemblySingle"}
    g = ExpertGains()
    assert 0 < g.empty_pad_gap < 1 and g.door_open < 0.4 and g.lift_height > 0.04  # success: 0.04 m lift
    with pytest.raises(MaaError, match="has no scripted expert"):
        class Fake:
            env_name = "Stack"
        make_expert(Fake())


def test_sorted_choice_ignores_list_order():
    """NutAssemblySingle draws its nut from list(set): the draw must not depend on the set's order."""
    a = _SortedChoice(np.random.default_rng(3)).choice(["SquareNut", "RoundNut"])
    b = _SortedChoice(np.random.default_rng(3)).choice(["RoundNut", "SquareNut"])
    assert a == b


# one pytest-xdist worker runs this file: its module fixtures are built once
pytestmark = pytest.mark.xdist_group("test_robosuite_experts")
