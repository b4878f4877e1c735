#!/usr/bin/env python3
"""One SAC run of the paper's collection (task, seed) into a dataset root; CUDA when present.

    training/sac_run.py --task door-open --seed 0 --out data/sac --checkpoints 190 --prompts 20
    training/sac_run.py --task lift --spec robosuite-sac --out data/rs-sac     # Robosuite, Panda
Resumable like `maa collect` (same job code, same keys). Extra SAC settings: --set key=value.
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    import yaml

    from maa_core.collect import Job, run_jobs
    from maa_core.collect.recipe import resolve_tasks
    from maa_core.errors import MaaError

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.add_argument("--checkpoints", type=int, default=190)
    p.add_argument("--prompts", type=int, default=20)
    p.add_argument("--spec", default="metaworld-sac")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    a = p.parse_args()
    try:
        cfg = {k: yaml.safe_load(v) for k, v in (kv.split("=", 1) for kv in a.set)}
        job = Job(resolve_tasks([a.task])[0], a.seed, "sac", a.checkpoints, a.prompts, json.dumps(cfg, sort_keys=True))
        print(json.dumps(run_jobs([job], a.out, spec_name=a.spec)[0], indent=1, default=str))
    except MaaError as e:
        print(f"sac_run: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
