"""How do the dataset's own checkpoints do in the evaluation protocol? (data diagnostic)

    .venv/bin/python benchmarks/checkpoint_generalization.py --data data/reference-cpu [--tasks reach,button-press]

For every run of every seen task, its last checkpoint (success 1 on the run's fixed training
configuration by construction) is evaluated in the paper's 5 random initial configurations
(configuration seed 0, the same ones `maa eval` uses). Prints mean, top-5 and qualified rate per task.
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
from maa_core.evaluation.runner import EvalSettings, evaluate_params  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("data/reference-cpu"))
    ap.add_argument("--tasks", help="comma-separated (default: every task of the checkpoints)")
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    ck = PolicyDataset(a.data / "checkpoints")
    last: dict[tuple[str, str], int] = {}
    for i, m in enumerate(ck.meta()):
        last[(m["task"], m["source"]["run"])] = i  # records of a run are in step order
    want = set(a.tasks.split(",")) if a.tasks else None
    keys = [k for k in last if want is None or k[0] in want]
    scores = evaluate_params(ck.spec, np.stack([ck[last[k]].params for k in keys]), [k[0] for k in keys],
                             EvalSettings(workers=a.workers))
    out = {}
    for task in dict.fromkeys(k[0] for k in keys):
        r = [s.success_rate for k, s in zip(keys, scores) if k[0] == task]
        out[task] = {"runs": len(r), "mean": float(np.mean(r)), "top5": top_k_mean(r, 5), "qualified": qualified_rate(r)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
