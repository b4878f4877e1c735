"""Robot constants (config/<robot>_robot.yaml) as dataclasses. Every number the deployment uses is
named here and lives in the YAML; code holds no robot constants.

Per-joint values are resolved into arrays in *motor* order (the SDK's FR, FL, RR, RL order)."""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from ..config import read_yaml_mapping
from ..errors import MaaError, check
from ..resources import package_path
from .heading import HeadingHoldConfig
from .state import Joystick

NUM_MOTORS = 12
LEGS = ("FR", "FL", "RR", "RL")
JOINT_TYPES = ("hip", "thigh", "calf")


def _joint_value(spec, joint: str, where: str) -> float:
    """A per-joint value: a number, or a map tried as FL_thigh -> front_thigh -> thigh."""
    if isinstance(spec, (int, float)):
        return float(spec)
    check(isinstance(spec, dict), f"{where}: expected a number or a map of joint values, got {type(spec).__name__}")
    leg, jtype = joint.split("_")
    side = "front" if leg.startswith("F") else "rear"
    for key in (joint, f"{side}_{jtype}", jtype):
        if key in spec:
            v = spec[key]
            check(isinstance(v, (int, float)), f"{where}.{key}: expected a number, got {v!r}")
            return float(v)
    raise MaaError(f"{where}: no value for joint {joint} (tried {joint}, {side}_{jtype}, {jtype})")


def _section(cls, d, where: str):
    """Build a dataclass from a YAML map; unknown keys and wrong types are one clear line each."""
    if d is None:
        d = {}
    check(isinstance(d, dict), f"{where}: expected a map, got {type(d).__name__}")
    names = {f.name: f for f in fields(cls)}
    unknown = set(d) - set(names)
    check(not unknown, f"{where}: unknown key(s) {sorted(unknown)} (known: {sorted(names)})")
    kw = {}
    for k, v in d.items():
        default = getattr(cls, k, None) if not callable(getattr(cls, k, None)) else None
        if isinstance(default, bool):
            check(isinstance(v, bool), f"{where}.{k}: expected true/false, got {v!r}")
        elif isinstance(default, (int, float)) and not isinstance(default, bool):
            check(isinstance(v, (int, float)) and not isinstance(v, bool), f"{where}.{k}: expected a number, got {v!r}")
            v = type(default)(v) if isinstance(default, float) else v
        kw[k] = v
    return cls(**kw)


@dataclass(frozen=True)
class ControlConfig:
    rate_hz: float = 50.0
    kp: float = 20.0
    kd: float = 0.5
    motor_mode: int = 1
    level_flag: int = 0xFF
    head: tuple = (0xFE, 0xEF)
    rt_priority: int = 0               # SCHED_FIFO priority of the loop thread (0: normal scheduling)
    helper_rt_priority: int = 0        # SCHED_FIFO priority of validator, dispatcher, lowcmd sender
    gil_switch_interval_s: float = 0.0  # sys.setswitchinterval for the control process (0: leave as is)
    loop_cpu: int = -1                 # pin the loop thread to this CPU (-1: no pinning; failure is logged, not fatal)
    gc_freeze: bool = True             # gc.freeze() after start-up: a full collection then skips the ~200k start-up objects
    cpu_wakeup_latency_us: int = -1    # PM QoS limit on idle CPUs' wake-up latency while running (-1: leave it; realtime.py)

    @property
    def period_s(self) -> float:
        return 1.0 / self.rate_hz


@dataclass(frozen=True)
class StandConfig:
    kp: float = 40.0
    kd: float = 1.0
    duration_s: float = 2.0
    # before RUN: hold the stand pose at the policy's gains (control.kp/kd) this long, so the actor starts
    # from the stance, and the observation history, it was trained from (WTW and the maa students stand
    # 30 steps at the policy gains before walking); 0 = switch gains and start at once
    settle_s: float = 0.6


@dataclass(frozen=True)
class DampingConfig:
    kd: float = 1.0


@dataclass(frozen=True)
class SafetyConfig:
    stale_state_s: float = 0.05
    max_tilt_rad: float = 0.8
    joint_limit_margin: float = 0.1
    torque_saturation_fraction: float = 0.98
    torque_saturation_ticks: int = 25
    max_abs_action: float = 20.0  # 2 x WTW clip_actions; WTW clips at 10 itself
    swap_probation_s: float = 2.0
    canary_batch: int = 32
    max_inference_ms: float = 5.0
    run_after_stand: bool = True


