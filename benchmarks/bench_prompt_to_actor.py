"""Prompt -> chosen actor in-process: the generator node's engine (K candidates, screened by the
`go2-walk` MuJoCo rollouts) on held-out Go2 prompts, with where the time goes.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_prompt_to_actor.py [--prompts 10] [--candidates 16]
        [--steps 1000] [--scorer go2-walk] [--sequential] [--sim-threads 0] [--profile] [--compare]

Prompts: the clean expert walks of the held-out gait seeds 1000.. (as benchmarks/bench_adaptation.py),
made before timing. Timed per prompt: `Engine.generate` end to end (diffusion sampling + decoding of K
candidates, screening, blob encoding) and, inside it, generation (`PolicyGenerator.generate`);
the rest is screening (+ about 10 ms of blob encoding). Start-up (loading the generator,
building the scorer's simulator) is reported once. --sequential screens one candidate after another
(the `Scorer.__call__` path) instead of the lock-step `score_all`. --profile adds a cProfile of one
prompt's screening, summed into simulator stepping / policy inference / the rest.
--quality: per prompt, the same K candidates screened by each variant of VARIANTS (full: both starts,
no halving; the default halving; ...), each variant's pick then walked on the 40 s command course
(go2/course.py COURSE): completion and worst-segment RMSE, with the screening time, so a faster
screening is seen to pick as well (or not).
"""
import argparse
import cProfile
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# cProfile function names -> bucket (first match wins); everything else is "rest"
BUCKETS = (("sim stepping (mj_step)", ("mj_step",)),
           ("policy inference (torch / numpy matmuls)", ("linear", "bmm", "baddbmm", "elu", "relu", "tanh",
                                                        "inference.py", "forward", "_call_impl", "addmm")),
           ("observation / bookkeeping", ("wtw.py", "env.py", "scoring.py", "lockstep.py", "clip", "take")))


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def profile_buckets(fn) -> dict:
    pr = cProfile.Profile()
    pr.enable()
    fn()
    pr.disable()
    st = pstats.Stats(pr).stats  # (file, line, name) -> (cc, nc, tottime, cumtime, callers)
    out = {b: 0.0 for b, _ in BUCKETS}
    out["rest"] = 0.0
    for (file, _line, name), (_cc, _nc, tt, _ct, _callers) in st.items():
        key = f"{Path(file).name}:{name}"
        for b, needles in BUCKETS:
            if any(n in key for n in needles):
                out[b] += tt
                break
        else:
            out["rest"] += tt
    return out


# --quality variants: name -> (warm-up starts, Halving or None, threads); the first is the reference
def variants():
    from maa_core.go2.scoring import Halving
    return {"full (2 starts, no halving)": ((0, 30), None, 1),
            "halving 30/45 %, keep >= 4": ((0, 30), Halving(), 1),
            "halving 30/45 %, keep >= 4, 2 threads": ((0, 30), Halving(), 2),
            "halving 15/30/45 %, keep >= 4, 2 threads": ((0, 30), Halving(at=(0.15, 0.3, 0.45)), 2),
            "halving 15/30/45 %, keep >= 2, 2 threads": ((0, 30), Halving(at=(0.15, 0.3, 0.45), min_keep=2), 2),
            "halving 10/20/30/45 %, keep >= 2, 2 threads": ((0, 30), Halving(at=(0.1, 0.2, 0.3, 0.45),
                                                                                min_keep=2), 2)}


