"""Bag prompt player: publishes the prompts a ROS 2 bag (sqlite3 or mcap) holds.

Reads with `maa_core.prompts.read_prompts_from_bag` (the same reader `maa generate --bag` uses).
Publishes   <prompt_topic>  std_msgs/Float32MultiArray  (reliable, volatile, depth 10)
            /diagnostics
Services    ~/play          std_srvs/Trigger  (re)play the bag named by the `bag` parameter
Waits for `wait_for_subscribers` matched subscribers (at most `wait_timeout` s) before playing.
"""
from __future__ import annotations

import time

from std_msgs.msg import Float32MultiArray
from std_srvs.srv import Trigger

from maa_core.errors import MaaError
from maa_core.prompts import read_prompts_from_bag
from maa_core.resources import resolve

from . import qos
from .messages import prompt_to_msg
from .node_util import MaaNode, run


class BagPlayerNode(MaaNode):
    executable = "maa_bag_player"

    def __init__(self):
        super().__init__()
        self.pub = self.create_publisher(Float32MultiArray, self.param("prompt_topic"), qos.PROMPT)
        self.create_service(Trigger, "~/play", self._on_play)
        self.items: list = []
        self.index = 0
        self.waiting_since = None
        self.timer = None
        if self.param("bag"):
            self._start()
        else:
            self.health.ok("idle: no bag parameter set")

    def _start(self) -> bool:
        bag = self.param("bag")
        bag = str(resolve(bag, "bags")) if bag else bag  # a path, or a bag the package ships (bags/<name>)
        window = self.param("window")
        try:
            self.items = read_prompts_from_bag(bag, topic=self.param("topic") or None, window=window or None)
        except MaaError as e:
            self.health.error(f"bag: {e}")
            return False
        if not self.items:
            self.health.warn(f"bag {bag}: no prompts")
            return False
        self.index, self.waiting_since = 0, time.monotonic()
        if self.timer is not None:
            self.destroy_timer(self.timer)
        self.timer = self.create_timer(1.0 / max(self.param("rate"), 1e-3), self._tick)
        self.health.ok(f"bag {bag}: {len(self.items)} prompts to play", bag=bag, prompts=len(self.items))
        return True

    def _tick(self) -> None:
        need = self.param("wait_for_subscribers")
        if (self.waiting_since is not None and self.pub.get_subscription_count() < need
                and time.monotonic() - self.waiting_since < self.param("wait_timeout")):
            return
        if self.waiting_since is not None and self.pub.get_subscription_count() < need:
            self.health.warn(f"playing with {self.pub.get_subscription_count()} of {need} subscribers after {self.param('wait_timeout')} s")
        self.waiting_since = None
        pid, traj = self.items[self.index]
        self.pub.publish(prompt_to_msg(traj))
        self.health.count("prompts_published")
        self.health.ok(f"published prompt {pid} ({self.index + 1}/{len(self.items)})", prompt_id=pid)
        self.index += 1
        if self.index >= len(self.items):
            if self.param("loop"):
                self.index = 0
            else:
                self.destroy_timer(self.timer)
                self.timer = None
                self.health.ok(f"played {len(self.items)} prompts")

    def _on_play(self, req, resp):
        resp.success = self._start()
        resp.message = self.health.message
        return resp


def main(args=None) -> int:
    return run(BagPlayerNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
