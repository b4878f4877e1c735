"""Reproduction of paper Table 4 on the reference CPU dataset: train the generator, evaluate 8 seen
and 8 unseen tasks (>= 20 prompts each) in 5 random initial configurations, side by side with the
baselines (nearest-checkpoint retrieval, behavior cloning), the action-noise variant and the
`paper` preset.

    .venv/bin/python benchmarks/reproduce_table4.py --data data/reference-cpu --out runs/table4 \
        [--prompts-per-task 20] [--configs 5] [--train-steps AE EMB DIFF] [--paper-steps AE EMB DIFF] \
        [--stage train|eval|all] [--no-paper] [--baselines retrieval,bc,bc-task] [--workers 2] [--pairing own|run]

`--pairing run` trains the diffusion model on (trajectory -> checkpoints of its run saved at that step or
later), with the seen tasks' prompts of the runs the evaluation does NOT use as extra sub-optimal trajectories
(OUT/gen-<preset>.heldout.json lists the evaluation's runs; evaluation refuses prompts of other runs).

Stages resume: a trained generator folder is reused, so `--stage train` then `--stage eval` is the
same as `--stage all`. Writes OUT/results.json, OUT/report.md, OUT/table4.md, figures and OUT/timing.json.
"""
import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import yaml  # noqa: E402

from maa_core.config import GeneratorConfig  # noqa: E402
from maa_core.dataset import PolicyDataset  # noqa: E402
from maa_core.evaluation import sources  # noqa: E402
from maa_core.evaluation.baselines import BCConfig  # noqa: E402
from maa_core.evaluation.report import PAPER_TABLE4, write  # noqa: E402
from maa_core.evaluation.runner import EvalSettings  # noqa: E402
from maa_core.evaluation.study import StudyConfig, run_study  # noqa: E402
from maa_core.pipeline import PolicyGenerator  # noqa: E402
from maa_core.train import TrainerOptions, train_from_dataset  # noqa: E402

# Paper Table 4, in its column order
SEEN = ["window-open", "door-open", "drawer-open", "dial-turn", "plate-slide", "button-press", "handle-press", "faucet-close"]
UNSEEN = ["drawer-close", "faucet-open", "button-press-wall", "coffee-button", "handle-press-side", "reach-wall",
          "door-lock", "window-close"]
PAPER_PER_TASK = {  # task: (qualified, top-5, top-10)
    "window-open": (0.33, 1.0, 1.0), "door-open": (0.27, 1.0, 0.87), "drawer-open": (0.42, 1.0, 1.0),
    "dial-turn": (0.23, 0.82, 0.73), "plate-slide": (0.45, 1.0, 0.94), "button-press": (0.32, 0.87, 0.80),
    "handle-press": (0.5, 1.0, 0.96), "faucet-close": (0.45, 0.98, 0.97),
    "drawer-close": (0.55, 1.0, 1.0), "faucet-open": (0.16, 1.0, 0.85), "button-press-wall": (0.11, 0.97, 0.95),
    "coffee-button": (0.08, 0.74, 0.64), "handle-press-side": (0.04, 0.45, 0.30), "reach-wall": (0.13, 0.94, 0.72),
    "door-lock": (0.13, 1.0, 0.85), "window-close": (0.10, 0.92, 0.85),
}


@dataclass
class Budget:
    prompts_per_task: int = 20  # paper: 100
    configs: int = 5
    episodes: int = 1
    workers: int = 2
    bc_steps: int = 300


def eval_runs(data: Path, per_task: int) -> set[str]:
    """Runs whose prompts the evaluation uses (the first `per_task` of each Table-4 task)."""
    keys = {p.source_key for p in sources.from_dataset(data / "prompts", SEEN + UNSEEN, per_task)}
    return {m["source"]["run"] for m in PolicyDataset(data / "prompts").meta() if m["key"] in keys}


def train(preset: str, steps, data: Path, out: Path, progress: bool, pairing: str | None = None,
          per_task: int = 20, sets: dict | None = None) -> tuple[Path, float]:
    folder = out / f"gen-{preset}"
    if (folder / "generator.json").is_file():
        return folder, 0.0
    over = {}
    if steps:
        over = {"train_autoencoder.steps": steps[0], "train_embedding.steps": steps[1], "train_diffusion.steps": steps[2]}
    if pairing:
        over["diffusion_pairing"] = pairing
    over.update(sets or {})
    cfg = GeneratorConfig.preset_named(preset, **over)
    prompts, held = None, set()
    if cfg.diffusion_pairing == "run":  # train on the prompts of the runs the evaluation does not use
        prompts, held = data / "prompts", eval_runs(data, per_task)
        (out / f"gen-{preset}.heldout.json").write_text(json.dumps(sorted(held), indent=0))
    t0 = time.perf_counter()
    train_from_dataset(data / "checkpoints", folder, cfg, TrainerOptions(run_dir=out / f"gen-{preset}.run", progress=progress),
                       prompts_dir=prompts, exclude_runs=held)
    return folder, time.perf_counter() - t0


def check_heldout(out: Path, preset: str, data: Path, per_task: int) -> None:
    """A generator trained on prompts must not be evaluated on prompts of the runs it trained on."""
    path = out / f"gen-{preset}.heldout.json"
    if path.is_file():
        extra = eval_runs(data, per_task) - set(json.loads(path.read_text()))
        if extra:
            raise SystemExit(f"{out}/gen-{preset} trained on prompts of runs the evaluation now uses: {sorted(extra)[:3]} ...")


