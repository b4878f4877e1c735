"""Where a generator's output lands, by kind of prompt: cosine of the generated parameters to the nearest
training checkpoint, and whether that checkpoint is of the prompt's own run / task (no simulation).

    .venv/bin/python benchmarks/prompt_fit.py runs/table4-runpair/gen-cpu [--data data/reference-cpu]

Groups: seen-task prompts the evaluation uses (first 20 per Table-4 task), the other seen-task prompts
(the ones `reproduce_table4.py --pairing run` trains on), and 64 checkpoints' own trajectories.
"""
import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from maa_core.dataset import PolicyDataset  # noqa: E402
from maa_core.evaluation.novelty import nearest_cosine  # noqa: E402
from maa_core.pipeline import PolicyGenerator  # noqa: E402
from reproduce_table4 import eval_runs  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("generator", type=Path)
    ap.add_argument("--data", type=Path, default=Path("data/reference-cpu"))
    ap.add_argument("--prompts-per-task", type=int, default=20)
    ap.add_argument("--steps", type=int, help="DDIM steps (default: the generator's)")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    ck, pr = PolicyDataset(a.data / "checkpoints"), PolicyDataset(a.data / "prompts")
    bank, cm = ck.params(), ck.meta()
    gen = PolicyGenerator.from_pretrained(a.generator, device="cpu")
    held, seen = eval_runs(a.data, a.prompts_per_task), set(ck.tasks())
    groups = {"evaluation prompts (seen tasks)": [], "other prompts of seen tasks": [], "checkpoints' own trajectories": []}
    for i, m in enumerate(pr.meta()):
        if m["task"] in seen:
            groups["evaluation prompts (seen tasks)" if m["source"]["run"] in held else "other prompts of seen tasks"].append(
                (m, pr[i].trajectories[0]))
    for i in np.random.default_rng(0).choice(len(cm), 64, replace=False):
        groups["checkpoints' own trajectories"].append((cm[i], ck[int(i)].trajectories[0]))
    print("| prompts | n | cos → nearest checkpoint | nearest is of the prompt's run | … of its task |")
    print("| --- | --- | --- | --- | --- |")
    for name, items in groups.items():
        out = gen.generate([t for _, t in items], num_policies=1, seed=0, num_inference_steps=a.steps).params
        best, idx = nearest_cosine(out.reshape(len(items), -1), bank)
        run = np.mean([cm[j]["source"]["run"] == m["source"]["run"] for (m, _), j in zip(items, idx)])
        task = np.mean([cm[j]["task"] == m["task"] for (m, _), j in zip(items, idx)])
        print(f"| {name} | {len(items)} | {best.mean():.3f} | {run:.2f} | {task:.2f} |")


if __name__ == "__main__":
    main()
