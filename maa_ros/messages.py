"""maa payloads <-> standard ROS 2 messages (rclpy flavour).

Prompts: `std_msgs/Float32MultiArray` in the layout of `maa_core.prompts`.
Actors: `std_msgs/UInt8MultiArray` whose data is an `ActorBlob` (safetensors bytes with spec,
generation id, prompt id and checksum in its header); layout dim[0] = ("safetensors", n, n).
A signed actor also carries dim[1] = (<signature line>, 0, 0) (maa_core/signing.py): readers that
look at dim[0] only, as every earlier one does, decode it unchanged.
"""
from __future__ import annotations

import array

import numpy as np
from std_msgs.msg import Float32MultiArray, MultiArrayDimension, UInt8MultiArray

from maa_core import prompts
from maa_core.actor_io import ActorBlob
from maa_core.errors import MaaError, check
from maa_core.specs import PolicySpec
from maa_core.trajectory import Trajectory

ACTOR_LABEL = "safetensors"
SIGNATURE_PREFIX = "maa-sig/"  # a layout dimension whose label starts so carries the blob's signature


def prompt_to_msg(traj: Trajectory) -> Float32MultiArray:
    return prompts.to_message(traj, Float32MultiArray, MultiArrayDimension,
                              as_data=lambda a: array.array("f", a.tobytes()))


def prompt_from_msg(msg: Float32MultiArray, where: str = "prompt",
                    max_values: int | None = prompts.DEFAULT_MAX_VALUES) -> Trajectory:
    return prompts.from_message(msg, where=where, max_values=max_values)


def actor_to_msg(blob: ActorBlob | bytes, signature: str = "") -> UInt8MultiArray:
    """`signature`: the line of `maa_core.signing.Signature.to_text()` for these exact bytes, or ""."""
    data = blob.to_bytes() if isinstance(blob, ActorBlob) else bytes(blob)
    msg = UInt8MultiArray()
    msg.layout.dim = [MultiArrayDimension(label=ACTOR_LABEL, size=len(data), stride=len(data))]
    if signature:
        msg.layout.dim.append(MultiArrayDimension(label=signature, size=0, stride=0))
    msg.data = array.array("B", data)  # what rclpy stores uint8[] as; avoids a per-element check on Humble
    return msg


def actor_bytes(msg: UInt8MultiArray) -> bytes:
    data = msg.data
    return data.tobytes() if isinstance(data, (array.array, np.ndarray)) else bytes(data)


def actor_signature(msg: UInt8MultiArray) -> str | None:
    """The signature line an actor message carries (unchecked), None when it carries none."""
    try:
        labels = [d.label for d in msg.layout.dim[1:]]
    except (AttributeError, TypeError):
        return None
    return next((lb for lb in labels if isinstance(lb, str) and lb.startswith(SIGNATURE_PREFIX)), None)


def actor_from_msg(msg: UInt8MultiArray, where: str = "actor", max_bytes: int | None = None,
                   expected_spec: PolicySpec | None = None) -> ActorBlob:
    """Decodes and checks an actor message: MaaError (one line) on truncated, NaN, wrong
    checksum, oversized or (with `expected_spec`) wrong spec."""
    blob = ActorBlob.from_bytes(actor_payload(msg, where, max_bytes), where=where, max_bytes=max_bytes)
    if expected_spec is not None:
        expected_spec.check_compatible(blob.spec, where=where)
    return blob


def actor_payload(msg: UInt8MultiArray, where: str = "actor", max_bytes: int | None = None) -> bytes:
    """The blob bytes of an actor message after the message-level checks (type, size limit, layout);
    the blob itself is decoded by `actor_from_msg` or, on the Go2, by the controller's validator."""
    try:
        n = len(msg.data)
        dims = [(d.label, d.size) for d in msg.layout.dim]
    except (AttributeError, TypeError) as e:
        raise MaaError(f"{where}: not a UInt8MultiArray ({e})") from None
    if max_bytes is not None:
        check(n <= max_bytes, f"{where}: {n} bytes exceeds the limit of {max_bytes}")
    if dims:
        check(dims[0] == (ACTOR_LABEL, n), f"{where}: layout says {dims[0]}, expected ({ACTOR_LABEL!r}, {n})")
    return actor_bytes(msg)