@dataclass(frozen=True)
class GaitCommand:
    """walk-these-ways command slots 3..14 (0..2 are vx, vy, yaw rate)."""
    body_height: float = 0.0
    frequency: float = 3.0
    phase: float = 0.5
    offset: float = 0.0
    bound: float = 0.0
    duration: float = 0.5
    footswing_height: float = 0.08
    pitch: float = 0.0
    roll: float = 0.0
    stance_width: float = 0.25
    stance_length: float = 0.40
    aux_reward: float = 0.0


@dataclass(frozen=True)
class JoystickConfig:
    """The Go2's remote, read by the controller each tick (go2/gamepad.py). Each action is a chord:
    all its keys held together (names: state.Joystick.KEY_BITS). The robot sends the remote twice:
    on rt/wirelesscontroller and inside every rt/lowstate (`wireless_remote`); `source` picks one."""
    source: str = "wirelesscontroller"  # or "lowstate". wirelesscontroller: every sample since the last tick
                                        # (a tap between two ticks is seen); lowstate: the newest state's only
    damp_keys: tuple = ("L2", "B")     # DAMP at once, from any mode (Unitree's L2+B -> passive)
    stand_keys: tuple = ("L2", "A")    # pressed: DAMP or RUN -> STAND_UP, then hold the stand (L2+A -> fixed stand)
    run_keys: tuple = ("start",)       # pressed in STAND_UP with an active actor: settle, then RUN (START -> walk)
    velocity_from_sticks: bool = True  # deflected sticks drive (vx, vy, yaw rate) over cmd_vel / set_command
    stick_deadzone: float = 0.05       # |stick| at or below this counts as centred
    stick_timeout_s: float = 0.5       # no remote sample for this long: the sticks count as centred


@dataclass(frozen=True)
class DdsConfig:
    domain: int = 0
    interface: str = "eth0"
    release_sport_mode: bool = True
    rt_priority: int = 0  # SCHED_FIFO priority for the DDS threads (0: normal)


@dataclass(frozen=True)
class RobotConfig:
    name: str
    motor_joints: tuple[str, ...]
    policy_joints: tuple[str, ...]
    # arrays in motor order (12,)
    default_angles: np.ndarray
    stand_pose: np.ndarray
    lie_pose: np.ndarray
    joint_lower: np.ndarray
    joint_upper: np.ndarray
    torque_limit: np.ndarray
    velocity_limit: np.ndarray
    control: ControlConfig
    stand: StandConfig
    damping: DampingConfig
    safety: SafetyConfig
    gait_command: GaitCommand
    command_limits: dict
    joystick: JoystickConfig
    dds: DdsConfig
    sim: dict = field(default_factory=dict)  # read by maa_core.go2.sim.model
    source: str = ""
    heading_hold: HeadingHoldConfig = field(default_factory=HeadingHoldConfig)  # controller: heading.py

    def motor_index(self, joint: str) -> int:
        return self.motor_joints.index(joint)


JOYSTICK_SOURCES = ("wirelesscontroller", "lowstate")


def _joystick(j: JoystickConfig, source: str) -> JoystickConfig:
    """Key names checked at load time; the damp chord must not be part of another chord (pressing
    stand or run would damp too)."""
    chords = {}
    for k in ("damp_keys", "stand_keys", "run_keys"):
        keys = getattr(j, k)
        check(isinstance(keys, (list, tuple)) and len(keys) > 0 and all(isinstance(n, str) for n in keys),
              f"{source}: joystick.{k}: expected a non-empty list of key names, got {keys!r}")
        unknown = [n for n in keys if n not in Joystick.KEY_BITS]
        if unknown:
            raise MaaError(f"{source}: joystick.{k}: unknown key {unknown[0]!r} (known: {', '.join(Joystick.KEY_BITS)})")
        chords[k] = frozenset(keys)
    for k in ("stand_keys", "run_keys"):
        check(not chords["damp_keys"] <= chords[k], f"{source}: joystick.{k} {sorted(chords[k])} contains the damp chord "
              f"{sorted(chords['damp_keys'])}: pressing it would damp")
    check(chords["stand_keys"] != chords["run_keys"], f"{source}: joystick.stand_keys and run_keys are the same chord")
    check(j.source in JOYSTICK_SOURCES, f"{source}: joystick.source {j.source!r}: expected one of {', '.join(JOYSTICK_SOURCES)}")
    check(0.0 <= j.stick_deadzone < 1.0 and j.stick_timeout_s > 0,
          f"{source}: joystick: stick_deadzone must be in [0, 1) and stick_timeout_s > 0")
    return replace(j, damp_keys=tuple(j.damp_keys), stand_keys=tuple(j.stand_keys), run_keys=tuple(j.run_keys))


