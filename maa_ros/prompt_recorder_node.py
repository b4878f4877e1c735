"""Prompt recorder: cuts prompt windows out of a robot's state/action stream.

Subscribes  <steps_topic>        std_msgs/Float32MultiArray (best-effort): rows in the prompt layout
                                 (T >= 1), e.g. what the Go2 controller node executed; or, with
                                 input "joint_state": <joint_state_topic> and <joint_command_topic>,
                                 sensor_msgs/JointState (best-effort): state = position || velocity,
                                 action = <action_field> of the latest command.
Publishes   <windows_topic>      every window (reliable, volatile)
            <prompt_topic>       a window sent as a prompt: ~/send_prompt, or every one with auto_send
            /diagnostics
Services    ~/send_prompt        std_srvs/Trigger  send the latest window to the generator
            ~/save               std_srvs/Trigger  write the kept windows to a new bag in save_dir
"""
from __future__ import annotations

import time
from collections import deque
from pathlib import Path

import numpy as np
from sensor_msgs.msg import JointState
from std_msgs.msg import Float32MultiArray
from std_srvs.srv import Trigger

from maa_core import prompts
from maa_core.errors import MaaError, check
from maa_core.trajectory import Trajectory

from . import qos
from .messages import prompt_from_msg, prompt_to_msg
from .node_util import MaaNode, run


class PromptRecorderNode(MaaNode):
    executable = "maa_prompt_recorder"

    def __init__(self):
        super().__init__()
        self.windower = prompts.Windower(self.param("window"), self.param("stride"))
        self.windows: deque = deque(maxlen=max(1, self.param("max_windows")))
        self.unsaved = 0
        self.last_command = None
        self._last_err = ("", 0.0)
        self.windows_pub = self.create_publisher(Float32MultiArray, self.param("windows_topic"), qos.PROMPT)
        self.prompt_pub = self.create_publisher(Float32MultiArray, self.param("prompt_topic"), qos.PROMPT)
        mode = self.param("input")
        if mode == "joint_state":
            self.create_subscription(JointState, self.param("joint_state_topic"), self._on_joint_state, qos.STATE)
            self.create_subscription(JointState, self.param("joint_command_topic"), self._on_command, qos.STATE)
        else:
            if mode != "steps":
                self.health.error(f"input {mode!r}: expected 'steps' or 'joint_state'; using 'steps'")
            self.create_subscription(Float32MultiArray, self.param("steps_topic"), self._on_steps, qos.STATE)
        self.create_service(Trigger, "~/send_prompt", self._on_send)
        self.create_service(Trigger, "~/save", self._on_save)
        self.health.ok(f"recording {mode} into windows of {self.windower.window} steps")

    def _bad_input(self, message: str) -> None:
        """One diagnostic line per distinct problem (a 50 Hz stream must not flood the log)."""
        self.health.count("steps_rejected")
        last, when = self._last_err
        if message != last or time.monotonic() - when > 5.0:
            self._last_err = (message, time.monotonic())
            self.health.error(message)

    def _on_steps(self, msg: Float32MultiArray) -> None:
        try:
            chunk = prompt_from_msg(msg, where="step")
        except MaaError as e:
            self._bad_input(str(e))
            return
        self._add(chunk)

    def _on_command(self, msg: JointState) -> None:
        self.last_command = msg

    def _on_joint_state(self, msg: JointState) -> None:
        try:
            check(self.last_command is not None, "joint_state: no command received yet on "
                  f"{self.param('joint_command_topic')}")
            field = self.param("action_field")
            check(field in ("position", "velocity", "effort"), f"action_field {field!r}: expected position, velocity or effort")
            state = np.concatenate([np.asarray(msg.position, np.float32), np.asarray(msg.velocity, np.float32)])
            action = np.asarray(getattr(self.last_command, field), np.float32)
            check(state.size > 0 and action.size > 0, "joint_state: empty state or command")
            chunk = Trajectory(state[None], action[None]).validate(where="joint_state")
        except MaaError as e:
            self._bad_input(str(e))
            return
        self._add(chunk)

    def _add(self, chunk: Trajectory) -> None:
        self.health.count("steps", len(chunk))
        for w in self.windower.push(chunk):
            self.windows.append(w)
            self.unsaved = min(self.unsaved + 1, len(self.windows))
            msg = prompt_to_msg(w)
            self.windows_pub.publish(msg)
            self.health.count("windows")
            if self.param("auto_send"):
                self.prompt_pub.publish(msg)
                self.health.count("prompts_sent")
            self.health.ok(f"window {prompts.prompt_id(w)} ({len(w)} steps)")

    def _on_send(self, req, resp):
        if not self.windows:
            resp.success, resp.message = False, f"no window recorded yet (need {self.windower.window} steps)"
            return resp
        w = self.windows[-1]
        self.prompt_pub.publish(prompt_to_msg(w))
        self.health.count("prompts_sent")
        resp.success, resp.message = True, f"sent prompt {prompts.prompt_id(w)}"
        self.health.ok(resp.message)
        return resp

    def save(self) -> Path:
        d = self.param("save_dir")
        check(bool(d), "save: the save_dir parameter is empty")
        check(len(self.windows) > 0, "save: no window recorded yet")
        Path(d).mkdir(parents=True, exist_ok=True)
        path = Path(d) / time.strftime("prompts-%Y%m%d-%H%M%S")
        n = 0
        while path.exists():
            n += 1
            path = Path(d) / f"{time.strftime('prompts-%Y%m%d-%H%M%S')}-{n}"
        prompts.write_prompts_to_bag(path, list(self.windows), storage=self.param("save_storage"))
        self.unsaved = 0
        return path

    def _on_save(self, req, resp):
        try:
            path = self.save()
            resp.success, resp.message = True, f"saved {len(self.windows)} windows to {path}"
            self.health.ok(resp.message)
        except (MaaError, OSError) as e:
            resp.success, resp.message = False, str(e)
            self.health.error(str(e))
        return resp

    def close(self) -> None:
        if self.param("save_dir") and self.unsaved:
            try:
                self.get_logger().info(f"saved windows to {self.save()}")
            except (MaaError, OSError) as e:
                self.get_logger().error(f"save on shutdown: {e}")


def main(args=None) -> int:
    return run(PromptRecorderNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
