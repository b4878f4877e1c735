"""The Go2 shared base student (issue #15): how robust a base is, and whether runs started from it
keep that. Every walk is in-process MuJoCo with our adaptation module.

    # train a base with BaseStudentConfig overrides (the default recipe when none are given)
    .venv/bin/python benchmarks/bench_go2_base.py train --out runs/base/b.npy [--set rounds=30 max_samples=300000]
    # judge bases (or the expert) on the 40 s course and on random 20 s command schedules
    .venv/bin/python benchmarks/bench_go2_base.py judge runs/base/b.npy [expert] [--schedules 40] [--terrain mat]
    # distil runs (seeds) from a base and judge each run's last checkpoint the same way
    .venv/bin/python benchmarks/bench_go2_base.py runs --base runs/base/b.npy --seeds 0 1 2 3 4 [--schedules 20]

Random schedules are `commands.random_course` with rng seeds 777.. (the same for every actor judged);
"falls" counts schedules walked with a fall; RMSE is the mean over a schedule's segments, averaged
over schedules. The expert walks schedule i with the gait of held-out seed 1000 + i.
"""
import argparse
import json
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def judge(env, ad, schedules: int, policy=None, expert_for=None) -> dict:
    """The 40 s course (the expert: gait of seed 1000) and `schedules` random 20 s schedules."""
    from maa_core.go2.commands import random_course
    from maa_core.go2.course import COURSE, run_course

    def drive(i):
        return {"expert": expert_for(i)} if expert_for else {"policy": policy, "adaptation": ad}

    course = run_course(env, COURSE, **drive(0))
    falls, rmse, where = 0, [], {}
    for i in range(schedules):
        r = run_course(env, random_course(np.random.default_rng(777 + i), 20.0), **drive(i))
        if r.fell:
            falls += 1
            seg = next(s.name for s in r.segments if s.fell)
            where[seg] = where.get(seg, 0) + 1
        rmse.append(r.mean_rmse())
    return {"course_fell": bool(course.fell), "course_worst_rmse": {k: round(v, 3) for k, v in course.worst().items()},
            "random_falls": falls, "schedules": schedules, "falls_in": where,
            "random_rmse_mean": [round(float(x), 3) for x in np.nanmean(np.array(rmse), axis=0)]}


def actor_policy(params):
    from maa_core.specs import get_spec

    actor = get_spec("go2-walk").unflatten(np.asarray(params, np.float32)).eval()
    return lambda x: actor(x)[0].detach().numpy()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--out", required=True)
    t.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="BaseStudentConfig overrides")
    j = sub.add_parser("judge")
    j.add_argument("actors", nargs="+", help="base .npy files, or 'expert'")
    j.add_argument("--schedules", type=int, default=40)
    j.add_argument("--terrain", default="flat", choices=["flat", "mat"])
    r = sub.add_parser("runs")
    r.add_argument("--base", required=True)
    r.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    r.add_argument("--schedules", type=int, default=20)
    r.add_argument("--terrain", default="flat", choices=["flat", "mat"], help="the world the runs' checkpoints are judged in")
    a = ap.parse_args()

    import torch

    from maa_core.collect.go2_walk import (BaseStudentConfig, LocoDistillConfig, gait_for_seed, go2_walk_run,
                                           train_base_student)
    from maa_core.go2.gait import GaitExpert
    from maa_core.go2.sim.env import make_env

    torch.set_num_threads(1)
    if a.cmd == "train":
        types = {f.name: f.type for f in fields(BaseStudentConfig)}
        kw = {}
        for item in a.set:
            k, _, v = item.partition("=")
            if k not in types:
                ap.error(f"--set: unknown BaseStudentConfig field {k!r} (known: {sorted(types)})")
            kw[k] = int(float(v)) if types[k] in (int, "int") else float(v)
        t0 = time.time()
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        info = train_base_student(a.out, LocoDistillConfig(), replace(BaseStudentConfig(), **kw), log=print)
        print(json.dumps({"set": kw, "train_s": round(time.time() - t0), "losses": [round(x, 4) for x in info["losses"]]}))
        return 0

    env, ad = make_env("", a.terrain)
    if a.cmd == "judge":
        for name in a.actors:
            if name == "expert":
                res = judge(env, ad, a.schedules, expert_for=lambda i: GaitExpert(env, gait_for_seed(1000 + i), commanded=True))
            else:
                res = judge(env, ad, a.schedules, policy=actor_policy(np.load(name)))
            print(json.dumps({"actor": name, "terrain": a.terrain, **res}), flush=True)
        return 0

    total = {"course_falls": 0, "random_falls": 0, "rmse": []}
    for s in a.seeds:
        got = []
        go2_walk_run(s, 6, 0, {"base": a.base}, emit_checkpoint=got.append)
        res = judge(env, ad, a.schedules, policy=actor_policy(got[-1].params))
        print(json.dumps({"seed": s, **res}), flush=True)
        total["course_falls"] += res["course_fell"]
        total["random_falls"] += res["random_falls"]
        total["rmse"].append(res["random_rmse_mean"])
    print(json.dumps({"base": a.base, "runs": len(a.seeds), "course_falls": total["course_falls"],
                      "random_falls": f"{total['random_falls']}/{len(a.seeds) * a.schedules}",
                      "random_rmse_mean": [round(float(x), 3) for x in np.mean(total["rmse"], axis=0)]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
