"""How do the dataset's own checkpoints do in the evaluation protocol? (data diagnostic)

    .venv/bin/python benchmarks/checkpoint_generalization.py --data data/reference-cpu [--tasks reach,button-press]
    .venv/bin/python benchmarks/checkpoint_generalization.py --data data/robosuite-cpu --robot Sawyer --midpoints

For every run of every seen task, its last checkpoint (success 1 on the run's fixed training
configuration by construction) is evaluated in the paper's 5 random initial configurations
(configuration seed 0, the same ones `maa eval` uses). Prints mean, top-5 and qualified rate per task.
Robosuite tasks run on --robot (default Sawyer, the paper's evaluation robot). --midpoints also scores
the parameter midpoint of each pair of consecutive runs of a task (are runs aligned in parameter space?).
"""
import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from maa_core.dataset import PolicyDataset  # noqa: E402
from maa_core.evaluation.metrics import qualified_rate, top_k_mean  # noqa: E402
from maa_core.evaluation.runner import EvalSettings, evaluate_params, suite_for  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("data/reference-cpu"))
    ap.add_argument("--tasks", help="comma-separated (default: every task of the checkpoints)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--robot", help="Robosuite tasks: the robot (default Sawyer)")
    ap.add_argument("--midpoints", action="store_true", help="also score midpoints of consecutive runs' last checkpoints")
    ap.add_argument("--stop-after-success", type=int, default=None, help="end episodes N steps after success")
    a = ap.parse_args()
    ck = PolicyDataset(a.data / "checkpoints")
    last: dict[tuple[str, str], int] = {}
    for i, m in enumerate(ck.meta()):
        last[(m["task"], m["source"]["run"])] = i  # records of a run are in step order
    want = set(a.tasks.split(",")) if a.tasks else None
    keys = [k for k in last if want is None or k[0] in want]
    suite = suite_for([k[0] for k in keys], a.robot)
    settings = EvalSettings(workers=a.workers, stop_after_success=a.stop_after_success)
    params = {k: ck[last[k]].params for k in keys}
    pairs = [(k1, k2) for t in dict.fromkeys(k[0] for k in keys)
             for k1, k2 in zip([k for k in keys if k[0] == t], [k for k in keys if k[0] == t][1:])] if a.midpoints else []
    todo = [params[k] for k in keys] + [(params[k1] + params[k2]) / 2 for k1, k2 in pairs]
    tasks = [k[0] for k in keys] + [k1[0] for k1, _ in pairs]
    scores = [s.success_rate for s in evaluate_params(ck.spec, np.stack(todo), tasks, settings, suite)]
    runs, mids = scores[:len(keys)], scores[len(keys):]
    out = {"robot": getattr(suite, "robot", None)}
    for task in dict.fromkeys(k[0] for k in keys):
        r = [s for k, s in zip(keys, runs) if k[0] == task]
        out[task] = {"runs": len(r), "mean": float(np.mean(r)), "top5": top_k_mean(r, 5), "qualified": qualified_rate(r)}
        m = [s for (k1, _), s in zip(pairs, mids) if k1[0] == task]
        if m:
            out[task]["midpoints"] = {"pairs": len(m), "mean": float(np.mean(m)), "any_success": int(sum(x > 0 for x in m))}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
