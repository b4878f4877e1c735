"""Checks a candidate actor must pass, off the control loop, before it may touch a motor:
the spec matches the controller's, every parameter is finite, and on a canary batch of recent
actor inputs its outputs have the right shape, are finite and within the action bound, and a
single forward pass fits the tick budget; an actor with a numpy tick path (`HistoryMlp`) runs that
path only if it reproduces the torch outputs on the canary rows, and then that path is the one timed.

The canary batch also holds reference states the actor will meet (`CanaryReferences`): a standing
history and histories of the simulated Go2 trotting (models/go2-canary-states.npz, recorded by
scripts/record_canary_states.py), plus windows of the latest prompt where the caller adds one. On
these an actor must not saturate: if more than `max_saturated_fraction` of them drive an action past
WTW's clip (which every tick would then clip), it is refused before it runs, not reverted by the
loop's runtime bound after it did.

Swap-path cost (go2-wtw, ~1.2M parameters; BENCHMARKS.md): blob parse and finiteness (actor_io), one copy
of the parameters into the module, one batched torch pass over the canary; beside them, on one helper
thread (`beside`), the SHA-256 checksum and the numpy path's build and passes on a few canary rows.
No pass runs twice."""
from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from ..actor_io import ActorBlob, finite, params_checksum, verify_checksum
from ..errors import MaaError, check
from ..resources import package_path
from ..specs import Actor, PolicySpec
from .wtw import ObservationBuilder

log = logging.getLogger("maa.go2.validation")


class BlobDecodeError(MaaError):
    """Blob bytes that the decoder failed on with something other than a MaaError: still a refusal."""


def one_line(e: BaseException, limit: int = 160) -> str:
    """`Type: first line of the message`, capped: a refusal reason stays one short line."""
    msg = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {msg[:limit]}" if msg else type(e).__name__


@dataclass
class Candidate:
    module: torch.nn.Module
    generation_id: str
    spec: PolicySpec | None
    canary_outputs: np.ndarray | None = None  # torch outputs on the canary batch, set by canary_check
    checksum: tuple[Future, str] | None = None  # deferred blob checksum: (SHA-256 being computed, claimed value)

    def verify(self) -> None:
        """Waits for a deferred checksum (as_candidate(defer_checksum=True)); MaaError on mismatch.
        A candidate built from blob bytes must pass this before it may be accepted."""
        if self.checksum is not None:
            fut, claimed = self.checksum
            check(fut.result() == claimed, "actor blob: checksum mismatch")
            self.checksum = None


HELPER_THREADS = 2  # the checksum and the numpy path's passes, each beside the validator's torch canary pass
_helper: ThreadPoolExecutor | None = None
_helper_lock = threading.Lock()
_helper_sched = threading.local()  # the scheduling policy this helper thread last took


def _as_submitter(policy: tuple[int, int], fn, args):
    if getattr(_helper_sched, "policy", None) != policy:
        try:
            os.sched_setscheduler(0, policy[0], os.sched_param(policy[1]))
        except (OSError, AttributeError):  # without the rights: normal scheduling, as the submitter would have
            pass
        _helper_sched.policy = policy
    return fn(*args)


def beside(fn, *args) -> Future:
    """`fn(*args)` on a helper thread, at the calling thread's scheduling policy (a FIFO validator's
    helpers must not wait behind normal-priority work). Work that releases the GIL (hashlib, BLAS)
    runs there while the caller runs its own checks: the 2-3 ms SHA-256 of a 5 MB blob, the numpy
    tick path's build and passes beside the torch canary pass."""
    global _helper
    with _helper_lock:
        if _helper is None:
            _helper = ThreadPoolExecutor(HELPER_THREADS, thread_name_prefix="maa-actor-helper")
    try:
        policy = (os.sched_getscheduler(0), os.sched_getparam(0).sched_priority)
    except (OSError, AttributeError):  # not Linux
        policy = None
    if policy is None:
        return _helper.submit(fn, *args)
    return _helper.submit(_as_submitter, policy, fn, args)


def _checksum_async(params: np.ndarray) -> Future:
    """SHA-256 of the parameters beside the module build and the canary pass (see `beside`)."""
    return beside(params_checksum, params)


