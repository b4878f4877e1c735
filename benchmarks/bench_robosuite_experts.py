"""Success rates of the scripted Robosuite experts (maa_core/envs/robosuite_experts.py).
Results go in BENCHMARKS.md, section "Robosuite scripted experts".

    nice -n 10 .venv/bin/python benchmarks/bench_robosuite_experts.py --seeds 30
    nice -n 10 .venv/bin/python benchmarks/bench_robosuite_experts.py --seeds 10 --tasks lift --robots Sawyer

Configuration = seed 0..N-1 (the object-placement seed, RobosuiteEnv.reset(config)); one episode of
at most 500 steps each, stopped at the first success. Prints one JSON line per (task, robot).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def measure(task: str, robot: str, n: int, max_steps: int) -> dict:
    from maa_core.envs import make_env

    env = make_env(task, robot=robot, seed=0, max_episode_steps=max_steps)
    expert = env.expert()
    wins, first, t0 = 0, [], time.perf_counter()
    for config in range(n):
        obs = env.reset(config)
        for t in range(max_steps):
            obs, _, success, done = env.step(expert(obs))
            if success:
                wins += 1
                first.append(t)
                break
            if done:
                break
    env.close()
    return {"task": task, "robot": robot, "configs": n, "success_rate": round(wins / n, 3),
            "mean_first_success": round(sum(first) / len(first), 1) if first else None,
            "seconds": round(time.perf_counter() - t0, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=30, help="configurations per task and robot")
    ap.add_argument("--tasks", nargs="+", default=["lift", "door", "nut-assembly"])
    ap.add_argument("--robots", nargs="+", default=["Panda", "Sawyer"])
    ap.add_argument("--max-steps", type=int, default=500)
    a = ap.parse_args(argv)
    if a.seeds < 1:
        print("maa: error: --seeds: must be >= 1", file=sys.stderr)
        return 2
    for robot in a.robots:
        for task in a.tasks:
            print(json.dumps(measure(task, robot, a.seeds, a.max_steps)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
