"""Are generated Go2 walkers copies of training checkpoints? (issue #15 item 5, Zeng et al. 2025)

The students share a frozen base (4,940 of 139,532 parameters train), so the paper's cosine to the
nearest checkpoint is ~1 for every actor, copy or not. This measures instead, over the parameters
that differ between training checkpoints (evaluation/novelty.py):
  * centered cosine to the nearest training checkpoint (1: a copy);
  * distance to the nearest checkpoint / the bank's spacing (median checkpoint-to-nearest-other);
  * residual off the bank's affine hull, as a fraction of the distance to the bank's mean
    (0: an interpolation of training checkpoints; 1: nothing of it lies in their span);
  * frozen drift: how far an actor moved the parameters every checkpoint shares, over how far it
    moved the others (the autoencoder's reconstruction error shows up here, not above);
for the 16 unscreened candidates of every prompt (seed 0, as bench_go2_course.py draws them), and
beside them, as the reference for what a *new* policy looks like, the checkpoints of training runs
the bank does not hold (runs N..N+11: real students of other styles), and the noised-retrieval
baseline.

    .venv/bin/python benchmarks/go2_novelty.py --data data/go2-walk-v2 --runs 12 24 72 \\
        --generators runs/sparse/gen-{N} --prompt-sets heldout between outside --out benchmarks/results/sparse/novelty.json
"""
import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

HULL_RCOND = 1e-8  # least-squares cut-off of the hull projection (relative singular value)


def off_hull(x: np.ndarray, bank: np.ndarray) -> np.ndarray:
    """||x - projection of x on the affine hull of bank|| / ||x - mean(bank)||, per row of x (N, V)."""
    mu = bank.mean(0)
    q, r = np.linalg.qr((bank - mu).T)      # (V, M): spans the hull's directions
    q = q[:, np.abs(np.diag(r)) > HULL_RCOND * np.abs(np.diag(r)).max()]
    d = x - mu
    res = d - (d @ q) @ q.T
    return np.linalg.norm(res, axis=1) / np.maximum(np.linalg.norm(d, axis=1), 1e-12)


def stats(x) -> dict:
    x = np.asarray(x, float)
    return {"median": round(float(np.median(x)), 4), "p10": round(float(np.percentile(x, 10)), 4),
            "p90": round(float(np.percentile(x, 90)), 4), "n": int(len(x))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/go2-walk")
    ap.add_argument("--runs", type=int, nargs="+", required=True)
    ap.add_argument("--generators", required=True, help="path with {N} for the run count")
    ap.add_argument("--prompt-sets", nargs="+", default=["heldout"], choices=["heldout", "between", "outside"])
    ap.add_argument("--prompts", type=int, default=12)
    ap.add_argument("--candidates", type=int, default=16)
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch
    torch.set_num_threads(1)

    from bench_go2_course import made_prompts
    from sparse_bank import first_runs_bank, run_of
    from maa_core.collect.go2_walk import heldout_prompts
    from maa_core.dataset import PolicyDataset
    from maa_core.evaluation.baselines import NoiseConfig, build_retrieval_index, noised_retrieval
    from maa_core.evaluation.novelty import centered_nearest, nearest_cosine
    from maa_core.evaluation.sources import PromptItem
    from maa_core.go2.sim.env import make_env
    from maa_core.pipeline import PolicyGenerator

    all_ck = PolicyDataset(Path(a.data) / "checkpoints")
    recs = [(run_of(r.key), r.params.astype(np.float64)) for r in all_ck]
    env, ad = make_env("", "flat")
    sets = {}
    for kind in a.prompt_sets:
        if kind == "heldout":
            sets[kind] = [p.trajectory for p in heldout_prompts(a.data)[: a.prompts]]
        else:
            sets[kind] = [p.trajectory for p, _ in made_prompts(kind, a.prompts, env, ad)]
    out = {"args": vars(a), "rows": []}
    print(f"{'runs':>4} {'actors':<22} {'n':>4} {'paper cos':>9} {'centered cos':>12} {'dist/spacing':>12} "
          f"{'off hull':>8} {'frozen':>6}")
    for n in a.runs:
        bank = np.stack([p for r, p in recs if r < n])
        new_runs = np.stack([p for r, p in recs if n <= r < n + 12]) if any(r >= n for r, _ in recs) else None
        gen = PolicyGenerator.from_pretrained(a.generators.format(N=n), device="cpu")
        ds = PolicyDataset(first_runs_bank(a.data, n))
        index = build_retrieval_index(gen, ds)
        groups = {}
        if new_runs is not None:
            groups["checkpoints of new runs"] = new_runs
        for kind, trajs in sets.items():
            cands = gen.generate(trajs, num_policies=a.candidates, seed=0).params  # (prompts, K, P)
            groups[f"generated ({kind})"] = cands.reshape(-1, cands.shape[-1]).astype(np.float64)
            items = [PromptItem(f"{kind}/{i}", "go2-walk-heldout", t) for i, t in enumerate(trajs)]
            noised, _ = noised_retrieval(gen, index, items, 1, NoiseConfig(None), generated=cands, seed=0)
            groups[f"noised ({kind})"] = noised.reshape(-1, noised.shape[-1]).astype(np.float64)
        vary = bank.std(0) > 0   # the coordinates training changed; the rest every checkpoint shares
        mu = bank.mean(0)
        for name, x in groups.items():
            paper = nearest_cosine(x, bank)[0]
            cen, ratio = centered_nearest(x[:, vary], bank[:, vary])
            hull = off_hull(x[:, vary], bank[:, vary])
            frozen = np.linalg.norm(x[:, ~vary] - mu[~vary], axis=1) / np.maximum(
                np.linalg.norm(x[:, vary] - mu[vary], axis=1), 1e-12)
            row = {"runs": n, "actors": name, "trained_coordinates": int(vary.sum()), "paper_cosine": stats(paper),
                   "centered_cosine": stats(cen), "distance_ratio": stats(ratio), "off_hull": stats(hull),
                   "frozen_drift": stats(frozen)}
            out["rows"].append(row)
            print(f"{n:>4} {name:<22} {len(x):>4} {row['paper_cosine']['median']:9.5f} "
                  f"{row['centered_cosine']['median']:12.3f} {row['distance_ratio']['median']:12.2f} "
                  f"{row['off_hull']['median']:8.3f} {row['frozen_drift']['median']:6.3f}", flush=True)
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(out, indent=1))
        print(f"-> {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
