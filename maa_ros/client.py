"""A small rclpy client of the maa graph, for tests, benchmarks and scripts: publishes prompts,
collects actors and diagnostics, calls the Trigger/SetBool services. Spins in its own thread and
its own rclpy Context, so it can live beside other rclpy users in one process."""
from __future__ import annotations

import threading
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Twist
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from std_msgs.msg import Float32MultiArray, UInt8MultiArray
from std_srvs.srv import SetBool, Trigger

from . import launch_spec, qos
from .messages import actor_bytes, prompt_to_msg


class GraphClient:
    def __init__(self, name: str = "maa_client", prompt_topic: str = launch_spec.PROMPT_TOPIC,
                 actor_topic: str = launch_spec.ACTOR_TOPIC, subscribe_actor: bool = True):
        self.ctx = rclpy.Context()
        rclpy.init(context=self.ctx)
        self.node = Node(name, context=self.ctx)
        self.lock = threading.Lock()
        self.actors: list[tuple[float, bytes]] = []  # (time.monotonic() on receipt, blob bytes)
        self.diagnostics: list = []  # DiagnosticStatus, in arrival order
        self.prompts: dict[str, list] = {}  # topic -> received Float32MultiArray
        self.actor_topic = actor_topic
        self.prompt_pub = self.node.create_publisher(Float32MultiArray, prompt_topic, qos.PROMPT)
        self._twist_pub = None
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, qos.DIAGNOSTICS)
        if subscribe_actor:
            self.subscribe_actor()
        self.executor = SingleThreadedExecutor(context=self.ctx)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            while self.ctx.ok():
                self.executor.spin_once(timeout_sec=0.05)
        except Exception:  # context shut down while spinning
            pass

    def subscribe_actor(self):
        def cb(msg):
            t = time.monotonic()
            with self.lock:
                self.actors.append((t, actor_bytes(msg)))
        return self.node.create_subscription(UInt8MultiArray, self.actor_topic, cb, qos.ACTOR_EVERY)

    def subscribe_prompts(self, topic: str, profile=qos.PROMPT):
        """Keeps every Float32MultiArray of `topic` (use qos.STATE for best-effort step streams)."""
        self.prompts.setdefault(topic, [])

        def cb(msg):
            with self.lock:
                self.prompts[topic].append(msg)
        return self.node.create_subscription(Float32MultiArray, topic, cb, profile)

    def _on_diag(self, msg: DiagnosticArray) -> None:
        with self.lock:
            self.diagnostics.extend(msg.status)

    # -- actions ------------------------------------------------------------------------------
    def wait_for_subscribers(self, n: int = 1, timeout: float = 20.0) -> bool:
        return _wait(lambda: self.prompt_pub.get_subscription_count() >= n, timeout)

    def wait_for_node_subscription(self, node_name: str, timeout: float = 20.0) -> bool:
        """True once `node_name` subscribes to the prompt topic: a reliable, volatile prompt published
        before its reader is discovered is lost, and other readers (recorders, this client) may be there."""
        topic = self.prompt_pub.topic_name
        return _wait(lambda: any(i.node_name == node_name for i in self.node.get_subscriptions_info_by_topic(topic)),
                     timeout)

    def publish_prompt(self, traj_or_msg) -> float:
        msg = traj_or_msg if isinstance(traj_or_msg, Float32MultiArray) else prompt_to_msg(traj_or_msg)
        t = time.monotonic()
        self.prompt_pub.publish(msg)
        return t

    def publish_twist(self, vx: float, vy: float, yaw_rate: float, topic: str = "/cmd_vel") -> None:
        """One geometry_msgs/Twist (linear.x, linear.y, angular.z): the controller's cmd_vel."""
        if self._twist_pub is None:
            self._twist_pub = self.node.create_publisher(Twist, topic, qos.STATE)
        m = Twist()
        m.linear.x, m.linear.y, m.angular.z = float(vx), float(vy), float(yaw_rate)
        self._twist_pub.publish(m)

    def wait_actors(self, n: int, timeout: float = 30.0) -> list[tuple[float, bytes]]:
        _wait(lambda: len(self.actors) >= n, timeout)
        with self.lock:
            return list(self.actors)

    def wait_diagnostic(self, pred, timeout: float = 20.0):
        """First diagnostic status (received so far or within timeout) with pred(status) true."""
        found = []

        def check():
            with self.lock:
                found[:] = [s for s in self.diagnostics if pred(s)]
            return bool(found)
        _wait(check, timeout)
        return found[0] if found else None

    def call(self, service: str, request=None, srv_type=Trigger, timeout: float = 20.0):
        cli = self.node.create_client(srv_type, service)
        try:
            if not cli.wait_for_service(timeout_sec=timeout):
                raise TimeoutError(f"service {service} not available")
            fut = cli.call_async(request if request is not None else srv_type.Request())
            if not _wait(fut.done, timeout):
                raise TimeoutError(f"service {service} did not answer")
            return fut.result()
        finally:
            self.node.destroy_client(cli)

    def set_bool(self, service: str, value: bool, timeout: float = 20.0):
        return self.call(service, SetBool.Request(data=value), SetBool, timeout)

    def close(self) -> None:
        try:
            self.ctx.shutdown()
        except Exception:
            pass
        self._thread.join(2.0)
        self.executor.shutdown()
        self.node.destroy_node()


def _wait(cond, timeout: float, period: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(period)
    return bool(cond())