def _build(spec: PolicySpec, params: np.ndarray) -> torch.nn.Module:
    """Actor module in eval mode holding a copy of `params` (a clone of a cached template: no random init on the swap path)."""
    return spec.unflatten(params)


def as_candidate(obj, expected: PolicySpec, generation_id: str | None = None, defer_checksum: bool = False) -> Candidate:
    """ActorBlob / blob bytes / Actor / TorchScript or nn.Module -> Candidate; MaaError on spec or value problems.
    defer_checksum: the checksum of blob bytes runs on a helper thread; the caller must `verify()` the
    candidate before accepting it (the controller's validator does, after the canary checks)."""
    parsed, pending, claimed = False, None, ""
    if isinstance(obj, (bytes, bytearray, memoryview)):
        try:
            # finiteness too; params stay a view of the bytes: _build makes the module's one copy
            obj, claimed = ActorBlob.parse_unverified(obj if isinstance(obj, bytes) else bytes(obj), copy=False)
        except MaaError:
            raise
        except Exception as e:  # whatever damaged bytes make a decoder raise (RecursionError, KeyError, ...)
            raise BlobDecodeError(f"actor blob: cannot be decoded ({one_line(e)})") from None
        if defer_checksum:
            pending = (_checksum_async(obj.params), claimed)
        else:
            verify_checksum(obj.params, claimed)
        parsed = True
    if isinstance(obj, ActorBlob):
        obj.spec.check_compatible(expected, "actor")
        params = np.asarray(obj.params)
        check(params.shape == (expected.num_params,), f"actor: {params.size} parameters, spec {expected.name} has {expected.num_params}")
        if not parsed:  # blobs may be built in-process; parse_unverified has just checked the same
            check(finite(params), "actor: parameters contain NaN or Inf")
        gid = generation_id or obj.generation_id or (claimed or obj.checksum)[:12]  # no second SHA-256 of bytes
        return Candidate(_build(obj.spec, params), gid, obj.spec, checksum=pending)
    if isinstance(obj, Actor):
        obj.spec.check_compatible(expected, "actor")
        check(all(bool(torch.isfinite(p).all()) for p in obj.parameters()), "actor: parameters contain NaN or Inf")
        return Candidate(obj.eval(), generation_id or f"actor-{id(obj):x}", obj.spec)
    if isinstance(obj, torch.nn.Module):  # e.g. a walk-these-ways body_latest.jit: no spec, canary decides
        check(all(bool(torch.isfinite(p).all()) for p in obj.parameters()), "actor: parameters contain NaN or Inf")
        return Candidate(obj.eval(), generation_id or f"module-{id(obj):x}", None)
    raise MaaError(f"actor: expected an ActorBlob, blob bytes, Actor or torch module, got {type(obj).__name__}")


REFERENCE_STATES = "go2-canary-states.npz"  # models/<this>: shipped reference histories


@dataclass(frozen=True)
class CanaryConfig:
    """How the reference states judge a candidate."""
    max_saturated_fraction: float = 0.25  # of the reference rows that may drive an action past the WTW clip
    prompt_rows: int = 4                  # history windows taken from a prompt (evenly spaced)


