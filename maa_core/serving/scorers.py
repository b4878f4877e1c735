"""Scorers by name: what the generator node's `sim_screen` parameter names. Each domain implements
its scorer in its own package (`screening.Scorer`); this table only says which is which, in the
style of the CLI's SUBCOMMANDS. Imports happen on use (a simulator is heavy)."""
from __future__ import annotations

from ..errors import check
from ..specs import PolicySpec
from .screening import Scorer


def _go2_stand(steps: int, spec: PolicySpec, wtw_run_dir: str) -> Scorer:
    from ..go2.scoring import StandScorer

    return StandScorer(steps, spec, wtw_run_dir)


def _go2_walk(steps: int, spec: PolicySpec, wtw_run_dir: str) -> Scorer:
    from ..go2.scoring import WalkScorer

    return WalkScorer(steps, spec, wtw_run_dir)


def _task(name: str, steps: int, spec: PolicySpec) -> Scorer:
    from ..envs.scoring import TaskScorer

    return TaskScorer(name, steps, spec)


# name -> factory(steps, spec, wtw_run_dir); any other name is a MetaWorld / Robosuite task
SCORERS = {"go2": _go2_stand, "go2-walk": _go2_walk}


def make_scorer(name: str, steps: int, spec: PolicySpec, wtw_run_dir: str = "") -> Scorer:
    """The scorer `name` names: "go2" (stays up), "go2-walk" (stays up along a command course, then
    tracks it best; both in maa_core.go2.scoring) or a MetaWorld / Robosuite task (maa_core.envs.scoring). MaaError when it
    cannot be built."""
    check(steps >= 1, f"sim_screen_steps must be >= 1, got {steps}")
    if name in SCORERS:
        return SCORERS[name](steps, spec, wtw_run_dir)
    return _task(name, steps, spec)
