"""A stand-in for the Go2's wireless remote: writes `WirelessController_` samples on
rt/wirelesscontroller, the topic the robot publishes its remote on, so the controller reads them
exactly as it reads the real remote. For the simulated Go2 (and tests); on the robot the real remote
is the one source.

`maa go2-gamepad --domain 1 --press L2+A --press start --sticks ly=0.5 --for 3 --press L2+B` plays a
script; without steps, on a terminal, it is a keyboard remote (`KEYBOARD_HELP` below)."""
from __future__ import annotations

import argparse
import os
import select
import sys
import time

from ...errors import MaaError, check
from ..config import load_robot_config
from ..dds import TOPIC_JOYSTICK, init_dds
from ..state import Joystick

STICKS = ("lx", "ly", "rx", "ry")


def chord_mask(text: str) -> int:
    """'L2+B' -> the key bit mask (names: state.Joystick.KEY_BITS)."""
    names = [n.strip() for n in text.split("+") if n.strip()]
    check(bool(names), f"chord {text!r}: expected key names joined by '+', e.g. L2+B")
    unknown = [n for n in names if n not in Joystick.KEY_BITS]
    check(not unknown, f"chord {text!r}: unknown key(s) {', '.join(unknown)} (known: {', '.join(Joystick.KEY_BITS)})")
    return Joystick.mask(names)


def parse_sticks(text: str) -> dict:
    """'ly=0.5,rx=-0.2' -> {'ly': 0.5, 'rx': -0.2}; values in [-1, 1]."""
    out = {}
    for item in text.split(","):
        k, sep, v = item.partition("=")
        k = k.strip()
        check(sep == "=" and k in STICKS, f"sticks {text!r}: expected NAME=VALUE items with NAME in {', '.join(STICKS)}")
        try:
            x = float(v)
        except ValueError:
            raise MaaError(f"sticks {text!r}: {v.strip()!r} is not a number") from None
        check(-1.0 <= x <= 1.0, f"sticks {text!r}: {k}={x:g} outside [-1, 1]")
        out[k] = x
    return out


class RemotePublisher:
    """Writes the remote's state (sticks, held keys) on rt/wirelesscontroller; `send()` writes one
    sample, `hold(s)` keeps sending at `rate_hz`, as the robot republishes its remote continuously."""

    def __init__(self, domain: int = 1, interface: str = "lo", rate_hz: float = 50.0):
        from unitree_sdk2py.core.channel import ChannelPublisher
        from unitree_sdk2py.idl.unitree_go.msg.dds_ import WirelessController_
        init_dds(domain, interface)
        self._type = WirelessController_
        self._pub = ChannelPublisher(TOPIC_JOYSTICK, WirelessController_)
        self._pub.Init()
        self.period = 1.0 / rate_hz
        self.sticks = dict.fromkeys(STICKS, 0.0)
        self.keys = 0
        self.sent = 0

    def _sample(self):
        s = self.sticks
        return self._type(float(s["lx"]), float(s["ly"]), float(s["rx"]), float(s["ry"]), int(self.keys))

    def send(self) -> None:
        self._pub.Write(self._sample())
        self.sent += 1

    def hold(self, seconds: float) -> None:
        """Keep sending the current state for `seconds` (at least one sample)."""
        end = time.monotonic() + seconds
        while True:
            self.send()
            if time.monotonic() + self.period > end:
                break
            time.sleep(self.period)

    def press(self, mask: int, seconds: float) -> None:
        """Hold the keys `seconds`, then release them (one released sample)."""
        self.keys |= mask
        self.hold(seconds)
        self.keys &= ~mask
        self.send()

    def wait_matched(self, timeout_s: float) -> bool:
        """One sample of the current state, written once a reader has matched (DDS discovery); False,
        nothing written, if none did within `timeout_s`. A script's first press is then not lost."""
        ok = bool(self._pub.Write(self._sample(), timeout_s))
        self.sent += ok
        return ok


KEYBOARD_HELP = """keyboard remote (sticks step by 0.25, keys held 0.3 s):
  w / s   left stick forward / back (vx)      a / d   left stick left / right (vy)
  q / e   right stick left / right (yaw)      space   centre the sticks
  b       L2+B  damp (at once, any mode)      u       L2+A  stand up and hold
  r       START run the policy (from stand)   x       quit (Ctrl-C too)"""

KEYBOARD = {"w": ("ly", 1), "s": ("ly", -1), "a": ("lx", -1), "d": ("lx", 1), "q": ("rx", -1), "e": ("rx", 1)}
KEYBOARD_CHORDS = {"b": "L2+B", "u": "L2+A", "r": "start"}


