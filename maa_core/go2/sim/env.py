"""The simulated Go2 in-process (no DDS): PD motor commands in, `LowState` out, exactly what the DDS
bridge publishes. Training code can step it directly (`Go2Sim`), or run a WTW-style policy loop
with the same observation builder the controller uses (`WtwSimEnv`)."""
from __future__ import annotations

import logging
import os
import sys

import numpy as np

from ...errors import MaaError
from ..config import RobotConfig, load_robot_config
from ..joints import JointMap
from ..state import LowState, MotorCommand
from ..wtw import ActionMapper, ObservationBuilder, WtwConfig
from .model import MatConfig, build_mjcf, terrain_of

log = logging.getLogger("maa.go2.sim")
POS_STOP = 2.146e9   # LowCmd_ q value meaning "no position loop" (Unitree SDK convention)
VEL_STOP = 16000.0   # LowCmd_ dq value meaning "no velocity loop"


def import_mujoco():
    """`import mujoco`, which also loads the GL backend MUJOCO_GL names. Rendering is optional here:
    if that backend cannot load, simulate without it (rendering then raises a clear MaaError)."""
    try:
        import mujoco
        return mujoco
    except Exception as e:  # missing libOSMesa/libEGL, or an invalid MUJOCO_GL value
        gl = os.environ.pop("MUJOCO_GL", None)
        if gl is None:
            raise MaaError(f"MuJoCo unavailable ({type(e).__name__}: {e})") from None
        for name in [m for m in sys.modules if m == "mujoco" or m.startswith("mujoco.")]:
            del sys.modules[name]
        log.warning("MUJOCO_GL=%s cannot load (%s: %s); simulating without rendering", gl, type(e).__name__, e)
        import mujoco
        return mujoco


class Go2Sim:
    def __init__(self, cfg: RobotConfig | str = "go2", timestep: float | None = None, terrain: str | None = None):
        """`terrain` (flat | mat, model.py) overrides the robot config's sim.terrain."""
        self._mj = mujoco = import_mujoco()
        self.cfg = load_robot_config(cfg)
        self.terrain = terrain_of(self.cfg, terrain)
        self.model = mujoco.MjModel.from_xml_string(build_mjcf(self.cfg, self.terrain))
        if timestep:
            self.model.opt.timestep = timestep
        self.data = mujoco.MjData(self.model)
        m = self.model
        self.dt = float(m.opt.timestep)
        jid = [m.joint(f"{j}_joint").id for j in self.cfg.motor_joints]
        self.qadr = np.array([m.jnt_qposadr[i] for i in jid])
        self.vadr = np.array([m.jnt_dofadr[i] for i in jid])
        self._sens = {n: slice(m.sensor(n).adr[0], m.sensor(n).adr[0] + m.sensor(n).dim[0])
                      for n in ("imu_quat", "imu_gyro", "imu_acc")}
        self._feet = np.array([m.sensor(f"{leg}_foot_force").adr[0] for leg in ("FR", "FL", "RR", "RL")])
        self.trunk_id = m.body("trunk").id
        self._renderer = None
        self.reset()

    # -- state -----------------------------------------------------------------------------
    def reset(self, pose: str = "lie", settle_s: float = 0.5) -> None:
        """Put the robot on the floor in `pose` ('lie' or 'stand') and let it settle holding that pose."""
        mj, m, d = self._mj, self.model, self.data
        mj.mj_resetData(m, d)
        q = self.cfg.lie_pose if pose == "lie" else self.cfg.stand_pose
        d.qpos[self.qadr] = q
        d.qpos[3:7] = (1.0, 0.0, 0.0, 0.0)
        d.qpos[2] = 1.0
        mj.mj_kinematics(m, d)
        # lowest point of any colliding geom -> put it just on the floor
        lowest = min(d.geom_xpos[g][2] - (m.geom_size[g][0] if m.geom_type[g] == 2 else m.geom_rbound[g])
                     for g in range(m.ngeom) if m.geom_contype[g])
        top = MatConfig.from_dict(self.cfg.sim.get("mat"), self.cfg.source).height if self.terrain == "mat" else 0.0
        d.qpos[2] = 1.0 - lowest + top + 0.002  # above the highest bump: it settles onto the ground below
        hold = MotorCommand()
        hold.set_pd(q, self.cfg.stand.kp, self.cfg.stand.kd)
        self.apply(hold)
        mj.mj_forward(m, d)
        self.step(int(round(settle_s / self.dt)))
        self.apply_off()

    def apply(self, cmd: MotorCommand) -> None:
        """Motor PD targets (motor order) -> actuator parameters; POS_STOP/VEL_STOP disable a loop."""
        m, d = self.model, self.data
        if not cmd.enabled:
            self.apply_off()
            return
        kp = np.where(np.abs(cmd.q) >= POS_STOP * 0.99, 0.0, cmd.kp)
        kd = np.where(np.abs(cmd.dq) >= VEL_STOP * 0.99, 0.0, cmd.kd)
        dq = np.where(kd > 0.0, cmd.dq, 0.0)
        q = np.where(kp > 0.0, cmd.q, 0.0)
        m.actuator_gainprm[:12, 0] = kp
        m.actuator_biasprm[:12, 0] = kd * dq + cmd.tau
        m.actuator_biasprm[:12, 1] = -kp
        m.actuator_biasprm[:12, 2] = -kd
        d.ctrl[:12] = q

    def apply_off(self) -> None:
        self.model.actuator_gainprm[:12, 0] = 0.0
        self.model.actuator_biasprm[:12, :3] = 0.0
        self.data.ctrl[:12] = 0.0

    def step(self, n: int = 1) -> None:
        self._mj.mj_step(self.model, self.data, nstep=n) if n > 0 else None

    @property
    def time(self) -> float:
        return float(self.data.time)

    def read(self, out: LowState) -> LowState:
        d, s = self.data, self._sens
        out.q[:] = d.qpos[self.qadr]
        out.dq[:] = d.qvel[self.vadr]
        out.tau[:] = d.actuator_force[:12]
        out.quat[:] = d.sensordata[s["imu_quat"]]
        out.gyro[:] = d.sensordata[s["imu_gyro"]]
        out.accel[:] = d.sensordata[s["imu_acc"]]
        out.foot_force[:] = d.sensordata[self._feet]
        out.tick = int(d.time * 1000.0) & 0xFFFFFFFF
        return out

    # ground truth (not on the robot's low-level state)
    def base_position(self) -> np.ndarray:
        return self.data.qpos[0:3].copy()

    def base_velocity(self) -> np.ndarray:
        """World-frame linear velocity of the trunk."""
        return self.data.qvel[0:3].copy()

    # -- rendering -------------------------------------------------------------------------
    def render(self, width: int = 640, height: int = 480, camera: str = "track") -> np.ndarray:
        """RGB frame (H, W, 3). Needs an OpenGL backend (MUJOCO_GL=egl or osmesa); MaaError if none works."""
        if self._renderer is None:
            self._renderer = make_renderer(self.model, width, height)
        self._renderer.update_scene(self.data, camera=camera)
        return self._renderer.render()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


