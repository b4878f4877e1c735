"""Real-time settings of the controller (Linux): FIFO priority and CPU pinning of its threads, and a
limit on how deeply idle CPUs may sleep. All optional: without the rights (CAP_SYS_NICE, an rtprio
limit, the CPU in the cpuset, write access to /dev/cpu_dma_latency) they only log."""
from __future__ import annotations

import logging
import os
import struct
import threading

log = logging.getLogger("maa.go2.controller")  # one logger for the controller's three files


def set_rt_priority(prio: int, what: str) -> None:
    if prio <= 0:
        return
    try:
        os.sched_setscheduler(threading.get_native_id(), os.SCHED_FIFO, os.sched_param(prio))
    except (OSError, AttributeError) as e:  # needs CAP_SYS_NICE / an rtprio limit
        log.warning("%s runs without real-time priority (%s)", what, e)


def pin_to_cpu(cpu: int) -> bool:
    """Pin the calling thread to one CPU (cpu < 0: leave it). Optional: a failure only logs."""
    if cpu < 0:
        return False
    try:
        os.sched_setaffinity(threading.get_native_id(), {cpu})
    except (OSError, ValueError, AttributeError) as e:  # no such CPU, not in the cpuset, not Linux
        log.warning("control loop not pinned to CPU %d (%s)", cpu, e)
        return False
    log.info("control loop pinned to CPU %d", cpu)
    return True


CPU_LATENCY_DEVICE = "/dev/cpu_dma_latency"


def hold_cpu_wakeup_latency(us: int, device: str | None = None) -> int | None:
    """Ask the kernel (PM QoS) to keep every CPU's wake-up latency within `us` microseconds for as long
    as the returned file descriptor stays open (`release_cpu_wakeup_latency`); us < 0: leave it, None.
    Why: code that runs after a CPU idled runs cold. On the 2-core VM of BENCHMARKS.md, a 5 µs safety
    check took 210 µs after a 20 ms sleep in a deep idle state, 10 µs with this held at 0. The cost:
    idle CPUs of the whole machine poll instead of sleeping (power, heat) while the controller runs."""
    if us < 0:
        return None
    try:
        fd = os.open(device or CPU_LATENCY_DEVICE, os.O_WRONLY)
    except OSError as e:  # root only by default
        log.warning("CPU wake-up latency not limited (%s): ticks after idle run slower", e)
        return None
    try:
        os.write(fd, struct.pack("i", int(us)))  # the kernel reads one native 32-bit integer
    except OSError as e:
        os.close(fd)
        log.warning("CPU wake-up latency not limited (%s): ticks after idle run slower", e)
        return None
    log.info("CPU wake-up latency limited to %d us while the controller runs", us)
    return fd


def release_cpu_wakeup_latency(fd: int | None) -> None:
    """Ends the request of `hold_cpu_wakeup_latency` (closing the descriptor is what the kernel counts)."""
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass
