"""A walk's gait style from its observation rows alone (what a prompt carries, and what the
controller streams on maa/go2/steps): each foot's position in the trunk frame by the leg's forward
kinematics (`gait.LegKinematics`) from the joint angles in the observation, then

  * body height: how far below the trunk the feet are in stance (the 10th percentile of each foot's
    trunk-frame z, i.e. its lowest: stance; m);
  * swing height: how far a foot lifts above that (95th minus 10th percentile; m);
  * stance width: the feet's mean lateral offset from the hips' nominal line (m, + = wider);
  * foot x: the feet's mean fore-aft offset from the hips (m).

The numbers are the expert's style parameters (`gait.GaitParams`) measured back, so a prompt's and
an actor's style compare in one unit (cm) whatever produced them: an expert, a student, a recording
of the robot. Step frequency is not in it: every walk here follows the same gait clock."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..errors import check

STYLE_FIELDS = ("body_height", "swing_height", "stance_width", "foot_x")


@dataclass(frozen=True)
class GaitStyle:
    body_height: float
    swing_height: float
    stance_width: float
    foot_x: float

    def vector(self) -> np.ndarray:
        return np.array([getattr(self, k) for k in STYLE_FIELDS])

    def row(self, digits: int = 4) -> dict:
        return {k: round(v, digits) for k, v in asdict(self).items()}


def foot_positions(rows: np.ndarray, cfg, builder) -> np.ndarray:
    """(T, 4, 3) trunk-frame foot positions (policy leg order FL, FR, RL, RR) of (T, 70) observation
    rows laid out as `builder` (a `wtw.ObservationBuilder`) writes them; `cfg` the robot config."""
    from .gait import LEG_NAMES, LegKinematics

    wtw = builder.wtw
    rows = np.asarray(rows, dtype=np.float64)
    check(rows.ndim == 2 and rows.shape[1] == wtw.num_obs and len(rows) > 0,
          f"gait style: expected (T, {wtw.num_obs}) observation rows, got {rows.shape}")
    q = rows[:, builder.sl_q] / wtw.obs_scales["dof_pos"] + builder.default_angles
    legs = [LegKinematics(cfg, n) for n in LEG_NAMES]
    out = np.empty((len(rows), 4, 3))
    for i, leg in enumerate(legs):
        for k in range(len(rows)):
            out[k, i] = leg.forward(q[k, 3 * i: 3 * i + 3])
    return out


def style_of(rows: np.ndarray, cfg, builder) -> GaitStyle:
    """The style of a walk's observation rows (module docstring; arguments as `foot_positions`)."""
    from .gait import LEG_NAMES, LegKinematics

    p = foot_positions(rows, cfg, builder)
    z = p[:, :, 2]
    low, high = np.percentile(z, 10, axis=0), np.percentile(z, 95, axis=0)
    legs = [LegKinematics(cfg, n) for n in LEG_NAMES]
    nominal_y = np.array([leg.hip[1] + leg.y0 for leg in legs])
    sides = np.array([leg.sy for leg in legs])
    hip_x = np.array([leg.hip[0] for leg in legs])
    return GaitStyle(body_height=float(-low.mean()), swing_height=float((high - low).mean()),
                     stance_width=float(((p[:, :, 1] - nominal_y) * sides).mean()),
                     foot_x=float((p[:, :, 0] - hip_x).mean()))


def style_error_cm(a: GaitStyle, b: GaitStyle) -> dict:
    """|a - b| per field in cm, and their mean ("all")."""
    d = np.abs(a.vector() - b.vector()) * 100.0
    return {**{k: round(float(v), 2) for k, v in zip(STYLE_FIELDS, d)}, "all": round(float(d.mean()), 2)}
