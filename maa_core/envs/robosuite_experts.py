"""Scripted experts for Robosuite Lift, Door and NutAssemblySingle, in the actors' action space.

An expert reads privileged poses from the simulator (object bodies, sites, joint angles, contacts),
picks an end-effector target pose from the task's phase, and turns the pose error into the 7 joint
deltas of the JOINT_POSITION controller through the gripper site's MuJoCo Jacobian (damped least
squares, plus a null-space pull towards the rest posture); the 8th action is the gripper
(-1 open, +1 close). Door first moves in joint space to an IK posture of its pre-grasp pose
(_Arm.solve, once per door placement). The phase is a function of the current simulator state only
(grasp contacts, object height, door angles), never of the expert's history, so the same expert can
label states a student visits (DAgger), as MetaWorld's scripted policies do.

    expert = make_expert(env)          # env: RobosuiteEnv; callable obs -> action (8,)
    expert = env.expert()              # the same, as for MetaWorldEnv

Works for any 7-DoF single-arm robot with a 2-finger gripper (Panda, Sawyer): only the gripper
site, the fingerpad geoms and the arm's joint indexes are read from the robot.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import check

DOWN = np.array([0.0, 0.0, -1.0])


@dataclass(frozen=True)
class ExpertGains:
    # -- arm controller: pose error -> joint deltas --------------------------------------------
    max_step: float = 0.02          # m: position error is clipped to this (bounds the hand's speed)
    rot_weight: float = 0.5         # orientation error (rad) weight against position error (m)
    max_rot_step: float = 0.3       # rad: orientation error is clipped to this
    damping: float = 0.05           # damped least squares λ
    null_gain: float = 0.05         # null-space pull towards the rest posture (fraction of the gap)
    limit_margin: float = 0.05      # rad: a joint this close to its limit is not pushed further
    action_per_rad: float = 40.0    # action units per rad of joint change (±1 ~ 0.009 rad/step at 20 Hz)
    ik_seeds: int = 48              # random seed postures of the pre-grasp IK, besides the current one (16: ~10 steps slower)
    ik_iters: int = 200             # DLS iterations per seed
    ik_tol: float = 0.003           # m (and 10x in rad): IK converged
    ik_max_step: float = 0.2        # rad: per-joint cap of one IK iteration (keeps the DLS steps small)
    # -- grasping ------------------------------------------------------------------------------
    hover: float = 0.05             # m behind a grasp pose (along the approach) before moving in
    align_xy: float = 0.012         # m: horizontal error under which the hand descends
    align_rot: float = 0.15         # rad: orientation error under which the hand descends
    at_grasp: float = 0.012         # m: position error under which the gripper closes
    empty_pad_gap: float = 0.35     # fraction of the widest fingerpad gap: below it (no grasp) = missed
    # -- Lift -----------------------------------------------------------------------------------
    lift_grasp_dz: float = 0.0      # m: grasp height relative to the cube centre
    lift_height: float = 0.12       # m above the table to carry the cube to (success: 0.04)
    # -- Door -----------------------------------------------------------------------------------
    door_grasp_along: float = 0.125 # m along the lever from the latch axis (lever: 0 .. 0.15)
    door_reorient: float = 0.3      # rad: hand orientation error above which it moves in joint space to the IK posture
    door_unlatch: float = 1.45      # rad: lever turn aimed at while pulling (limit 1.57; turns stall at ~1.27 Sawyer, ~1.4 Panda)
    door_turn_step: float = 0.2     # rad: lever-angle lead of each target
    door_pull_from: float = 1.2     # rad of lever turn from which the hand also pulls: the latch tip clears the frame's
                                    # whole swing from 1.23 rad; at 1.2 it meets it past 0.1 rad of hinge (at 1.1: 0.045)
    door_turns: tuple = (1.0, -1.0) # latch-joint turn directions, preferred first: +1 (lever end down) takes ~40 % fewer
                                    # steps on both robots (Sawyer ~130 vs ~215, Panda ~110 vs ~185)
    door_turn_pref: float = 0.6     # rad of extra reach (max joint change) accepted for door_turns[0] (~80 steps of it)
    door_slack: float = 0.1         # rad: the planned end posture keeps every joint this far inside its limits
    door_ajar: float = 0.05         # rad of hinge: past it the door is open, keep pulling
    door_pull_step: float = 0.12    # rad: hinge-angle lead of each target
    door_open: float = 0.38         # rad: hinge angle to open to (success: 0.3, limit 0.4)
    # -- NutAssemblySingle ------------------------------------------------------------------------
    nut_grasp_dz: float = 0.0       # m: grasp height relative to the handle site
    nut_clear: float = 0.02         # m: nut bottom above the peg top while carrying
    nut_align_xy: float = 0.007     # m: nut-over-peg error under which the nut is lowered (peg clearance ~0.007)
    nut_release: float = 0.03       # m: nut centre above the table at which the gripper opens
    nut_retreat: float = 0.10       # m: hand rise after release (success needs the hand away)


# -- small rotation helpers --------------------------------------------------------------------
def _rot(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


def _rot_err(R: np.ndarray, Rd: np.ndarray) -> np.ndarray:
    """World-frame rotation vector (small-angle) taking R towards Rd."""
    return 0.5 * sum(np.cross(R[:, i], Rd[:, i]) for i in range(3))


def _angle(R: np.ndarray, Rd: np.ndarray) -> float:
    """Rotation angle between R and Rd (rad); _rot_err's norm is sin-like and vanishes again at a half turn."""
    return float(np.arccos(np.clip((np.trace(R.T @ Rd) - 1.0) / 2.0, -1.0, 1.0)))


