"""`maa-ros`: start the maa_ros graph as plain processes (for pip-only installs, without `ros2 launch`).

    maa-ros launch go2_generate generator_dir:=runs/gen prompt_bag:=bags/walk controller:=false
    maa-ros launch go2_generate --dry-run        # print the node commands only
    maa-ros args go2_generate                    # list the launch arguments

Each node of `launch_spec` runs as `python -m <module> --ros-args -r __node:=<name> --params-file
<config> -p k:=v`. SIGINT/SIGTERM to the launcher forwards SIGINT to every node, then SIGTERM and
SIGKILL to any left after the grace period. A node that exits is reported on stderr; when a
required node exits, the graph is shut down and the launcher exits 1. Bad arguments: one line, exit 2.
"""
from __future__ import annotations

import argparse
import shlex
import signal
import subprocess
import sys
import time

from maa_core.errors import MaaError, exit_code

from . import launch_spec

PROG = "maa-ros"


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse would print the usage too)
        print(f"{PROG}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def parse_launch_args(items: list[str]) -> dict[str, str]:
    out = {}
    for it in items:
        if ":=" not in it:
            raise MaaError(f"launch argument {it!r}: expected name:=value")
        k, v = it.split(":=", 1)
        out[k] = v
    return out


def _log(msg: str) -> None:
    print(f"{PROG}: {msg}", file=sys.stderr, flush=True)


class ProcessGraph:
    """The running node processes of one launch."""

    def __init__(self, nodes: list[launch_spec.NodeSpec], grace: float = 10.0, python: str | None = None):
        self.nodes, self.grace, self.python = nodes, grace, python
        self.procs: dict[str, subprocess.Popen] = {}
        self.stop_reason: str | None = None

    def start(self) -> None:
        for n in self.nodes:
            cmd = n.command(self.python)
            # own session: a terminal's Ctrl-C reaches the launcher only, which forwards it in order
            self.procs[n.name] = subprocess.Popen(cmd, start_new_session=True)
            _log(f"started {n.name} (pid {self.procs[n.name].pid})")

    def run(self) -> int:
        """Supervises until a signal or the death of a required node; returns the exit code."""
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        rc = 0
        try:
            self.start()
            alive = {n.name: n for n in self.nodes}
            while self.stop_reason is None and alive:
                time.sleep(0.1)
                for name, n in list(alive.items()):
                    code = self.procs[name].poll()
                    if code is None:
                        continue
                    del alive[name]
                    _log(f"node {name} exited with code {code}" + (" (required: shutting down)" if n.required else ""))
                    if n.required:
                        self.stop_reason, rc = f"required node {name} exited", 1
            if not alive and self.stop_reason is None:
                self.stop_reason, rc = "all nodes exited", 1
        finally:
            self.shutdown()
            for s, h in old.items():
                signal.signal(s, h)
        _log(f"stopped ({self.stop_reason})")
        return rc

    def _on_signal(self, signum, _frame) -> None:
        self.stop_reason = signal.Signals(signum).name

    def shutdown(self) -> None:
        live = [p for p in self.procs.values() if p.poll() is None]
        for sig, wait in ((signal.SIGINT, self.grace), (signal.SIGTERM, 2.0), (signal.SIGKILL, 2.0)):
            for p in live:
                try:
                    p.send_signal(sig)
                except ProcessLookupError:
                    pass
            end = time.monotonic() + wait
            while time.monotonic() < end and any(p.poll() is None for p in live):
                time.sleep(0.05)
            live = [p for p in live if p.poll() is None]
            if not live:
                return
            _log(f"{len(live)} node(s) still running after {sig.name}")


def main(argv: list[str] | None = None) -> int:
    p = _Parser(prog=PROG, description="Run the maa_ros graph as processes (what `ros2 launch maa_ros ...` starts).")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    lp = sub.add_parser("launch", help="start a graph", usage=f"{PROG} launch GRAPH [name:=value ...] [--dry-run] [--grace S]")
    lp.add_argument("graph", help=f"one of: {', '.join(launch_spec.GRAPHS)}")
    lp.add_argument("--dry-run", action="store_true", help="print the node commands and exit")
    lp.add_argument("--grace", type=float, default=10.0, help="seconds nodes get to stop after SIGINT")
    ap = sub.add_parser("args", help="list a graph's launch arguments")
    ap.add_argument("graph")
    argv = list(sys.argv[1:] if argv is None else argv)
    launch_args = [a for a in argv if ":=" in a]  # name:=value items may stand anywhere after the graph
    args = p.parse_args([a for a in argv if ":=" not in a])
    if launch_args and args.command != "launch":
        p.error(f"{args.command}: takes no name:=value arguments")
    try:
        if args.command == "args":
            if args.graph not in launch_spec.GRAPHS:
                raise MaaError(f"unknown launch {args.graph!r} (available: {', '.join(launch_spec.GRAPHS)})")
            for a in launch_spec.GRAPHS[args.graph][0]:
                print(f"{a.name + ':=' + a.default:<24} {a.help}" + (f" ({'|'.join(a.choices)})" if a.choices else ""))
            return 0
        nodes = launch_spec.build(args.graph, parse_launch_args(launch_args))
    except MaaError as e:
        return exit_code(e, PROG)
    if args.dry_run:
        for n in nodes:
            print(shlex.join(n.command()))
        return 0
    return ProcessGraph(nodes, grace=args.grace).run()


if __name__ == "__main__":
    sys.exit(main())
