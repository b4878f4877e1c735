"""Prompt -> chosen actor, without ROS: K candidates, screening, revert history, and a worker
thread so the node's executor never runs a diffusion sampling loop.
"""
from __future__ import annotations

import queue
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from maa_core.actor_io import ActorBlob
from maa_core.errors import MaaError, check
from maa_core.specs import PolicySpec
from maa_core.trajectory import Trajectory


@dataclass
class Screening:
    """Per-candidate verdicts. Valid: finite parameters, finite actions on the prompt's states
    within `max_abs_action`. Score: agreement with the prompt's actions (negative MSE), or the
    simulator return when a rollout function is configured. The best valid candidate wins."""

    valid: np.ndarray  # (K,) bool
    score: np.ndarray  # (K,) float, -inf where invalid
    reasons: list[str]

    @property
    def best(self) -> int:
        return int(np.argmax(self.score)) if self.valid.any() else -1


def screen(spec: PolicySpec, params: np.ndarray, prompt: Trajectory, max_abs_action: float,
           rollout: Callable | None = None) -> Screening:
    K = params.shape[0]
    valid, score, reasons = np.zeros(K, bool), np.full(K, -np.inf), []
    states = torch.as_tensor(prompt.states, dtype=torch.float32)
    obs_ok = states.shape[1] == spec.obs_dim  # prompt states may differ from the actor's input (e.g. Go2 history)
    for k in range(K):
        p = params[k]
        if not np.isfinite(p).all():
            reasons.append("non-finite parameters")
            continue
        if not obs_ok:
            valid[k], score[k] = True, 0.0
            reasons.append("ok (prompt states are not actor inputs: not ranked)")
            continue
        with torch.no_grad():
            act = spec.unflatten(p)(states).numpy()
        if not np.isfinite(act).all():
            reasons.append("non-finite actions on the prompt states")
            continue
        peak = float(np.abs(act).max())
        if peak > max_abs_action:
            reasons.append(f"action magnitude {peak:.3g} > {max_abs_action:g}")
            continue
        valid[k] = True
        score[k] = -float(np.mean((act - prompt.actions) ** 2)) if act.shape == prompt.actions.shape else 0.0
        reasons.append("ok")
    if rollout is not None:
        for k in np.flatnonzero(valid):
            score[k] = float(rollout(spec.unflatten(params[k])))
    return Screening(valid, score, reasons)


@dataclass
class Generated:
    prompt_id: str
    blob: ActorBlob
    data: bytes  # blob.to_bytes(): what goes on the actor topic
    screening: Screening | None
    seconds: float
    received_at: float  # time.monotonic() when the prompt arrived


class ActorHistory:
    """The last `size` published actors (bytes); `revert` drops the current one."""

    def __init__(self, size: int):
        self._items: deque[tuple[str, bytes]] = deque(maxlen=max(1, size))

    def push(self, generation_id: str, data: bytes) -> None:
        self._items.append((generation_id, data))

    @property
    def current(self) -> tuple[str, bytes] | None:
        return self._items[-1] if self._items else None

    def revert(self) -> tuple[str, bytes]:
        check(len(self._items) >= 2, "revert: no earlier actor to go back to")
        self._items.pop()
        return self._items[-1]

    def __len__(self) -> int:
        return len(self._items)


class Engine:
    """Wraps a PolicyGenerator: one prompt in, the chosen candidate as an ActorBlob out."""

    def __init__(self, generator, num_candidates: int = 8, seed: int = 0, do_screen: bool = True,
                 max_abs_action: float = 10.0, rollout: Callable | None = None, name: str = "maa"):
        check(num_candidates >= 1, f"num_candidates must be >= 1, got {num_candidates}")
        self.gen, self.K, self.seed = generator, int(num_candidates), int(seed)
        self.do_screen, self.max_abs_action, self.rollout = do_screen, float(max_abs_action), rollout
        self.name = name
        self._attempts: dict[str, int] = {}

    def check_prompt(self, traj: Trajectory, where: str = "prompt") -> Trajectory:
        return self.gen.check_prompt(traj, where=where)

    def generate(self, prompt_id: str, traj: Trajectory, received_at: float | None = None) -> Generated:
        t0 = time.monotonic()
        attempt = self._attempts.get(prompt_id, 0)
        self._attempts[prompt_id] = attempt + 1
        seed = self.seed + attempt
        params = self.gen.generate([traj], num_policies=self.K, seed=seed).params[0]  # (K, P)
        sc, k = None, 0
        if self.do_screen:
            sc = screen(self.gen.spec, params, traj, self.max_abs_action, self.rollout)
            k = sc.best
            if k < 0:
                raise MaaError(f"prompt {prompt_id}: all {self.K} candidates failed screening ({sc.reasons[0]})")
        gid = f"{self.name}-{uuid.uuid4().hex[:12]}"
        extra = {"candidate": k, "num_candidates": self.K, "seed": seed}
        if sc is not None:
            extra.update(score=float(sc.score[k]), valid=int(sc.valid.sum()))
        blob = ActorBlob(self.gen.spec, params[k], generation_id=gid, prompt_id=prompt_id, extra=extra)
        return Generated(prompt_id, blob, blob.to_bytes(), sc, time.monotonic() - t0,
                         received_at if received_at is not None else t0)


@dataclass
class _Job:
    prompt_id: str
    traj: Trajectory
    received_at: float = field(default_factory=time.monotonic)


class Worker:
    """One background thread running `Engine.generate`. `submit` never blocks: when a job is
    already waiting, the newer prompt replaces it (the superseded id is returned).
    `on_done(result_or_exception)` is called from the worker thread."""

    def __init__(self, engine: Engine, on_done: Callable[[object], None]):
        self.engine, self.on_done = engine, on_done
        self._q: queue.Queue = queue.Queue(maxsize=1)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.busy = False
        self._t = threading.Thread(target=self._loop, name="maa-generation", daemon=True)
        self._t.start()

    def submit(self, prompt_id: str, traj: Trajectory, received_at: float | None = None) -> str | None:
        job = _Job(prompt_id, traj, received_at if received_at is not None else time.monotonic())
        dropped = None
        with self._lock:
            try:
                dropped = self._q.get_nowait().prompt_id
            except queue.Empty:
                pass
            self._q.put_nowait(job)
        return dropped

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                job = self._q.get(timeout=0.1)
            except queue.Empty:
                continue
            self.busy = True
            try:
                result = self.engine.generate(job.prompt_id, job.traj, job.received_at)
            except Exception as e:  # MaaError, or anything the generator raised: reported, not fatal
                result = e if isinstance(e, MaaError) else MaaError(f"prompt {job.prompt_id}: generation failed ({type(e).__name__}: {e})")
            finally:
                self.busy = False
            self.on_done(result)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._t.join(timeout)