def table4(results: dict, budget: Budget) -> str:
    gen = results["methods"]["generated"]
    lines = [f"Ours: {budget.prompts_per_task} prompts per task, 1 policy per prompt, {budget.configs} random configurations; "
             "paper: 100 prompts per task.", "",
             "| task | group | ours qualified | ours top-5 | ours top-10 | ours mean ± std | paper qualified | paper top-5 | paper top-10 |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in gen["tasks"]:
        q, t5, t10 = PAPER_PER_TASK[r["task"]]
        lines.append(f"| {r['task']} | {'seen' if r['seen'] else 'unseen'} | {r['qualified']:.2f} | {r['top5']:.2f} | "
                     f"{r['top10']:.2f} | {r['mean']:.2f} ± {r['std']:.2f} | {q:.2f} | {t5:.2f} | {t10:.2f} |")
    lines += ["", "| method | seen top-5 | seen qualified | seen mean | unseen top-5 | unseen qualified | unseen mean |",
              "| --- | --- | --- | --- | --- | --- | --- |",
              f"| paper (Table 4) | {PAPER_TABLE4['seen']['top5']:.3f} | {PAPER_TABLE4['seen']['qualified']:.3f} | – | "
              f"{PAPER_TABLE4['unseen']['top5']:.3f} | {PAPER_TABLE4['unseen']['qualified']:.3f} | – |"]
    for name, m in results["methods"].items():
        s, u = m.get("seen", {}), m.get("unseen", {})
        f = lambda g, k: f"{g[k]:.3f}" if k in g else "–"  # noqa: E731
        lines.append(f"| {name} | {f(s, 'top5')} | {f(s, 'qualified')} | {f(s, 'mean')} | {f(u, 'top5')} | "
                     f"{f(u, 'qualified')} | {f(u, 'mean')} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path("data/reference-cpu"))
    ap.add_argument("--out", type=Path, default=Path("runs/table4"))
    ap.add_argument("--stage", choices=["train", "eval", "all"], default="all")
    ap.add_argument("--prompts-per-task", type=int, default=Budget.prompts_per_task)
    ap.add_argument("--configs", type=int, default=Budget.configs)
    ap.add_argument("--episodes", type=int, default=Budget.episodes)
    ap.add_argument("--workers", type=int, default=Budget.workers)
    ap.add_argument("--bc-steps", type=int, default=Budget.bc_steps)
    ap.add_argument("--train-steps", type=int, nargs=3, metavar=("AE", "EMB", "DIFF"), help="cpu preset steps (default: preset)")
    ap.add_argument("--paper-steps", type=int, nargs=3, metavar=("AE", "EMB", "DIFF"), help="paper preset steps (default: preset)")
    ap.add_argument("--no-paper", action="store_true", help="skip the paper-preset generator")
    ap.add_argument("--pairing", choices=["own", "run"], help="diffusion_pairing (default: the preset's)")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                    help="generator config override for every preset, e.g. diffusion.cond_noise=0.5 (repeatable)")
    ap.add_argument("--baselines", default="retrieval,bc,bc-task")
    ap.add_argument("--action-noise", type=float, default=0.1)
    ap.add_argument("--threads", type=int, default=1, help="torch threads for training (1 is faster on a shared machine)")
    ap.add_argument("--no-progress", action="store_true")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    budget = Budget(a.prompts_per_task, a.configs, a.episodes, a.workers, a.bc_steps)
    a.out.mkdir(parents=True, exist_ok=True)
    timing_path = a.out / "timing.json"
    timing = json.loads(timing_path.read_text()) if timing_path.is_file() else {}

    sets = {}
    for kv in a.set:
        k, eq, v = kv.partition("=")
        if not eq:
            raise SystemExit(f"--set {kv!r}: expected SECTION.FIELD=VALUE")
        sets[k] = yaml.safe_load(v)
    presets = [("cpu", a.train_steps)] + ([] if a.no_paper else [("paper", a.paper_steps)])
    folders = {}
    for preset, steps in presets:
        folders[preset], dt = train(preset, steps, a.data, a.out, not a.no_progress, a.pairing, a.prompts_per_task, sets)
        check_heldout(a.out, preset, a.data, a.prompts_per_task)
        if dt:
            timing[f"train {preset}"] = dt
            timing[f"train {preset} steps"] = steps or "preset"
            timing[f"train {preset} pairing"] = a.pairing or "preset"
            timing[f"train {preset} overrides"] = sets
        timing_path.write_text(json.dumps(timing, indent=1))
    if a.stage == "train":
        return
    gen = PolicyGenerator.from_pretrained(folders["cpu"], device="cpu")
    others = {} if a.no_paper else {"generated (paper preset)": PolicyGenerator.from_pretrained(folders["paper"], device="cpu")}
    prompts = sources.from_dataset(a.data / "prompts", SEEN + UNSEEN, a.prompts_per_task)
    order = {t: i for i, t in enumerate(SEEN + UNSEEN)}
    prompts.sort(key=lambda p: order[p.task])
    cfg = StudyConfig(num_policies=1, seed=0, action_noise=a.action_noise,
                      baselines=tuple(b for b in a.baselines.split(",") if b), bc=BCConfig(steps=a.bc_steps),
                      eval=EvalSettings(n_configs=a.configs, episodes_per_config=a.episodes, workers=a.workers,
                                        progress=not a.no_progress))
    t0 = time.perf_counter()

    def report(results):  # after every method: a partial run still leaves its tables
        timing["evaluation study"] = time.perf_counter() - t0
        timing["study breakdown"] = results["timing_s"]
        results["timing_total_s"] = timing
        write(results, a.out, title="Paper Table 4 reproduction (reference CPU dataset)")
        (a.out / "table4.md").write_text(table4(results, budget))
        timing_path.write_text(json.dumps(timing, indent=1))

    run_study(gen, prompts, cfg, PolicyDataset(a.data / "checkpoints"), others, on_method=report)
    print((a.out / "table4.md").read_text())


if __name__ == "__main__":
    main()
