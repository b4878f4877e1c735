"""Prompt -> chosen actor: K candidates, screening, revert history, and a worker thread so the
generator node's executor never runs a diffusion sampling loop.
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

from ..actor_io import ActorBlob
from ..errors import MaaError, check
from ..trajectory import Trajectory
from .retrieval import MODES
from .screening import Scorer, Screening, screen


@dataclass
class Generated:
    prompt_id: str
    blob: ActorBlob
    data: bytes  # blob.to_bytes(): what goes on the actor topic
    screening: Screening | None
    seconds: float
    received_at: float  # time.monotonic() when the prompt arrived
    signature: str = ""  # maa_core.signing line over `data` when the engine has a signer


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
                 max_abs_action: float = 20.0, scorer: Scorer | None = None, name: str = "maa",
                 blob_extra: dict | None = None, signer=None, mode: str = "generate", retrieval=None,
                 retrieval_threshold: float = -1.0):
        """signer: a `maa_core.signing.Signer`; every blob is then signed (on the worker thread).
        mode: "generate" | "retrieve" | "auto" (serving/retrieval.py), with `retrieval` the folder's
        RetrievalIndex; retrieval_threshold < 0: the index's."""
        check(num_candidates >= 1, f"num_candidates must be >= 1, got {num_candidates}")
        check(mode in MODES, f"mode {mode!r}: expected one of {', '.join(MODES)}")
        check(mode == "generate" or retrieval is not None, f"mode {mode}: the generator folder has no retrieval index")
        self.mode, self.retrieval, self.retrieval_threshold = mode, retrieval, float(retrieval_threshold)
        self.blob_extra = dict(blob_extra or {})  # into every blob's header (e.g. the policy contract)
        self.gen, self.K, self.seed = generator, int(num_candidates), int(seed)
        self.do_screen, self.max_abs_action, self.scorer = do_screen, float(max_abs_action), scorer
        self.name, self.signer = name, signer
        self._attempts: dict[str, int] = {}

    def check_prompt(self, traj: Trajectory, where: str = "prompt") -> Trajectory:
        return self.gen.check_prompt(traj, where=where)

    def generate(self, prompt_id: str, traj: Trajectory, received_at: float | None = None) -> Generated:
        t0 = time.monotonic()
        attempt = self._attempts.get(prompt_id, 0)
        self._attempts[prompt_id] = attempt + 1
        seed = self.seed + attempt
        params, source = self.candidates(traj, seed)
        sc, k = None, 0
        if self.do_screen:
            sc = screen(self.gen.spec, params, traj, self.max_abs_action, self.scorer)
            k = sc.best
            if k < 0:
                raise MaaError(f"prompt {prompt_id}: all {len(params)} candidates failed screening ({sc.reasons[0]})")
        if self.mode == "auto" and k == self.K:  # candidate K exists only when auto pooled: the nearest checkpoint won
            source["source"] = "retrieved"
        gid = f"{self.name}-{uuid.uuid4().hex[:12]}"
        extra = {**self.blob_extra, **source, "candidate": k, "num_candidates": len(params), "seed": seed}
        if sc is not None:
            extra.update(score=float(sc.score[k]), valid=int(sc.valid.sum()))
        blob = ActorBlob(self.gen.spec, params[k], generation_id=gid, prompt_id=prompt_id, extra=extra)
        data = blob.to_bytes()
        signature = self.signer.sign(data).to_text() if self.signer is not None else ""
        return Generated(prompt_id, blob, data, sc, time.monotonic() - t0,
                         received_at if received_at is not None else t0, signature)

    def candidates(self, traj: Trajectory, seed: int) -> tuple:
        """-> (candidates, where they came from for the blob header): K generator samples (generate);
        the nearest training checkpoint alone (retrieve; auto within the threshold); auto beyond it:
        the K samples and, last, the nearest checkpoint, so screening serves the checkpoint when it
        screens better (Go2, BENCHMARKS.md "Sparse datasets": no embedding distance tells in advance
        which of the two walks the course better). Without screening the first sample is served."""
        cond = self.gen.condition([traj])  # one embedding pass, for the match and the generation
        if self.mode == "generate":
            source = {"source": "generated"}
        else:
            m = self.retrieval.match_conditions(cond)[0]
            near = {"nearest_key": m.key, "nearest_distance": round(m.distance, 6)}
            if self.retrieval.retrieves(self.mode, m, self.retrieval_threshold):
                return self.retrieval.params[m.checkpoint][None], {"source": "retrieved", **near}
            source = {"source": "generated", **near}  # auto, beyond the threshold: the nearest is reported
        samples = self.gen.generate_from_condition(cond, num_policies=self.K, seed=seed).params[0]
        if self.mode == "auto" and self.do_screen:
            return np.concatenate([samples, self.retrieval.params[m.checkpoint][None].astype(samples.dtype)]), source
        return samples, source


@dataclass
class _Job:
    prompt_id: str
    traj: Trajectory
    received_at: float = field(default_factory=time.monotonic)


class Worker:
    """One background thread running `Engine.generate` on prompts in arrival order. `submit` never
    blocks: when `max_pending` prompts already wait, the oldest waiting one is dropped (its id is
    returned). `on_done(result_or_exception)` is called from the worker thread."""

    def __init__(self, engine: Engine, on_done: Callable[[object], None], max_pending: int = 4):
        self.engine, self.on_done = engine, on_done
        self._q: queue.Queue = queue.Queue(maxsize=max(1, max_pending))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.busy = False
        self._t = threading.Thread(target=self._loop, name="maa-generation", daemon=True)
        self._t.start()

    def submit(self, prompt_id: str, traj: Trajectory, received_at: float | None = None) -> str | None:
        job = _Job(prompt_id, traj, received_at if received_at is not None else time.monotonic())
        dropped = None
        with self._lock:
            if self._q.full():
                try:
                    dropped = self._q.get_nowait().prompt_id
                except queue.Empty:  # the worker took it meanwhile
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
