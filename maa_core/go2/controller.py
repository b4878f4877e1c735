"""The Go2 controller: a fixed-rate loop (50 Hz by default) that reads the robot state, runs the
safety supervisor and the walk-these-ways composition, and sends motor targets; plus the
off-loop machinery around it: actor validation and hot-swap (swap.py), telemetry dispatch
(telemetry.py), thread priorities (realtime.py).

Threads: the *loop* (tick work only: copies into preallocated buffers and torch inference, no
I/O); the *validator* (checks submitted actors and hands the accepted one to the loop, which
swaps it in at the start of a tick); the *dispatcher* (turns the loop's telemetry ring and
events into callbacks for e.g. a ROS node). Public methods are safe to call from any thread:
they only enqueue requests that the loop applies at its next tick boundary."""
from __future__ import annotations

import collections
import gc
import logging
import queue
import sys
import threading
import time

import numpy as np
import torch

from ..actor_io import ActorBlob
from ..errors import check
from ..specs import PolicySpec, get_spec
from .config import RobotConfig, load_robot_config
from .gamepad import Gamepad, Press, chord_name
from .inference import pin_blas_to_one_thread
from .heading import HeadingHold, yaw_of
from .joints import JointMap
from .realtime import hold_cpu_wakeup_latency, pin_to_cpu, release_cpu_wakeup_latency, set_rt_priority
from .safety import Mode, Supervisor
from .state import Joystick, LowState, MotorCommand
from .swap import ActorSwap, _Slot
from .telemetry import ControllerEvent, Telemetry
from .validation import CanaryReferences, as_candidate, canary_check, check_numpy_path
from .wtw import ActionMapper, ObservationBuilder, PolicyRunner, WtwRun

log = logging.getLogger("maa.go2.controller")


