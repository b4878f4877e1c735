"""Go2 scorers for the generator's screening (`maa_core.serving.screening.Scorer`): a candidate actor
in the MuJoCo Go2 (maa_core.go2.sim) from the stand pose, inside the walk-these-ways composition of
`wtw_run_dir` (its adaptation module writes the latent), judged by `verdict.WalkCriteria`.

  * `StandScorer` ("go2"): fraction of `steps` policy steps before the robot falls or an action
    leaves the safety bound; a candidate that falls at once scores 0 and is marked invalid;
  * `WalkScorer` ("go2-walk"): as "go2", and a candidate that stays up the whole rollout scores
    1 + its forward speed along its initial heading (m/s, >= 0): among the ones that stand, the one
    that walks. Two rollouts (from the stand pose, and after standing 30 steps); the worse counts.
"""
from __future__ import annotations

import numpy as np

from ..errors import check
from ..specs import Actor, PolicySpec
from .verdict import WalkCriteria, forward_lateral, heading


class StandScorer:
    name = "go2"
    zero_is_invalid = True

    def __init__(self, steps: int, spec: PolicySpec, wtw_run_dir: str, crit: WalkCriteria = WalkCriteria()):
        from .sim.env import WtwSimEnv
        from .wtw import PolicyRunner, load_wtw_run

        run = load_wtw_run(wtw_run_dir)  # "" = the shipped adaptation module
        check(spec.obs_dim == run.config.actor_in_dim and spec.act_dim == run.config.num_actions,
              f"sim_screen {self.name!r}: actors are {spec.obs_dim} -> {spec.act_dim}, the run needs "
              f"{run.config.actor_in_dim} -> {run.config.num_actions}")
        self.env = WtwSimEnv("go2", run.config)
        self.runner = PolicyRunner(self.env.builder, run.adaptation)
        self.steps, self.crit = steps, crit
        self.bound = self.env.cfg.safety.max_abs_action

    def __call__(self, actor: Actor, warmup_steps: int = 0) -> float:
        self.env.reset("stand")
        for _ in range(warmup_steps):  # standing at the policy gains before the actor takes over
            self.env.step(np.zeros(self.env.wtw.num_actions))
        sim = self.env.sim
        self._start, self._quat0 = sim.base_position(), sim.data.qpos[3:7].copy()
        for t in range(self.steps):
            a = self.runner.run(actor)
            if not np.isfinite(a).all() or np.abs(a).max() > self.bound:
                return t / self.steps
            self.env.step(a)
            if self.crit.fell(sim.base_position()[2], sim.data.qpos[3:7]):
                return t / self.steps
        return 1.0


class WalkScorer(StandScorer):
    name = "go2-walk"
    # two starts, the worse one counts: straight from the stand pose (as the controller's STAND_UP -> RUN) and
    # after standing 30 policy steps (as the students were trained); marginal actors walk from one and not the other
    warmups = (0, 30)

    def __call__(self, actor: Actor) -> float:
        return min(self._walk(actor, w) for w in self.warmups)

    def _walk(self, actor: Actor, warmup_steps: int) -> float:
        survived = super().__call__(actor, warmup_steps)
        if survived < 1.0:
            return survived
        forward, _ = forward_lateral(self.env.sim.base_position()[:2] - self._start[:2], heading(self._quat0))
        return 1.0 + max(0.0, forward / (self.steps * self.env.wtw.dt))