PER_JOINT = ("default_angles", "stand_pose", "lie_pose", "joint_lower", "joint_upper", "torque_limit", "velocity_limit")
SECTIONS = {"control": ControlConfig, "stand": StandConfig, "damping": DampingConfig, "safety": SafetyConfig,
            "gait_command": GaitCommand, "heading_hold": HeadingHoldConfig, "joystick": JoystickConfig, "dds": DdsConfig}


def robot_config_from_dict(d: dict, source: str = "robot config") -> RobotConfig:
    check(isinstance(d, dict), f"{source}: expected a YAML map at top level")
    known = {"name", "motor_joints", "policy_joints", "command_limits", "sim", *PER_JOINT, *SECTIONS}
    unknown = set(d) - known
    check(not unknown, f"{source}: unknown key(s) {sorted(unknown)}")
    for k in ("name", "motor_joints", "policy_joints", *PER_JOINT):
        check(k in d, f"{source}: missing key {k!r}")
    expected = {f"{leg}_{j}" for leg in LEGS for j in JOINT_TYPES}
    for k in ("motor_joints", "policy_joints"):
        check(isinstance(d[k], list) and len(d[k]) == NUM_MOTORS and set(d[k]) == expected,
              f"{source}: {k} must list the 12 joints {sorted(expected)} once each")
    motor = tuple(d["motor_joints"])
    arrays = {k: np.array([_joint_value(d[k], j, f"{source}: {k}") for j in motor]) for k in PER_JOINT}
    check(bool(np.all(arrays["joint_lower"] < arrays["joint_upper"])), f"{source}: joint_lower must be below joint_upper")
    for k in ("default_angles", "stand_pose", "lie_pose"):
        inside = (arrays[k] >= arrays["joint_lower"]) & (arrays[k] <= arrays["joint_upper"])
        check(bool(inside.all()), f"{source}: {k} outside the joint limits at {[motor[i] for i in np.flatnonzero(~inside)]}")
    check(bool(np.all(arrays["torque_limit"] > 0)), f"{source}: torque_limit must be positive")
    sections = {k: _section(cls, d.get(k), f"{source}: {k}") for k, cls in SECTIONS.items()}
    c = sections["control"]
    check(c.rate_hz > 0 and c.kp >= 0 and c.kd >= 0, f"{source}: control: rate_hz must be > 0 and gains >= 0")
    sections["control"] = ControlConfig(**{**c.__dict__, "head": tuple(c.head)})
    sections["joystick"] = _joystick(sections["joystick"], source)
    limits = d.get("command_limits") or {"vx": [-1.0, 1.0], "vy": [-0.6, 0.6], "yaw_rate": [-1.0, 1.0]}
    for k in ("vx", "vy", "yaw_rate"):
        check(k in limits and len(limits[k]) == 2 and limits[k][0] <= limits[k][1],
              f"{source}: command_limits.{k} must be [low, high]")
    return RobotConfig(name=str(d["name"]), motor_joints=motor, policy_joints=tuple(d["policy_joints"]),
                       command_limits={k: tuple(map(float, limits[k])) for k in ("vx", "vy", "yaw_rate")},
                       sim=dict(d.get("sim") or {}), source=source, **arrays, **sections)


def load_robot_config(name_or_path="go2") -> RobotConfig:
    """'go2' / 'go1' (config/<name>_robot.yaml) or a path to a YAML file."""
    if isinstance(name_or_path, RobotConfig):
        return name_or_path
    p = Path(name_or_path)
    if not p.suffix:
        try:
            p = package_path("config", f"{name_or_path}_robot.yaml")
        except MaaError:
            raise MaaError(f"{name_or_path}: no such robot config (built-in: go2, go1)") from None
    check(p.is_file(), f"{p}: no such robot config (built-in: go2, go1)")
    return robot_config_from_dict(read_yaml_mapping(p, "robot config"), str(p))
