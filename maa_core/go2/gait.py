"""A model-based trot expert for the simulated Go2 (the teacher of the locomotion data path).

It reads privileged simulator state (base velocity and attitude) and writes walk-these-ways raw
actions, so its output goes through the same `ActionMapper` and PD gains (kp 20, kd 0.5) as every
actor the controller runs. Per tick:

  * phase: each foot's phase comes from the controller's own gait clock (`ObservationBuilder.gait_index`
    with the phase offsets of the config's gait command), so a student sees the same clock in its
    observation that the expert followed;
  * foot targets in a yaw-aligned, gravity-aligned frame: stance feet sweep back at the commanded
    speed, swing feet follow a raised cycloid to a Raibert touchdown point
    (`v T_stance / 2 + k (v - v_cmd)`); a height/pitch/roll correction shifts the stance feet;
  * the targets are rotated into the body frame (so the feet stay level when the trunk tilts) and
    solved by the leg's closed-form inverse kinematics;
  * stance legs get a feed-forward torque `J^T f` (weight share and a horizontal push) expressed as a
    position offset `tau / kp`, because the deployment interface is a PD target, not a torque.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..errors import check
from .config import RobotConfig

GRAVITY = 9.81
LEG_NAMES = ("FL", "FR", "RL", "RR")  # policy order


@dataclass(frozen=True)
class GaitParams:
    """One expert gait. Speeds in m/s, lengths in m, angles in rad, forces in N."""
    speed: float = 0.6                # commanded forward speed
    body_height: float = 0.28         # trunk height above the foot centres in stance
    swing_height: float = 0.08        # foot clearance at mid-swing
    duty: float = 0.5                 # stance fraction of a cycle
    stance_width: float = 0.0         # extra lateral foot offset (each side)
    foot_x_offset: float = 0.0        # forward offset of every nominal foot position
    raibert_gain: float = 0.08        # touchdown shift per m/s of forward velocity error (s)
    lateral_gain: float = 0.08        # lateral touchdown shift per m/s of sideways velocity (s)
    weight_share: float = 1.0         # fraction of body weight the stance feed-forward carries
    height_kp: float = 150.0          # vertical acceleration per m of height error (1/s^2)
    height_kd: float = 10.0           # ... per m/s of vertical velocity (1/s)
    pitch_kp: float = 400.0           # front/rear force split per rad of pitch (N/rad)
    pitch_kd: float = 10.0            # ... per rad/s (N s/rad)
    roll_kp: float = 400.0            # left/right force split per rad of roll (N/rad)
    roll_kd: float = 10.0
    speed_kp: float = 10.0            # forward acceleration per m/s of velocity error (1/s)
    lateral_kp: float = 2.0           # sideways acceleration per m/s of sideways velocity (1/s)
    yaw_kp: float = 60.0              # left/right push split per rad of heading drift (N/rad)
    yaw_kd: float = 5.0
    accel: float = 0.5                # the commanded speed ramps up from 0 at this rate (m/s^2)
    max_push: float = 25.0            # bound on the forward feed-forward force per stance foot (N)

    def with_(self, **kw) -> "GaitParams":
        return replace(self, **kw)


@dataclass(frozen=True)
class GaitRange:
    """The parameter box students are drawn from (uniform per run)."""
    speed: tuple = (0.55, 0.9)
    body_height: tuple = (0.27, 0.31)
    swing_height: tuple = (0.07, 0.11)
    duty: tuple = (0.5, 0.6)
    stance_width: tuple = (-0.01, 0.03)
    foot_x_offset: tuple = (-0.03, -0.01)

    def sample(self, rng: np.random.Generator, base: GaitParams = GaitParams()) -> GaitParams:
        return base.with_(**{k: float(rng.uniform(*getattr(self, k))) for k in
                             ("speed", "body_height", "swing_height", "duty", "stance_width", "foot_x_offset")})


class LegKinematics:
    """Closed-form kinematics of one Go2 leg in the trunk frame (hip roll about x, thigh and calf
    pitch about y). Angles (hip, thigh, calf); positions of the foot centre relative to the trunk."""

    def __init__(self, cfg: RobotConfig, leg: str):
        s = cfg.sim
        sx = 1.0 if leg[0] == "F" else -1.0
        self.sy = 1.0 if leg[1] == "L" else -1.0
        hx, hy, hz = s["hip_offset"]
        self.hip = np.array([sx * hx, self.sy * hy, hz])
        self.y0 = self.sy * float(s["thigh_offset"])
        self.l1, self.l2 = float(s["thigh_length"]), float(s["calf_length"])

    def forward(self, q) -> np.ndarray:
        h, t, c = q
        x = -self.l1 * math.sin(t) - self.l2 * math.sin(t + c)
        zl = -self.l1 * math.cos(t) - self.l2 * math.cos(t + c)
        y = self.y0 * math.cos(h) - zl * math.sin(h)
        z = self.y0 * math.sin(h) + zl * math.cos(h)
        return self.hip + np.array([x, y, z])

    def inverse(self, p) -> np.ndarray:
        px, py, pz = np.asarray(p, dtype=float) - self.hip
        d2 = py * py + pz * pz
        zl = -math.sqrt(max(d2 - self.y0 * self.y0, 1e-6))
        h = math.atan2(pz, py) - math.atan2(zl, self.y0)
        h = (h + math.pi) % (2 * math.pi) - math.pi
        r2 = px * px + zl * zl
        reach = self.l1 + self.l2 - 1e-4
        if r2 > reach * reach:
            scale = reach / math.sqrt(r2)
            px, zl, r2 = px * scale, zl * scale, reach * reach
        cc = (r2 - self.l1 ** 2 - self.l2 ** 2) / (2 * self.l1 * self.l2)
        c = -math.acos(min(1.0, max(-1.0, cc)))
        alpha = math.atan2(-px, -zl)
        alpha0 = math.atan2(self.l2 * math.sin(c), self.l1 + self.l2 * math.cos(c))
        return np.array([h, alpha - alpha0, c])

    def jacobian(self, q, eps: float = 1e-5) -> np.ndarray:
        q = np.asarray(q, dtype=float)
        f0 = self.forward(q)
        J = np.zeros((3, 3))
        for i in range(3):
            dq = q.copy()
            dq[i] += eps
            J[:, i] = (self.forward(dq) - f0) / eps
        return J


def quat_to_rpy(q) -> tuple[float, float, float]:
    w, x, y, z = q
    roll = math.atan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))
    pitch = math.asin(max(-1.0, min(1.0, 2 * (w * y - z * x))))
    yaw = math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    return roll, pitch, yaw


def rot_rp(roll: float, pitch: float) -> np.ndarray:
    """Rotation from the body frame to the yaw-aligned level frame (R_y(pitch) R_x(roll))."""
    cr, sr, cp, sp = math.cos(roll), math.sin(roll), math.cos(pitch), math.sin(pitch)
    rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    return ry @ rx


class GaitExpert:
    """Trot expert acting on a `WtwSimEnv` (see module docstring). `act()` -> raw action (policy order)."""

    def __init__(self, env, params: GaitParams = GaitParams()):
        self.env, self.p = env, params
        cfg = env.cfg
        self.legs = [LegKinematics(cfg, n) for n in LEG_NAMES]
        self.mass = float(np.sum(env.sim.model.body_mass))
        g = cfg.gait_command
        # foot phase offsets exactly as the builder's clock orders them (policy order FL, FR, RL, RR)
        self.offsets = np.array([g.phase + g.offset + g.bound, g.offset, g.bound, g.phase]) % 1.0
        self.freq = float(g.frequency)
        check(self.freq > 0, "gait expert: gait_command.frequency must be > 0")
        self.default = env.joints.to_policy(cfg.default_angles).reshape(4, 3)
        self.scale = env.mapper.scale.reshape(4, 3)
        self.kp = float(env.wtw.kp)
        self.clip = float(env.wtw.clip_actions)
        self.foot_radius = float(cfg.sim["foot_radius"])
        self._yaw0, self._t = None, 0.0

    def reset(self) -> None:
        self._yaw0, self._t = None, 0.0

    def speed_command(self) -> float:
        return min(self.p.speed, self.p.accel * self._t)

    def phases(self) -> np.ndarray:
        return (self.env.builder.gait_index + self.offsets) % 1.0

    def act(self) -> np.ndarray:
        p, env = self.p, self.env
        d = env.sim.data
        roll, pitch, yaw = quat_to_rpy(d.qpos[3:7])
        if self._yaw0 is None:
            self._yaw0 = yaw
        v_cmd = self.speed_command()
        self._t += self.env.wtw.dt
        wx, wy, wz = d.qvel[3:6]                      # body-frame angular velocity
        cy, sy = math.cos(yaw), math.sin(yaw)
        vx = cy * d.qvel[0] + sy * d.qvel[1]
        vy = -sy * d.qvel[0] + cy * d.qvel[1]
        height = float(d.qpos[2]) - self.foot_radius
        R = rot_rp(roll, pitch)                       # body -> level frame
        t_stance = p.duty / self.freq
        yaw_err = (yaw - self._yaw0 + math.pi) % (2 * math.pi) - math.pi
        phases = self.phases()
        stance = phases < p.duty
        n = max(1, int(stance.sum()))
        m = self.mass
        fz = m * (p.weight_share * GRAVITY + p.height_kp * (p.body_height - height) - p.height_kd * d.qvel[2]) / n
        fx = float(np.clip(m * p.speed_kp * (v_cmd - vx) / n, -p.max_push, p.max_push))
        fy = -m * p.lateral_kp * vy / n
        m_pitch = p.pitch_kp * pitch + p.pitch_kd * wy
        m_roll = p.roll_kp * roll + p.roll_kd * wx
        m_yaw = p.yaw_kp * yaw_err + p.yaw_kd * wz
        step = v_cmd * t_stance
        action = np.zeros((4, 3))
        for i, leg in enumerate(self.legs):
            sxi, syi = (1.0 if LEG_NAMES[i][0] == "F" else -1.0), leg.sy
            nominal = np.array([leg.hip[0] + p.foot_x_offset, leg.hip[1] + leg.y0 + syi * p.stance_width, -p.body_height])
            if stance[i]:
                s = phases[i] / p.duty
                foot = nominal + np.array([(0.5 - s) * step, 0.0, 0.0])
            else:
                s = (phases[i] - p.duty) / (1.0 - p.duty)
                smooth = s - math.sin(2 * math.pi * s) / (2 * math.pi)  # cycloid 0..1
                x_lift, x_td = -0.5 * step, 0.5 * step + p.raibert_gain * (vx - v_cmd)
                foot = nominal + np.array([x_lift + (x_td - x_lift) * smooth, p.lateral_gain * vy * smooth,
                                           p.swing_height * math.sin(math.pi * s)])
            q = leg.inverse(R.T @ foot)
            if stance[i]:
                grf = np.array([fx + syi * m_yaw, fy, fz + sxi * m_pitch - syi * m_roll])  # on the robot, level frame
                q = q + leg.jacobian(q).T @ (R.T @ -grf) / self.kp
            action[i] = (q - self.default[i]) / self.scale[i]
        return np.clip(action.reshape(-1), -self.clip, self.clip)
