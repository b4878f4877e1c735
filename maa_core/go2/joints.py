"""Joint-order mapping between the robot's motor order and the policy's joint order.

The Go2 SDK indexes motors FR, FL, RR, RL (hip, thigh, calf each); walk-these-ways was trained in
Isaac Gym, whose joint order follows the URDF: FL, FR, RL, RR. Both orders come from the robot
config; the permutation is derived from the joint names, never hard-coded."""
from __future__ import annotations

import numpy as np

from ..errors import check


class JointMap:
    def __init__(self, motor_joints, policy_joints):
        motor_joints, policy_joints = list(motor_joints), list(policy_joints)
        check(sorted(motor_joints) == sorted(policy_joints) and len(set(motor_joints)) == len(motor_joints),
              "joint map: motor and policy orders must name the same joints once each")
        # policy[i] = motor[policy_from_motor[i]];  motor[j] = policy[motor_from_policy[j]]
        self.policy_from_motor = np.array([motor_joints.index(j) for j in policy_joints])
        self.motor_from_policy = np.array([policy_joints.index(j) for j in motor_joints])
        self.motor_joints, self.policy_joints = tuple(motor_joints), tuple(policy_joints)
        # indices of hip joints in policy order (hip_scale_reduction applies to them)
        self.policy_hips = np.array([i for i, j in enumerate(policy_joints) if j.endswith("_hip")])

    @classmethod
    def from_config(cls, cfg) -> "JointMap":
        return cls(cfg.motor_joints, cfg.policy_joints)

    def to_policy(self, motor_values: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return np.take(motor_values, self.policy_from_motor, axis=-1, out=out)

    def to_motor(self, policy_values: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return np.take(policy_values, self.motor_from_policy, axis=-1, out=out)
