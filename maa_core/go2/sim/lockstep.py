"""Many copies of the in-process WTW Go2 (`env.WtwSimEnv`) stepped in lock-step: one MuJoCo model,
one `MjData` per world, every world's policy step at once (the batched screening's simulator).

Each world does exactly what `WtwSimEnv.step` does, with the observation built for all worlds in one
set of array operations (the same float64 arithmetic, cast to float32 like `ObservationBuilder`).
`step_rows` steps one range of worlds (`advance_rows`, the physics, then `observe_rows`): MuJoCo
releases the GIL, so a caller runs the physics of disjoint ranges on threads in parallel. All worlds share the
model: its actuator gains are the policy's (every WtwSimEnv command sets the same ones), only
`ctrl` differs per world. Inside `with WtwWorlds(...)` the model's sensors are off
(nothing here reads them: the IMU quaternion is its site's body frame, bit for bit the same value),
which saves about a tenth of each physics step; leaving the block turns them back on."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..wtw import ObservationBuilder


@dataclass
class WorldStart:
    """A `WtwSimEnv`'s state, copied (the env goes on): what worlds start from."""
    data: object              # mujoco.MjData (a full copy)
    input: np.ndarray         # the builder's history ‖ latent
    actions: np.ndarray
    last_actions: np.ndarray
    gait_index: float

    @classmethod
    def of(cls, env) -> "WorldStart":
        b = env.builder
        return cls(copy.copy(env.sim.data), b.input.copy(), b.actions.copy(), b.last_actions.copy(), b.gait_index)


