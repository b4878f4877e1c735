"""Generation latency on CPU: prompt trajectory -> decoded, loadable actors.

    .venv/bin/python benchmarks/bench_generate.py [--presets cpu paper] [--repeats 20]

Latency does not depend on trained weights, so the generators are untrained (same shapes).
Timed: behavior embedding + DDIM sampling + decoding + building the actor modules.
"""
import argparse
import statistics
import time

import numpy as np
import torch

from maa_core.pipeline import PolicyGenerator
from maa_core.trajectory import Trajectory


def bench(preset: str, n: int, repeats: int) -> float:
    gen = PolicyGenerator.untrained("metaworld-sac", preset=preset, device="cpu")
    rng = np.random.default_rng(0)
    prompt = Trajectory(rng.standard_normal((200, 39)), rng.uniform(-1, 1, (200, 4)), np.arange(200) > 100)

    def once():
        out = gen.generate(prompt, num_policies=n, seed=0)
        actors = [out.actor(0, k) for k in range(n)]
        assert actors[-1](torch.zeros(1, 39)).shape == (1, 4)

    once()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        once()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", nargs="+", default=["cpu", "paper"])
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| preset | 1 policy (ms) | 100 policies (ms) | policies/s (batched) |")
    print("|---|---|---|---|")
    for p in args.presets:
        t1 = bench(p, 1, args.repeats)
        t100 = bench(p, 100, max(3, args.repeats // 5))
        print(f"| {p} | {t1 * 1e3:.1f} | {t100 * 1e3:.0f} | {100 / t100:.0f} |")


if __name__ == "__main__":
    main()
