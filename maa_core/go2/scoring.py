"""Go2 scorers for the generator's screening (`maa_core.serving.screening.Scorer`): a candidate actor
in the MuJoCo Go2 (maa_core.go2.sim) from the stand pose, inside the walk-these-ways composition of
`wtw_run_dir` (its adaptation module writes the latent), judged by `verdict.WalkCriteria`.

  * `StandScorer` ("go2"): fraction of `steps` policy steps before the robot falls or an action
    leaves the safety bound; a candidate that falls at once scores 0 and is marked invalid;
  * `WalkScorer` ("go2-walk"): as "go2", driven along a short command course (`SCREEN_COURSE`:
    forward, a turn in place, backward, sideways, stop; scaled to `steps`) through the observation's
    command slots, as an operator would drive it; a candidate that stays up the whole rollout scores
    1 + 1 / (1 + E), E = its tracking error in units of the acceptance bounds
    (RMSE vx / 0.1 m/s + vy / 0.1 m/s + yaw rate / 0.2 rad/s, gait-period averaged): among the ones
    that stand, the one that goes where it is told. Two rollouts (from the stand pose, and after
    standing 30 steps); the worse counts.

`__call__` scores one actor; `score_all` scores many in lock-step (`sim.lockstep.WtwWorlds`: one
world per candidate and start, one batched policy evaluation per tick for all of them, a candidate
that fails stops there). Same scores as `__call__` up to float32 summation order in the networks,
except that a commanded scorer's lock-step halves the field as it goes (`Halving`): a candidate
cut for tracking worse than the others scores 1.0 (it stood as long as it was judged), below every
candidate that stood the whole rollout and above every one that fell.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ..errors import check
from ..specs import Actor, PolicySpec
from .commands import Segment, course_commands
from .verdict import WalkCriteria

# the screening course, in fractions of the rollout (1000 steps = 20 s: 6 s forward, 3 s turning, ...)
SCREEN_COURSE = (Segment("forward", 0.3, vx=0.6), Segment("turn left", 0.15, yaw_rate=1.0),
                 Segment("backward", 0.25, vx=-0.4), Segment("lateral", 0.15, vy=0.3), Segment("stop", 0.15))
TRACKING_UNITS = np.array([0.1, 0.1, 0.2])   # m/s, m/s, rad/s: the course acceptance bounds (issue #15)
SETTLE_S = 1.0                                # each segment is judged from this long after its start


@dataclass(frozen=True)
class Halving:
    """Successive halving of a commanded lock-step screening: at each cut the candidates still
    standing are ranked by their tracking error so far (the worse of their starts) and only the best
    go on. The rollout's physics is most of the screening's time, and a candidate that trails the
    field early in the forward walk rarely wins the rest (10 held-out prompts: the same course
    outcome as the full screening's pick on 9, as the earlier two-cut default on all 10;
    BENCHMARKS.md, prompt -> actor)."""
    # cuts, as fractions of the rollout: a third and two thirds into SCREEN_COURSE's forward walk, its end,
    # the end of the turn (16 candidates -> 8 -> 4 -> 2 -> 2: 8,400 world steps of 32,000; BENCHMARKS.md)
    at: tuple = (0.1, 0.2, 0.3, 0.45)
    keep: float = 0.5         # fraction of the standing candidates that go on at a cut ...
    min_keep: int = 2         # ... never fewer than this many

    def cut_steps(self, steps: int) -> dict[int, float]:
        """policy step (the last one before the cut) -> keep fraction"""
        return {max(0, int(round(f * steps)) - 1): self.keep for f in self.at}


PRUNED_SCORE = 1.0   # a candidate cut by `Halving`: stood while judged, out-tracked by the others
MIN_GROUP = 2        # candidates per pipelined group at least: a lone candidate is not worth a thread hand-off
SCREEN_THREADS = 2   # the pipelined tick's threads: 5 % faster than one on 2 cores, also beside a busy job


class Tracking:
    """Gait-period-averaged tracking error of N worlds against a per-tick command (`course.py`'s
    measure, vectorized): `add(t, qpos, qvel)` after each policy step, `error()` -> (N,) E."""

    def __init__(self, n: int, cmds: np.ndarray, judged: np.ndarray, window: int):
        self.cmds, self.judged, self.window = cmds, judged, max(1, window)
        self.recent = np.zeros((n, self.window, 3))
        self.sq = np.zeros((n, 3))
        self.count = 0

    def keep(self, idx) -> None:
        self.recent, self.sq = self.recent[idx], self.sq[idx]

    def add(self, t: int, qpos: np.ndarray, qvel: np.ndarray) -> None:
        w, x, y, z = qpos[:, 3:7].T
        yaw = np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
        c, s = np.cos(yaw), np.sin(yaw)
        zrow = np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], axis=1)
        v = np.stack([c * qvel[:, 0] + s * qvel[:, 1], -s * qvel[:, 0] + c * qvel[:, 1],
                      np.einsum("ij,ij->i", zrow, qvel[:, 3:6])], axis=1)   # body vx, vy; world yaw rate
        self.recent[:, t % self.window] = v
        if self.judged[t]:
            avg = self.recent.mean(axis=1) if t + 1 >= self.window else self.recent[:, : t + 1].mean(axis=1)
            self.sq += (avg - self.cmds[t]) ** 2
            self.count += 1

    def error(self) -> np.ndarray:
        rmse = np.sqrt(self.sq / max(self.count, 1))
        return (rmse / TRACKING_UNITS).sum(axis=1)


def screen_commands(steps: int, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """(steps, 3) per-tick command of `SCREEN_COURSE` scaled to `steps`, and which ticks are judged."""
    total = steps * dt
    course = tuple(Segment(g.name, g.seconds * total, g.vx, g.vy, g.yaw_rate) for g in SCREEN_COURSE)
    cmds = course_commands(course, dt, steps)
    judged = np.zeros(steps, dtype=bool)
    k = 0
    for g in course:
        m = int(round(g.seconds / dt))
        judged[k + min(m, int(round(SETTLE_S / dt))): k + m] = True
        k += m
    return cmds, judged


class StandScorer:
    name = "go2"
    zero_is_invalid = True
    warmups = (0,)  # policy steps of standing before the actor takes over, one rollout each

    def __init__(self, steps: int, spec: PolicySpec, wtw_run_dir: str, crit: WalkCriteria = WalkCriteria(),
                 threads: int = SCREEN_THREADS, halving: Halving | None = None):
        """threads: threads of `score_all`'s pipelined tick (`_groups`); a fixed number, not the machine's
        core count, so the policy batches (hence the float32 results) are the same on every machine.
        halving: `Halving` of a commanded scorer's lock-step (None: the class's default)."""
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
        self.threads = max(1, int(threads))
        if halving is not None:
            self.halving = halving
        self._starts: dict[int, object] = {}  # warmup steps -> WorldStart (the same for every candidate)
        self._pool, self._pool_threads = None, 0
        self.last_world_steps = 0  # policy steps the last `score_all` simulated, all worlds together

    def __call__(self, actor: Actor, warmup_steps: int = 0) -> float:
        b = self.env.builder
        b.set_velocity(0.0, 0.0, 0.0)
        self.env.reset("stand")
        for _ in range(warmup_steps):  # standing at the policy gains before the actor takes over
            self.env.step(np.zeros(self.env.wtw.num_actions))
        sim = self.env.sim
        cmds, judged = screen_commands(self.steps, self.env.wtw.dt)
        self._track = Tracking(1, cmds, judged, self._window()) if self.commanded else None
        for t in range(self.steps):
            if self._track is not None:
                b.set_velocity(*cmds[t])
            a = self.runner.run(actor)
            if not np.isfinite(a).all() or np.abs(a).max() > self.bound:
                return t / self.steps
            self.env.step(a)
            if self._track is not None:
                self._track.add(t, sim.data.qpos[None], sim.data.qvel[None])
            if self.crit.fell(sim.base_position()[2], sim.data.qpos[3:7]):
                return t / self.steps
        return 1.0

    # -- lock-step: all candidates at once ---------------------------------------------------------
    def _world_start(self, warmup_steps: int):
        """The state `__call__` reaches before the actor's first step (reset, `warmup_steps` standing)."""
        from .sim.lockstep import WorldStart
        if warmup_steps not in self._starts:
            self.env.builder.set_velocity(0.0, 0.0, 0.0)
            self.env.reset("stand")
            for _ in range(warmup_steps):
                self.env.step(np.zeros(self.env.wtw.num_actions))
            self._starts[warmup_steps] = WorldStart.of(self.env)
        return self._starts[warmup_steps]

    def _thread_pool(self):
        """Worker threads for the pipelined tick beyond the calling thread (None: one thread)."""
        if self.threads > 1 and self._pool_threads != self.threads:
            from concurrent.futures import ThreadPoolExecutor
            if self._pool is not None:
                self._pool.shutdown(wait=False)
            self._pool = ThreadPoolExecutor(self.threads - 1, thread_name_prefix="maa-screening")
            self._pool_threads = self.threads
        return self._pool if self.threads > 1 else None

    def _groups(self, n: int) -> list[tuple[int, int]]:
        """Candidates 0..n-1 in `threads` contiguous groups (fewer when n is small), the first ones the
        larger: the pipelined tick hands each group's physics to a thread as soon as its actions are
        known, so the earlier groups' physics also overlaps the later groups' policy passes."""
        parts = max(1, min(self.threads, n // MIN_GROUP))
        cuts = np.ceil(np.arange(parts + 1) * n / parts).astype(int)
        return list(zip(cuts[:-1], cuts[1:]))

    commanded = False   # WalkScorer: drive the rollouts along SCREEN_COURSE and measure the tracking
    halving: Halving | None = None   # WalkScorer: cut the field as it goes (commanded scorers only)

    def _lockstep(self, actors: Sequence[Actor]):
        """Every actor from every start in `warmups`, all in lock-step. Returns (fail, err, pruned): fail (K,)
        the policy step at which an actor's first rollout failed (fell, or an action out of bound;
        -1: none did), err (K, W) each rollout's tracking error E (`commanded` scorers; else 0).
        None when the actors are not plain MLPs of one shape."""
        from .inference import StackedMlp
        from .sim.lockstep import WtwWorlds
        starts = [self._world_start(w) for w in self.warmups]
        K, W = len(actors), len(starts)
        policy = StackedMlp.of(actors)
        if policy is None:  # not plain MLPs of one shape: one at a time
            return None
        fail, err, pruned = np.full(K, -1), np.zeros((K, W)), np.zeros(K, bool)
        cmds, judged = screen_commands(self.steps, self.env.wtw.dt)
        track = Tracking(K * W, cmds, judged, self._window()) if self.commanded else None
        cuts = self.halving.cut_steps(self.steps) if track is not None and self.halving is not None else {}
        alive = np.arange(K)  # candidates still running; their worlds are alive*W .. alive*W + W-1
        hist = self.env.wtw.history_dim
        adaptation = self.runner.adaptation

        def drop(bad: np.ndarray) -> None:
            """Drops the candidates `bad` (K_alive,) bool from the worlds, the policy and the tracking."""
            nonlocal alive
            alive = alive[~bad]
            policy.keep(np.flatnonzero(~bad))
            worlds.keep(np.flatnonzero(np.repeat(~bad, W)))
            if track is not None:
                track.keep(np.flatnonzero(np.repeat(~bad, W)))

        def stop(failed_worlds: np.ndarray, t: int) -> None:
            """Ends at step t the candidates with a failed world: one failed start decides (the worse counts)."""
            bad = failed_worlds.reshape(-1, W).any(axis=1)
            if bad.any():
                fail[alive[bad]] = t
                drop(bad)

        def cut(keep_fraction: float) -> None:
            """Keeps the best-tracking `keep_fraction` of the standing candidates (at least `min_keep`)."""
            n = max(self.halving.min_keep, math.ceil(keep_fraction * len(alive)))
            if n >= len(alive):
                return
            e = track.error().reshape(len(alive), W)
            bad = np.ones(len(alive), bool)
            bad[np.argsort(e.max(axis=1), kind="stable")[:n]] = False
            err[alive[bad]] = e[bad]
            pruned[alive[bad]] = True
            drop(bad)

        def act(lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
            """Policy step of candidates lo..hi-1 (of `alive`): latent, then action. Returns (actions of their
            worlds, which had an action out of bound: stepped with 0 instead, they stop after this step)."""
            wl, wh = lo * W, hi * W
            with torch.inference_mode():
                x = torch.from_numpy(worlds.input[wl:wh])
                x[:, hist:] = adaptation(x[:, :hist])    # the latent: one batched call for these worlds
                a = policy(x.view(hi - lo, W, -1), lo, hi).reshape(wh - wl, -1).numpy()
            bad = ~np.isfinite(a).all(axis=1) | (np.abs(a).max(axis=1) > self.bound)
            return (np.where(bad[:, None], 0.0, a) if bad.any() else a), bad

        def tick(pool) -> np.ndarray:
            """One policy step of every alive world. Pipelined over `_groups`: group g's physics runs on a
            worker thread (MuJoCo releases the GIL) while this thread computes group g+1's actions; the
            last group's physics runs here. Then one observation pass for all worlds."""
            groups = self._groups(len(alive))
            bad, pending = [], []
            for g, (lo, hi) in enumerate(groups):
                a, b = act(lo, hi)
                bad.append(b)
                if pool is not None and g < len(groups) - 1:
                    pending.append(pool.submit(worlds.advance_rows, lo * W, hi * W, a))
                else:
                    worlds.advance_rows(lo * W, hi * W, a)
            for f in pending:  # every group's physics finishes before anything reads the worlds
                f.result()
            worlds.observe_rows(0, len(worlds))
            return np.concatenate(bad)

        pool = self._thread_pool()
        self.last_world_steps = 0
        with WtwWorlds(self.env, [s for _ in range(K) for s in starts]) as worlds:
            for t in range(self.steps):
                self.last_world_steps += len(worlds)
                if track is not None:
                    worlds.set_velocity(*cmds[t])
                worlds.tick_clocks()
                bad = tick(pool)
                if track is not None:
                    track.add(t, worlds.qpos, worlds.qvel)
                fell = self.crit.fell_many(worlds.base_position[:, 2], worlds.base_quat)
                stop(bad | fell, t)  # out of bound or fallen at step t: both score t / steps
                if len(alive) == 0:
                    break
                if t in cuts:
                    cut(cuts[t])
            if len(alive) and track is not None:
                err[alive] = track.error().reshape(len(alive), W)
        return fail, err, pruned

    def _window(self) -> int:
        """One gait period in policy steps (the tracking average's window)."""
        return max(1, int(round(1.0 / (float(self.env.builder.commands[4]) * self.env.wtw.dt))))

    def score_all(self, actors: Sequence[Actor]) -> np.ndarray:
        """`__call__` of every actor, in lock-step."""
        got = self._lockstep(actors)
        if got is None:
            return np.array([self(a) for a in actors])
        return np.where(got[0] >= 0, got[0] / self.steps, 1.0)


class WalkScorer(StandScorer):
    name = "go2-walk"
    commanded = True
    # two starts, the worse one counts: straight from the stand pose (as the controller's STAND_UP -> RUN) and
    # after standing 30 policy steps (as the students were trained); marginal actors walk from one and not the other
    warmups = (0, 30)
    halving = Halving()

    def __call__(self, actor: Actor) -> float:
        return min(self._walk(actor, w) for w in self.warmups)

    def _walk(self, actor: Actor, warmup_steps: int) -> float:
        survived = super().__call__(actor, warmup_steps)
        if survived < 1.0:
            return survived
        return 1.0 + 1.0 / (1.0 + float(self._track.error()[0]))

    def score_all(self, actors: Sequence[Actor]) -> np.ndarray:
        got = self._lockstep(actors)
        if got is None:
            return np.array([self(a) for a in actors])
        fail, err, pruned = got
        stood = np.where(pruned, PRUNED_SCORE, 1.0 + 1.0 / (1.0 + err.max(axis=1)))
        return np.where(fail >= 0, fail / self.steps, stood)