def quality(a, gen, eng, prompts) -> int:
    import numpy as np
    from maa_core.go2.course import COURSE, run_course
    from maa_core.go2.sim.env import make_env
    from maa_core.serving.screening import screen
    scorer = eng.scorer
    env, ad = make_env("")
    rows, threads = {v: [] for v in variants()}, scorer.threads
    for pid, traj in prompts:
        params = gen.generate([traj], num_policies=a.candidates, seed=eng.seed).params[0]
        line, ref = [], None
        for name, (starts, halving, threads) in variants().items():
            scorer.warmups, scorer.halving, scorer.threads = starts, halving, threads
            t0 = time.perf_counter()
            sc = screen(gen.spec, params, traj, eng.max_abs_action, scorer)
            dt = time.perf_counter() - t0
            ref = sc.score if ref is None else ref  # the full screening's scores judge every variant's pick
            regret = float(ref.max() - ref[sc.best])
            actor = gen.spec.unflatten(params[sc.best]).eval()
            r = run_course(env, COURSE, policy=lambda x: actor(x)[0].detach().numpy(), adaptation=ad)
            rows[name].append((dt, sc.best, not r.fell, r.worst(), scorer.last_world_steps, regret))
            line.append(f"{name}: {dt:.1f} s, #{sc.best} {'completed' if not r.fell else 'FELL'}")
        print(f"{pid}: " + "; ".join(line), flush=True)
    del scorer.warmups, scorer.halving  # the class's again
    scorer.threads = threads
    print(f"\n{len(prompts)} prompts, K = {a.candidates}, {a.steps}-step screening; each pick walks the 40 s course; "
          f"regret = the full screening's best score minus its score of the variant's pick")
    full = rows[next(iter(rows))]
    for name, rs in rows.items():
        ok = [r for r in rs if r[2]]
        med = lambda k: float(np.median([r[3][k] for r in ok])) if ok else float("nan")
        same = sum(r[1] == f[1] for r, f in zip(rs, full))
        print(f"  {name:44s} screening p50 {statistics.median([r[0] for r in rs]):5.2f} s  p99 {pct([r[0] for r in rs], 99):5.2f} s"
              f"  world steps p50 {statistics.median([r[4] for r in rs]):6.0f}  course completed {len(ok)}/{len(rs)}"
              f"  worst RMSE vx/vy/yaw {med('vx'):.3f}/{med('vy'):.3f}/{med('yaw_rate'):.3f}  same pick as full {same}/{len(rs)}"
              f"  regret mean {np.mean([r[5] for r in rs]):.4f} max {max(r[5] for r in rs):.4f}")
    return 0