def _frame(x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Rotation whose z is `z` and whose x is `x` made orthogonal to it."""
    z = z / np.linalg.norm(z)
    x = x - z * (x @ z)
    x = x / np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z], axis=1)


def _closest_axis(x_now: np.ndarray, candidates) -> np.ndarray:
    """The ±candidate direction closest to x_now (the 2-finger grip is symmetric under a half turn)."""
    best = max(candidates, key=lambda c: abs(c @ x_now))
    return best if best @ x_now >= 0 else -best


class _Arm:
    """Reads the robot from the sim and turns a target pose into an 8-dim action."""

    def __init__(self, rs_env, gains: ExpertGains):
        import mujoco

        self.mj = mujoco
        self.env = rs_env
        self.g = gains
        robot = rs_env.robots[0]
        self.robot = robot
        self.m = rs_env.sim.model._model
        self.d = rs_env.sim.data._data
        self.site = robot.eef_site_id["right"]
        self.dofs = np.asarray(robot._ref_joint_vel_indexes)
        self.qidx = np.asarray(robot._ref_joint_pos_indexes)
        check(len(self.dofs) == 7, f"Robosuite expert: robot {type(robot.robot_model).__name__} has {len(self.dofs)} arm joints, needs 7")
        self.gripper = robot.gripper["right"]
        pads = self.gripper.important_geoms
        self.pads = [self.m.geom(pads["left_fingerpad"][0]).id, self.m.geom(pads["right_fingerpad"][0]).id]
        self.q_rest = np.asarray(robot.init_qpos, float)
        self.limits = self.m.jnt_range[[self.m.dof_jntid[i] for i in self.dofs]].copy()
        self.open_gap = 0.0  # widest fingerpad gap seen (the gripper starts half open)

    # -- state -----------------------------------------------------------------------------------
    @property
    def pos(self) -> np.ndarray:
        return self.d.site_xpos[self.site].copy()

    @property
    def R(self) -> np.ndarray:
        return self.d.site_xmat[self.site].reshape(3, 3).copy()

    def pad_gap(self) -> float:
        return float(np.linalg.norm(self.d.geom_xpos[self.pads[0]] - self.d.geom_xpos[self.pads[1]]))

    def grasping(self, geoms) -> bool:
        return bool(self.env._check_grasp(gripper=self.gripper, object_geoms=geoms))

    def missed(self) -> bool:
        """Fingers (nearly) shut on nothing: a failed grasp."""
        gap = self.pad_gap()
        self.open_gap = max(self.open_gap, gap)
        return gap < self.g.empty_pad_gap * self.open_gap

    def solve(self, p: np.ndarray, R: np.ndarray, seeds=None) -> np.ndarray | None:
        """Joint angles putting the site at (p, R): damped least squares on a scratch copy of the state,
        from `seeds` (default: the current angles and `ik_seeds` seeded random postures; limits clamped);
        of the solutions that converge, the one nearest the current angles (fewest steps away), else None."""
        g, m, mj = self.g, self.m, self.mj
        scratch = mj.MjData(m)
        scratch.qpos[:] = self.d.qpos
        lo, hi = self.limits[:, 0] + g.limit_margin, self.limits[:, 1] - g.limit_margin
        q_now = self.d.qpos[self.qidx].copy()
        rng = np.random.default_rng(0)
        if seeds is None:
            seeds = [q_now] + [rng.uniform(lo, hi) for _ in range(g.ik_seeds)]
        jp, jr = np.zeros((3, m.nv)), np.zeros((3, m.nv))
        best = None
        for q in seeds:
            q = np.clip(q, lo, hi)
            for _ in range(g.ik_iters):
                scratch.qpos[self.qidx] = q
                mj.mj_kinematics(m, scratch)
                mj.mj_comPos(m, scratch)
                Rs = scratch.site_xmat[self.site].reshape(3, 3)
                err = np.r_[p - scratch.site_xpos[self.site], _rot_err(Rs, R)]
                if np.linalg.norm(err[:3]) < g.ik_tol and _angle(Rs, R) < 10 * g.ik_tol:
                    if best is None or np.abs(q - q_now).max() < np.abs(best - q_now).max():
                        best = q.copy()
                    break
                mj.mj_jacSite(m, scratch, jp, jr, self.site)
                J = np.vstack([jp[:, self.dofs], jr[:, self.dofs]])
                dq = J.T @ np.linalg.solve(J @ J.T + g.damping ** 2 * np.eye(6), err)
                q = np.clip(q + np.clip(dq, -g.ik_max_step, g.ik_max_step), lo, hi)
        return best

    def joint_action(self, q_target: np.ndarray, grip: float) -> np.ndarray:
        """Straight to q_target in joint space (each joint at its own capped rate)."""
        dq = q_target - self.d.qpos[self.qidx]
        return np.r_[np.clip(dq * self.g.action_per_rad, -1.0, 1.0), grip]

    # -- control ---------------------------------------------------------------------------------
    def action(self, p_target: np.ndarray, R_target: np.ndarray, grip: float, p_extra=None) -> np.ndarray:
        """Joint deltas towards (p_target, R_target); `p_extra`, a further target displacement, is clipped
        to max_step on its own (a pull the latched door resists must not use up the turn's budget)."""
        g, m, d = self.g, self.m, self.d

        def clipped(v):
            n = np.linalg.norm(v)
            return v * (g.max_step / n) if n > g.max_step else v

        dp = clipped(p_target - self.pos)
        if p_extra is not None:
            dp = dp + clipped(p_extra)
        dr = _rot_err(self.R, R_target)
        nr = np.linalg.norm(dr)
        if nr > g.max_rot_step:
            dr *= g.max_rot_step / nr
        jp = np.zeros((3, m.nv))
        jr = np.zeros((3, m.nv))
        self.mj.mj_jacSite(m, d, jp, jr, self.site)
        w = np.r_[np.ones(3), np.full(3, g.rot_weight)]
        J = np.vstack([jp[:, self.dofs], jr[:, self.dofs]]) * w[:, None]
        err = np.r_[dp, dr] * w
        q = d.qpos[self.qidx]
        lo, hi = self.limits[:, 0] + g.limit_margin, self.limits[:, 1] - g.limit_margin
        free = np.ones(7, bool)
        for _ in range(3):  # joints at a limit that the solution pushes further are locked, then re-solve
            Jf = J * free
            J_pinv = Jf.T @ np.linalg.inv(Jf @ Jf.T + g.damping ** 2 * np.eye(6))
            dq = J_pinv @ err + (np.eye(7) - J_pinv @ Jf) @ (g.null_gain * (self.q_rest - q)) * free
            stuck = free & (((q < lo) & (dq < 0)) | ((q > hi) & (dq > 0)))
            if not stuck.any():
                break
            free &= ~stuck
        dq *= free
        # per-joint clipping: a slow wrist turn does not hold back the other joints (the env caps
        # every joint at ~0.009 rad/step, so scaling the whole vector would make big turns crawl)
        return np.r_[np.clip(dq * g.action_per_rad, -1.0, 1.0), grip]


def _table_z(rs_env) -> float:
    return float(rs_env.table_offset[2])


class LiftExpert:
    """Top-down grasp of the cube (fingers across a face), lift to `lift_height` above the table."""

    def __init__(self, rs_env, gains: ExpertGains):
        self.arm = _Arm(rs_env, gains)
        self.env, self.g = rs_env, gains

    def __call__(self, obs=None) -> np.ndarray:
        env, g, arm = self.env, self.g, self.arm
        c = env.sim.data.body_xpos[env.cube_body_id].copy()
        Rc = env.sim.data.body_xmat[env.cube_body_id].reshape(3, 3)
        R_t = _frame(_closest_axis(arm.R[:, 0], [Rc[:, 0], Rc[:, 1]]), DOWN)
        grasp = c + np.array([0, 0, g.lift_grasp_dz])
        if arm.grasping(env.cube):
            return arm.action(np.r_[c[:2], _table_z(env) + g.lift_height], R_t, 1.0)
        return _reach_and_grasp(arm, grasp, R_t, g)


def _reach_and_grasp(arm: _Arm, grasp: np.ndarray, R_t: np.ndarray, g: ExpertGains) -> np.ndarray:
    """Wait `hover` behind `grasp` (along the approach axis R_t[:, 2]), move in once aligned, close once
    there; a missed grasp (fingers shut on nothing) backs off and reopens."""
    p = arm.pos
    z = R_t[:, 2]
    pre = grasp - g.hover * z
    if arm.missed():
        back = (p - grasp) @ -z > g.hover - 0.01
        return arm.action(pre, R_t, -1.0 if back else 1.0)
    e = p - grasp
    lateral = np.linalg.norm(e - (e @ z) * z)
    rot = np.linalg.norm(_rot_err(arm.R, R_t))
    if lateral > g.align_xy or rot > g.align_rot:
        return arm.action(pre, R_t, -1.0)
    close = np.linalg.norm(e) < g.at_grasp
    return arm.action(grasp, R_t, 1.0 if close else -1.0)


class DoorExpert:
    """Grasp the lever from the front (hand horizontal into the door, fingers across the lever's height),
    turn it past the unlatch angle (a wrist roll; end down where the plan allows, else up), pull the door
    along the hinge arc while still turning. The hand first goes in joint space to an IK posture of the
    pre-grasp pose (a Cartesian turn from the top-down rest pose drives the Panda's joint 6 into its
    limit). No top-down grasp: it puts the hand into the panel, 0.08 m behind the lever."""

    def __init__(self, rs_env, gains: ExpertGains):
        self.arm = _Arm(rs_env, gains)
        self.env, self.g = rs_env, gains
        m = self.arm.m
        check(rs_env.use_latch, "Robosuite Door expert: expects the latched door (use_latch=True)")
        self.hinge = m.joint(rs_env.door.joints[0]).id
        self.latch = m.joint(rs_env.door.joints[1]).id
        self.latch_body = m.jnt_bodyid[self.latch]
        self.frame_body = m.body_parentid[m.jnt_bodyid[self.hinge]]
        self.handle_geoms = [n for n in rs_env.door.contact_geoms if n.endswith("handle")]
        check(self.handle_geoms, "Robosuite Door expert: door has no 'handle' geom")
        self._plans = {}  # door placement -> _plan() (so the expert stays a function of the state)

    def _grasp_pose(self, d_latch: float, d_hinge: float, x_ref: np.ndarray | None = None):
        """Grasp pose on the lever after turning the latch joint by d_latch and the hinge by d_hinge more."""
        d = self.arm.d
        Rl = d.xmat[self.latch_body].reshape(3, 3)
        # lever box: latch-frame x 0 .. 0.15, 0.10 in front of the panel (latch-frame -y), 0.02 half height
        p = d.xpos[self.latch_body] + Rl @ np.array([self.g.door_grasp_along, -0.10, 0.0])
        a_l, c_l = d.xaxis[self.latch], d.xanchor[self.latch]
        a_h, c_h = d.xaxis[self.hinge], d.xanchor[self.hinge]
        R_l, R_h = _rot(a_l, d_latch), _rot(a_h, d_hinge)
        p = c_h + R_h @ (c_l + R_l @ (p - c_l) - c_h)
        x = R_h @ R_l @ Rl[:, 2]        # fingers close across the lever's height
        z = R_h @ R_l @ Rl[:, 1]        # approach from the front, towards the panel: the turn is a wrist roll
        return p, _frame(_closest_axis(self.arm.R[:, 0] if x_ref is None else x_ref, [x]), z)

    def _plan(self):
        """(IK posture of the pre-grasp pose, finger axis, turn direction): of the two finger directions
        (the grip is symmetric under a half turn) and the two turn directions, the posture fewest steps
        away (max joint change; door_turn_pref less for the faster turn, door_turns[0]) from which the
        turned, opened grasp pose is reachable with every joint `door_slack` inside its limits (the turn
        is a wrist roll: with one finger direction it runs the last joint into its limit);
        (None, None, door_turns[0]) if none."""
        g, arm, d = self.g, self.arm, self.arm.d
        up = d.xmat[self.latch_body].reshape(3, 3)[:, 2]
        q_now = d.qpos[arm.qidx].copy()
        lo, hi = arm.limits[:, 0] + g.limit_margin + g.door_slack, arm.limits[:, 1] - g.limit_margin - g.door_slack
        best, best_cost = (None, None, g.door_turns[0]), np.inf
        for x in (up, -up):
            p, R = self._grasp_pose(0.0, 0.0, x)
            q = arm.solve(p - g.hover * R[:, 2], R)
            if q is None:
                continue
            for i, turn in enumerate(g.door_turns):
                p_end, R_end = self._grasp_pose(turn * (g.door_unlatch + g.door_turn_step / 2), g.door_open, x)
                q_end = arm.solve(p_end, R_end, seeds=[q])
                if q_end is None or np.any(q_end < lo) or np.any(q_end > hi):
                    continue
                cost = np.abs(q - q_now).max() + (g.door_turn_pref if i else 0.0)
                if cost < best_cost:
                    best, best_cost = (q, x, turn), cost
        return best

    def __call__(self, obs=None) -> np.ndarray:
        g, arm, m, d = self.g, self.arm, self.arm.m, self.arm.d
        key = tuple(np.round(d.xpos[self.frame_body], 3))   # the door's placement (the frame never moves)
        if key not in self._plans:
            self._plans[key] = self._plan()
        q_pre, x_ref, turn = self._plans[key]
        hinge = float(d.qpos[m.jnt_qposadr[self.hinge]])
        progress = turn * float(d.qpos[m.jnt_qposadr[self.latch]])
        if arm.grasping(self.handle_geoms):
            # turn to door_unlatch; from door_pull_from on (or once the door is ajar) pull along the arc too
            d_latch = turn * float(np.clip(g.door_unlatch - progress, 0.0, g.door_turn_step))
            pull = progress >= g.door_pull_from or hinge > g.door_ajar
            d_hinge = min(g.door_pull_step, max(g.door_open - hinge, 0.0)) if pull else 0.0
            p_turn, R = self._grasp_pose(d_latch, 0.0)
            p, _ = self._grasp_pose(d_latch, d_hinge)
            # while the door is latched it cannot follow the pull, so the pull gets its own step budget
            # (in one clipped error it took the turn's share, the spring turned the lever back below
            # door_pull_from, the pull stopped, and so on: the Sawyer chattered there, never opening),
            # and the orientation target leads the turn only (leading the hinge too yawed the hand about
            # the latched hinge: the grip slipped ~0.15 rad round the lever and the turn stalled)
            return arm.action(p_turn, R, 1.0, p_extra=p - p_turn)
        p, R = self._grasp_pose(0.0, 0.0, x_ref)
        if q_pre is not None:
            arm.q_rest = q_pre   # null-space posture near the lever
            if _angle(arm.R, R) > g.door_reorient:
                return arm.joint_action(q_pre, -1.0)
        return _reach_and_grasp(arm, p, R, g)


class NutExpert:
    """Grasp the nut's handle, carry the nut over its peg (squared to the peg), lower it, release."""

    def __init__(self, rs_env, gains: ExpertGains):
        self.arm = _Arm(rs_env, gains)
        self.env, self.g = rs_env, gains

    def __call__(self, obs=None) -> np.ndarray:
        env, g, arm = self.env, self.g, self.arm
        sd = env.sim.data
        i = int(env.nut_id)
        nut = env.nuts[i]
        bid = env.obj_body_id[nut.name]
        c = sd.body_xpos[bid].copy()
        Rn = sd.body_xmat[bid].reshape(3, 3)
        handle = sd.site_xpos[env.object_site_ids[i]].copy()
        peg = sd.body_xpos[env.peg1_body_id if i == 0 else env.peg2_body_id].copy()
        table = _table_z(env)
        p = arm.pos
        if env.on_peg(c, i) and not arm.grasping(nut):
            # placed: let go and move away (success needs the hand off the nut)
            return arm.action(np.r_[p[:2], c[2] + g.nut_retreat], arm.R, -1.0)
        if arm.grasping(nut):
            # square the nut to the peg: nearest multiple of 90 deg of its yaw
            yaw = np.arctan2(Rn[1, 0], Rn[0, 0])
            dyaw = np.round(yaw / (np.pi / 2)) * (np.pi / 2) - yaw
            Rz = _rot([0, 0, 1], dyaw)
            off = Rz @ (p - c)                      # hand relative to the nut centre, once squared
            R_t = Rz @ arm.R
            carry_z = peg[2] + 0.1 + g.nut_clear + 0.01  # peg top + clearance + nut half-thickness
            xy_err = np.linalg.norm((c - peg)[:2])
            if xy_err > g.nut_align_xy or abs(dyaw) > 0.15:
                if c[2] < peg[2] + 0.1 + 0.015 and xy_err < 0.07:
                    return arm.action(np.r_[p[:2], carry_z + off[2]], R_t, 1.0)  # near the peg: rise first
                return arm.action(np.r_[peg[:2] + off[:2], carry_z + off[2]], R_t, 1.0)
            if c[2] < table + g.nut_release:
                return arm.action(p, arm.R, -1.0)
            return arm.action(np.r_[peg[:2] + off[:2], table + g.nut_release - 0.01 + off[2]], R_t, 1.0)
        R_t = _frame(_closest_axis(arm.R[:, 0], [Rn[:, 1]]), DOWN)
        return _reach_and_grasp(arm, handle + np.array([0, 0, g.nut_grasp_dz]), R_t, g)


EXPERTS = {"Lift": LiftExpert, "Door": DoorExpert, "NutAssemblySingle": NutExpert}


def make_expert(env, gains: ExpertGains | None = None):
    """The scripted expert of a RobosuiteEnv's task: callable obs -> action (8,) in [-1, 1]."""
    check(env.env_name in EXPERTS, f"Robosuite task {env.env_name!r} has no scripted expert (have: {', '.join(EXPERTS)})")
    expert = EXPERTS[env.env_name](env._env, gains or ExpertGains())
    return lambda obs=None: np.clip(expert(obs), -1.0, 1.0)
