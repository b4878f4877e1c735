"""A trajectory: what a policy did. States (T, obs), actions (T, act), optional success flags (T,)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import check


@dataclass
class Trajectory:
    states: np.ndarray  # (T, obs_dim) float32
    actions: np.ndarray  # (T, act_dim) float32
    success: np.ndarray | None = None  # (T,) bool; None where the task has no success signal

    def __post_init__(self):
        self.states = np.asarray(self.states, dtype=np.float32)
        self.actions = np.asarray(self.actions, dtype=np.float32)
        if self.success is not None:
            self.success = np.asarray(self.success, dtype=bool)

    def __len__(self) -> int:
        return len(self.states)

    @property
    def first_success(self) -> int:
        """Index of the first successful step, or -1."""
        if self.success is None or not self.success.any():
            return -1
        return int(np.argmax(self.success))

    def validate(self, obs_dim: int | None = None, act_dim: int | None = None, where: str = "trajectory") -> "Trajectory":
        s, a = self.states, self.actions
        check(s.ndim == 2 and a.ndim == 2, f"{where}: states and actions must be 2-D (T, dim), got {s.shape} and {a.shape}")
        check(len(s) == len(a) and len(s) > 0, f"{where}: states ({len(s)}) and actions ({len(a)}) must have the same non-zero length")
        if obs_dim is not None:
            check(s.shape[1] == obs_dim, f"{where}: states have {s.shape[1]} dims, expected {obs_dim}")
        if act_dim is not None:
            check(a.shape[1] == act_dim, f"{where}: actions have {a.shape[1]} dims, expected {act_dim}")
        check(np.isfinite(s).all(), f"{where}: states contain NaN or Inf")
        check(np.isfinite(a).all(), f"{where}: actions contain NaN or Inf")
        if self.success is not None:
            check(self.success.shape == (len(s),), f"{where}: success has shape {self.success.shape}, expected ({len(s)},)")
        return self


def save_trajectory(path, traj: Trajectory) -> None:
    arrays = {"states": traj.states, "actions": traj.actions}
    if traj.success is not None:
        arrays["success"] = traj.success
    np.savez(path, **arrays)


def load_trajectory(path) -> Trajectory:
    """A prompt file: .npz with `states` (T, obs), `actions` (T, act) and optionally `success` (T,)."""
    from pathlib import Path

    from .files import load_npz

    path = Path(path)
    z = load_npz(path, ".npz prompt file")
    for k in ("states", "actions"):
        check(k in z, f"{path}: missing array {k!r} (has {sorted(z)})")
    if "success" in z:
        check(z["success"].dtype.kind in "biu" and bool(np.isin(z["success"], (0, 1)).all()),
              f"{path}: success must hold booleans (0/1), got {z['success'].dtype}")
    return Trajectory(z["states"], z["actions"], z.get("success")).validate(where=str(path))
