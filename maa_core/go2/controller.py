"""The Go2 controller: a fixed-rate loop (50 Hz by default) that reads the robot state, runs the
safety supervisor and the walk-these-ways composition, and sends motor targets; plus the
off-loop machinery around it (actor validation, hot-swap, telemetry dispatch).

Threads: the *loop* (tick work only: copies into preallocated buffers and torch inference, no
I/O); the *validator* (checks submitted actors and hands the accepted one to the loop, which
swaps it in at the start of a tick); the *dispatcher* (turns the loop's telemetry ring and
events into callbacks for e.g. a ROS node). Public methods are safe to call from any thread:
they only enqueue requests that the loop applies at its next tick boundary."""
from __future__ import annotations

import collections
import gc
import logging
import os
import queue
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..actor_io import ActorBlob
from ..errors import MaaError, check
from ..specs import PolicySpec, get_spec
from .config import RobotConfig, load_robot_config
from .inference import pin_blas_to_one_thread
from .joints import JointMap
from .safety import Mode, Supervisor
from .state import Joystick, LowState, MotorCommand
from .validation import as_candidate, canary_check, check_numpy_path, torch_forward_check
from .wtw import ActionMapper, ObservationBuilder, PolicyRunner, WtwRun

log = logging.getLogger("maa.go2.controller")


# -- results and records handed to callers ---------------------------------------------------------
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


@dataclass(frozen=True)
class TickRecord:
    """What one tick executed (copies; safe to keep)."""
    tick: int
    time: float
    mode: str
    generation_id: str
    observation: np.ndarray   # (70,) policy order
    action: np.ndarray        # (12,) raw action, policy order (zeros outside RUN)
    q_target: np.ndarray      # (12,) motor order
    kp: float
    kd: float
    compute_s: float


@dataclass(frozen=True)
class ControllerEvent:
    kind: str       # transition | swap | revert | refused | fault
    time: float
    tick: int
    message: str
    data: dict = field(default_factory=dict)


@dataclass
class _Slot:
    module: torch.nn.Module
    generation_id: str
    ticket: SwapTicket | None = None
    activated_at: float = 0.0
    fast: object = None  # HistoryMlp of the module (numpy tick path), None = run the torch module


