"""Collection benchmarks (results go in BENCHMARKS.md, section "Training-data collection").

    .venv/bin/python benchmarks/bench_collect.py steps      # env steps/s, 1 vs 2 worker processes
    .venv/bin/python benchmarks/bench_collect.py distill    # checkpoints/hour per task, distillation path
    .venv/bin/python benchmarks/bench_collect.py sac        # SAC env steps/s with updates (CPU; CUDA when present)
The reference dataset build is timed with the CLI itself:
    time nice .venv/bin/python -m maa_core collect --config config/dataset_reference_cpu.yaml --workers 2
"""
from __future__ import annotations

import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TASKS = ["reach", "door-open", "window-open", "plate-slide"]


def _steps_worker(n_steps: int, q) -> None:
    import torch

    torch.set_num_threads(1)
    from maa_core.envs import MetaWorldEnv, NumpyPolicy, rollout
    from maa_core.specs import get_spec

    torch.manual_seed(0)
    pol = NumpyPolicy(get_spec("metaworld-sac").build())
    envs = [MetaWorldEnv(t, seed=0) for t in TASKS]
    rollout(envs[0], pol, max_steps=50)  # warm-up
    done, t0, i = 0, time.perf_counter(), 0
    while done < n_steps:
        env = envs[i % len(envs)]
        done += len(rollout(env, pol, env.train_config).trajectory)
        i += 1
    q.put((done, time.perf_counter() - t0))


def bench_steps(n_steps: int = 20_000) -> dict:
    """Env steps/s of deployed-actor rollouts (the collection inner loop) in 1 and 2 processes."""
    ctx = mp.get_context("spawn")
    out = {}
    for w in (1, 2):
        q = ctx.Queue()
        ps = [ctx.Process(target=_steps_worker, args=(n_steps, q)) for _ in range(w)]
        for p in ps:
            p.start()
        res = [q.get() for _ in ps]
        for p in ps:
            p.join()
        out[w] = sum(n for n, _ in res) / max(t for _, t in res)
    return {"steps_per_s_1": round(out[1]), "steps_per_s_2": round(out[2]), "speedup": round(out[2] / out[1], 2)}


def bench_distill(tasks=("reach", "door-open", "plate-slide"), checkpoints: int = 16) -> dict:
    import torch

    torch.set_num_threads(1)
    from maa_core.collect.distill import distill_run

    out = {}
    for task in tasks:
        t0, c0 = time.perf_counter(), time.process_time()
        s = distill_run(task, 0, checkpoints, 3, {"prompt_steps": [0, 20, 50]})
        dt = time.process_time() - c0
        out[task] = {"seconds": round(time.perf_counter() - t0, 1), "cpu_seconds": round(dt, 1), "checkpoints": s["checkpoints"],
                     "checkpoints_per_hour_per_core": round(3600 * s["checkpoints"] / dt)}
    return out


def bench_sac(steps: int = 3000) -> dict:
    import torch

    torch.set_num_threads(1)
    from maa_core.collect.sac import sac_run

    t0, c0 = time.perf_counter(), time.process_time()
    s = sac_run("reach", 0, 10**6, 0, {"total_steps": steps, "start_steps": 500, "update_after": 500,
                                       "eval_every": 10**9, "prompt_steps": 0})
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    sps = s["env_steps"] / cpu  # per CPU-second (robust to a shared machine); wall below
    return {"device": s["device"], "env_steps": s["env_steps"], "seconds": round(dt, 1), "cpu_seconds": round(cpu, 1),
            "env_steps_per_s_with_updates": round(sps, 1),
            # extrapolation: after qualification one checkpoint per 5,000 env steps (paper cadence)
            "checkpoints_per_hour_after_qualification": round(3600 * sps / 5000, 1),
            "hours_for_1500_checkpoints_excluding_qualification": round(1500 * 5000 / sps / 3600, 1)}


if __name__ == "__main__":
    import argparse
    benches = {"steps": bench_steps, "distill": bench_distill, "sac": bench_sac}
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", nargs="?", default="steps", choices=benches)
    what = ap.parse_args().what
    print(json.dumps({what: benches[what]()}, indent=1))
