"""What every maa_ros node shares: typed parameters with YAML-matching defaults, a health
reporter on /diagnostics, and a `main` that shuts down cleanly under Humble and Jazzy."""
from __future__ import annotations

import sys

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from . import launch_spec, qos

LEVELS = {"ok": DiagnosticStatus.OK, "warn": DiagnosticStatus.WARN, "error": DiagnosticStatus.ERROR}


class MaaNode(Node):
    """A node whose parameters are the ones `launch_spec.NODE_PARAMETERS[executable]` lists."""

    executable = ""  # console script / ROS executable name; keys the parameter defaults

    def __init__(self, default_name: str | None = None, **kwargs):
        super().__init__(default_name or self.executable, **kwargs)
        self._defaults = launch_spec.NODE_PARAMETERS[self.executable]
        for name, default in self._defaults.items():
            # dynamic typing: `-p rate:=1` must not fail on a float parameter; values are cast below
            self.declare_parameter(name, default, ParameterDescriptor(dynamic_typing=True))
        self.health = Health(self)

    def close(self) -> None:
        """Stops what the node started besides ROS entities (threads, files)."""

    def param(self, name: str):
        value, default = self.get_parameter(name).value, self._defaults[name]
        try:
            if isinstance(default, bool):
                return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
            return type(default)(value if value is not None else default)
        except (TypeError, ValueError):
            self.get_logger().error(f"parameter {name}={value!r}: expected {type(default).__name__}, using {default!r}")
            return default


class Health:
    """One DiagnosticStatus per node on /diagnostics: level and one-line message of the last
    event, plus counters and values. Published on every event and every `period` seconds."""

    def __init__(self, node: Node, period: float = 1.0):
        self.node = node
        self.name = f"maa_ros/{node.get_name()}"
        self.level, self.message = "ok", "starting"
        self.values: dict[str, object] = {}
        self.counters: dict[str, int] = {}
        self.pub = node.create_publisher(DiagnosticArray, "/diagnostics", qos.DIAGNOSTICS)
        self.timer = node.create_timer(period, self.publish)

    def count(self, key: str, n: int = 1) -> None:
        self.counters[key] = self.counters.get(key, 0) + n

    def report(self, level: str, message: str, **values) -> None:
        self.level, self.message = level, message
        self.values.update(values)
        if level == "error":
            self.count("errors")
            self.values["last_error"] = message
            self.node.get_logger().error(message)
        elif level == "warn":
            self.node.get_logger().warning(message)
        else:
            self.node.get_logger().info(message)
        self.publish()

    def ok(self, message: str, **values) -> None:
        self.report("ok", message, **values)

    def warn(self, message: str, **values) -> None:
        self.report("warn", message, **values)

    def error(self, message: str, **values) -> None:
        self.report("error", message, **values)

    def publish(self) -> None:
        st = DiagnosticStatus(level=LEVELS[self.level], name=self.name, message=self.message,
                              hardware_id=self.node.get_fully_qualified_name())
        kv = {**self.values, **self.counters}
        st.values = [KeyValue(key=k, value=str(v)) for k, v in sorted(kv.items())]
        msg = DiagnosticArray(status=[st])
        msg.header.stamp = self.node.get_clock().now().to_msg()
        try:
            self.pub.publish(msg)
        except Exception:  # context already shut down: nothing left to report to
            pass


def run(node_cls, args=None) -> int:
    """Entry point body: init, spin until SIGINT/SIGTERM or external shutdown, clean up."""
    # rclpy's own handlers (Humble and Jazzy) turn SIGINT/SIGTERM into a context shutdown, which
    # ends spin() with ExternalShutdownException (or KeyboardInterrupt); do not replace them.
    rclpy.init(args=args if args is not None else sys.argv)
    node = None
    try:
        node = node_cls()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception as e:  # a bug, or a failure during construction: one line, exit 1
        print(f"{node_cls.executable}: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    finally:
        if node is not None:
            try:
                node.close()
            except Exception as e:  # report, still shut down
                print(f"{node_cls.executable}: error while closing: {e}", file=sys.stderr)
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0

