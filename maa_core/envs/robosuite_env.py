"""Robosuite 1.5 Door, Lift and NutAssemblySingle with the paper's 41-dim state and 8-dim action.

State (41) = robot part (30) ‖ object part (11):
    robot0_joint_pos_cos (7) ‖ robot0_joint_pos_sin (7) ‖ robot0_joint_vel (7) ‖
    robot0_eef_pos (3) ‖ robot0_eef_quat (4) ‖ robot0_gripper_qpos (2)
    object part, per task (zero-padded to 11):
      Door:  door_pos (3) ‖ handle_pos (3) ‖ handle_to_eef_pos (3) ‖ hinge_qpos (1) ‖ handle_qpos (1)
      Lift:  cube_pos (3) ‖ cube_quat (4) ‖ gripper_to_cube_pos (3) ‖ 0
      NutAssemblySingle: <Nut>_pos (3) ‖ <Nut>_quat (4) ‖ <Nut>_to_robot0_eef_pos (3) ‖ nut_id (1)
Action (8) = arm JOINT_POSITION controller, delta mode (7 joints, ±0.05 rad) ‖ gripper (1).
Both Panda (training) and Sawyer (evaluation) are 7-DoF single arms with 2-finger grippers, so the
same layout, and the same 41 -> 8 actor, drives either robot.

A configuration is an integer: the seed of the object placement sampler at reset.
The sim is built with a contact exclude between each robot's first moving link and its base
(_base_link_pairs): without it the Sawyer's joint 0 does not move.
"""
from __future__ import annotations

import logging
import os

import numpy as np

from ..errors import MaaError, check
from .tasks import robosuite_env_name

OBS_DIM = 41
ACT_DIM = 8
ROBOT_KEYS = ("robot0_joint_pos_cos", "robot0_joint_pos_sin", "robot0_joint_vel",
              "robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos")
OBJECT_DIM = 11
OBJECT_KEYS = {
    "Door": ("door_pos", "handle_pos", "handle_to_eef_pos", "hinge_qpos", "handle_qpos"),
    "Lift": ("cube_pos", "cube_quat", "gripper_to_cube_pos"),
    "NutAssemblySingle": ("{nut}_pos", "{nut}_quat", "{nut}_to_robot0_eef_pos", "nut_id"),
}