def make_renderer(model, width: int, height: int):
    import mujoco
    try:
        return mujoco.Renderer(model, height=height, width=width)
    except Exception as e:  # GL backends fail in many ways (missing libs, no display, no device)
        raise MaaError(f"rendering unavailable ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                       f"set MUJOCO_GL=egl or MUJOCO_GL=osmesa with the matching library installed") from None


class WtwSimEnv:
    """A WTW policy step on the in-process sim: action (policy order) -> PD targets held for
    `decimation` physics steps -> next observation, built by the controller's own builder."""

    def __init__(self, cfg: RobotConfig | str = "go2", wtw: WtwConfig = WtwConfig(), terrain: str | None = None):
        self.sim = Go2Sim(cfg, terrain=terrain)
        self.cfg, self.wtw = self.sim.cfg, wtw
        self.joints = JointMap.from_config(self.cfg)
        defaults = self.joints.to_policy(self.cfg.default_angles)
        self.builder = ObservationBuilder(wtw, defaults, self.cfg.gait_command)
        self.mapper = ActionMapper(wtw, defaults, self.joints.policy_hips)
        self.decimation = max(1, int(round(wtw.dt / self.sim.dt)))
        self.state, self.cmd = LowState(), MotorCommand()
        self._qp, self._dqp, self._target = np.zeros(12), np.zeros(12), np.zeros(12)

    def reset(self, pose: str = "stand") -> np.ndarray:
        self.sim.reset(pose)
        self.builder.reset()
        self.sim.apply(self._hold(self.cfg.default_angles))
        return self._observe()

    def _hold(self, q_motor):
        self.cmd.set_pd(q_motor, self.wtw.kp, self.wtw.kd)
        return self.cmd

    def _observe(self) -> np.ndarray:
        self.sim.read(self.state)
        self.builder.step_clock()
        self.builder.build(self.state.quat, self.joints.to_policy(self.state.q, self._qp),
                           self.joints.to_policy(self.state.dq, self._dqp))
        self.builder.push()
        return self.builder.obs

    def step(self, action: np.ndarray) -> np.ndarray:
        self.builder.record_action(action)
        self.mapper.targets(self.builder.actions, self._target)
        self.sim.apply(self._hold(self.joints.to_motor(self._target)))
        self.sim.step(self.decimation)
        return self._observe()

    @property
    def history(self) -> np.ndarray:
        return self.builder.history


def make_env(wtw_dir, terrain: str | None = None) -> tuple["WtwSimEnv", "torch.nn.Module"]:
    """(WtwSimEnv, adaptation module) for the Go2 with the policy settings of the walk-these-ways run
    in `wtw_dir` (its adaptation module writes the actor's latent); `terrain` overrides sim.terrain."""
    from ..wtw import load_wtw_run

    run = load_wtw_run(wtw_dir)
    return WtwSimEnv("go2", run.config, terrain), run.adaptation
