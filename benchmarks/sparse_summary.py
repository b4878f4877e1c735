"""Tables of the sparse-dataset study (issue #15 item 5) from bench_go2_course.py's JSON results:
where does generation beat nearest-checkpoint retrieval? Paired per prompt: the same prompts, the
same worlds, so the difference of two methods on one prompt is the unit, and the interval is a
bootstrap over prompts.

    .venv/bin/python benchmarks/sparse_summary.py benchmarks/results/sparse/*.json
"""
import json
from pathlib import Path

import numpy as np

BOOT = 10_000          # bootstrap resamples of the prompts
CI = (5.0, 95.0)       # a 90 % interval
SEED = 0
TRACKING = (0.10, 0.10, 0.20)  # #15's course RMSE targets (vx, vy m/s, yaw rate rad/s), on the mean over segments


def paired(a: np.ndarray, b: np.ndarray) -> str:
    """mean(a - b) [90 % bootstrap interval], and on how many prompts a < b (lower is better)."""
    d = a - b
    rng = np.random.default_rng(SEED)
    boots = d[rng.integers(0, len(d), (BOOT, len(d)))].mean(1)
    lo, hi = np.percentile(boots, CI)
    return f"{d.mean():+.2f} [{lo:+.2f}, {hi:+.2f}], {int((d < 0).sum())}/{len(d)}"


def style_table(results: list[dict]) -> list[str]:
    out = ["| runs | prompts | generated | K = 1 | retrieval | noised | auto (served retrieval) | generated − retrieval [90 % CI], prompts won "
           "| generated − noised | auto − the better of generated and retrieval | generated: centered cos, distance / spacing |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in sorted(results, key=lambda r: (r["args"]["prompt_set"], r["args"]["runs"] or 10 ** 6)):
        rows = r["rows"]
        err = {m: np.array([x[m]["style_error_cm"]["all"] for x in rows]) for m in ("generated", "generated-k1", "retrieval", "noised", "auto")
               if m in rows[0]}
        auto = r["summary"].get("auto", {}).get("retrieved", "–")
        out.append(f"| {r['args']['runs'] or 'all'} | {r['args']['prompt_set']} | {err['generated'].mean():.2f} | "
                   f"{err['generated-k1'].mean():.2f} | {err['retrieval'].mean():.2f} | {err['noised'].mean():.2f} | "
                   f"{err['auto'].mean():.2f} ({auto}) | {paired(err['generated'], err['retrieval'])} | "
                   f"{paired(err['generated'], err['noised'])} | {auto_vs_better(err)} | {novelty(r)} |")
    return out


def auto_vs_better(err: dict) -> str:
    better = min(("generated", "retrieval"), key=lambda m: err[m].mean())
    return f"{paired(err['auto'], err[better])} (vs {better})"


def novelty(r: dict) -> str:
    s = r["summary"]
    if "centered_cosine_to_nearest_checkpoint_median" not in s:
        return "–"
    return f"{s['centered_cosine_to_nearest_checkpoint_median']:.2f}, {s['distance_to_nearest_over_spacing_median']:.2f}"


def course_table(results: list[dict]) -> list[str]:
    out = ["| runs | prompts | method | course completed | completed and tracking | worst RMSE vx / vy / yaw (median) "
           "| straight: side m, heading ° | style cm |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in sorted(results, key=lambda r: (r["args"]["prompt_set"], r["args"]["runs"] or 10 ** 6)):
        s = r["summary"]
        for m in ("generated", "generated-k1", "retrieval", "noised", "auto", "expert"):
            if m not in s:
                continue
            x = s[m]
            name = {"expert": "prompt's own policy" if r["args"]["prompt_set"] == "weak" else "expert"}.get(m, m)
            if m == "auto":
                name += f" (retrieved {x['retrieved']})"
            out.append(f"| {r['args']['runs'] or 'all'} | {r['args']['prompt_set']} | {name} | {x['completed']} | "
                       f"{tracking(r['rows'], m)} | {x['worst_rmse_vx_median']:.3f} / {x['worst_rmse_vy_median']:.3f} / {x['worst_rmse_yaw_median']:.2f} | "
                       f"{x['straight_lateral_m_median_abs']:.2f}, {x['heading_change_deg_median_abs']:.0f} | "
                       f"{x['style_error_cm_mean']:.2f} |")
        if "unscreened_completed" in s:
            out.append(f"| {r['args']['runs'] or 'all'} | {r['args']['prompt_set']} | unscreened candidates | "
                       f"{s['unscreened_completed']} | | | | |")
    return out


def tracking(rows: list[dict], method: str) -> str:
    """Prompts whose actor completed the course with mean-over-segments RMSE within TRACKING: a policy
    that stands still through the course completes it (no fall) but does not track it."""
    ok = sum(1 for x in rows if x[method]["completed"] and all(e <= t for e, t in zip(x[method]["rmse_mean"], TRACKING)))
    return f"{ok}/{len(rows)}"


def main(paths: list[str]) -> int:
    res = [json.loads(Path(p).read_text()) for p in paths]
    style = [r for r in res if r["args"]["style_only"]]
    course = [r for r in res if not r["args"]["style_only"]]
    if style:
        print("Gait-style error to the prompt (cm, mean over prompts; lower is better)\n")
        print("\n".join(style_table(style)))
    if course:
        print("\nThe 40 s command course and 20 s straight (one actor per method and prompt)\n")
        print("\n".join(course_table(course)))
    return 0


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+", help="bench_go2_course.py --out JSON files")
    raise SystemExit(main(ap.parse_args().results))
