"""Actor validation and hot-swap of the Go2 controller (`ActorSwap`, a part of `Controller`).

A submitted actor (blob bytes, ActorBlob, spec Actor or torch module) is checked on the *validator*
thread (decode, spec, finiteness, a canary batch of recent inputs, the numpy tick path against
torch, timing; the checksum and the numpy path's passes on a helper thread beside it, validation.beside)
and, if accepted, becomes the pending slot the loop swaps in at the start of a tick (the slot it
displaces is freed by the dispatcher thread, not in the tick).
A revert (asked for, or after a fault) swaps the previous actor back. Callers get `SwapTicket`s.
It works on the controller's state (`spec`, `cfg`, `wtw`, `runner`, `builder`, `clock`, the actor
slots, `_events`, `counters`), set up in controller.py."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import MaaError
from .realtime import set_rt_priority
from .telemetry import ControllerEvent
from .validation import (BlobDecodeError, as_candidate, beside, canary_check, judge_numpy_path, numpy_path_outputs,
                         one_line, torch_forward_check)
from .wtw import ObservationBuilder

log = logging.getLogger("maa.go2.controller")  # one logger for the controller's files


def _lap(stages: dict, name: str, since: float) -> float:
    """stages[name] = ms since `since`; returns now."""
    now = time.perf_counter()
    stages[name] = 1000.0 * (now - since)
    return now


@dataclass
class SwapResult:
    accepted: bool
    reason: str                 # "active", "reverted", or why it was refused
    generation_id: str
    submitted_at: float
    decided_at: float = 0.0     # validation finished
    active_at: float = 0.0      # the tick that first used it began
    active_tick: int = -1
    details: dict = field(default_factory=dict)

    @property
    def latency_s(self) -> float:
        """Message to active (submission to the first tick that runs it)."""
        return self.active_at - self.submitted_at if self.accepted else float("nan")


class SwapTicket:
    """Handle for a submit_actor()/revert() request; wait() returns its SwapResult."""

    def __init__(self, generation_id: str, submitted_at: float):
        self.result = SwapResult(False, "pending", generation_id, submitted_at)
        self._done = threading.Event()

    def resolve(self, accepted: bool, reason: str, **kw) -> None:
        self.result.accepted, self.result.reason = accepted, reason
        for k, v in kw.items():
            setattr(self.result, k, v)
        self._done.set()

    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> SwapResult:
        if not self._done.wait(timeout):
            raise MaaError(f"actor {self.result.generation_id}: no decision within {timeout} s")
        return self.result


@dataclass
class _Slot:
    module: torch.nn.Module
    generation_id: str
    ticket: SwapTicket | None = None
    activated_at: float = 0.0
    fast: object = None  # HistoryMlp of the module (numpy tick path), None = run the torch module


class ActorSwap:
    """submit_actor / revert (any thread), the validator thread, and the loop's side of a swap."""

    def submit_actor(self, actor, generation_id: str | None = None, callback=None) -> SwapTicket:
        """Validate off-loop and, if accepted, swap in at the next tick boundary. Returns a ticket;
        callback(SwapResult), if given, runs on the dispatcher thread once decided/active."""
        gid = generation_id or getattr(actor, "generation_id", "") or ""
        ticket = SwapTicket(gid, self.clock())
        ticket.callback = callback
        self._validate_q.put((actor, generation_id, ticket))
        return ticket

    def revert(self) -> SwapTicket:
        ticket = SwapTicket("", self.clock())
        ticket.callback = None
        self._requests.append(("revert", ticket))
        return ticket

    def _activate(self, slot: _Slot, now: float, tick: int, kind: str) -> None:
        if self._active is not None:
            if self._previous is not None:  # freeing ~10 MB (and maybe unmapping it) is not tick work
                self._retired.append(self._previous)
            self._previous = self._active
        slot.activated_at = now
        self._active = slot
        self.counters["swaps"] += 1
        if slot.ticket is not None:
            slot.ticket.resolve(True, "active", active_at=now, active_tick=tick)
            self._events.append(ControllerEvent(kind, now, tick, f"{slot.generation_id} active at tick {tick}",
                                                {"generation_id": slot.generation_id, "ticket": slot.ticket}))
            slot.ticket = None

    def _revert(self, now: float, tick: int, reason: str, ticket: SwapTicket | None = None) -> None:
        bad, good = self._active, self._previous
        self._active, self._previous = good, bad
        good.activated_at = now
        self.counters["reverts"] += 1
        msg = f"reverted {bad.generation_id if bad else '-'} -> {good.generation_id}: {reason}"
        log.warning(msg)
        if ticket is not None:
            ticket.result.generation_id = good.generation_id
            ticket.resolve(True, "reverted", active_at=now, active_tick=tick, decided_at=now)
        self._events.append(ControllerEvent("revert", now, tick, msg, {"generation_id": good.generation_id}))

    def _validator(self) -> None:
        # Helper threads hold the GIL while they run Python; at normal priority a busy machine can
        # preempt them mid-hold and stall the loop behind the GIL. A low FIFO priority prevents that.
        set_rt_priority(self.cfg.control.helper_rt_priority, "actor validator")
        if self.torch_threads:  # OpenMP's thread count is per calling thread: the canary pass runs here
            torch.set_num_threads(self.torch_threads)
        while not self._stop.is_set():
            item = self._validate_q.get()
            if item is None:
                break
            actor, gid, ticket = item
            try:
                self._decide(actor, gid, ticket)
            except Exception as e:  # a bug here must not end hot-swapping: refuse this one, go on
                self.counters["validator_errors"] += 1
                log.exception("actor validator: unexpected error (the thread goes on)")
                if not ticket.done():
                    self._refuse(ticket, f"actor: validator error ({one_line(e)})")

    def _decide(self, actor, gid: str | None, ticket: SwapTicket) -> None:
        """Validate one submission: refuse it (MaaError, or any error while decoding the blob) or make
        it the pending actor the loop swaps in."""
        stages, cpu = {"queued": 1000.0 * (self.clock() - ticket.result.submitted_at)}, time.thread_time()
        try:
            cand, details, fast = self._validate(actor, gid, ticket, stages)
        except MaaError as e:
            self._refuse(ticket, str(e))
            return
        ticket.result.decided_at = self.clock()
        stages["validator_cpu"] = 1000.0 * (time.thread_time() - cpu)  # vs the stages' wall: waiting, or work
        details["stages_ms"] = stages
        ticket.result.details = details
        with self._pending_lock:
            old, self._pending = self._pending, _Slot(cand.module, cand.generation_id, ticket, fast=fast)
        if old is not None and old.ticket is not None:
            old.ticket.resolve(False, f"superseded by {cand.generation_id} before activation", decided_at=self.clock())

    def _refuse(self, ticket: SwapTicket, reason: str) -> None:
        now = self.clock()
        self.counters["refused"] += 1
        ticket.resolve(False, reason, decided_at=now)
        log.warning("actor %s refused: %s", ticket.result.generation_id or "?", reason)
        self._events.append(ControllerEvent("refused", now, self.tick_index, reason,
                                            {"generation_id": ticket.result.generation_id, "ticket": ticket}))
        self._wake_dispatch.set()

    def _validate(self, actor, gid: str | None, ticket: SwapTicket, stages: dict):
        """-> (candidate, details, numpy path or None); MaaError with the first reason to refuse.
        stages: wall ms of each step, filled in (where a swap's validation time goes; BENCHMARKS.md)."""
        t = time.perf_counter()
        # blob bytes: parse, finiteness and spec here; the checksum runs beside the canary checks
        try:
            cand = as_candidate(actor, self.spec, gid, defer_checksum=True)
        except BlobDecodeError:
            self.counters["decode_errors"] += 1
            raise
        except MaaError:
            raise
        except Exception as e:  # e.g. a torch module whose parameters cannot be read: a refusal too
            self.counters["decode_errors"] += 1
            raise MaaError(f"actor: cannot be read ({one_line(e)})") from None
        ticket.result.generation_id = cand.generation_id
        t = _lap(stages, "decode", t)
        try:
            details, fast = self._checks(cand, stages)
        except MaaError:
            cand.verify()  # a corrupted blob is refused as corrupted, not for what its bytes computed
            raise
        t = time.perf_counter()
        cand.verify()  # nothing of an unverified blob is accepted
        _lap(stages, "checksum_wait", t)
        return cand, details, fast

    def _checks(self, cand, stages: dict):
        """Canary, numpy path and timing checks of a built candidate -> (details, numpy path or None).
        The numpy path is built and run on the canary rows on the helper thread while this thread runs
        the torch canary pass; it is then judged against the torch outputs, as if run in sequence."""
        t = time.perf_counter()
        canary = self._canary_inputs()
        max_ms = self.cfg.safety.max_inference_ms
        numpy_job = beside(self._numpy_path, cand.module, canary)
        details = canary_check(cand, canary, self.wtw.config.num_actions,
                               self.cfg.safety.max_abs_action, max_ms, time_torch=False,
                               references=self.canary_references)
        t = _lap(stages, "canary", t)
        fast, outputs = numpy_job.result()
        t = _lap(stages, "numpy_path_wait", t)
        timing = judge_numpy_path(outputs, cand.canary_outputs, max_ms) if fast is not None else None
        if timing is None:  # no numpy path, or it disagrees with torch: the tick runs torch, which is timed
            fast = None
            timing = torch_forward_check(cand, canary[:1], max_ms)
        details.update(timing)
        _lap(stages, "judge", t)
        return details, fast

    def _numpy_path(self, module, canary: np.ndarray):
        """(numpy path of `module` or None, its outputs and times on the canary rows or None)."""
        fast = self._compile(module)
        return fast, (numpy_path_outputs(fast, canary) if fast is not None else None)

    def _compile(self, module):
        """The numpy tick path of `module` (checked by the caller against torch), or None: run torch."""
        try:
            return self.runner.compile(module)
        except Exception as e:  # the torch path stays available; never let this kill the validator
            log.warning("no numpy tick path for this actor (%s: %s); running torch", type(e).__name__, e)
            return None

    def _canary_inputs(self) -> np.ndarray:
        """Recent actor inputs; before any tick ran, a standing observation history."""
        n = min(self._canary_n, len(self._canary))
        if n:
            return self._canary[:n].copy()
        b = ObservationBuilder(self.wtw.config, self.builder.default_angles, self.cfg.gait_command)
        for _ in range(self.wtw.config.history_len):
            b.step_clock()
            b.build(np.array([1.0, 0.0, 0.0, 0.0]), b.default_angles, np.zeros(12))
            b.push()
        with torch.inference_mode():
            x = torch.from_numpy(b.input).view(1, -1)
            x[:, self.wtw.config.history_dim:] = self.wtw.adaptation(x[:, :self.wtw.config.history_dim])
        return b.input[None].copy()