# -- the controller --------------------------------------------------------------------------------
class Controller(ActorSwap, Telemetry):
    """The loop and its state. Its other parts: `ActorSwap` (swap.py: submit_actor, revert, the
    validator thread) and `Telemetry` (telemetry.py: add_tick_listener, add_event_listener, the
    dispatcher thread)."""

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
        self.heading_hold = HeadingHold(self.cfg.heading_hold, self.period)  # heading.py; a pass-through when off
        self.gamepad = Gamepad(self.cfg.joystick, self.cfg.command_limits)

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
        self._retired: collections.deque = collections.deque()  # slots the loop dropped: freed off the loop
        self._requests: collections.deque = collections.deque()
        self._velocity = (0.0, 0.0, 0.0)
        # STAND_UP goes on to RUN once standing (with an active actor): set by enable() (safety.run_after_stand)
        # and the gamepad's run chord; the gamepad's stand chord clears it (stand and hold)
        self._run_armed = self.cfg.safety.run_after_stand

        self._init_telemetry(telemetry_capacity, w)  # ring written by the loop, read by the dispatcher
        self.compute_times = np.zeros(1 << 16)  # every tick's compute time (ring), for diagnostics/benchmarks
        self.prepare_times = np.zeros(1 << 16)  # after the command: precomputing the next tick (ring)
        # recent actor inputs for the canary check
        self._canary = np.zeros((canary_capacity or self.cfg.safety.canary_batch, w.actor_in_dim), np.float32)
        self._canary_n = 0
        # states every actor will meet (standing, trotting, the latest prompt): in every canary batch
        self.canary_references = CanaryReferences(w, defaults_p, self.cfg.gait_command, wtw.adaptation)

        self.tick_index = 0
        self._sent_at = 0.0
        self._settle_from: int | None = None  # STAND_UP: tick at which settling at the policy gains began
        self._settle_ticks = int(round(self.cfg.stand.settle_s * self.cfg.control.rate_hz))
        self.missed_ticks = 0
        self.missed_at: collections.deque = collections.deque(maxlen=256)  # (wake time, lateness s) of each miss
        self.overruns = 0
        # always in diagnostics(): operator input refused or clamped
        self.counters = collections.Counter(gamepad_rejected=0, command_clamped=0, command_rejected=0)
        self._events: collections.deque = collections.deque()
        self._tick_listeners, self._event_listeners = [], []
        self._validate_q: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._wake_dispatch = threading.Event()
        self._threads: list[threading.Thread] = []
        self.started = False
        self._latency_fd: int | None = None  # the PM QoS request held while running (realtime.py)
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
        canary_check(warm, canary, self.wtw.config.num_actions, float("inf"), float("inf"),
                     references=self.canary_references)
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
        self._latency_fd = hold_cpu_wakeup_latency(self.cfg.control.cpu_wakeup_latency_us)
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
        release_cpu_wakeup_latency(self._latency_fd)
        self._latency_fd = None

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

    def set_command(self, vx: float, vy: float, yaw_rate: float) -> tuple | None:
        """The velocity command (m/s, m/s, rad/s), clamped to command_limits; returns the command set.
        A non-finite value is refused (None; the previous command stays). Each clamp and refusal is
        counted (diagnostics command_clamped / command_rejected); only the first of each is logged."""
        vals = (float(vx), float(vy), float(yaw_rate))
        if not all(map(np.isfinite, vals)):
            self.counters["command_rejected"] += 1
            if self.counters["command_rejected"] == 1:
                log.warning("set_command%s: non-finite velocity refused, the previous command stays "
                            "(later ones are counted in command_rejected, not logged)", vals)
            return None
        lim = self.cfg.command_limits
        cmd = tuple(min(max(v, lim[k][0]), lim[k][1]) for v, k in zip(vals, ("vx", "vy", "yaw_rate")))
        if cmd != vals:
            self.counters["command_clamped"] += 1
            if self.counters["command_clamped"] == 1:
                log.warning("set_command%s: beyond command_limits %s, clamped to %s (later ones are counted in "
                            "command_clamped, not logged)", vals, lim, cmd)
        self._velocity = cmd
        return cmd

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
    def _loop(self) -> None:
        if self.torch_threads:  # OpenMP's thread count is per calling thread: set it here too
            torch.set_num_threads(self.torch_threads)
        set_rt_priority(self.cfg.control.rt_priority, "control loop")
        pin_to_cpu(self.cfg.control.loop_cpu)
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
            vx, vy, wz = self._velocity
            if sup.mode == Mode.RUN:  # actors cannot see their heading: hold it from the IMU yaw (heading.py)
                wz = self.heading_hold.update(wz, yaw_of(st.quat))
            else:
                self.heading_hold.reset()
            b.set_velocity(vx, vy, wz)
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
            going = standing and self._run_armed and self._active is not None
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
        """The remote's chords act in this tick (gamepad.py): damp at once, from any mode; stand from
        DAMP or RUN (stand and hold); run from STAND_UP (settle, then RUN, as after enable())."""
        read = getattr(self.robot, "read_joystick", None)
        if read is None or not read(self.joy):
            return
        g, sup, js = self.gamepad, self.supervisor, self.cfg.joystick
        rejected = g.rejected
        press = g.update(self.joy, now)
        if g.rejected != rejected:
            self.counters["gamepad_rejected"] += g.rejected - rejected
        if press == Press.DAMP:
            if sup.mode != Mode.DAMP:
                self._transition(Mode.DAMP, f"damp (gamepad {chord_name(js.damp_keys)})", now, tick)
        elif press == Press.STAND:
            if sup.mode in (Mode.DAMP, Mode.RUN):
                self._run_armed = False
                self._transition(Mode.STAND_UP, f"stand (gamepad {chord_name(js.stand_keys)})", now, tick, self.st.q)
        elif press == Press.RUN:
            if sup.mode == Mode.STAND_UP and self._active is not None:
                self._run_armed = True  # STAND_UP's settle, then RUN (the actor starts as it was trained to)
                self._events.append(ControllerEvent("gamepad", now, tick, f"run armed (gamepad {chord_name(js.run_keys)})"))
            else:
                why = "no active actor" if self._active is None else f"mode is {sup.mode.name}, not STAND_UP"
                self._events.append(ControllerEvent("gamepad", now, tick, f"run (gamepad {chord_name(js.run_keys)}) refused: {why}",
                                                    {"refused": True}))
        if g.velocity is not None:
            self._velocity = g.velocity

    def _apply_requests(self, now: float, tick: int) -> None:
        sup = self.supervisor
        while self._requests:
            kind, arg = self._requests.popleft()
            if kind in ("stop", "estop"):
                self._transition(Mode.DAMP, arg, now, tick)
            elif kind == "enable":
                if sup.mode == Mode.DAMP:
                    self._run_armed = self.cfg.safety.run_after_stand
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


