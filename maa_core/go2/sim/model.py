"""MJCF of a Go2 (or Go1) built from primitive geoms and the public dimensions in the robot config.

Joints and actuators are declared in the SDK's motor order (FR, FL, RR, RL), so qpos[7:19],
qvel[6:18] and ctrl[0:12] index exactly like LowState_.motor_state / LowCmd_.motor_cmd.
Each actuator is a PD servo (gain kp, bias -kp q - kd dq + kd dq_des + tau_ff) whose parameters are
rewritten from every LowCmd_, clamped to the motor torque limit; the implicit integrator treats
the kd term implicitly, which keeps stiff damping stable at the robot's 2 ms step."""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from ...errors import MaaError, check
from ..config import RobotConfig, load_robot_config

TERRAINS = ("flat", "mat")


@dataclass(frozen=True)
class MatConfig:
    """The `mat` terrain (robot config sim.mat): an uneven, slightly compliant floor (MJCF height field)
    centred on the start, with the flat floor around it."""
    size: float = 24.0          # m, side of the square mat (the 40 s course stays on it)
    cell: float = 0.1           # m, height-field grid spacing
    height: float = 0.02        # m, highest bump above the floor (the lowest is at the floor)
    smooth: int = 2             # box-filter passes over the random heights: bumps ~ a few cells wide
    seed: int = 0               # the mat's bumps (deterministic)
    timeconst: float = 0.04     # contact solref time constant (s): softer than MuJoCo's 0.02 rigid default
    dampratio: float = 1.0
    solimp: tuple = (0.8, 0.95, 0.01)  # contact impedance: a few mm of give under the robot's weight

    @classmethod
    def from_dict(cls, d, where: str) -> "MatConfig":
        check(d is None or isinstance(d, dict), f"{where}: sim.mat must be a map")
        d = dict(d or {})
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        check(not unknown, f"{where}: sim.mat: unknown key(s) {sorted(unknown)} (known: {sorted(known)})")
        try:
            c = cls(**{**d, **({"solimp": tuple(float(x) for x in d["solimp"])} if "solimp" in d else {})})
        except (TypeError, ValueError) as e:
            raise MaaError(f"{where}: sim.mat: {e}") from None
        check(c.size > 0 and 0 < c.cell < c.size and c.height > 0 and c.smooth >= 0 and c.timeconst > 0
              and len(c.solimp) == 3, f"{where}: sim.mat: size, cell, height, timeconst must be > 0 (cell < size), "
              f"smooth >= 0, solimp 3 numbers")
        return c

    def elevation(self) -> np.ndarray:
        """(n, n) heights in [0, 1] (fractions of `height`)."""
        n = int(round(self.size / self.cell)) + 1
        z = np.random.default_rng(self.seed).uniform(0.0, 1.0, (n, n))
        for _ in range(self.smooth):
            p = np.pad(z, 1, mode="edge")
            z = sum(p[1 + i:n + 1 + i, 1 + j:n + 1 + j] for i in (-1, 0, 1) for j in (-1, 0, 1)) / 9.0
        z -= z.min()
        return z / max(float(z.max()), 1e-9)


def terrain_of(cfg: RobotConfig, terrain: str | None = None) -> str:
    t = terrain if terrain is not None else cfg.sim.get("terrain", "flat")
    check(t in TERRAINS, f"{cfg.source}: sim.terrain {t!r}: expected one of {', '.join(TERRAINS)}")
    return t


def _terrain_xml(cfg: RobotConfig, terrain: str) -> tuple[str, str]:
    """(asset, worldbody) MJCF of the terrain on top of the floor plane."""
    if terrain == "flat":
        return "", ""
    m = MatConfig.from_dict(cfg.sim.get("mat"), cfg.source)
    z = m.elevation()
    n = z.shape[0]
    asset = (f'    <hfield name="mat" nrow="{n}" ncol="{n}" size="{m.size / 2:.6g} {m.size / 2:.6g} {m.height:.6g} 0.01" '
             f'elevation="{" ".join(f"{v:.4f}" for v in z.ravel())}"/>\n')
    # priority 1: the mat's solref/solimp (not a mix with the robot's) decide its contacts
    body = (f'    <geom name="mat" type="hfield" hfield="mat" rgba="0.35 0.42 0.38 1" contype="0" conaffinity="1" '
            f'priority="1" solref="{m.timeconst:.6g} {m.dampratio:.6g}" solimp="{_v(m.solimp)}"/>\n')
    return asset, body


def _v(xs) -> str:
    return " ".join(f"{float(x):.6g}" for x in xs)


def _need(sim: dict, key: str, where: str):
    check(key in sim, f"{where}: sim.{key} missing")
    return sim[key]


