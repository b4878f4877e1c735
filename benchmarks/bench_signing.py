"""Cost of actor signatures (maa_core/signing.py) on a go2-wtw blob: signing (generator worker),
the controller's check (executor, before the validator), and whether that check stalls another
Python thread (the control loop is one): the longest gap between iterations of a thread spinning on
time.perf_counter() while checks run, beside the same thread while the main thread sleeps and while
it holds the GIL in pure Python for as long as one check takes (switch interval 0.5 ms, the
controller's `control.gil_switch_interval_s`).

    .venv/bin/python benchmarks/bench_signing.py [--spec go2-wtw] [--repeats 30]
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time

import numpy as np

from maa_core.actor_io import ActorBlob
from maa_core.signing import Signer, TrustedKeys
from maa_core.specs import get_spec


def _spinning(stop: threading.Event, out: list) -> None:
    last, gap = time.perf_counter(), 0.0
    while not stop.is_set():
        now = time.perf_counter()
        gap, last = max(gap, now - last), now
    out.append(gap)


def _python_for(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:  # holds the GIL except at switch-interval boundaries
        sum(range(1000))


def main(argv=None) -> dict:
    p = argparse.ArgumentParser()
    p.add_argument("--spec", default="go2-wtw")
    p.add_argument("--repeats", type=int, default=30)
    a = p.parse_args(argv)
    spec = get_spec(a.spec)
    data = ActorBlob(spec, np.random.default_rng(0).normal(size=spec.num_params).astype(np.float32), "b", "p").to_bytes()
    signer = Signer.generate()
    trust = TrustedKeys({signer.public_key: "bench"})
    line = signer.sign(data).to_text()
    sign_s, check_s = [], []
    for _ in range(a.repeats):
        t = time.perf_counter()
        signer.sign(data)
        sign_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        trust.check(data, line)
        check_s.append(time.perf_counter() - t)
    sys.setswitchinterval(0.0005)
    med = float(np.median(check_s))
    gaps = {}
    for kind, work in (("sleep", lambda: time.sleep(med)), ("check", lambda: trust.check(data, line)),
                       ("python", lambda: _python_for(med))):
        stop, out = threading.Event(), []
        th = threading.Thread(target=_spinning, args=(stop, out))
        th.start()
        time.sleep(0.01)
        for _ in range(a.repeats):
            work()
        stop.set()
        th.join()
        gaps[kind] = round(1e3 * out[0], 2)
    res = {"spec": spec.name, "blob_bytes": len(data),
           "sign_ms_median": round(1e3 * float(np.median(sign_s)), 2),
           "check_ms_median": round(1e3 * float(np.median(check_s)), 2),
           "check_ms_max": round(1e3 * float(np.max(check_s)), 2),
           "other_thread_max_gap_ms": gaps}
    print(json.dumps(res))
    return res


if __name__ == "__main__":
    main()