# -- the controller --------------------------------------------------------------------------------
class Controller:
    def __init__(self, cfg: RobotConfig | str, robot, wtw: WtwRun, spec: PolicySpec | str = "go2-wtw",
                 clock=time.monotonic, torch_threads: int | None = 1, telemetry_capacity: int = 1024,
                 canary_capacity: int | None = None):
        self.cfg = load_robot_config(cfg)
        self.robot, self.wtw, self.clock = robot, wtw, clock
        w = wtw.config
        self.spec = get_spec(spec)  # every submitted actor must have exactly this spec
        check(self.spec.obs_dim == w.actor_in_dim and self.spec.act_dim == w.num_actions,
              f"controller: spec {self.spec.name} maps {self.spec.obs_dim} -> {self.spec.act_dim}, "
              f"the WTW composition needs {w.actor_in_dim} -> {w.num_actions}")
        self.torch_threads = torch_threads
        self.period = self.cfg.control.period_s
        self.joints = JointMap.from_config(self.cfg)
        defaults_p = self.joints.to_policy(self.cfg.default_angles)
        self.builder = ObservationBuilder(w, defaults_p, self.cfg.gait_command)
        self.runner = PolicyRunner(self.builder, wtw.adaptation)
        self.mapper = ActionMapper(w, defaults_p, self.joints.policy_hips)
        self.supervisor = Supervisor(self.cfg)
        self.estop_mask = Joystick.mask(self.cfg.joystick.estop_keys)
        self.enable_mask = Joystick.mask(self.cfg.joystick.enable_keys)

        # preallocated tick buffers
        self.st, self.joy, self.cmd = LowState(), Joystick(), MotorCommand()
        self._q_p, self._dq_p = np.zeros(12), np.zeros(12)
        self._target_p, self._target_m, self._stand = np.zeros(12), np.zeros(12), np.zeros(12)
        self._zero_action = np.zeros(w.num_actions, dtype=np.float32)
        self._lo, self._hi = self.cfg.joint_lower.copy(), self.cfg.joint_upper.copy()
        self.cmd.set_damping(self.cfg.damping.kd)

        # actors: the loop owns _active/_previous; the validator only sets _pending
        self._active: _Slot | None = None
        self._previous: _Slot | None = None
        self._pending: _Slot | None = None
        self._pending_lock = threading.Lock()  # validator writes, loop takes (never waits for it)
        self._requests: collections.deque = collections.deque()
        self._velocity = (0.0, 0.0, 0.0)
        self._joy_enable_down = False

        # telemetry ring (written by the loop, read by the dispatcher)
        n = telemetry_capacity
        self._tl_n = n
        self._tl_obs = np.zeros((n, w.num_obs), np.float32)
        self._tl_act = np.zeros((n, w.num_actions), np.float32)
        self._tl_target = np.zeros((n, 12))
        self._tl_meta = np.zeros((n, 6))  # tick, time, mode, kp, kd, compute_s
        self._tl_gen = [""] * n
        self._tl_head = 0
        self.compute_times = np.zeros(1 << 16)  # every tick's compute time (ring), for diagnostics/benchmarks
        self.prepare_times = np.zeros(1 << 16)  # after the command: precomputing the next tick (ring)
        # recent actor inputs for the canary check
        self._canary = np.zeros((canary_capacity or self.cfg.safety.canary_batch, w.actor_in_dim), np.float32)
        self._canary_n = 0

        self.tick_index = 0
        self._sent_at = 0.0
        self._settle_from: int | None = None  # STAND_UP: tick at which settling at the policy gains began
        self._settle_ticks = int(round(self.cfg.stand.settle_s * self.cfg.control.rate_hz))
        self.missed_ticks = 0
        self.missed_at: collections.deque = collections.deque(maxlen=256)  # (wake time, lateness s) of each miss
        self.overruns = 0
        self.counters = collections.Counter()
        self._events: collections.deque = collections.deque()
        self._tick_listeners, self._event_listeners = [], []
        self._validate_q: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._wake_dispatch = threading.Event()
        self._threads: list[threading.Thread] = []
        self.started = False
        if wtw.body is not None:  # the run's own actor body, as the initial actor
            self.submit_actor(wtw.body, generation_id="wtw-body")

    # -- public API (any thread) ---------------------------------------------------------------
    def start(self) -> "Controller":
        if self.started:
            return self
        if self.torch_threads:
            torch.set_num_threads(self.torch_threads)
        if self.cfg.control.gil_switch_interval_s > 0:
            sys.setswitchinterval(self.cfg.control.gil_switch_interval_s)
        pin_blas_to_one_thread()  # the numpy tick path must not wait on normal-priority BLAS workers
        # first-use costs of the swap path (lazy torch init, ~0.7 s, partly with the GIL held) are paid
        # here, before the loop runs, not on the first swap while the robot is up
        warm = as_candidate(ActorBlob(self.spec, np.zeros(self.spec.num_params, np.float32), "warm-up"), self.spec)
        canary = self._canary_inputs()
        canary_check(warm, canary, self.wtw.config.num_actions, float("inf"), float("inf"))
        fast = self._compile(warm.module)
        if fast is not None:
            check_numpy_path(fast, canary, warm.canary_outputs, float("inf"))
        if self.cfg.control.gc_freeze:
            # A full garbage collection holds the GIL while it walks every tracked object: ~115 ms for the
            # ~220k objects torch, numpy, DDS and the models leave after start-up (measured here), a
            # stalled loop whichever thread triggers it. Frozen objects are skipped by every later collection.
            gc.collect()
            gc.freeze()
        self.started = True
        for name, fn in (("go2-loop", self._loop), ("go2-validator", self._validator), ("go2-dispatch", self._dispatcher)):
            t = threading.Thread(target=fn, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def close(self, timeout: float = 2.0) -> None:
        """Stop the loop (last command: damping) and the helper threads."""
        self.stop("controller closing")
        deadline = time.monotonic() + 3 * self.period
        while self._requests and time.monotonic() < deadline and self.started:
            time.sleep(self.period / 4)
        self._stop.set()
        self._validate_q.put(None)
        self._wake_dispatch.set()
        for t in self._threads:
            t.join(timeout)
        self._threads = []
        self.cmd.set_damping(self.cfg.damping.kd)
        self.robot.send(self.cmd)
        self.started = False

    def enable(self) -> None:
        """DAMP -> STAND_UP (-> RUN once standing, if an actor is active and run_after_stand). Clears an e-stop."""
        self._requests.append(("enable", "enable requested"))

    def run_policy(self) -> None:
        """STAND_UP (standing) -> RUN, when run_after_stand is off."""
        self._requests.append(("run", "run requested"))

    def stop(self, reason: str = "stop requested") -> None:
        self._requests.append(("stop", reason))

    def estop(self, source: str = "service") -> None:
        self._requests.append(("estop", f"e-stop ({source})"))

    def set_command(self, vx: float, vy: float, yaw_rate: float) -> None:
        lim = self.cfg.command_limits
        self._velocity = (float(np.clip(vx, *lim["vx"])), float(np.clip(vy, *lim["vy"])),
                          float(np.clip(yaw_rate, *lim["yaw_rate"])))

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

    def add_tick_listener(self, fn) -> None:
        """fn(TickRecord), called on the dispatcher thread for every tick (records may be dropped if fn is slow)."""
        self._tick_listeners.append(fn)

    def add_event_listener(self, fn) -> None:
        """fn(ControllerEvent): transitions (with reasons), swaps, reverts, refusals, faults."""
        self._event_listeners.append(fn)

    @property
    def mode(self) -> Mode:
        return self.supervisor.mode

    @property
    def active_generation(self) -> str:
        a = self._active
        return a.generation_id if a else ""

    def diagnostics(self) -> dict:
        n = min(self.tick_index, len(self.compute_times))
        ct = self.compute_times[:n] if n else np.zeros(1)
        prev = self._previous
        return {
            "mode": self.supervisor.mode.name, "reason": self.supervisor.reason, "tick": self.tick_index,
            "missed_ticks": self.missed_ticks, "overruns": self.overruns,
            "active_generation": self.active_generation, "previous_generation": prev.generation_id if prev else "",
            "state_age_s": self.clock() - self.st.stamp, "rate_hz": self.cfg.control.rate_hz,
            "compute_ms_p50": 1000 * float(np.percentile(ct, 50)), "compute_ms_p99": 1000 * float(np.percentile(ct, 99)),
            "compute_ms_max": 1000 * float(ct.max()), **{k: int(v) for k, v in self.counters.items()},
        }

    # -- the loop ----------------------------------------------------------------------------
    @staticmethod
    def _set_rt_priority(prio: int, what: str) -> None:
        if prio <= 0:
            return
        try:
            os.sched_setscheduler(threading.get_native_id(), os.SCHED_FIFO, os.sched_param(prio))
        except (OSError, AttributeError) as e:  # needs CAP_SYS_NICE / an rtprio limit
            log.warning("%s runs without real-time priority (%s)", what, e)

    @staticmethod
    def _pin_to_cpu(cpu: int) -> bool:
        """Pin the calling thread to one CPU (cpu < 0: leave it). Optional: a failure only logs."""
        if cpu < 0:
            return False
        try:
            os.sched_setaffinity(threading.get_native_id(), {cpu})
        except (OSError, ValueError, AttributeError) as e:  # no such CPU, not in the cpuset, not Linux
            log.warning("control loop not pinned to CPU %d (%s)", cpu, e)
            return False
        log.info("control loop pinned to CPU %d", cpu)
        return True

    def _loop(self) -> None:
        if self.torch_threads:  # OpenMP's thread count is per calling thread: set it here too
            torch.set_num_threads(self.torch_threads)
        self._set_rt_priority(self.cfg.control.rt_priority, "control loop")
        self._pin_to_cpu(self.cfg.control.loop_cpu)
        period, clock = self.period, self.clock
        next_t = clock() + period
        while not self._stop.is_set():
            delay = next_t - clock()
            if delay > 0:
                time.sleep(delay)
            now = clock()
            late = now - next_t
            if late >= period:  # whole periods slept through: those ticks were missed
                skipped = int(late // period)
                self.missed_ticks += skipped
                self.missed_at.append((now, late))
                next_t += skipped * period
            t0 = time.perf_counter()
            try:
                self._tick(now)
            except Exception as e:  # a bug in the tick must not leave the motors on the last target
                log.exception("tick %d failed", self.tick_index)
                self._transition(Mode.DAMP, f"controller error: {type(e).__name__}: {e}", now, self.tick_index)
                self.cmd.set_damping(self.cfg.damping.kd)
                self.robot.send(self.cmd)
                self._sent_at = time.perf_counter()
                self.counters["tick_errors"] += 1
            # compute time = tick start to the command handed to the sender thread (the sender then
            # serializes, CRCs and writes outside the tick, and may hold the GIL while doing so)
            dt = self._sent_at - t0
            self.compute_times[self.tick_index % len(self.compute_times)] = dt
            self.prepare_times[self.tick_index % len(self.prepare_times)] = time.perf_counter() - self._sent_at
            if time.perf_counter() - t0 > period:
                self.overruns += 1
            self._tl_meta[(self._tl_head - 1) % self._tl_n, 5] = dt
            self.tick_index += 1
            next_t += period
            self._wake_dispatch.set()

    def _tick(self, now: float) -> None:
        sup, st, cmd, b = self.supervisor, self.st, self.cmd, self.builder
        tick = self.tick_index
        have_state = self.robot.read_state(st)
        self._read_joystick(now, tick)
        self._apply_requests(now, tick)
        # swap at the tick boundary: everything below uses one actor
        if self._pending is not None and self._pending_lock.acquire(blocking=False):  # busy: next tick
            pend, self._pending = self._pending, None
            self._pending_lock.release()
            self._activate(pend, now, tick, "swap")
        if sup.mode != Mode.DAMP:
            fault = sup.check(st, now) if have_state else "no lowstate received"
            if fault:
                # a stale/missing state is not the actor's doing; tilt and limits soon after a swap are
                self._fault(fault, now, tick, blame="none" if fault.startswith(("stale", "no lowstate")) else "probation")
        action = self._zero_action
        if have_state:
            b.step_clock()
            b.set_velocity(*self._velocity)
            b.build(st.quat, self.joints.to_policy(st.q, self._q_p), self.joints.to_policy(st.dq, self._dq_p))
            b.push()
            if sup.mode == Mode.RUN:
                action = self._policy_action(now, tick)
            else:
                self.runner.update_latent()  # keep the latent fresh for canaries of the next actor
            np.copyto(self._canary[self._canary_n % len(self._canary)], b.input)
            self._canary_n += 1
            b.record_action(action)
        mode = sup.mode
        if mode == Mode.RUN:
            self.mapper.targets(b.actions, self._target_p)
            self.joints.to_motor(self._target_p, self._target_m)
            np.clip(self._target_m, self._lo, self._hi, out=self._target_m)
            cmd.set_pd(self._target_m, self.cfg.control.kp, self.cfg.control.kd)
        elif mode == Mode.STAND_UP:
            standing = sup.stand_target(now, self._stand)
            going = standing and self.cfg.safety.run_after_stand and self._active is not None
            if going:  # settle at the policy gains, then run (StandConfig.settle_s)
                if self._settle_from is None:
                    self._settle_from = tick
                    # the gait clock starts with the settle, as after a reset in training: the actor's first
                    # step then sees the clock phase (and a history of standing at its gains) it learnt from
                    b.restart_clock()
                cmd.set_pd(self._stand, self.cfg.control.kp, self.cfg.control.kd)
                if tick - self._settle_from >= self._settle_ticks:
                    self._transition(Mode.RUN, f"standing; running {self._active.generation_id}", now, tick)
            else:
                self._settle_from = None
                cmd.set_pd(self._stand, self.cfg.stand.kp, self.cfg.stand.kd)
        else:
            cmd.set_damping(self.cfg.damping.kd)
        self._record(tick, now, mode, action)
        self.robot.send(cmd)
        self._sent_at = time.perf_counter()
        if have_state:  # off the state-to-command path: the older history rows' share of the next tick
            self.runner.prepare(self._active.fast if self._active is not None else None)

    def _policy_action(self, now: float, tick: int) -> np.ndarray:
        a = self.runner.run(self._active.module, self._active.fast)
        bound = self.cfg.safety.max_abs_action
        if not np.isfinite(a).all():
            gid = self._active.generation_id
            self._fault(f"non-finite action from {gid}", now, tick, blame="actor")
            return self._zero_action
        if np.abs(a).max() > bound:
            gid, peak = self._active.generation_id, float(np.abs(a).max())
            if self._previous is not None:
                self._revert(now, tick, f"{gid} output {peak:.3g} exceeds bound {bound:g}")
                a = self.runner.run(self._active.module, self._active.fast)
                if np.isfinite(a).all() and np.abs(a).max() <= bound:
                    return a
            self._fault(f"action {peak:.3g} from {gid} exceeds bound {bound:g}", now, tick, blame="actor")
            return self._zero_action
        return a

    def _read_joystick(self, now: float, tick: int) -> None:
        read = getattr(self.robot, "read_joystick", None)
        if read is None or not read(self.joy):
            return
        keys = self.joy.keys
        if keys & self.estop_mask and self.supervisor.mode != Mode.DAMP:
            self._transition(Mode.DAMP, "e-stop (joystick)", now, tick)
        down = (keys & self.enable_mask) == self.enable_mask and self.enable_mask != 0
        if down and not self._joy_enable_down:
            self._requests.append(("enable", "enable (joystick)"))
        self._joy_enable_down = down
        if self.cfg.joystick.velocity_from_sticks:
            lim = self.cfg.command_limits
            self._velocity = (self.joy.ly * lim["vx"][1], -self.joy.lx * lim["vy"][1], -self.joy.rx * lim["yaw_rate"][1])

    def _apply_requests(self, now: float, tick: int) -> None:
        sup = self.supervisor
        while self._requests:
            kind, arg = self._requests.popleft()
            if kind in ("stop", "estop"):
                self._transition(Mode.DAMP, arg, now, tick)
            elif kind == "enable":
                if sup.mode == Mode.DAMP:
                    self._transition(Mode.STAND_UP, arg, now, tick, self.st.q)
            elif kind == "run":
                if sup.mode == Mode.STAND_UP and self._active is not None:
                    self._transition(Mode.RUN, arg, now, tick)
            elif kind == "revert":
                if self._previous is None:
                    arg.resolve(False, "nothing to revert to", decided_at=now)
                    self._events.append(ControllerEvent("refused", now, tick, "revert: no previous actor"))
                else:
                    self._revert(now, tick, "revert requested", arg)

    def _activate(self, slot: _Slot, now: float, tick: int, kind: str) -> None:
        if self._active is not None:
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

    def _fault(self, reason: str, now: float, tick: int, blame: str) -> None:
        """Any fault -> DAMP. blame 'actor': the active actor caused it, revert it; 'probation': revert
        if it was swapped in less than swap_probation_s ago; 'none': keep it."""
        self.counters["faults"] += 1
        a = self._active
        recent = a is not None and now - a.activated_at < self.cfg.safety.swap_probation_s
        if a is not None and self._previous is not None and (blame == "actor" or (blame == "probation" and recent)):
            self._revert(now, tick, f"tripped: {reason}")
        self._events.append(ControllerEvent("fault", now, tick, reason))
        self._transition(Mode.DAMP, reason, now, tick)

    def _transition(self, mode: Mode, reason: str, now: float, tick: int, q=None) -> None:
        t = self.supervisor.transition(mode, reason, now, tick, q)
        if t is not None:
            self._events.append(ControllerEvent("transition", now, tick, f"{t.old.name} -> {t.new.name}: {reason}",
                                                {"from": t.old.name, "to": t.new.name, "reason": reason}))

    def _record(self, tick: int, now: float, mode: Mode, action: np.ndarray) -> None:
        i = self._tl_head % self._tl_n
        self._tl_obs[i] = self.builder.obs
        self._tl_act[i] = action
        self._tl_target[i] = self.cmd.q
        m = self._tl_meta[i]
        m[0], m[1], m[2], m[3], m[4] = tick, now, int(mode), self.cmd.kp[0], self.cmd.kd[0]
        a = self._active
        self._tl_gen[i] = a.generation_id if (a is not None and mode == Mode.RUN) else ""
        self._tl_head += 1

    # -- validator thread --------------------------------------------------------------------
    def _validator(self) -> None:
        # Helper threads hold the GIL while they run Python; at normal priority a busy machine can
        # preempt them mid-hold and stall the loop behind the GIL. A low FIFO priority prevents that.
        self._set_rt_priority(self.cfg.control.helper_rt_priority, "actor validator")
        while not self._stop.is_set():
            item = self._validate_q.get()
            if item is None:
                break
            actor, gid, ticket = item
            try:
                cand, details, fast = self._validate(actor, gid, ticket)
            except MaaError as e:
                now = self.clock()
                self.counters["refused"] += 1
                ticket.resolve(False, str(e), decided_at=now)
                log.warning("actor %s refused: %s", ticket.result.generation_id or "?", e)
                self._events.append(ControllerEvent("refused", now, self.tick_index, str(e),
                                                    {"generation_id": ticket.result.generation_id, "ticket": ticket}))
                self._wake_dispatch.set()
                continue
            ticket.result.decided_at = self.clock()
            ticket.result.details = details
            with self._pending_lock:
                old, self._pending = self._pending, _Slot(cand.module, cand.generation_id, ticket, fast=fast)
            if old is not None and old.ticket is not None:
                old.ticket.resolve(False, f"superseded by {cand.generation_id} before activation", decided_at=self.clock())

    def _validate(self, actor, gid: str | None, ticket: SwapTicket):
        """-> (candidate, details, numpy path or None); MaaError with the first reason to refuse."""
        # blob bytes: parse, finiteness and spec here; the checksum runs beside the canary checks
        cand = as_candidate(actor, self.spec, gid, defer_checksum=True)
        ticket.result.generation_id = cand.generation_id
        try:
            details, fast = self._checks(cand)
        except MaaError:
            cand.verify()  # a corrupted blob is refused as corrupted, not for what its bytes computed
            raise
        cand.verify()  # nothing of an unverified blob is accepted
        return cand, details, fast

    def _checks(self, cand):
        """Canary, numpy path and timing checks of a built candidate -> (details, numpy path or None)."""
        canary = self._canary_inputs()
        max_ms = self.cfg.safety.max_inference_ms
        fast = self._compile(cand.module)
        details = canary_check(cand, canary, self.wtw.config.num_actions,
                               self.cfg.safety.max_abs_action, max_ms, time_torch=fast is None)
        if fast is not None:  # the tick runs the numpy path: it must match torch, and it is what is timed
            timing = check_numpy_path(fast, canary, cand.canary_outputs, max_ms)
            if timing is None:
                fast = None
                timing = torch_forward_check(cand, canary[:1], max_ms)
            details.update(timing)
        return details, fast

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

    # -- dispatcher thread -------------------------------------------------------------------
    def _dispatcher(self) -> None:
        self._set_rt_priority(self.cfg.control.helper_rt_priority, "telemetry dispatcher")
        seen = 0
        while True:
            self._wake_dispatch.wait(0.1)
            self._wake_dispatch.clear()
            while self._events:
                ev = self._events.popleft()
                ticket = ev.data.get("ticket")
                if ticket is not None and getattr(ticket, "callback", None):
                    self._call(ticket.callback, ticket.result)
                for fn in self._event_listeners:
                    self._call(fn, ev)
            head = self._tl_head
            if head - seen > self._tl_n:
                self.counters["telemetry_dropped"] += head - seen - self._tl_n
                seen = head - self._tl_n
            if self._tick_listeners:
                for k in range(seen, head):
                    i = k % self._tl_n
                    m = self._tl_meta[i]
                    rec = TickRecord(int(m[0]), float(m[1]), Mode(int(m[2])).name, self._tl_gen[i],
                                     self._tl_obs[i].copy(), self._tl_act[i].copy(), self._tl_target[i].copy(),
                                     float(m[3]), float(m[4]), float(m[5]))
                    for fn in self._tick_listeners:
                        self._call(fn, rec)
            seen = head
            if self._stop.is_set() and not self._events:
                break

    @staticmethod
    def _call(fn, arg) -> None:
        try:
            fn(arg)
        except Exception:  # a listener's bug must not stop telemetry for the others
            log.exception("listener %r failed", fn)