def build_mjcf(cfg: RobotConfig | str = "go2", terrain: str | None = None) -> str:
    """The model; `terrain` (flat | mat) overrides the config's sim.terrain."""
    cfg = load_robot_config(cfg)
    t_asset, t_body = _terrain_xml(cfg, terrain_of(cfg, terrain))
    s, where = cfg.sim, cfg.source
    trunk, hip, thigh, calf = (_need(s, k, where) for k in ("trunk", "hip", "thigh", "calf"))
    hx, hy, hz = _need(s, "hip_offset", where)
    l_thigh, l_calf, r_foot = (float(_need(s, k, where)) for k in ("thigh_length", "calf_length", "foot_radius"))
    thigh_off = float(_need(s, "thigh_offset", where))
    arm, damp, fric = float(s.get("armature", 0.01)), float(s.get("joint_damping", 0.01)), float(s.get("friction", 0.8))
    ts = float(s.get("timestep", 0.002))
    tsize = [x / 2 for x in trunk["size"]]

    legs, acts, sensors = [], [], []
    for leg in ("FR", "FL", "RR", "RL"):
        sy = -1.0 if leg[1] == "R" else 1.0     # right legs mirror y
        sx = 1.0 if leg[0] == "F" else -1.0     # rear hips sit behind the trunk centre
        idx = {j: cfg.motor_index(f"{leg}_{j}") for j in ("hip", "thigh", "calf")}
        rng = {j: (cfg.joint_lower[i], cfg.joint_upper[i]) for j, i in idx.items()}

        def com(c, mirror_x=False):
            return [c[0] * (sx if mirror_x else 1.0), c[1] * sy, c[2]]
        legs.append(f"""
      <body name="{leg}_hip" pos="{_v([sx * hx, sy * hy, hz])}">
        <inertial pos="{_v(com(hip['com'], True))}" mass="{hip['mass']}" diaginertia="{_v(hip['inertia'])}"/>
        <joint name="{leg}_hip_joint" axis="1 0 0" range="{_v(rng['hip'])}"/>
        <geom class="visual" type="cylinder" size="{hip['radius']} {hip['length'] / 2}" pos="0 {sy * 0.02} 0" zaxis="0 1 0" rgba="0.2 0.2 0.2 1"/>
        <body name="{leg}_thigh" pos="0 {sy * thigh_off} 0">
          <inertial pos="{_v(com(thigh['com']))}" mass="{thigh['mass']}" diaginertia="{_v(thigh['inertia'])}"/>
          <joint name="{leg}_thigh_joint" axis="0 1 0" range="{_v(rng['thigh'])}"/>
          <geom class="collision" type="capsule" fromto="0 0 0 0 0 {-l_thigh}" size="{thigh['radius']}" rgba="0.75 0.75 0.78 1"/>
          <body name="{leg}_calf" pos="0 0 {-l_thigh}">
            <inertial pos="{_v(com(calf['com']))}" mass="{calf['mass']}" diaginertia="{_v(calf['inertia'])}"/>
            <joint name="{leg}_calf_joint" axis="0 1 0" range="{_v(rng['calf'])}"/>
            <geom class="collision" type="capsule" fromto="0 0 0 0 0 {-(l_calf - r_foot)}" size="{calf['radius']}" rgba="0.25 0.25 0.28 1"/>
            <body name="{leg}_foot" pos="0 0 {-l_calf}">
              <inertial pos="0 0 0" mass="{s.get('foot_mass', 0.04)}" diaginertia="1e-5 1e-5 1e-5"/>
              <geom name="{leg}_foot" class="foot" type="sphere" size="{r_foot}"/>
              <site name="{leg}_foot_site" type="sphere" size="{r_foot * 1.3}" rgba="0 0 0 0"/>
            </body>
          </body>
        </body>
      </body>""")
        sensors.append(f'    <touch name="{leg}_foot_force" site="{leg}_foot_site"/>')
    for i, j in enumerate(cfg.motor_joints):
        lim = cfg.torque_limit[i]
        acts.append(f'    <general name="{j}" joint="{j}_joint" gaintype="fixed" biastype="affine" '
                    f'gainprm="0" biasprm="0 0 0" forcelimited="true" forcerange="{-lim:.6g} {lim:.6g}"/>')
    legs_xml, acts_xml, sensors_xml = "".join(legs), "\n".join(acts), "\n".join(sensors)
    return f"""<mujoco model="{cfg.name}-maa">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{ts}" integrator="implicitfast"/>
  <visual><global offwidth="640" offheight="480"/></visual>
  <default>
    <joint armature="{arm}" damping="{damp}" limited="true"/>
    <geom friction="{fric} 0.02 0.01"/>
    <default class="collision"><geom contype="1" conaffinity="0" density="0"/></default>
    <default class="foot"><geom contype="1" conaffinity="0" condim="3" rgba="0.1 0.1 0.1 1"/></default>
    <default class="visual"><geom contype="0" conaffinity="0" density="0"/></default>
  </default>
  <asset>
    <texture name="grid" type="2d" builtin="checker" width="256" height="256" rgb1="0.55 0.6 0.65" rgb2="0.45 0.5 0.55"/>
    <material name="grid" texture="grid" texrepeat="8 8"/>
{t_asset}  </asset>
  <worldbody>
    <light pos="0 0 3" dir="0 0 -1" directional="true"/>
    <geom name="floor" type="plane" size="0 0 0.05" material="grid" contype="0" conaffinity="1"/>
{t_body}    <body name="trunk" pos="0 0 0.35">
      <camera name="track" mode="trackcom" pos="0.6 -1.2 0.5" xyaxes="0.9 0.45 0 -0.15 0.3 0.94"/>
      <freejoint name="root"/>
      <inertial pos="{_v(trunk['com'])}" mass="{trunk['mass']}" diaginertia="{_v(trunk['inertia'])}"/>
      <geom class="collision" type="box" size="{_v(tsize)}" rgba="0.8 0.8 0.82 1"/>
      <site name="imu" pos="0 0 0" size="0.01"/>{legs_xml}
    </body>
  </worldbody>
  <actuator>
{acts_xml}
  </actuator>
  <sensor>
    <framequat name="imu_quat" objtype="site" objname="imu"/>
    <gyro name="imu_gyro" site="imu"/>
    <accelerometer name="imu_acc" site="imu"/>
{sensors_xml}
  </sensor>
</mujoco>
"""
