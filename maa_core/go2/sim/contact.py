"""Ground contact parameters of the simulated Go2 that walk-these-ways randomizes per episode:
friction and restitution, set on a built MuJoCo model.

Friction: MuJoCo takes the larger sliding friction of the two geoms in contact, so one value on
every geom is the friction of every robot-floor contact (as an Isaac Gym friction coefficient is).

Restitution: MuJoCo contacts are soft (a spring-damper along the normal, `solref = (timeconst,
dampratio)`), with no restitution coefficient. We map a coefficient of restitution e to the damping
ratio of that spring-damper with the same bounce: a damped oscillator leaves the contact with
e = exp(-zeta pi / sqrt(1 - zeta^2)), so zeta = -ln e / sqrt(pi^2 + ln^2 e) (e = 0 -> zeta = 1, the
critically damped default; e = 0.4 -> zeta = 0.28). The time constant keeps MuJoCo's default 0.02 s
and solimp is left as built: they set stiffness and penetration, not the bounce."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...errors import check

TIMECONST = 0.02     # s, MuJoCo's default contact time constant (>= 2 physics steps of 2 ms)
MIN_RESTITUTION = 1e-6  # below it the damping ratio is 1 (ln e diverges at 0)


def restitution_to_dampratio(e: float) -> float:
    check(0.0 <= e < 1.0, f"restitution {e}: expected 0 <= e < 1")
    if e < MIN_RESTITUTION:
        return 1.0
    le = math.log(e)
    return -le / math.sqrt(math.pi ** 2 + le ** 2)


def dampratio_to_restitution(zeta: float) -> float:
    """Inverse of `restitution_to_dampratio` (0 for zeta >= 1)."""
    if zeta >= 1.0:
        return 0.0
    return math.exp(-zeta * math.pi / math.sqrt(1.0 - zeta ** 2))


@dataclass(frozen=True)
class GroundContact:
    friction: float = 0.8      # sliding friction coefficient (the robot config's sim.friction)
    restitution: float = 0.0   # coefficient of restitution (0: MuJoCo's critically damped default)

    def apply(self, model) -> None:
        """Every geom of `model` (floor and robot) gets this friction and bounce."""
        check(self.friction > 0.0, f"friction {self.friction}: expected > 0")
        model.geom_friction[:, 0] = self.friction
        model.geom_solref[:] = np.array([TIMECONST, restitution_to_dampratio(self.restitution)])

    @classmethod
    def of(cls, model) -> "GroundContact":
        """What `model` has now (from its floor geom)."""
        g = model.geom("floor").id
        return cls(float(model.geom_friction[g, 0]), dampratio_to_restitution(float(model.geom_solref[g, 1])))
