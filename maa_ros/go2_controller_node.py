"""Go2 controller node: wraps `maa_core.go2.Controller` (the fixed-rate loop, validation and
tick-boundary hot-swap live there).

Subscribes  <actor_topic>              std_msgs/UInt8MultiArray (reliable, transient-local): actor blobs
            <cmd_vel_topic>            geometry_msgs/Twist (best-effort; reliable publishers match too):
                                       clamped to command_limits, NaN/Inf ignored, each reported once
Publishes   <steps_topic>              std_msgs/Float32MultiArray (best-effort): per RUN tick, one row
                                       [observation | action] in the prompt layout (T = 1)
            <active_generation_topic>  std_msgs/String (reliable, transient-local)
            /diagnostics               mode, reason, active/previous generation, tick timing, counters
Services    ~/enable                   std_srvs/SetBool  true: DAMP -> STAND_UP (-> RUN); false: stop (DAMP)
            ~/estop                    std_srvs/Trigger
            ~/revert                   std_srvs/Trigger  back to the previous actor at the next tick
            ~/record                   std_srvs/SetBool  true: start a recording (record_dir/go2-<time>.mcap:
                                       ticks, steps, events; maa_core/go2/recording.py); false: stop and close it

Signatures (maa_core/signing.py): with `require_signature` (auto = on backend unitree) an actor
runs only if the message carries a valid Ed25519 signature of its exact bytes by one of
`trusted_keys`; checked on the executor before the actor is submitted (so before validation and
any motor), refusals counted as `signature_refused_<unsigned|unknown_key|bad_signature>`. Both
parameters are read once at start and are read-only. ~/enable is refused while the running actor
has no trusted signature; who may call the services at all is DDS security's (SROS2) job.

The Go2's remote (damp L2+B, stand L2+A, run START, sticks) is read by the controller itself
from rt/wirelesscontroller on the robot's DDS, not through ROS (docs/go2.md, "Operator inputs");
with backend sim, `maa go2-gamepad --domain <dds_domain>` stands in for it.

backend "sim": the MuJoCo Go2 of maa_core.go2.sim runs in this process behind a DDS bridge on
loopback, so the controller talks to it exactly as to the robot; "unitree": DDS on
`network_interface`.
"""
from __future__ import annotations

from dataclasses import replace

import queue
import threading
import time

from geometry_msgs.msg import Twist
from std_msgs.msg import Float32MultiArray, String, UInt8MultiArray
from std_srvs.srv import SetBool, Trigger

from maa_core.errors import MaaError, check
from maa_core.go2.contract import blob_refusal
from maa_core.signing import ActorTrust, SignatureRefusal, TrustedKeys
from maa_core.trajectory import Trajectory

from . import qos
from .messages import actor_payload, actor_signature, prompt_to_msg
from .node_util import MaaNode, run


