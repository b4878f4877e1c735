"""Cost of recording a Go2 run (maa_core/go2/recording.py): the producer side (`Recorder.tick`, what
the controller's dispatcher thread pays per tick, never the loop) and the writer thread's throughput.

    .venv/bin/python benchmarks/bench_recorder.py [--ticks 5000]
"""
import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from maa_core.go2.recording import Recorder, RecorderConfig
from maa_core.go2.safety import Mode


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ticks", type=int, default=5000)
    args = ap.parse_args()
    n = args.ticks
    obs, act = np.random.default_rng(0).normal(size=(2, 70)).astype(np.float32), np.zeros(12, np.float32)
    with tempfile.TemporaryDirectory() as d:
        rec = Recorder(Path(d) / "b.mcap", cfg=RecorderConfig(queue_size=n + 1))
        put = np.zeros(n)
        t_start = time.perf_counter()
        for k in range(n):
            t0 = time.perf_counter()
            rec.tick(k, 0.02 * k, Mode.RUN, (0.5, 0.0, 0.0), (1, 0, 0, 0), obs[0], act)
            put[k] = time.perf_counter() - t0
        s = rec.close()
        wall = time.perf_counter() - t_start
        size = (Path(d) / "b.mcap").stat().st_size
    print(f"producer (Recorder.tick): p50 {1e6 * np.percentile(put, 50):.1f} us, p99 {1e6 * np.percentile(put, 99):.1f} us, "
          f"max {1e6 * put.max():.0f} us")
    print(f"writer: {n} RUN ticks (tick + step rows) in {wall:.2f} s = {1e3 * wall / n:.3f} ms/tick "
          f"({n / wall:.0f} ticks/s; the loop makes 50); file {size / n:.0f} B/tick (zstd); dropped {s['dropped_ticks']}")


if __name__ == "__main__":
    main()
