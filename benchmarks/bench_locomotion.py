"""Acceptance benchmark of the locomotion generator (issue #7): actors generated from held-out
prompts walking the simulated Go2, in-process and through the full ROS path.

    .venv/bin/python benchmarks/bench_locomotion.py [--config config/demo_go2.yaml] [--prompts 12]
        [--ros-prompts 12] [--seconds 20] [--out benchmarks/results/locomotion.json]

Uses the demo's dataset and generator (built/trained on first use, like `make demo`). For each
held-out prompt (an expert walk with a gait no training run has):
  1. in-process: the generator node's engine (K candidates, best by survival in a 4 s MuJoCo rollout)
     picks one actor; it walks `--seconds` in the in-process simulator with the adaptation module;
  2. ROS: the prompt as a one-message bag -> maa_bag_player -> maa_generator -> maa_go2_controller
     (MuJoCo Go2 behind the loopback DDS bridge, real time); the walk is judged from the observer's
     DDS log in simulated time. The published actor must be bit-identical to step 1's.
Also every one of the K candidates walks unscreened (the generator's raw quality).
Walks = no fall and >= 0.4 m/s forward over the whole walk. Gait match: |steady speed - prompt's
steady speed| and |step frequency - prompt's| (touchdowns per foot per second from foot contacts).
"""
import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def prompt_gait(key: str, wtw: str) -> dict:
    """The held-out prompt's own gait numbers, re-measured from its (deterministic) expert walk."""
    from maa_core.collect.go2_walk import go2_walk_run

    seed = int(key.split("/")[2])
    got = []
    go2_walk_run(seed, 0, 1, {"wtw_dir": wtw}, emit_prompt=got.append)
    return {"seed": seed, "speed": got[0].extra["steady_speed"], "step_frequency": got[0].extra["step_frequency"]}


