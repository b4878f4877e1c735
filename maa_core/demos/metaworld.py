"""The demo job: collect -> train -> generate -> evaluate on MetaWorld, at a tiny scale.

Every stage is resumable (collection and training skip finished work), so a second run is quick.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import read_yaml_mapping
from ..files import dataclass_from_mapping
from ..resources import resolve

DEFAULT_CONFIG = "config/demo.yaml"


@dataclass(frozen=True)
class MetaWorldDemoConfig:
    """config/demo.yaml; loaded the way the Go2 demo's config is (unknown keys are an error)."""
    dataset_recipe: str                             # collection recipe (a path, or the package's config/<name>)
    run_dir: str                                    # dataset (unless the recipe names `out`), generator, results
    generator: dict = field(default_factory=dict)   # GeneratorConfig overrides (with 'preset')
    policies_per_prompt: int = 4
    eval_configs: int = 5                           # random initial configurations per generated policy (paper: 5)
    workers: int = 1
    seed: int = 0

    @classmethod
    def load(cls, path) -> "MetaWorldDemoConfig":
        return dataclass_from_mapping(cls, read_yaml_mapping(path, "demo config"), str(path),
                                      required=("dataset_recipe", "run_dir"))


def run_demo(config_path=DEFAULT_CONFIG, progress: bool = True) -> list[dict]:
    from tqdm import tqdm

    from ..collect import load_recipe, plan_jobs, run_jobs
    from ..config import GeneratorConfig, apply_overrides
    from ..dataset import PolicyDataset
    from ..envs import evaluate_actor
    from ..train import TrainerOptions, train_from_dataset

    cfg = MetaWorldDemoConfig.load(resolve(config_path, "config"))
    run_dir = Path(cfg.run_dir)
    t0 = time.time()

    # 1. collect checkpoints and prompts
    recipe = load_recipe(resolve(cfg.dataset_recipe, "config"))
    jobs = plan_jobs(recipe)
    data_root = Path(recipe.get("out") or run_dir / "data")
    print(f"[1/4] collecting {len(jobs)} jobs into {data_root}")
    with tqdm(total=len(jobs), disable=not progress, unit="job") as bar:
        run_jobs(jobs, data_root, workers=cfg.workers, spec_name=recipe.get("spec", "metaworld-sac"),
                 progress=lambda done, total, r: bar.update(done - bar.n))
    print(f"      {len(PolicyDataset(data_root / 'checkpoints'))} checkpoints, "
          f"{len(PolicyDataset(data_root / 'prompts'))} prompt records ({time.time() - t0:.0f} s)")

    # 2. train the generator
    g = dict(cfg.generator)
    gcfg = apply_overrides(GeneratorConfig.preset_named(g.pop("preset", "cpu")), g)
    gen_dir = run_dir / "generator"
    print(f"[2/4] training the generator ({gcfg.preset} preset) -> {gen_dir}")
    t1 = time.time()
    if (gen_dir / "generator.json").exists():
        from ..pipeline import PolicyGenerator
        gen = PolicyGenerator.from_pretrained(gen_dir)
        print("      (reusing the trained generator)")
    else:
        gen = train_from_dataset(data_root / "checkpoints", gen_dir, gcfg, TrainerOptions(run_dir=run_dir / "train", progress=progress))
    print(f"      done ({time.time() - t1:.0f} s)")

    # 3. generate from the prompts (sub-optimal early checkpoints' trajectories)
    prompts = [(r.task, r.success_rate, t) for r in PolicyDataset(data_root / "prompts") for t in r.trajectories]
    k = cfg.policies_per_prompt
    print(f"[3/4] generating {k} policies for each of {len(prompts)} prompts")
    t2 = time.time()
    out = gen.generate([t for _, _, t in prompts], num_policies=k, seed=cfg.seed)
    gen_time = time.time() - t2

    # 4. evaluate every generated policy in the paper's protocol
    print(f"[4/4] evaluating {len(prompts) * k} policies x {cfg.eval_configs} initial configurations")
    per_task: dict[str, dict] = {}
    with tqdm(total=len(prompts) * k, disable=not progress, unit="policy") as bar:
        for i, (task, prompt_sr, _) in enumerate(prompts):
            row = per_task.setdefault(task, {"prompt": [], "gen": []})
            row["prompt"].append(prompt_sr)
            for j in range(k):
                res = evaluate_actor(out.actor(i, j), task, n_configs=cfg.eval_configs, seed=cfg.seed,
                                     keep_trajectories=False)
                row["gen"].append(res.success_rate)
                bar.update(1)
    seen = set(t for g_ in recipe["groups"] if g_.get("checkpoints_per_run", 0) for t in _tasks_of(g_))
    rows = []
    for task, r in per_task.items():
        sr = np.array(r["gen"])
        rows.append({"task": task, "seen": task in seen, "prompts": len(r["prompt"]),
                     "prompt success": float(np.nanmean(r["prompt"])), "generated mean": float(sr.mean()),
                     "top-5": float(np.sort(sr)[::-1][:5].mean()), "qualified": float((sr >= 1.0).mean())})
    from ..cli.common import table
    print()
    table(rows)
    print(f"\ngeneration: {len(prompts) * k} policies in {gen_time * 1000:.0f} ms; total {time.time() - t0:.0f} s")
    (run_dir / "demo_results.json").write_text(json.dumps(rows, indent=1))
    print(f"results: {run_dir / 'demo_results.json'}")
    return rows


def _tasks_of(group: dict) -> list[str]:
    from ..collect import resolve_tasks
    return resolve_tasks(group["tasks"])
