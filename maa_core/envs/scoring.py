"""The MetaWorld / Robosuite scorer for the generator's screening (`maa_core.serving.screening.Scorer`):
return of one episode of `steps` steps from the task's default configuration, + 1000 if it succeeds."""
from __future__ import annotations

from ..errors import MaaError, check
from ..specs import Actor, PolicySpec


class TaskScorer:
    zero_is_invalid = False

    def __init__(self, task: str, steps: int, spec: PolicySpec):
        from . import make_env

        self.name = task
        try:
            self.env = make_env(task, seed=0, max_episode_steps=steps)
        except MaaError:
            raise
        except Exception as e:  # unknown task names surface as library errors of several kinds
            raise MaaError(f"sim_screen {task!r}: cannot build the simulator ({type(e).__name__}: {e})") from None
        check((self.env.obs_dim, self.env.act_dim) == (spec.obs_dim, spec.act_dim),
              f"sim_screen {task!r}: env is {self.env.obs_dim} -> {self.env.act_dim}, actors are {spec.obs_dim} -> {spec.act_dim}")
        self.steps = steps

    def __call__(self, actor: Actor) -> float:
        from .evaluate import rollout

        ro = rollout(self.env, actor.act, None, max_steps=self.steps)
        return float(ro.ret) + (1000.0 if ro.success else 0.0)