def expert_check(n: int, seconds: float) -> int:
    """The trot expert over its parameter range with the WTW gains (kp 20, kd 0.5)."""
    from maa_core.collect.go2_walk import DEFAULT_WTW
    from maa_core.go2.gait import GaitExpert, GaitRange
    from maa_core.go2.sim.env import make_env
    from maa_core.go2.walk import walk

    env, ad = make_env(DEFAULT_WTW)
    rng = np.random.default_rng(12345)
    res = []
    t0 = time.perf_counter()
    for _ in range(n):
        g = GaitRange().sample(rng)
        r = walk(env, ad, None, seconds, expert=GaitExpert(env, g))
        res.append((g.speed, r))
    sp = np.array([r.speed for _, r in res])
    print(f"expert: {sum(r.walks() for _, r in res)}/{n} gaits walk {seconds:.0f} s (>= 0.4 m/s, no fall); "
          f"falls {sum(r.fell for _, r in res)}; speed {sp.min():.3f}-{sp.max():.3f} m/s (mean {sp.mean():.3f}); "
          f"step frequency {np.mean([r.step_frequency for _, r in res]):.2f} Hz; "
          f"|lateral| max {max(abs(r.lateral) for _, r in res):.2f} m; {time.perf_counter() - t0:.1f} s wall")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="config/demo_go2.yaml")
    ap.add_argument("--prompts", type=int, default=12, help="held-out prompts (>= 10 for the acceptance)")
    ap.add_argument("--ros-prompts", type=int, default=12, help="how many of them also go through the ROS path")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--out", default="benchmarks/results/locomotion.json")
    ap.add_argument("--expert-gaits", type=int, default=0,
                    help="only check the expert: this many random GaitRange draws walking --seconds each")
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch
    torch.set_num_threads(1)
    if a.expert_gaits:
        return expert_check(a.expert_gaits, a.seconds)
    from tqdm import tqdm

    from maa_core.actor_io import ActorBlob
    from maa_core.collect.go2_walk import heldout_prompts
    from maa_core.demos.go2 import Go2DemoConfig, ensure_dataset, ensure_generator, make_engine
    from maa_core.demos.graph_walk import GraphWalkConfig
    from maa_core.go2.verdict import WalkCriteria
    from maa_core.go2.walk import walk_actor
    from maa_core.pipeline import PolicyGenerator
    from maa_core.prompts import prompt_id, write_prompts_to_bag
    from maa_ros.go2_walk import run_graph_walk

    from maa_core.resources import resolve

    cfg = Go2DemoConfig.load(resolve(a.config, "config"))
    data = ensure_dataset(cfg)
    gen_dir = ensure_generator(cfg, data)
    gen = PolicyGenerator.from_pretrained(gen_dir, device="cpu")
    engine = make_engine(gen, cfg.wtw_run_dir, cfg.num_candidates, cfg.seed, cfg.screen_steps)
    prompts = heldout_prompts(data)[: a.prompts]
    rows = []
    for p in tqdm(prompts, desc="held-out prompts (in-process)", unit="prompt"):
        pid = prompt_id(p.trajectory)
        t0 = time.perf_counter()
        g = engine.generate(pid, p.trajectory)
        gen_s = time.perf_counter() - t0
        engine._attempts.clear()  # the ROS node sees each prompt once: same seed there
        res, _ = walk_actor(g.blob.actor().eval(), cfg.wtw_run_dir, a.seconds)
        pg = prompt_gait(p.key, cfg.wtw_run_dir)
        # every candidate, unscreened: the generator's own quality (same seed: the engine's candidates)
        cands = gen.generate([p.trajectory], num_policies=cfg.num_candidates, seed=cfg.seed).params[0]
        cand = [walk_actor(gen.spec.unflatten(c).eval(), cfg.wtw_run_dir, a.seconds)[0] for c in cands]
        rows.append({"prompt": p.key, "prompt_id": pid, "prompt_speed": pg["speed"],
                     "prompt_step_frequency": pg["step_frequency"], "checksum": g.blob.checksum,
                     "candidate": g.blob.extra.get("candidate"), "generate_s": round(gen_s, 2),
                     "inproc": {**res.summary(), "walks": res.walks()},
                     "candidates": {"walk": int(sum(c.walks() for c in cand)), "of": len(cand),
                                    "speed_error": round(float(np.mean([abs(c.steady_speed - pg["speed"]) for c in cand
                                                                        if c.walks()] or [math.nan])), 4)}})
    ros_rows = rows[: a.ros_prompts]
    with tempfile.TemporaryDirectory(prefix="maa-bench-loco-") as tmp:
        for i, r in enumerate(tqdm(ros_rows, desc="held-out prompts (ROS path)", unit="prompt")):
            p = prompts[i]
            bag = write_prompts_to_bag(Path(tmp) / f"bag{i}", [p.trajectory])
            w = run_graph_walk(GraphWalkConfig(str(gen_dir), str(bag), cfg.wtw_run_dir, seconds=a.seconds,
                                               num_candidates=cfg.num_candidates, seed=cfg.seed,
                                               sim_screen_steps=cfg.screen_steps, ros_domain=70 + i % 20),
                               Path(tmp) / f"graph{i}", progress=lambda *_: None)
            blob = ActorBlob.from_bytes(w.actor)
            m = w.metrics
            r["ros"] = {**m, "walks": WalkCriteria().walks(m["fell"], m["speed"]), "same_actor": blob.checksum == r["checksum"],
                        "swap_latency_ms": round(w.swap_latency_ms, 2), "prompt_to_actor_s": round(w.generation_s, 2)}

    def summary(key, rs):
        rs = [r for r in rs if key in r]
        if not rs:
            return {}
        ok = [r[key]["walks"] for r in rs]
        return {"prompts": len(rs), "walk_fraction": round(float(np.mean(ok)), 3),
                "falls": int(sum(r[key]["fell"] for r in rs)),
                "mean_speed": round(float(np.mean([r[key]["speed"] for r in rs])), 3),
                "speed_error": round(float(np.mean([abs(r[key]["steady_speed"] - r["prompt_speed"]) for r in rs])), 3),
                "step_frequency_error": round(float(np.mean([abs(r[key]["step_frequency"] - r["prompt_step_frequency"])
                                                              for r in rs])), 3)}
    result = {"seconds": a.seconds, "num_candidates": cfg.num_candidates, "screen_steps": cfg.screen_steps,
              "generator": str(gen_dir), "in_process": summary("inproc", rows), "ros": summary("ros", rows),
              "unscreened_candidates_walk_fraction": round(sum(r["candidates"]["walk"] for r in rows) /
                                                           max(1, sum(r["candidates"]["of"] for r in rows)), 3),
              "rows": rows}
    if any("ros" in r for r in rows):
        rr = [r for r in rows if "ros" in r]
        result["ros"]["same_actor"] = int(sum(r["ros"]["same_actor"] for r in rr))
        result["ros"]["swap_latency_ms_median"] = float(np.median([r["ros"]["swap_latency_ms"] for r in rr]))
        result["ros_vs_inproc"] = {
            "same_verdict": int(sum(r["ros"]["walks"] == r["inproc"]["walks"] for r in rr)),
            "speed_diff_mean": round(float(np.mean([abs(r["ros"]["speed"] - r["inproc"]["speed"]) for r in rr])), 3)}
    print(f"\n{'prompt':<26} {'v_prompt':>8} {'v_gen':>7} {'f_gen':>6} {'walks':>6} | {'v_ros':>6} {'walks':>6} {'same':>5} {'swap ms':>8}")
    for r in rows:
        i, ro = r["inproc"], r.get("ros")
        line = f"{r['prompt']:<26} {r['prompt_speed']:8.3f} {i['speed']:7.3f} {i['step_frequency']:6.2f} {str(i['walks']):>6}"
        if ro:
            line += f" | {ro['speed']:6.3f} {str(ro['walks']):>6} {str(ro['same_actor']):>5} {ro['swap_latency_ms']:8.1f}"
        print(line)
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=1))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