def run_keyboard(remote: RemotePublisher, step: float = 0.25, hold_s: float = 0.3) -> None:
    """A terminal has no key-release events: a letter steps a stick (it stays there), a chord key holds
    its keys `hold_s`."""
    import termios
    import tty
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    print(KEYBOARD_HELP, flush=True)
    release_at = 0.0
    try:
        tty.setcbreak(fd)
        while True:
            ready, _, _ = select.select([sys.stdin], [], [], remote.period)
            now = time.monotonic()
            if ready:
                c = os.read(fd, 1).decode(errors="ignore").lower()
                if c in ("x", "\x03", ""):
                    break
                if c in KEYBOARD:
                    k, sign = KEYBOARD[c]
                    remote.sticks[k] = max(-1.0, min(1.0, round(remote.sticks[k] + sign * step, 4)))
                elif c == " ":
                    remote.sticks = dict.fromkeys(STICKS, 0.0)
                elif c in KEYBOARD_CHORDS:
                    remote.keys, release_at = chord_mask(KEYBOARD_CHORDS[c]), now + hold_s
                s = remote.sticks
                print(f"\rlx {s['lx']:+.2f}  ly {s['ly']:+.2f}  rx {s['rx']:+.2f}  keys {KEYBOARD_CHORDS.get(c, '-'):6s}",
                      end="", flush=True)
            if remote.keys and now >= release_at:
                remote.keys = 0
            remote.send()
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        remote.sticks, remote.keys = dict.fromkeys(STICKS, 0.0), 0
        remote.send()  # the remote lets go: centred, no key
        print()


class _Step(argparse.Action):
    """--press / --sticks / --for, kept in command-line order."""

    def __call__(self, parser, ns, value, option=None):
        steps = list(getattr(ns, "steps", None) or [])
        steps.append((self.dest, value))
        ns.steps = steps


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--robot", default="go2", help="robot config name or YAML path (checked like the controller's)")
    p.add_argument("--domain", type=int, default=1, help="DDS domain id of the simulated Go2 (the real robot uses 0)")
    p.add_argument("--interface", default="lo", help="network interface for DDS")
    p.add_argument("--rate", type=float, default=50.0, help="samples per second (the remote republishes continuously)")
    p.add_argument("--hold", type=float, default=0.3, help="seconds each --press holds its keys")
    p.add_argument("--press", action=_Step, dest="press", metavar="CHORD", help="press keys, e.g. L2+B, L2+A, start (repeatable)")
    p.add_argument("--sticks", action=_Step, dest="sticks", metavar="AXES",
                   help="set sticks, e.g. ly=0.5,rx=-0.2 (kept until changed; centred at the end)")
    p.add_argument("--for", action=_Step, dest="wait", type=float, metavar="S", help="keep sending the current state S seconds")
    p.add_argument("--wait-match", type=float, default=5.0, help="seconds to wait for a reader before the first step")


def run_remote(args) -> int:
    load_robot_config(args.robot)  # the same config error a controller would give
    check(args.rate > 0 and args.hold > 0, "--rate and --hold must be > 0")
    steps = getattr(args, "steps", None) or []
    # bad input is refused before anything is sent
    plan = [(k, chord_mask(v) if k == "press" else parse_sticks(v) if k == "sticks" else float(v)) for k, v in steps]
    check(all(v >= 0 for k, v in plan if k == "wait"), "--for: seconds must be >= 0")
    if not plan:
        check(sys.stdin.isatty(), "no --press/--sticks/--for given and standard input is not a terminal "
                                  "(the keyboard remote needs one)")
    remote = RemotePublisher(args.domain, args.interface, args.rate)
    if not plan:
        run_keyboard(remote, hold_s=args.hold)
        return 0
    if not remote.wait_matched(args.wait_match):
        print(f"maa go2-gamepad: no reader on {TOPIC_JOYSTICK} (domain {args.domain}) after {args.wait_match:g} s; "
              f"sending anyway", file=sys.stderr)
    for kind, value in plan:
        if kind == "press":
            remote.press(value, args.hold)
        elif kind == "sticks":
            remote.sticks.update(value)
            remote.send()
        else:
            remote.hold(value)
    remote.sticks, remote.keys = dict.fromkeys(STICKS, 0.0), 0  # let go at the end
    remote.hold(remote.period * 3)
    print(f"maa go2-gamepad: {remote.sent} samples sent on {TOPIC_JOYSTICK} (domain {args.domain})", flush=True)
    return 0
