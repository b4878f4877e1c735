"""Telemetry of the Go2 controller (`Telemetry`, a part of `Controller`): the loop writes each tick
into a preallocated ring (`_record`: copies, no allocation); the *dispatcher* thread turns the ring
and the controller's events into `TickRecord` / `ControllerEvent` callbacks (e.g. for a ROS node)
and runs the callbacks of decided swap tickets. A slow listener drops records, never ticks."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from .realtime import set_rt_priority
from .safety import Mode

log = logging.getLogger("maa.go2.controller")  # one logger for the controller's files


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
    command: tuple = (0.0, 0.0, 0.0)  # the velocity command (vx, vy, yaw rate) as set, before heading hold
    quat: np.ndarray | None = None    # (4,) IMU orientation w, x, y, z of the state this tick used


@dataclass(frozen=True)
class ControllerEvent:
    kind: str       # transition | swap | revert | refused | fault | gamepad
    time: float
    tick: int
    message: str
    data: dict = field(default_factory=dict)


class Telemetry:
    """The ring, the listeners and the dispatcher thread."""

    def _init_telemetry(self, capacity: int, w) -> None:
        """The telemetry ring: `capacity` ticks of observation, action, target and meta."""
        n = capacity
        self._tl_n = n
        self._tl_obs = np.zeros((n, w.num_obs), np.float32)
        self._tl_act = np.zeros((n, w.num_actions), np.float32)
        self._tl_target = np.zeros((n, 12))
        self._tl_meta = np.zeros((n, 6))  # tick, time, mode, kp, kd, compute_s
        self._tl_cmd = np.zeros((n, 3))   # velocity command
        self._tl_quat = np.zeros((n, 4))  # IMU quaternion
        self._tl_gen = [""] * n
        self._tl_head = 0

    def add_tick_listener(self, fn) -> None:
        """fn(TickRecord), called on the dispatcher thread for every tick (records may be dropped if fn is slow)."""
        self._tick_listeners.append(fn)

    def add_event_listener(self, fn) -> None:
        """fn(ControllerEvent): transitions (with reasons), swaps, reverts, refusals, faults."""
        self._event_listeners.append(fn)

    def _record(self, tick: int, now: float, mode: Mode, action: np.ndarray) -> None:
        i = self._tl_head % self._tl_n
        self._tl_obs[i] = self.builder.obs
        self._tl_act[i] = action
        self._tl_target[i] = self.cmd.q
        m = self._tl_meta[i]
        m[0], m[1], m[2], m[3], m[4] = tick, now, int(mode), self.cmd.kp[0], self.cmd.kd[0]
        c = self._tl_cmd[i]
        c[0], c[1], c[2] = self._velocity
        self._tl_quat[i] = self.st.quat
        a = self._active
        self._tl_gen[i] = a.generation_id if (a is not None and mode == Mode.RUN) else ""
        self._tl_head += 1

    def _dispatcher(self) -> None:
        set_rt_priority(self.cfg.control.helper_rt_priority, "telemetry dispatcher")
        seen = 0
        while True:
            self._wake_dispatch.wait(0.1)
            self._wake_dispatch.clear()
            while self._retired:  # actors the loop swapped out: their memory is freed here, not in a tick
                self._retired.popleft()
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
                                     float(m[3]), float(m[4]), float(m[5]),
                                     tuple(map(float, self._tl_cmd[i])), self._tl_quat[i].copy())
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
