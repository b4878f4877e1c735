"""Command tracking of the commandable trot expert along the 40 s course (issue #15; maa_core/go2/course.py),
on the flat floor and on the mat, for a few gait styles.

    .venv/bin/python benchmarks/bench_go2_course.py [--terrain flat mat] [--styles default low tall]
        [--wtw ../shared/wtw] [--out benchmarks/results/go2_course.json]

Prints one table per (terrain, style): commanded vs achieved vx, vy, yaw rate per segment (judged from
1 s after the segment starts, velocities averaged over one gait period), RMSE, drift, falls; then a
summary line per run with the worst segment RMSE. Targets for the students later: vx/vy <= 0.10 m/s,
yaw rate <= 0.20 rad/s.
"""
import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# gait styles (GaitParams overrides): GaitRange's corners and the default
STYLES = {
    "default": {},
    "low": {"body_height": 0.27, "swing_height": 0.07, "duty": 0.6, "stance_width": 0.03},
    "tall": {"body_height": 0.31, "swing_height": 0.11, "duty": 0.5, "stance_width": -0.01},
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--terrain", nargs="+", default=["flat", "mat"])
    ap.add_argument("--styles", nargs="+", default=list(STYLES), choices=list(STYLES))
    ap.add_argument("--wtw", default=str(REPO.parent / "shared" / "wtw"), help="adaptation module run dir")
    ap.add_argument("--out", default="")
    a = ap.parse_args()

    from maa_core.go2.course import COURSE, run_course
    from maa_core.go2.gait import GaitExpert, GaitParams
    from maa_core.go2.sim.env import make_env

    results = []
    for terrain in a.terrain:
        env, _ = make_env(a.wtw, terrain)
        for style in a.styles:
            t0 = time.perf_counter()
            r = run_course(env, COURSE, expert=GaitExpert(env, GaitParams(**STYLES[style]), commanded=True))
            wall = time.perf_counter() - t0
            print(f"\n== {terrain} / {style} ({r.seconds:.0f} s simulated, {wall:.1f} s wall)\n{r.table()}")
            results.append({"terrain": terrain, "style": style, "fell": r.fell, "worst_rmse": r.worst(),
                            "segments": [s.row() for s in r.segments]})
    print("\nterrain style    falls  worst RMSE vx    vy    yaw rate")
    for x in results:
        w = x["worst_rmse"]
        print(f"{x['terrain']:<7} {x['style']:<8} {int(x['fell']):>5}  {w['vx']:13.3f} {w['vy']:5.3f} {w['yaw_rate']:8.3f}")
    if a.out:
        Path(a.out).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
