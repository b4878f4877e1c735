"""Real-time settings of the controller's threads (Linux): FIFO priority and CPU pinning. Both are
optional: without the rights (CAP_SYS_NICE, an rtprio limit, the CPU in the cpuset) they only log."""
from __future__ import annotations

import logging
import os
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