class CanaryReferences:
    """Actor inputs (history ‖ latent) of states every actor will meet: a standing history at the
    default pose, the shipped standing/trotting histories when they match this WTW layout and these
    default angles, and windows of the latest prompt (`add_prompt`). The latent is this run's
    adaptation module's, computed once here, not per validation."""

    def __init__(self, wtw, default_angles: np.ndarray, gait, adaptation: torch.nn.Module,
                 path=None, config: CanaryConfig = CanaryConfig()):
        self.wtw, self.adaptation, self.config = wtw, adaptation, config
        self.clip = float(wtw.clip_actions)
        b = ObservationBuilder(wtw, default_angles, gait)
        for _ in range(wtw.history_len):  # standing still at the default pose, zero actions
            b.step_clock()
            b.build(np.array([1.0, 0.0, 0.0, 0.0]), b.default_angles, np.zeros(wtw.num_actions))
            b.push()
        rows, kinds = [b.input[:wtw.history_dim].copy()], ["stand-default"]
        shipped = self._load(path, default_angles)
        if shipped is not None:
            rows += list(shipped[0])
            kinds += shipped[1]
        self.kinds = kinds
        self.base = self._with_latent(np.stack(rows))
        self.inputs = self.base  # base ‖ prompt rows; replaced whole (one assignment: safe across threads)

    def _load(self, path, default_angles):
        try:
            path = path or package_path("models", REFERENCE_STATES)
            with np.load(path, allow_pickle=False) as z:
                h, kinds, angles = z["histories"], [str(k) for k in z["kinds"]], z["default_angles"]
        except Exception as e:  # missing or damaged package data: the standing row remains, the controller runs
            log.warning("canary reference states not loaded (%s); canary: recent inputs and a standing history",
                        str(e).splitlines()[0] if str(e) else type(e).__name__)
            return None
        w = self.wtw
        ok = (h.ndim == 2 and h.shape[1] == w.history_dim and len(kinds) == len(h) and angles.shape == (w.num_actions,)
              and np.allclose(angles, default_angles, atol=1e-6) and bool(np.isfinite(h).all()))
        if not ok:  # recorded for another robot or observation layout
            log.warning("canary reference states %s do not match this robot's observation (%s, default angles); "
                        "not used", path, h.shape)
            return None
        return h.astype(np.float32), kinds

    def _with_latent(self, histories: np.ndarray) -> np.ndarray:
        w = self.wtw
        x = np.zeros((len(histories), w.actor_in_dim), np.float32)
        x[:, :w.history_dim] = histories
        with torch.inference_mode():
            t = torch.from_numpy(x)
            t[:, w.history_dim:] = self.adaptation(t[:, :w.history_dim])
        return x

    def add_prompt(self, observations) -> int:
        """States from a prompt (T, num_obs) observation rows in the controller's layout, T >= history_len:
        `prompt_rows` evenly spaced history windows join the references (replacing an earlier prompt's).
        Returns the number of rows added; MaaError if the rows do not fit the layout."""
        w = self.wtw
        o = np.asarray(observations, dtype=np.float32)
        check(o.ndim == 2 and o.shape[1] == w.num_obs and len(o) >= w.history_len,
              f"canary prompt: observations of shape {o.shape}, expected (T >= {w.history_len}, {w.num_obs})")
        check(bool(np.isfinite(o).all()), "canary prompt: observations contain NaN or Inf")
        ends = np.unique(np.linspace(w.history_len, len(o), self.config.prompt_rows).round().astype(int))
        rows = self._with_latent(np.stack([o[e - w.history_len:e].reshape(-1) for e in ends]))
        self.inputs = np.concatenate([self.base, rows])
        return len(rows)

    def clear_prompt(self) -> None:
        self.inputs = self.base


