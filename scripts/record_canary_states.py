"""Record the reference states of the Go2 validator's canary batch -> models/go2-canary-states.npz.

    .venv/bin/python scripts/record_canary_states.py [--wtw RUN_DIR] [--out models/go2-canary-states.npz]

The simulated Go2 (in-process MuJoCo, the controller's own observation builder) stands at the policy
gains for the warm-up the controller also gives an actor, then the commanded trot expert walks it along
the commands an operator gives most (forward slow and fast, a turn in place, backward), the command in
the observation's command slots as the controller writes it; the observation histories of that standing
and of steady walking (rows spread over the gait cycle) are what every actor will meet. Only the histories are stored: the controller
computes the latent with its own adaptation module. Re-record after changing the observation layout,
the default angles or the simulator model (the controller skips files that do not match)."""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


@dataclass(frozen=True)
class RecordPlan:
    commands: tuple = ((0.6, 0.0, 0.0), (0.9, 0.0, 0.0), (0.0, 0.0, 1.0), (-0.5, 0.0, 0.0))  # (vx, vy, yaw rate)
    steady_from_s: float = 2.0  # rows start after the command ramp (GaitParams.accel 1 m/s^2) has settled
    rows_per_gait: int = 3      # walking rows per command (13 histories: the canary batch is on the swap path)
    row_stride: int = 7         # policy steps between rows: co-prime with the ~17-step gait cycle


def record(wtw_dir: str, plan: RecordPlan = RecordPlan()) -> dict:
    from maa_core.go2.commands import Segment
    from maa_core.go2.sim.env import make_env
    from maa_core.go2.gait import GaitExpert, GaitParams
    from maa_core.go2.walk import walk

    env, adaptation = make_env(wtw_dir)
    w = env.wtw
    hist, kinds = [], []
    seconds = plan.steady_from_s + (plan.rows_per_gait * plan.row_stride + 1) * w.dt
    for vx, vy, wz in plan.commands:
        r = walk(env, adaptation, None, seconds, expert=GaitExpert(env, GaitParams(), commanded=True), inputs=True,
                 course=(Segment("canary", seconds, vx=vx, vy=vy, yaw_rate=wz),))
        assert not r.fell, r.summary()
        if not kinds:  # the first step's input: the warm-up stand at the policy gains
            hist.append(r.inputs[0, :w.history_dim])
            kinds.append("stand-settled")
        k0 = int(round(plan.steady_from_s / w.dt))
        for i in range(plan.rows_per_gait):
            hist.append(r.inputs[k0 + i * plan.row_stride, :w.history_dim])
            kinds.append(f"trot-{vx:g},{vy:g},{wz:g}")
    return {"histories": np.stack(hist).astype(np.float32), "kinds": np.array(kinds),
            "default_angles": env.builder.default_angles.astype(np.float64)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wtw", default="", help="adaptation module run dir (\"\" = the shipped one; only the histories are stored)")
    ap.add_argument("--out", default=str(REPO / "models" / "go2-canary-states.npz"))
    a = ap.parse_args()
    data = record(a.wtw)
    np.savez_compressed(a.out, **data)
    print(f"{a.out}: {len(data['kinds'])} histories ({', '.join(data['kinds'])})")


if __name__ == "__main__":
    main()