class WtwWorlds:
    """len(starts) worlds, world i starting from starts[i]. `input` (N, actor_in_dim) float32 holds
    every world's history ‖ latent (the latent is the caller's to write); `step(actions)` is
    `WtwSimEnv.step` for all of them (`tick_clocks` then `step_rows` over each range); `keep(idx)`
    drops the others (they cost nothing more)."""

    def __init__(self, env, starts: Sequence[WorldStart]):
        sim, w = env.sim, env.wtw
        self._mj, self.model, self.wtw = sim._mj, sim.model, w
        self.decimation = env.decimation
        self.datas = [copy.copy(s.data) for s in starts]
        n = len(starts)
        self.input = np.stack([s.input for s in starts]).astype(np.float32)
        self.actions = np.stack([s.actions for s in starts])
        self.last_actions = np.stack([s.last_actions for s in starts])
        # one gait clock per distinct start: worlds from the same start share it (math.sin, as the builder)
        distinct = list({id(s): s for s in starts}.values())
        self._clock_of = np.array([next(i for i, d in enumerate(distinct) if d is s) for s in starts])
        self._clocks = []
        for s in distinct:
            c = ObservationBuilder(w, env.builder.default_angles, env.cfg.gait_command)
            c.commands[:] = env.builder.commands
            c.gait_index = s.gait_index
            self._clocks.append(c)
        b = env.builder
        self._sl = (b.sl_grav, b.sl_q, b.sl_dq, b.sl_act, b.sl_last, b.sl_clock)
        self._cmd_obs = np.zeros(w.num_obs, np.float32)
        np.multiply(b.commands, b.commands_scale, out=self._cmd_obs[b.sl_cmd], casting="unsafe")
        self._sl_cmd = b.sl_cmd
        self.default_angles = b.default_angles
        self._q_idx = sim.qadr[env.joints.policy_from_motor]     # qpos columns in policy order
        self._dq_idx = sim.vadr[env.joints.policy_from_motor]
        self._to_motor = env.joints.motor_from_policy
        self._scale, self._clip = env.mapper.scale, env.mapper.clip
        self._kp = float(w.kp)
        self._quat = sim._sens["imu_quat"]
        m = self.model
        imu = m.sensor("imu_quat")
        site = int(imu.objid[0])
        # framequat of a site = its body's xquat times the site's own quat: the body's when that is identity
        self._quat_body = (int(m.site_bodyid[site]) if int(imu.type[0]) == int(self._mj.mjtSensor.mjSENS_FRAMEQUAT)
                           and int(imu.objtype[0]) == int(self._mj.mjtObj.mjOBJ_SITE)
                           and np.array_equal(m.site_quat[site], (1.0, 0.0, 0.0, 0.0)) and imu.reftype[0] == 0
                           and imu.noise[0] == 0 else None)
        self._sensors_were = None
        self.qpos = np.stack([d.qpos for d in self.datas])
        self.qvel = np.stack([d.qvel for d in self.datas])
        self.imu_quat = np.stack([d.sensordata[self._quat] for d in self.datas])
        self.ctrl = np.zeros((n, 12))
        self._clock_rows = np.zeros((len(distinct), 4))

    def __len__(self) -> int:
        return len(self.datas)

    def __enter__(self) -> "WtwWorlds":
        if self._quat_body is not None:
            bit = int(self._mj.mjtDisableBit.mjDSBL_SENSOR)
            self._sensors_were = int(self.model.opt.disableflags) & bit
            self.model.opt.disableflags |= bit
        return self

    def __exit__(self, *exc) -> None:
        if self._sensors_were is not None:
            bit = int(self._mj.mjtDisableBit.mjDSBL_SENSOR)
            self.model.opt.disableflags = (int(self.model.opt.disableflags) & ~bit) | self._sensors_were
            self._sensors_were = None

    @property
    def base_position(self) -> np.ndarray:
        return self.qpos[:, 0:3]

    @property
    def base_quat(self) -> np.ndarray:
        return self.qpos[:, 3:7]

    def keep(self, idx) -> None:
        idx = np.asarray(idx, dtype=np.int64)
        self.datas = [self.datas[i] for i in idx]
        for name in ("input", "actions", "last_actions", "qpos", "qvel", "imu_quat", "ctrl", "_clock_of"):
            setattr(self, name, getattr(self, name)[idx])

    def set_velocity(self, vx: float, vy: float, yaw_rate: float) -> None:
        """ObservationBuilder.set_velocity for every world (one command for all: the screening course)."""
        b = self._clocks[0]
        b.set_velocity(vx, vy, yaw_rate)
        np.multiply(b.commands, b.commands_scale, out=self._cmd_obs[self._sl_cmd], casting="unsafe")

    def tick_clocks(self) -> None:
        """ObservationBuilder.step_clock of this policy step (once per step, before `step_rows`)."""
        for i, c in enumerate(self._clocks):
            c.step_clock()
            self._clock_rows[i] = c.clock

    def step(self, actions: np.ndarray) -> None:
        """actions (N, num_actions), policy order: `WtwSimEnv.step` in every world."""
        self.tick_clocks()
        self.step_rows(0, len(self.datas), actions)

    def step_rows(self, lo: int, hi: int, actions: np.ndarray) -> None:
        """`WtwSimEnv.step` in worlds lo..hi-1; actions (hi - lo, num_actions)."""
        self.advance_rows(lo, hi, actions)
        self._observe(slice(lo, hi))

    def observe_rows(self, lo: int, hi: int) -> None:
        """The observation of worlds lo..hi-1 after `advance_rows` (one set of array operations for all)."""
        self._observe(slice(lo, hi))

    def advance_rows(self, lo: int, hi: int, actions: np.ndarray) -> None:
        """The physics of `step_rows` without the observation: a thread may run this for some rows while
        the caller computes the next rows' actions (`StandScorer`'s pipelined tick)."""
        w = self.wtw
        rows = slice(lo, hi)
        # ObservationBuilder.record_action, ActionMapper.targets, JointMap.to_motor, Go2Sim.apply
        self.last_actions[rows] = self.actions[rows]
        np.clip(actions, -w.clip_actions, w.clip_actions, out=self.actions[rows])
        target = np.clip(self.actions[rows], -self._clip, self._clip)
        np.multiply(target, self._scale, out=target)
        target += self.default_angles
        self.ctrl[rows] = np.take(target, self._to_motor, axis=-1) if self._kp > 0.0 else 0.0
        mj, m, nstep, q, body = self._mj, self.model, self.decimation, self._quat, self._quat_body
        sensors_off = self._sensors_were is not None
        for i in range(lo, hi):
            d = self.datas[i]
            d.ctrl[:12] = self.ctrl[i]
            mj.mj_step(m, d, nstep=nstep)
            self.qpos[i] = d.qpos
            self.qvel[i] = d.qvel
            self.imu_quat[i] = d.xquat[body] if sensors_off else d.sensordata[q]

    def _observe(self, rows: slice) -> None:
        """ObservationBuilder.build + push in worlds `rows` (the clock ticked in `tick_clocks`)."""
        w, s = self.wtw, self.wtw.obs_scales
        sl_grav, sl_q, sl_dq, sl_act, sl_last, sl_clock = self._sl
        qpos, qvel = self.qpos[rows], self.qvel[rows]
        o = np.empty((len(qpos), w.num_obs), np.float32)
        qw, qx, qy, qz = self.imu_quat[rows].T      # projected_gravity, column-wise
        g = o[:, sl_grav]
        g[:, 0] = -2.0 * (qx * qz - qw * qy)
        g[:, 1] = -2.0 * (qy * qz + qw * qx)
        g[:, 2] = -(1.0 - 2.0 * (qx * qx + qy * qy))
        o[:, self._sl_cmd] = self._cmd_obs[self._sl_cmd]
        o[:, sl_q] = (qpos[:, self._q_idx] - self.default_angles) * s["dof_pos"]
        o[:, sl_dq] = qvel[:, self._dq_idx] * s["dof_vel"]
        o[:, sl_act] = self.actions[rows]
        o[:, sl_last] = self.last_actions[rows]
        o[:, sl_clock] = self._clock_rows[self._clock_of[rows]]
        np.clip(o, -w.clip_observations, w.clip_observations, out=o)
        h, r = w.history_dim, w.num_obs
        x = self.input[rows]
        x[:, : h - r] = x[:, r: h]
        x[:, h - r: h] = o