def compare(a, gen, eng, prompts) -> int:
    from maa_core.serving.screening import screen
    scorer = eng.scorer
    threads, rows = scorer.threads, []
    more = a.sim_threads if a.sim_threads > 1 else 2
    for pid, traj in prompts:
        params = gen.generate([traj], num_policies=a.candidates, seed=eng.seed).params[0]
        row = {}
        for mode, n in (("sequential", 0), ("lock-step 1 thread", 1), (f"lock-step {more} threads", more)):
            scorer.threads = max(n, 1)
            if n == 0:
                scorer.score_all = None
            t0 = time.perf_counter()
            sc = screen(gen.spec, params, traj, eng.max_abs_action, scorer)
            row[mode] = (time.perf_counter() - t0, sc.best, round(float(sc.score[sc.best]), 4))
            if n == 0:
                del scorer.score_all  # the class's method again
        rows.append(row)
        print(f"{pid} (load {os.getloadavg()[0]:.1f}): " + "; ".join(f"{m} {t:.2f} s -> candidate {b} ({s})"
                                                                    for m, (t, b, s) in row.items()), flush=True)
    modes = list(rows[0])
    print(f"\n{len(rows)} prompts, K = {a.candidates}, {a.scorer} over {a.steps} policy steps, "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
    for m in modes:
        ts = [r[m][0] for r in rows]
        ratio = [r[modes[0]][0] / r[m][0] for r in rows]
        print(f"  {m:24s} screening p50 {statistics.median(ts):6.2f} s  min {min(ts):6.2f} s   "
              f"speed-up vs sequential p50 {statistics.median(ratio):4.1f}x")
    same = sum(r[modes[0]][1] == r[modes[-1]][1] for r in rows)
    print(f"  same candidate picked as sequential: {same} / {len(rows)} prompts")
    scorer.threads = threads
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=10)
    ap.add_argument("--candidates", type=int, default=16)
    ap.add_argument("--steps", type=int, default=1000, help="screening rollout (policy steps)")
    ap.add_argument("--scorer", default="go2-walk")
    ap.add_argument("--generator", default="models/go2-walk")
    ap.add_argument("--sequential", action="store_true", help="screen candidates one by one (Scorer.__call__)")
    ap.add_argument("--sim-threads", type=int, default=0,
                    help="lock-step threads (0 = the scorer's default, 2; --compare: the second count tried, default 2)")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--compare", action="store_true",
                    help="per prompt, screen the same candidates sequentially, lock-step on 1 thread and on "
                         "the default threads, back to back (ratios hold under a varying machine load)")
    ap.add_argument("--quality", action="store_true",
                    help="screening variants (starts, halving, threads) on the same candidates; their picks walk the course")
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # as the generator node (torch_threads: 1)
    import torch
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

    from maa_core.collect.go2_walk import go2_walk_run
    from maa_core.demos.go2 import make_engine
    from maa_core.pipeline import PolicyGenerator
    from maa_core.serving.screening import screen

    prompts = []
    for seed in range(1000, 1000 + a.prompts):
        got = []
        go2_walk_run(seed, 0, 1, {}, emit_prompt=got.append)
        prompts.append((f"heldout-{seed}", got[0].trajectories[0]))
    t0 = time.perf_counter()
    gen = PolicyGenerator.from_pretrained(REPO / a.generator, device="cpu")
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    eng = make_engine(gen, "", a.candidates, 0, a.steps, a.scorer)
    t_scorer = time.perf_counter() - t0
    scorer = eng.scorer
    if a.sim_threads and hasattr(scorer, "threads"):
        scorer.threads = a.sim_threads
    if a.sequential and hasattr(scorer, "score_all"):
        scorer.score_all = None  # screen() then falls back to one candidate at a time
    if a.compare:
        return compare(a, gen, eng, prompts)
    if a.quality:
        return quality(a, gen, eng, prompts)
    t_gen = []

    class TimedGenerator:  # the engine's generator, its embedding pass + sampling timed (Engine.candidates)
        def __getattr__(self, name):
            return getattr(gen, name)

        def condition(self, *args, **kw):
            t0 = time.perf_counter()
            out = gen.condition(*args, **kw)
            t_gen.append(time.perf_counter() - t0)
            return out

        def generate_from_condition(self, *args, **kw):
            t0 = time.perf_counter()
            out = gen.generate_from_condition(*args, **kw)
            t_gen[-1] += time.perf_counter() - t0
            return out
    eng.gen = TimedGenerator()
    eng.generate("warm-up", prompts[0][1])
    total, t_screen, picks = [], [], []
    t_gen.clear()
    for pid, traj in prompts:
        t0 = time.perf_counter()
        r = eng.generate(pid, traj)
        total.append(time.perf_counter() - t0)
        t_screen.append(total[-1] - t_gen[-1])
        picks.append((r.blob.extra["candidate"], round(r.blob.extra["score"], 4), r.blob.extra["valid"]))
        simulated = f", {scorer.last_world_steps} world steps" if getattr(scorer, "score_all", None) else ""
        print(f"{pid}: {total[-1]:.2f} s (generation {t_gen[-1]:.2f} s, screening {t_screen[-1]:.2f} s{simulated}); "
              f"candidate {picks[-1][0]} score {picks[-1][1]}, {picks[-1][2]}/{a.candidates} valid", flush=True)
    lockstep = callable(getattr(scorer, "score_all", None))
    mode = f"lock-step screening on {scorer.threads} thread(s)" if lockstep else "sequential screening"
    print(f"\n{a.prompts} prompts, K = {a.candidates}, {a.scorer} over {a.steps} policy steps, {mode}, "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, load average {os.getloadavg()[0]:.1f}")
    for name, xs in (("prompt -> actor (Engine.generate)", total), ("  generation + decoding", t_gen),
                     ("  screening (+ encoding)", t_screen)):
        print(f"{name:36s} p50 {statistics.median(xs):6.2f} s   p99 {pct(xs, 99):6.2f} s   min {min(xs):6.2f} s")
    print(f"start-up (once): generator load {t_load:.2f} s, scorer (MuJoCo model, adaptation module) {t_scorer:.2f} s")
    if a.profile:  # on one thread: cProfile sees only the thread that starts it
        threads = getattr(scorer, "threads", 1)
        scorer.threads = 1
        params = gen.generate([prompts[0][1]], num_policies=a.candidates, seed=eng.seed).params[0]
        b = profile_buckets(lambda: screen(gen.spec, params, prompts[0][1], eng.max_abs_action, scorer))
        scorer.threads = threads
        tot = sum(b.values())
        print(f"screening profile of {prompts[0][0]} on one thread (cProfile, {tot:.2f} s with its overhead):")
        for k, v in b.items():
            print(f"  {k:44s} {v:6.2f} s  {100 * v / tot:4.0f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