def canary_check(c: Candidate, inputs: np.ndarray, act_dim: int, max_abs_action: float, max_inference_ms: float,
                 time_torch: bool = True, references: CanaryReferences | None = None) -> dict:
    """Run the candidate on recent inputs (B, in_dim) and the `references` (one batch, one pass);
    MaaError names the first failure. Keeps the outputs on `inputs` in `c.canary_outputs`.
    time_torch=False: the caller times the path the tick will run (`check_numpy_path`, or
    `torch_forward_check` if that path is refused)."""
    b = len(inputs)
    ref = references.inputs if references is not None else None
    batch = inputs if ref is None else np.concatenate([np.asarray(inputs, np.float32).reshape(b, -1), ref])
    x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
    try:
        with torch.inference_mode():
            y = c.module(x)
    except (RuntimeError, ValueError, TypeError) as e:
        raise MaaError(f"actor: forward pass failed on a ({x.shape[0]}, {x.shape[1]}) canary batch "
                       f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    check(tuple(y.shape) == (x.shape[0], act_dim), f"actor: outputs shape {tuple(y.shape)}, expected ({x.shape[0]}, {act_dim})")
    y = y.numpy()  # the checks on these few values in numpy: each torch call costs more than its work here
    mag = np.abs(y)
    check(finite(mag), "actor: non-finite outputs on the canary batch")
    peak = float(mag.max())
    check(peak <= max_abs_action, f"actor: output magnitude {peak:.3g} on the canary batch exceeds the bound {max_abs_action:g}")
    out = {"canary_batch": int(x.shape[0]), "max_abs_action": peak}
    if ref is not None:
        row_peak = mag[b:].max(1)
        sat = row_peak > references.clip
        n, limit = int(sat.sum()), references.config.max_saturated_fraction
        check(n <= limit * len(sat),
              f"actor: saturates on {n} of {len(sat)} reference states (standing/walking/prompt): action up to "
              f"{float(row_peak.max()):.3g} beyond the clip {references.clip:g} (at most {limit:.0%} of them may)")
        out["reference_saturated"] = n
    c.canary_outputs = y[:b]
    if time_torch:
        out.update(torch_forward_check(c, inputs[:1], max_inference_ms))
    return out


def _check_budget(ms: float, max_inference_ms: float) -> None:
    check(ms <= max_inference_ms, f"actor: forward pass takes {ms:.2f} ms > budget {max_inference_ms:g} ms")


def torch_forward_check(c: Candidate, one: np.ndarray, max_inference_ms: float) -> dict:
    """CPU time of one torch forward pass on a (1, in_dim) input (best of 3 after a warm-up)."""
    x = torch.from_numpy(np.ascontiguousarray(one, dtype=np.float32))
    try:
        with torch.inference_mode():
            c.module(x)  # warm-up
            times = []
            for _ in range(3):  # CPU time of this thread: the cost of a pass, not how busy the machine is
                t = time.thread_time()
                c.module(x)
                times.append(time.thread_time() - t)
    except (RuntimeError, ValueError, TypeError) as e:
        raise MaaError(f"actor: forward pass failed on a single observation "
                       f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    ms = 1000.0 * min(times)
    _check_budget(ms, max_inference_ms)
    return {"inference_ms": ms, "inference_path": "torch"}


def numpy_path_outputs(fast, inputs: np.ndarray, rows: int = 4) -> tuple[np.ndarray, list[float]] | None:
    """The numpy tick path `fast` (a HistoryMlp) on the first `rows` canary inputs, un-split (the
    tick's worst case) -> (outputs, CPU seconds of each pass); None if it raised."""
    n = min(rows, len(inputs))
    got = np.empty((n, fast.out_dim), np.float32)
    times = []
    try:
        for i in range(n):
            r = np.ascontiguousarray(inputs[i], dtype=np.float32)
            t = time.thread_time()
            got[i] = fast.forward(r, prepared=False)
            times.append(time.thread_time() - t)
    except Exception as e:  # the torch path stays available; never let this kill the validator
        log.warning("numpy tick path failed (%s: %s); running torch", type(e).__name__, e)
        return None
    return got, times


def judge_numpy_path(outputs: tuple[np.ndarray, list[float]] | None, reference: np.ndarray, max_inference_ms: float,
                     rtol: float = 1e-4, atol: float = 1e-4) -> dict | None:
    """`numpy_path_outputs` against the torch `reference` outputs on the same rows: None if the path
    failed or does not reproduce them (the caller then runs torch); else its CPU time per pass (best
    of the rows), MaaError if over the budget."""
    if outputs is None:
        return None
    got, times = outputs
    ref = reference[:len(got)]
    # np.allclose's rule (|got - ref| <= atol + rtol |ref|, NaN never close) without its ~15 Python-level calls
    if got.shape != ref.shape or not bool((np.abs(got - ref) <= atol + rtol * np.abs(ref)).all()):
        log.warning("numpy tick path disagrees with the torch module (max diff %s); running torch",
                    f"{float(np.abs(got - ref).max()):.3g}" if got.shape == ref.shape else f"shape {got.shape} vs {ref.shape}")
        return None
    ms = 1000.0 * min(times)
    _check_budget(ms, max_inference_ms)
    return {"inference_ms": ms, "inference_path": "numpy"}


def check_numpy_path(fast, inputs: np.ndarray, reference: np.ndarray, max_inference_ms: float,
                     rows: int = 4, rtol: float = 1e-4, atol: float = 1e-4) -> dict | None:
    """`numpy_path_outputs` then `judge_numpy_path`, on this thread."""
    return judge_numpy_path(numpy_path_outputs(fast, inputs, rows), reference, max_inference_ms, rtol, atol)
