"""What every maa_ros node shares: typed parameters with YAML-matching defaults, a health
reporter on /diagnostics, and a `main` that shuts down cleanly under Humble and Jazzy."""
from __future__ import annotations

import ctypes
import os
import signal
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
    read_only: tuple[str, ...] = ()  # parameters that ~/set_parameters may not change after start

    def __init__(self, default_name: str | None = None, **kwargs):
        super().__init__(default_name or self.executable, **kwargs)
        self._defaults = launch_spec.NODE_PARAMETERS[self.executable]
        for name, default in self._defaults.items():
            # dynamic typing: `-p rate:=1` must not fail on a float parameter; values are cast below
            self.declare_parameter(name, default, ParameterDescriptor(dynamic_typing=True, read_only=name in self.read_only))
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


class StopSignals:
    """SIGINT/SIGTERM for a node: the first one stops it, later ones are ignored.

    A terminal's Ctrl-C reaches a node of `ros2 launch` twice (the process group, then launch's own
    SIGINT). Python's default handler raised the second KeyboardInterrupt inside `close()` (a sleep,
    a thread join), which abandoned the cleanup and left native threads (simulator, DDS) running
    into interpreter teardown: exit -11. Installed before `rclpy.init`, this handler is the one
    rclpy's own handlers chain to after shutting the context down. launch still escalates to
    SIGKILL if a node hangs, and every wait in `close()` is bounded."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.stopping = False

    def install(self) -> "StopSignals":
        for s in self.SIGNALS:
            signal.signal(s, self._handle)
        return self

    def begin_shutdown(self) -> None:
        self.stopping = True

    def ignore(self) -> None:
        """Once rclpy is shut down (its handlers removed): ignore them in the OS too, so that one
        landing during interpreter teardown (which restores default handlers, not ignored ones)
        cannot kill the process (exit -2)."""
        for s in self.SIGNALS:
            signal.signal(s, signal.SIG_IGN)

    def _handle(self, signum, _frame) -> None:
        if not self.stopping:
            self.stopping = True
            raise KeyboardInterrupt  # ends spin() or a slow constructor, as Python's default would


def run(node_cls, args=None) -> int:
    """Entry point body of a node process: init, spin until SIGINT/SIGTERM or external shutdown,
    clean up, end the process (`end_process`): 0 on a signal or an external shutdown, 1 on an
    error (one line on stderr)."""
    signals = StopSignals().install()
    # rclpy's handlers (Humble and Jazzy) turn SIGINT/SIGTERM into a context shutdown, which ends
    # spin() with ExternalShutdownException, then call the handler above
    rclpy.init(args=args if args is not None else sys.argv)
    node, code = None, 0
    try:
        node = node_cls()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception as e:
        # a signal shuts the context down under the executor, which may then fail to build its
        # wait set (RCLError): a stop, not an error; anything else is a bug or a failure during
        # construction: one line, exit 1
        if rclpy.ok() and not signals.stopping:
            print(f"{node_cls.executable}: error: {type(e).__name__}: {e}", file=sys.stderr)
            code = 1
    signals.begin_shutdown()
    # no signal interrupts the cleanup from here on, and no rclpy call is made on the (possibly
    # shut down) context besides destroying the node's handles
    if node is not None:
        try:
            node.close()
        except Exception as e:  # report, still shut down
            print(f"{node_cls.executable}: error while closing: {e}", file=sys.stderr)
            code = code or 1
        try:
            node.destroy_node()
        except Exception as e:
            print(f"{node_cls.executable}: error while destroying the node: {e}", file=sys.stderr)
    rclpy.try_shutdown()
    signals.ignore()
    end_process(code)
    return code  # not reached


def end_process(code: int) -> None:
    """Ends the process right after the node's cleanup, without interpreter teardown: with torch
    and MuJoCo loaded (some 1300 modules) teardown takes seconds on a loaded machine, past
    launch's 5 s SIGINT -> SIGTERM escalation, and a native thread still running into it (a
    generation or a simulator step that outlived its join timeout) can crash it (exit -11).
    Everything a node must finish happens in `close()`; stdio buffers are flushed here."""
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except Exception:  # a closed pipe: nothing more to say
            pass
    try:  # C-level buffers (DDS, MuJoCo and rcutils write there)
        ctypes.CDLL(None).fflush(None)
    except Exception:
        pass
    os._exit(code)
