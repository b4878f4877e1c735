"""A model-based trot expert for the simulated Go2 (the teacher of the locomotion data path).

It reads privileged simulator state (base velocity and attitude) and writes walk-these-ways raw
actions, so its output goes through the same `ActionMapper` and PD gains (kp 20, kd 0.5) as every
actor the controller runs. It follows a planar body-frame command (vx, vy, yaw rate): the gait's
forward speed (`GaitParams.speed`, the data path's walks), or, with `commanded=True`, the velocity
command slots of the controller's observation (`ObservationBuilder.commands[0:3]`, what a student
reads). The command is rate-limited (`accel`, `yaw_accel`). Per tick:

  * phase: each foot's phase comes from the controller's own gait clock (`ObservationBuilder.gait_index`
    with the phase offsets of the config's gait command), so a student sees the same clock in its
    observation that the expert followed;
  * foot targets in a yaw-aligned, gravity-aligned frame: stance feet sweep back at the commanded
    planar velocity of their own hip, `v + w x r` (so a yaw-rate command turns the feet about the
    trunk), swing feet follow a raised cycloid to a Raibert touchdown point
    (`u T_stance / 2 + k (v - v_cmd)` in x and y); a height/pitch/roll correction shifts the stance feet;
  * the targets are rotated into the body frame (so the feet stay level when the trunk tilts) and
    solved by the leg's closed-form inverse kinematics;
  * stance legs get a feed-forward torque `J^T f` (weight share, a horizontal push towards the
    commanded velocity plus the centripetal force of an arc, and a yaw moment from the yaw-rate
    error and its bounded integral, i.e. the heading the command implies) expressed as a position
    offset `tau / kp`, because the deployment interface is a PD target, not a torque.
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
    foot_x_offset: float = 0.04       # forward offset of every nominal foot position: under the centre of mass
                                      # (0 leaves the trunk pitched ~0.1 rad nose-down at a standstill)
    foot_x_per_speed: float = -0.06   # ... plus this much per m/s of commanded vx (s): walking forward pitches
                                      # the nose up, backward down (measured; 0 falls walking back at -0.5 m/s)
    raibert_gain: float = 0.12        # touchdown shift per m/s of forward velocity error (s)
    lateral_gain: float = 0.08        # lateral touchdown shift per m/s of sideways velocity error (s)
    weight_share: float = 1.0         # fraction of body weight the stance feed-forward carries
    height_kp: float = 150.0          # vertical acceleration per m of height error (1/s^2)
    height_kd: float = 10.0           # ... per m/s of vertical velocity (1/s)
    pitch_kp: float = 150.0           # restoring pitch moment per rad of pitch (N m/rad; stance vertical-force split)
    pitch_kd: float = 4.0             # ... per rad/s (N m s/rad)
    roll_kp: float = 110.0            # restoring roll moment per rad of roll (N m/rad)
    roll_kd: float = 8.0
    speed_kp: float = 30.0            # forward acceleration per m/s of velocity error (1/s)
    lateral_kp: float = 10.0          # sideways acceleration per m/s of sideways velocity error (1/s)
    yaw_rate_kp: float = 5.0          # left/right push split per rad/s of yaw-rate error (N s/rad)
    yaw_rate_ki: float = 60.0         # ... per rad of integrated yaw-rate error (the commanded heading) (N/rad)
    yaw_track_max: float = 0.3        # bound on that integrated error (rad): a blocked turn does not wind up
    accel: float = 1.0                # the command ramps towards its target at this rate (m/s^2; from 0 at start;
                                      # 0.5 left vx/vy RMSE 0.10/0.15 on the course from the ramps alone)
    yaw_accel: float = 3.0            # ... and the yaw-rate command at this rate (rad/s^2)
    level_stiffness: float = 0.5      # fraction of trunk roll/pitch the stance legs' targets undo (0: feet level)
    moment_ff: float = 1.0            # fraction of the pushes' pitch/roll moment the force split cancels
    max_push: float = 60.0            # bound on the horizontal feed-forward force per stance foot and axis (N)

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
    foot_x_offset: tuple = (0.025, 0.055)

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


def _toward(x: float, target: float, step: float) -> float:
    return x + min(step, max(-step, target - x))


class GaitExpert:
    """Trot expert acting on a `WtwSimEnv` (see module docstring). `act()` -> raw action (policy order).

    `commanded=False`: walks forward at `params.speed` (the data path's walks; the observation's
    command slots are left as they are). `commanded=True`: tracks `env.builder.commands[0:3]`
    (vx, vy in m/s, yaw rate in rad/s, body frame), which whoever drives the walk sets with
    `env.builder.set_velocity` (course.py, a DAgger loop), so expert and student read one command."""

    def __init__(self, env, params: GaitParams = GaitParams(), commanded: bool = False):
        self.env, self.p, self.commanded = env, params, commanded
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
        p = params
        # nominal foot positions (trunk frame, level) and the side/end signs of each leg
        self.nominal = np.array([[leg.hip[0] + p.foot_x_offset, leg.hip[1] + leg.y0 + leg.sy * p.stance_width,
                                  -p.body_height] for leg in self.legs])
        self.sx = np.array([1.0 if n[0] == "F" else -1.0 for n in LEG_NAMES])
        self.reset()

    def reset(self) -> None:
        self._yaw_ref = None
        self.command = np.zeros(3)   # the rate-limited command being tracked (vx, vy, yaw rate)

    def target(self) -> np.ndarray:
        """The command the expert ramps towards."""
        if self.commanded:
            return np.asarray(self.env.builder.commands[0:3], dtype=float)
        return np.array([self.p.speed, 0.0, 0.0])

    def phases(self) -> np.ndarray:
        return (self.env.builder.gait_index + self.offsets) % 1.0

    def act(self) -> np.ndarray:
        p, env = self.p, self.env
        d, dt = env.sim.data, env.wtw.dt
        roll, pitch, yaw = quat_to_rpy(d.qpos[3:7])
        tgt, c = self.target(), self.command
        c[0] = _toward(c[0], tgt[0], p.accel * dt)
        c[1] = _toward(c[1], tgt[1], p.accel * dt)
        c[2] = _toward(c[2], tgt[2], p.yaw_accel * dt)
        vx_c, vy_c, wz_c = c
        # the heading the yaw-rate command implies: its error is the integral of the yaw-rate error (bounded)
        if self._yaw_ref is None:
            self._yaw_ref = yaw
        yaw_err = (yaw - self._yaw_ref + math.pi) % (2 * math.pi) - math.pi
        if abs(yaw_err) > p.yaw_track_max:
            yaw_err = math.copysign(p.yaw_track_max, yaw_err)
            self._yaw_ref = yaw - yaw_err
        self._yaw_ref += wz_c * dt
        wx, wy, wz = d.qvel[3:6]                      # body-frame angular velocity
        cy, sy = math.cos(yaw), math.sin(yaw)
        vx = cy * d.qvel[0] + sy * d.qvel[1]
        vy = -sy * d.qvel[0] + cy * d.qvel[1]
        height = float(d.qpos[2]) - self.foot_radius
        R = rot_rp(roll, pitch)                       # body -> level frame
        # stance targets level only the rest of the tilt: the leg's position loop then also levels the trunk
        R_stance = rot_rp((1.0 - p.level_stiffness) * roll, (1.0 - p.level_stiffness) * pitch)
        t_stance = p.duty / self.freq
        phases = self.phases()
        stance = phases < p.duty
        n = max(1, int(stance.sum()))
        m = self.mass
        fz = m * (p.weight_share * GRAVITY + p.height_kp * (p.body_height - height) - p.height_kd * d.qvel[2]) / n
        # push towards the commanded velocity, plus the centripetal force of an arc (a = w x v)
        fx = float(np.clip(m * (p.speed_kp * (vx_c - vx) - wz_c * vy_c) / n, -p.max_push, p.max_push))
        fy = float(np.clip(m * (p.lateral_kp * (vy_c - vy) + wz_c * vx_c) / n, -p.max_push, p.max_push))
        # roll/pitch moment wanted about the centre of mass (level frame, N m): attitude feedback, plus
        # cancelling the moment the horizontal pushes exert from the feet a body height below it
        m_yaw = p.yaw_rate_ki * yaw_err + p.yaw_rate_kp * (wz - wz_c)  # left/right push split (N)
        h = p.body_height
        tau = np.array([-(p.roll_kp * roll + p.roll_kd * wx) - p.moment_ff * h * fy * n,
                        -(p.pitch_kp * pitch + p.pitch_kd * wy) + p.moment_ff * h * fx * n])
        feet = np.zeros((4, 3))
        for i, leg in enumerate(self.legs):
            nominal = self.nominal[i] + np.array([p.foot_x_per_speed * vx_c, 0.0, 0.0])
            # the commanded planar velocity of this foot's hip: v + w x r
            step = t_stance * np.array([vx_c - wz_c * nominal[1], vy_c + wz_c * nominal[0]])
            if stance[i]:
                s = phases[i] / p.duty
                feet[i] = nominal + np.array([(0.5 - s) * step[0], (0.5 - s) * step[1], 0.0])
            else:
                s = (phases[i] - p.duty) / (1.0 - p.duty)
                smooth = s - math.sin(2 * math.pi * s) / (2 * math.pi)  # cycloid 0..1
                lift = -0.5 * step
                td = 0.5 * step + np.array([p.raibert_gain * (vx - vx_c), p.lateral_gain * (vy - vy_c)])
                feet[i] = nominal + np.array([lift[0] + (td[0] - lift[0]) * smooth, lift[1] + (td[1] - lift[1]) * smooth,
                                              p.swing_height * math.sin(math.pi * s)])
        # the smallest vertical-force changes on the stance feet with no net force and that moment: a diagonal
        # pair can only turn about the axis across its diagonal, so a pitch correction does not become a roll push
        st = np.flatnonzero(stance)
        dfz = np.zeros(4)
        if len(st) > 1:
            A = np.vstack([np.ones(len(st)), feet[st, 1], -feet[st, 0]])
            dfz[st] = np.linalg.lstsq(A, np.array([0.0, tau[0], tau[1]]), rcond=1e-6)[0]
        action = np.zeros((4, 3))
        for i, leg in enumerate(self.legs):
            q = leg.inverse((R_stance if stance[i] else R).T @ feet[i])
            if stance[i]:
                grf = np.array([fx + leg.sy * m_yaw, fy, fz + dfz[i]])  # on the robot, level frame
                q = q + leg.jacobian(q).T @ (R.T @ -grf) / self.kp
            action[i] = (q - self.default[i]) / self.scale[i]
        return np.clip(action.reshape(-1), -self.clip, self.clip)
