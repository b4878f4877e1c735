"""Preallocated robot state and motor command buffers (motor order), shared by the DDS interface,
the in-process simulator and the controller. Copying into these never allocates."""
from __future__ import annotations

import struct

import numpy as np

from ..errors import MaaError

NUM_MOTORS = 12


class LowState:
    """What one `LowState_` carries that the controller uses, plus when it arrived."""

    # the arrays are views of one float64 buffer in this order, so a copy is one numpy call
    LAYOUT = (("q", NUM_MOTORS), ("dq", NUM_MOTORS), ("tau", NUM_MOTORS), ("quat", 4), ("gyro", 3),
              ("accel", 3), ("foot_force", 4), ("remote", 4))
    SIZE = sum(n for _, n in LAYOUT)

    def __init__(self):
        self.buf = np.zeros(self.SIZE)
        o = 0
        for name, n in self.LAYOUT:
            setattr(self, name, self.buf[o:o + n])
            o += n
        # q, dq, tau (tau_est), quat (w, x, y, z: Unitree IMU order), gyro, accel, foot_force (FR, FL, RR, RL)
        self.quat[0] = 1.0
        self.tick = 0                            # robot's ms counter
        self.stamp = -np.inf                     # receive time, time.monotonic()
        # `remote` (in buf): the sticks lx, ly, rx, ry of LowState_.wireless_remote (`unpack_remote`); its keys:
        self.remote_keys = 0

    def copy_from(self, o: "LowState") -> None:
        np.copyto(self.buf, o.buf)
        self.tick, self.stamp, self.remote_keys = o.tick, o.stamp, o.remote_keys


# LowState_.wireless_remote: 40 bytes, little-endian: head[2], keys (uint16), then float32 lx, rx, ry,
# L2 (analog), ly, then 16 unused bytes (Unitree's xRockerBtnDataStruct)
REMOTE_BYTES = 40
_REMOTE = struct.Struct("<2xHfffff")
REMOTE_OFFSETS = {"keys": 2, "lx": 4, "rx": 8, "ry": 12, "ly": 20}   # byte offsets inside the 40


def pack_remote(keys: int, lx: float, ly: float, rx: float, ry: float) -> bytes:
    """The 40 wireless_remote bytes of a remote state (the L2 analog value is 1 while L2 is held)."""
    l2 = 1.0 if keys & (1 << Joystick.KEY_BITS["L2"]) else 0.0
    return _REMOTE.pack(int(keys) & 0xFFFF, lx, rx, ry, l2, ly).ljust(REMOTE_BYTES, b"\0")


def unpack_remote(data, offset: int = 0) -> tuple[int, float, float, float, float]:
    """wireless_remote bytes (at `offset` of `data`) -> (keys, lx, ly, rx, ry)."""
    keys, lx, rx, ry, _l2, ly = _REMOTE.unpack_from(data, offset)
    return keys, lx, ly, rx, ry


class Joystick:
    """rt/wirelesscontroller: sticks in [-1, 1] and the key bit field."""

    # bit positions of WirelessController_.keys (Unitree remote); the same 16 bits are bytes 2-3 of the
    # 40-byte LowState_.wireless_remote (head[2], keys, then float32 lx, rx, ry, L2 analog, ly)
    KEY_BITS = {"R1": 0, "L1": 1, "start": 2, "select": 3, "R2": 4, "L2": 5, "F1": 6, "F2": 7,
                "A": 8, "B": 9, "X": 10, "Y": 11, "up": 12, "right": 13, "down": 14, "left": 15}

    MAX_SAMPLES = 16  # samples one read may cover (the DDS reader's depth)

    def __init__(self):
        self.lx = self.ly = self.rx = self.ry = 0.0
        self.keys = 0  # OR of the samples the last read covered: a tap between two reads is seen
        # each of those samples' keys, oldest first: a chord counts only if one sample held all of it
        # (L2+A released, then B pressed, within one tick is not L2+B); n_samples 0: only `keys` is known
        self.sample_keys = [0] * self.MAX_SAMPLES
        self.n_samples = 0
        self.stamp = -np.inf

    def copy_from(self, o: "Joystick") -> None:
        self.lx, self.ly, self.rx, self.ry, self.keys, self.stamp = o.lx, o.ly, o.rx, o.ry, o.keys, o.stamp
        self.sample_keys[:] = o.sample_keys
        self.n_samples = o.n_samples

    def held(self, mask: int) -> bool:
        """Every key of `mask` down together in one sample of the last read."""
        if self.n_samples == 0:
            return (self.keys & mask) == mask
        ks = self.sample_keys
        for i in range(self.n_samples):
            if (ks[i] & mask) == mask:
                return True
        return False

    @classmethod
    def mask(cls, names) -> int:
        m = 0
        for n in names:
            if n not in cls.KEY_BITS:
                raise MaaError(f"joystick: unknown key {n!r} (known: {', '.join(cls.KEY_BITS)})")
            m |= 1 << cls.KEY_BITS[n]
        return m


class MotorCommand:
    """Per-motor PD target: tau = kp (q - q_meas) + kd (dq - dq_meas) + tau_ff. enabled=False: motor off."""

    def __init__(self):
        self.q = np.zeros(NUM_MOTORS)
        self.dq = np.zeros(NUM_MOTORS)
        self.kp = np.zeros(NUM_MOTORS)
        self.kd = np.zeros(NUM_MOTORS)
        self.tau = np.zeros(NUM_MOTORS)
        self.enabled = True

    def copy_from(self, o: "MotorCommand") -> None:
        np.copyto(self.q, o.q); np.copyto(self.dq, o.dq); np.copyto(self.kp, o.kp)
        np.copyto(self.kd, o.kd); np.copyto(self.tau, o.tau)
        self.enabled = o.enabled

    def set_damping(self, kd: float) -> None:
        self.q[:] = 0.0; self.dq[:] = 0.0; self.kp[:] = 0.0; self.kd[:] = kd; self.tau[:] = 0.0
        self.enabled = True

    def set_pd(self, q: np.ndarray, kp: float, kd: float) -> None:
        np.copyto(self.q, q); self.dq[:] = 0.0; self.kp[:] = kp; self.kd[:] = kd; self.tau[:] = 0.0
        self.enabled = True