class Go2ControllerNode(MaaNode):
    executable = "maa_go2_controller"
    read_only = ("require_signature", "trusted_keys")  # a caller of ~/set_parameters must not switch them off
    LOCAL_ACTOR = "wtw-body"  # generation id of the run's own body (Controller): from the robot's files

    def __init__(self):
        super().__init__()
        self.ctl = self.robot = self.bridge = None
        self.contract = None  # the policy contract actors must carry (or carry none), set at start
        self.trust = ActorTrust(TrustedKeys(), required=True)  # refuses everything until set at start
        self._bridge_thread = None
        self._events: queue.Queue = queue.Queue()  # from the controller's dispatcher thread
        self._last_twist = 0.0
        self._published_gen = None
        self.recorder = None  # maa_core.go2.recording.Recorder while recording (~/record)
        self.steps_pub = self.create_publisher(Float32MultiArray, self.param("steps_topic"), qos.STATE)
        self.gen_pub = self.create_publisher(String, self.param("active_generation_topic"), qos.LATCHED)
        self.create_subscription(UInt8MultiArray, self.param("actor_topic"), self._on_actor, qos.ACTOR)
        self.create_subscription(Twist, self.param("cmd_vel_topic"), self._on_twist, qos.STATE)
        self.create_service(SetBool, "~/enable", self._on_enable)
        self.create_service(Trigger, "~/estop", self._on_estop)
        self.create_service(Trigger, "~/revert", self._on_revert)
        self.create_service(SetBool, "~/record", self._on_record)
        self.create_timer(0.02, self._drain)
        self.create_timer(1.0, self._publish_health)
        self._start_controller()

    # -- setup -------------------------------------------------------------------------------
    def _start_controller(self) -> None:
        backend, run_dir = self.param("backend"), self.param("wtw_run_dir")
        try:
            from maa_core.go2.config import load_robot_config
            from maa_core.go2.contract import contract_of
            from maa_core.go2.controller import Controller
            from maa_core.go2.dds import Go2DdsRobot
            from maa_core.go2.wtw import load_wtw_run
            if backend not in ("sim", "unitree"):
                raise MaaError(f"backend {backend!r}: expected 'sim' or 'unitree'")
            self.trust = self._actor_trust(backend)
            cfg = load_robot_config(self.param("robot_config"))
            wtw = load_wtw_run(run_dir)  # "" = the shipped adaptation module (models/go2-adaptation)
            self.contract = contract_of(cfg, wtw)  # what an actor's contract must equal
            self.get_logger().info(wtw.describe())
            if self.param("accept_adaptation_mismatch"):  # students trained with another module may run
                self.contract = replace(self.contract, adaptation_sha256="")
                self.get_logger().warning("accept_adaptation_mismatch: actors trained with any adaptation module are accepted")
            self.wtw_source = wtw.source
            domain = self.param("dds_domain")
            if backend == "sim":
                from maa_core.go2.sim.bridge import SimBridge
                domain = 1 if domain < 0 else domain
                self.bridge = SimBridge(cfg, domain=domain, interface="lo").open()
                self._bridge_thread = threading.Thread(target=self.bridge.run, name="go2-sim", daemon=True)
                self._bridge_thread.start()
                iface, release = "lo", False
            else:
                iface, release = self.param("network_interface") or None, None
            self.robot = Go2DdsRobot(cfg, domain=None if domain < 0 else domain, interface=iface,
                                     release_sport_mode=release).open()
            self.ctl = Controller(cfg, self.robot, wtw, spec=self.param("spec"))
        except Exception as e:  # MaaError, or the DDS/simulator libraries failing to start
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            self.health.error(f"controller not started: {msg}")
            self.close()
            self.ctl = self.robot = self.bridge = None
            return
        self.ctl.add_event_listener(lambda ev: self._events.put(("event", ev)))
        # the recorder (when on) gets every tick and event on the dispatcher thread: it only queues them
        self.ctl.add_tick_listener(lambda rec: (r := self.recorder) is not None and r.on_tick(rec))
        self.ctl.add_event_listener(lambda ev: (r := self.recorder) is not None and r.on_event(ev))
        if self.param("publish_steps"):
            self.ctl.add_tick_listener(self._on_tick)
        self.ctl.start()
        if self.param("record_on_start"):
            self._start_recording()
        if self.param("enable_on_start"):
            self.ctl.enable()
        self.health.ok(f"controller running ({backend}, {cfg.control.rate_hz:g} Hz, spec {self.ctl.spec.name}); "
                       f"{self.trust.describe()}", backend=backend, wtw_run_dir=self.wtw_source,
                       require_signature=str(self.trust.required).lower(),
                       trusted_keys=",".join(self.trust.keys.ids()))

    def _actor_trust(self, backend: str) -> ActorTrust:
        mode = str(self.get_parameter("require_signature").value).strip().lower()
        check(mode in ("auto", "true", "false"), f"require_signature {mode!r}: expected auto, true or false")
        required = backend == "unitree" if mode == "auto" else mode == "true"
        raw = self.get_parameter("trusted_keys").value  # a YAML list, or one comma-separated string
        paths = [str(p).strip() for p in (raw if isinstance(raw, (list, tuple)) else str(raw or "").split(","))]
        trust = ActorTrust(TrustedKeys.from_files([p for p in paths if p]), required, local=(self.LOCAL_ACTOR,))
        if required and not len(trust.keys):
            self.get_logger().warning("require_signature without trusted_keys: every actor will be refused")
        return trust

    # -- callbacks (executor thread) ------------------------------------------------------------
    def _on_actor(self, msg: UInt8MultiArray) -> None:
        self.health.count("actors_received")
        if self.ctl is None:
            self.health.error("actor ignored: controller not running")
            return
        try:
            data = actor_payload(msg, max_bytes=self.param("max_actor_bytes"))
        except MaaError as e:
            self.health.count("actors_rejected")
            self.health.error(str(e))
            return
        # the signature first: an unsigned or foreign actor is refused before its header is even read
        try:
            key = self.trust.check(data, actor_signature(msg))
        except SignatureRefusal as e:
            self.health.count("actors_refused")
            self.health.count(f"signature_refused_{e.kind}")
            self.health.error(f"actor refused: {e}")
            return
        # the policy I/O contract in the blob's header (joint order, observation scales, gains, ...)
        # must be this controller's: read from the header alone, before the validator's one parse
        why = blob_refusal(self.contract, data)
        if why is not None:
            self.health.count("actors_refused")
            self.health.error(f"actor refused: {why}")
            return
        # the validator decodes the blob (spec, finiteness, checksum beside the canary checks): one
        # parse per actor, and a bad blob is refused through the swap callback with its reason
        self.ctl.submit_actor(data, callback=lambda r: self._on_swap(r, key))

    def _on_swap(self, r, key: str) -> None:  # controller's dispatcher thread
        if r.accepted:  # recorded here, not in _drain: an enable right after the swap must see it
            self.trust.accepted(r.generation_id, key)
        self._events.put(("swap", r))

    def _on_twist(self, msg: Twist) -> None:
        """(linear.x, linear.y, angular.z) -> Controller.set_command, which clamps to command_limits and
        refuses NaN/Inf; each is counted (cmd_vel_clamped / cmd_vel_rejected), only the first reported,
        so a 10 Hz stream of bad commands does not flood the log. Deflected gamepad sticks override it."""
        if self.ctl is None:
            return
        vals = (msg.linear.x, msg.linear.y, msg.angular.z)
        cmd = self.ctl.set_command(*vals)
        if cmd is None:
            self.health.count("cmd_vel_rejected")
            if self.health.counters["cmd_vel_rejected"] == 1:
                self.health.error(f"cmd_vel {vals}: NaN or Inf ignored, the previous command stays "
                                  f"(reported once; counted in cmd_vel_rejected)")
            return
        if cmd != tuple(map(float, vals)):
            self.health.count("cmd_vel_clamped")
            if self.health.counters["cmd_vel_clamped"] == 1:
                lim = self.ctl.cfg.command_limits
                self.health.warn(f"cmd_vel {vals} beyond command_limits (vx {lim['vx']}, vy {lim['vy']}, yaw_rate "
                                 f"{lim['yaw_rate']}): clamped to {cmd} (reported once; counted in cmd_vel_clamped)")
        self._last_twist = time.monotonic()

    def _on_tick(self, rec) -> None:  # controller's dispatcher thread: only queue
        if rec.mode == "RUN":
            self._events.put(("tick", rec))

    def _drain(self) -> None:
        if self.ctl is not None and self._last_twist and time.monotonic() - self._last_twist > self.param("cmd_vel_timeout"):
            self.ctl.set_command(0.0, 0.0, 0.0)
            self._last_twist = 0.0
        rows = []
        while True:
            try:
                kind, x = self._events.get_nowait()
            except queue.Empty:
                break
            if kind == "tick":
                rows.append(x)
            elif kind == "swap":
                if x.accepted:
                    self.health.count("actors_accepted")
                    self.health.ok(f"actor {x.generation_id} {x.reason} (message to active "
                                   f"{1e3 * x.latency_s:.1f} ms)", swap_latency_ms=round(1e3 * x.latency_s, 2))
                else:
                    self.health.count("actors_refused")
                    self.health.error(f"actor {x.generation_id or '?'} refused: {x.reason}")
            elif x.kind in ("fault", "revert"):
                self.health.warn(f"{x.kind}: {x.message}")
            elif x.kind == "gamepad" or (x.kind == "transition" and "(gamepad " in x.message):
                self.health.warn(f"remote: {x.message}")  # the operator's remote acted (or was refused)
        for rec in rows:
            self.steps_pub.publish(prompt_to_msg(Trajectory(rec.observation[None], rec.action[None])))
        gen = self.ctl.active_generation if self.ctl is not None else ""
        if gen != self._published_gen:
            self.gen_pub.publish(String(data=gen))
            self._published_gen = gen

    def _publish_health(self) -> None:
        if self.ctl is not None:
            self.health.values.update(self.ctl.diagnostics())
            self.health.values["bridge_alive"] = self._bridge_thread.is_alive() if self._bridge_thread else ""

    def _on_enable(self, req, resp):
        if self.ctl is None:
            resp.success, resp.message = False, "controller not running"
        elif req.data and (why := self.trust.enable_refusal(self.ctl.active_generation)) is not None:
            self.health.count("enable_refused")
            self.health.error(f"enable refused: {why}")
            resp.success, resp.message = False, f"enable refused: {why}"
        elif req.data:
            self.ctl.enable()
            resp.success, resp.message = True, "enable requested (DAMP -> STAND_UP -> RUN)"
        else:
            self.ctl.stop("stop (service)")
            resp.success, resp.message = True, "stop requested (DAMP)"
        return resp

    def _start_recording(self) -> str:
        """Starts a recording into record_dir; returns its path (MaaError: why not)."""
        from pathlib import Path

        from maa_core.go2.recording import Recorder
        folder = str(self.param("record_dir") or "")
        check(folder, "record: record_dir is not set")
        check(self.recorder is None, f"record: already recording to {self.recorder.path if self.recorder else ''}")
        Path(folder).mkdir(parents=True, exist_ok=True)
        path = Path(folder) / time.strftime("go2-%Y%m%d-%H%M%S.mcap")
        w = self.ctl.wtw.config
        self.recorder = Recorder(path, w.num_obs, w.num_actions, info={"spec": self.ctl.spec.name,
                                 "rate_hz": self.ctl.cfg.control.rate_hz, "backend": self.param("backend")})
        self.health.ok(f"recording to {path}", recording=str(path))
        return str(path)

    def _stop_recording(self) -> str:
        rec, self.recorder = self.recorder, None
        if rec is None:
            return "not recording"
        s = rec.close()
        line = (f"recording {rec.path} closed: {s['ticks']} ticks, {s['steps']} steps, {s['events']} events; "
                f"dropped {s['dropped_ticks']} ticks, {s['dropped_events']} events" + (f"; error {s['error']}" if s["error"] else ""))
        (self.health.warn if s["dropped_ticks"] or s["dropped_events"] or s["error"] else self.health.ok)(line, recording="")
        return line

    def _on_record(self, req, resp):
        if self.ctl is None:
            resp.success, resp.message = False, "controller not running"
            return resp
        try:
            resp.message = self._start_recording() if req.data else self._stop_recording()
            resp.success = True
        except (MaaError, OSError) as e:
            resp.success, resp.message = False, str(e).splitlines()[0]
            self.health.error(resp.message)
        return resp

    def _on_estop(self, req, resp):
        if self.ctl is None:
            resp.success, resp.message = False, "controller not running"
        else:
            self.ctl.estop("service")
            resp.success, resp.message = True, "e-stop requested"
            self.health.warn("e-stop requested by service")
        return resp

    def _on_revert(self, req, resp):
        if self.ctl is None:
            resp.success, resp.message = False, "controller not running"
            return resp
        try:  # applied at the next tick boundary (one control period)
            r = self.ctl.revert().wait(timeout=max(0.5, 10 * self.ctl.period))
            resp.success, resp.message = r.accepted, (f"reverted to {r.generation_id}" if r.accepted else r.reason)
        except MaaError as e:
            resp.success, resp.message = False, str(e)
        return resp

    def close(self) -> None:
        if self.ctl is not None:
            self.ctl.close()
        if self.recorder is not None:  # after the loop's last tick: the file is finalized with all of it
            self._stop_recording()
        if self.robot is not None:
            self.robot.close()
        if self.bridge is not None:
            self.bridge.stop()
            if self._bridge_thread is not None:
                self._bridge_thread.join(2.0)


def main(args=None) -> int:
    return run(Go2ControllerNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
