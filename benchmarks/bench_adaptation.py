"""The shipped go2-walk generator's actors walking with our adaptation module (models/go2-adaptation)
against the pretrained walk-these-ways module (../shared/wtw), in-process, unscreened.

    .venv/bin/python benchmarks/bench_adaptation.py [--prompts 8] [--candidates 8] [--seconds 20]
        [--wtw ../shared/wtw] [--out benchmarks/results/adaptation.json]

Prompts: the clean expert walks of the held-out gait seeds 1000.. (as the dataset's held-out runs).
Each prompt's candidates (generator seed 0) walk `--seconds` after standing, once with each module.
Walks = no fall and >= 0.4 m/s. Also: the shipped module's held-out accuracy (its config's record).
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--candidates", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--generator", default="models/go2-walk")
    ap.add_argument("--wtw", default=str(REPO.parent / "shared" / "wtw"))
    ap.add_argument("--out", default="benchmarks/results/adaptation.json")
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch
    torch.set_num_threads(1)
    from tqdm import tqdm

    from maa_core.collect.go2_walk import go2_walk_run
    from maa_core.go2.sim.env import make_env
    from maa_core.go2.commands import Segment
    from maa_core.go2.walk import walk
    from maa_core.go2.wtw import load_wtw_run
    from maa_core.pipeline import PolicyGenerator

    gen = PolicyGenerator.from_pretrained(REPO / a.generator, device="cpu")
    mods = {"ours": "", "wtw": a.wtw}
    envs = {k: make_env(v) for k, v in mods.items()}
    rows, t0 = [], time.perf_counter()
    for seed in tqdm(range(1000, 1000 + a.prompts), desc="prompts", unit="prompt"):
        got = []
        go2_walk_run(seed, 0, 1, {}, emit_prompt=got.append)
        cands = gen.generate([got[0].trajectories[0]], num_policies=a.candidates, seed=0).params[0]
        for i, c in enumerate(cands):
            actor = gen.spec.unflatten(c).eval()
            r = {}
            for k, (env, ad) in envs.items():
                w = walk(env, ad, lambda x: actor(x)[0].detach().numpy(), a.seconds,
                         course=(Segment("straight", a.seconds, vx=0.6),))   # steerable students: commanded
                r[k] = {"walks": bool(w.walks()), "fell": bool(w.fell), "speed": round(w.speed, 4),
                        "lateral": round(w.lateral, 4)}
            rows.append({"prompt_seed": seed, "candidate": i, **r})
    summary = {k: {"walk": int(sum(r[k]["walks"] for r in rows)), "of": len(rows),
                   "falls": int(sum(r[k]["fell"] for r in rows)),
                   "mean_speed": round(float(np.mean([r[k]["speed"] for r in rows])), 3),
                   "mean_abs_lateral": round(float(np.mean([abs(r[k]["lateral"]) for r in rows])), 3)} for k in mods}
    summary["same_verdict"] = int(sum(r["ours"]["walks"] == r["wtw"]["walks"] for r in rows))
    summary["wall_s"] = round(time.perf_counter() - t0, 1)
    summary["ours_heldout_accuracy"] = load_wtw_run().raw["maa_adaptation"]["heldout"]
    print(json.dumps(summary, indent=1))
    out = REPO / a.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
