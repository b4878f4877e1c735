"""Scripted Robosuite experts (real robosuite): they solve Lift on both robots, act in the 41 -> 8
layout, and the wrapper's action really is JOINT_POSITION delta + gripper."""
import numpy as np
import pytest

from maa_core.envs import make_env
from maa_core.envs.robosuite_env import _SortedChoice
from maa_core.envs.robosuite_experts import EXPERTS, ExpertGains, make_expert
from maa_core.errors import MaaError

LIFT_STEPS = 250  # the expert lifts in ~110 steps on Panda (BENCHMARKS.md, Robosuite scripted experts)


SAWYER_FAILS = pytest.mark.xfail(strict=True, reason="Sawyer Lift fails today: its joint 0 does not move "
                                  "(robot0_right_l0 touches robot0_right_arm_base_link in robosuite 1.5.2)")


@pytest.mark.parametrize("robot", ["Panda", pytest.param("Sawyer", marks=SAWYER_FAILS)])
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