def _quiet(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.ERROR


def _import_robosuite():
    """robosuite, imported without its import-time warnings (no private macro file, optional robot
    models, GR1 IK): they reach stderr on every import and bury a CLI's one-line error. A filter on
    its logger, set before the import, survives the handlers robosuite adds; its errors still show."""
    log = logging.getLogger("robosuite_logs")
    if _quiet not in log.filters:
        log.addFilter(_quiet)
    import robosuite

    return robosuite


def _controller_config(robot: str) -> dict:
    from robosuite.controllers import load_composite_controller_config, load_part_controller_config

    cfg = load_composite_controller_config(controller="BASIC", robot=robot)
    arm = cfg["body_parts"].get("right") or cfg["body_parts"].get("arms", {}).get("right", {})
    jp = load_part_controller_config(default_controller="JOINT_POSITION")
    jp["gripper"] = arm.get("gripper", {"type": "GRIP"})
    cfg["body_parts"] = {"right": jp}
    return cfg


def _base_link_pairs(rs_env) -> list[tuple[str, str]]:
    """(first moving link, base) body pairs of the robots that MuJoCo's parent-child contact filter misses.

    MuJoCo drops contacts between a body and its parent, but compares weld groups and never filters
    against the world's: a fixed-base arm's base is welded to the world, so its first moving link may
    collide with the base it turns on. The Sawyer's `robot0_right_l0` rests on
    `robot0_right_arm_base_link` at every pose (distance ~0), and that contact's friction holds joint 0
    still under the JOINT_POSITION controller (kp 50). Only robot bodies: the door panel against its
    frame is real task physics."""
    m = rs_env.sim.model._model
    prefixes = tuple(r.robot_model.naming_prefix for r in rs_env.robots)
    pairs = []
    for b in range(1, m.nbody):
        parent = m.body_parentid[b]
        name = m.body(b).name
        if m.body_jntnum[b] and parent and m.body_weldid[parent] == 0 and name.startswith(prefixes):
            pairs.append((name, m.body(parent).name))
    return pairs


def _exclude_base_contacts(rs_env) -> list[tuple[str, str]]:
    """Adds an MJCF <exclude> for each _base_link_pairs pair and rebuilds the sim from the edited model
    (robosuite's own reload path, as for replaying demonstrations); returns the pairs."""
    pairs = _base_link_pairs(rs_env)
    if pairs:
        import xml.etree.ElementTree as ET

        for body1, body2 in pairs:
            rs_env.model.contact.append(ET.Element("exclude", body1=body1, body2=body2))
        rs_env.reset_from_xml_string(rs_env.model.get_xml())
    return pairs


def robosuite_configs(n: int, seed: int = 0) -> list[int]:
    """`n` evaluation configurations (placement-sampler seeds), reproducible from `seed`, apart from
    the training runs' own seeds (0, 1, 2, ...)."""
    check(n >= 1, f"n_configs must be >= 1, got {n}")
    rng = np.random.default_rng([int(seed), 0x6D7761])
    return [int(x) for x in rng.integers(0, 2**31 - 1, size=n)]


class _SortedChoice:
    """A np.random.Generator whose choice() sorts a list first: NutAssemblySingle draws its nut from
    list(set of names), whose order follows the process's string-hash seed, so without this the same
    configuration could hold the square nut in one process and the round one in another."""

    def __init__(self, rng: np.random.Generator):
        self._rng = rng

    def choice(self, a, *args, **kwargs):
        return self._rng.choice(sorted(a) if isinstance(a, list) else a, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._rng, name)


class RobosuiteEnv:
    obs_dim = OBS_DIM
    act_dim = ACT_DIM
    domain = "robosuite"

    def __init__(self, task: str, robot: str = "Panda", seed: int = 0, max_episode_steps: int = 500):
        self.env_name = robosuite_env_name(task)
        self.task = task
        os.environ.setdefault("MUJOCO_GL", "egl")
        robosuite = _import_robosuite()
        robots = sorted(robosuite.ALL_ROBOTS)
        if robot not in robots:
            raise MaaError(f"unknown Robosuite robot {robot!r} (robosuite {robosuite.__version__} has: {', '.join(robots)})")
        self.robot = robot
        self.env_id = f"{self.env_name}/{robot}"
        self.max_episode_steps = int(max_episode_steps)
        try:
            self._env = robosuite.make(self.env_name, robots=robot, has_renderer=False, has_offscreen_renderer=False,
                                       use_camera_obs=False, reward_shaping=True, hard_reset=False,
                                       controller_configs=_controller_config(robot),
                                       horizon=self.max_episode_steps, ignore_done=True, seed=int(seed))
        except (AssertionError, ValueError, KeyError, TypeError) as e:
            raise MaaError(f"Robosuite {self.env_name} with robot {robot}: cannot build ({e})") from None
        self.base_excludes = _exclude_base_contacts(self._env)
        check(self._env.action_dim == ACT_DIM,
              f"Robosuite robot {robot}: action has {self._env.action_dim} dims, the {ACT_DIM}-dim layout needs a 7-DoF arm with a 1-dof gripper")
        self.train_config = int(seed)
        self._config = int(seed)
        self._t = 0
        obs = self.reset()
        check(obs.shape == (OBS_DIM,), f"Robosuite robot {robot}: state has {obs.shape[0]} dims, expected {OBS_DIM}")

    def _state(self, od: dict) -> np.ndarray:
        parts = []
        for k in ROBOT_KEYS:
            check(k in od, f"Robosuite {self.env_name}/{self.robot}: observation lacks {k!r}")
            parts.append(np.ravel(od[k]))
        obj = []
        nut = next((k[:-4] for k in od if k.endswith("Nut_pos")), "")
        for k in OBJECT_KEYS[self.env_name]:
            k = k.format(nut=nut)
            check(k in od, f"Robosuite {self.env_name}: observation lacks {k!r}")
            obj.append(np.ravel(od[k]))
        obj = np.concatenate(obj)
        parts.append(np.pad(obj, (0, OBJECT_DIM - len(obj))))
        robot_dim = sum(len(p) for p in parts[:-1])
        check(robot_dim == OBS_DIM - OBJECT_DIM, f"Robosuite robot {self.robot}: robot state has {robot_dim} dims, expected 30")
        return np.concatenate(parts).astype(np.float32)

    def reset(self, config=None) -> np.ndarray:
        if config is not None:
            self._config = int(config)
        rng = np.random.default_rng(self._config)
        self._env.rng = _SortedChoice(rng)
        pi = getattr(self._env, "placement_initializer", None)
        stack = [pi] if pi is not None else []
        while stack:
            s = stack.pop()
            s.rng = rng
            stack += list(getattr(s, "samplers", {}).values())
        self._t = 0
        return self._state(self._env.reset())

    def expert(self, gains=None):
        """The scripted expert of this task (robosuite_experts.py): callable obs -> action (8,)."""
        from .robosuite_experts import make_expert

        return make_expert(self, gains)

    def step(self, action):
        a = np.clip(np.asarray(action, dtype=np.float64).reshape(ACT_DIM), -1.0, 1.0)
        od, reward, _, _ = self._env.step(a)
        self._t += 1
        return self._state(od), float(reward), bool(self._env._check_success()), self._t >= self.max_episode_steps

    def close(self) -> None:
        self._env.close()


_CACHE: dict[tuple[str, str, int], RobosuiteEnv] = {}


def get_env(task: str, robot: str, max_episode_steps: int = 500) -> RobosuiteEnv:
    """A per-process cached env (reset with an explicit configuration before use): building one takes
    about a second, an evaluation scores many policies in the same task."""
    key = (task, robot, int(max_episode_steps))
    if key not in _CACHE:
        _CACHE[key] = RobosuiteEnv(task, robot=robot, max_episode_steps=max_episode_steps)
    return _CACHE[key]
