"""`maa collect`: build a training dataset of policy checkpoints + trajectories (see docs/data.md)."""
from __future__ import annotations



def add_parser(sub, name: str):
    p = sub.add_parser(name, help="collect policy checkpoints and trajectories (MetaWorld, Robosuite)",
                       description="Runs (task, seed) collection jobs and writes DIR/checkpoints and DIR/prompts. "
                                   "Rerunning the same command continues where it stopped.")
    p.add_argument("--config", help="recipe YAML (e.g. config/dataset_reference_cpu.yaml)")
    p.add_argument("--out", help="dataset root (default: the recipe's 'out')")
    p.add_argument("--tasks", help="instead of a recipe: comma-separated tasks, or seen / unseen / paper")
    p.add_argument("--seeds", default="1", help="runs per task: a count N (seeds 0..N-1), 'a-b' or 'a,b,c' (default 1)")
    p.add_argument("--method", choices=["distill", "sac"], default=None, help="collection method (default distill)")
    p.add_argument("--checkpoints-per-run", type=int, default=None)
    p.add_argument("--prompts-per-run", type=int, default=None)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a method setting (YAML value), e.g. --set save_every=200")
    p.add_argument("--workers", type=int, default=1, help="local worker processes (default 1)")
    p.add_argument("--ray-address", default=None, help="run jobs on this Ray cluster ('auto', 'ray://host:port', 'local')")
    p.add_argument("--dry-run", action="store_true", help="list the jobs and exit")
    p.add_argument("--quiet", action="store_true")
    return p


def _recipe_from_args(args) -> dict:
    import re

    import yaml

    from ..collect import load_recipe
    from ..errors import MaaError, check

    if args.config:
        recipe = load_recipe(args.config)
        if args.tasks:
            raise MaaError("give either --config or --tasks, not both")
    else:
        check(args.tasks, "give a recipe (--config) or --tasks")
        seeds = args.seeds.strip()
        check(re.fullmatch(r"\d+|\d+-\d+|\d+(,\d+)+", seeds) is not None,
              f"--seeds {args.seeds!r}: expected a count N, a range a-b or a list a,b,c of non-negative integers")
        seeds = int(seeds) if seeds.isdigit() else ([int(s) for s in seeds.split(",")] if "," in seeds else seeds)
        from ..envs.tasks import ROBOSUITE_TASKS

        robosuite = all(t.strip() in ROBOSUITE_TASKS for t in args.tasks.split(","))
        recipe = {"spec": "robosuite-sac" if robosuite else "metaworld-sac",
                  "groups": [{"tasks": args.tasks, "seeds": seeds,
                              "checkpoints_per_run": 5 if args.checkpoints_per_run is None else args.checkpoints_per_run,
                              "prompts_per_run": 3 if args.prompts_per_run is None else args.prompts_per_run}]}
    if args.method:
        recipe["method"] = args.method
        for g in recipe["groups"]:
            g.pop("method", None)
    method = recipe.get("method", "distill")
    for kv in args.set:
        check("=" in kv, f"--set {kv!r}: expected KEY=VALUE")
        k, v = kv.split("=", 1)
        recipe.setdefault(method, {})
        recipe[method] = {**(recipe[method] or {}), k.strip(): yaml.safe_load(v)}
    if args.config:
        for g in recipe["groups"]:
            if args.checkpoints_per_run is not None:
                g["checkpoints_per_run"] = args.checkpoints_per_run
            if args.prompts_per_run is not None:
                g["prompts_per_run"] = args.prompts_per_run
    return recipe


def run(args) -> int:
    import time
    from collections import Counter
    from pathlib import Path

    from ..collect import plan_jobs, prepare_root, prepare_shared_base, run_jobs, with_shared_base
    from ..errors import check

    recipe = _recipe_from_args(args)
    out = args.out or recipe.get("out")
    check(out, "no output directory: give --out")
    check(args.workers >= 1, f"--workers must be >= 1, got {args.workers}")
    recipe = with_shared_base(recipe, out)
    jobs = plan_jobs(recipe)
    spec = recipe.get("spec", "metaworld-sac")
    if args.dry_run:
        for j in jobs:
            print(f"{j.id}\tcheckpoints={j.checkpoints}\tprompts={j.prompts}")
        print(f"{len(jobs)} jobs -> {out}")
        return 0
    t0 = time.time()
    if recipe.get("shared_base") is not None:  # the root is checked before minutes go into the base
        prepare_root(out, jobs, spec)
        prepare_shared_base(recipe, out, log=None if args.quiet else print)

    def progress(done, total, r):
        if args.quiet:
            return
        j = r["job"]
        tag = "skip" if r.get("skipped") else f"{r.get('seconds', 0):.1f}s"
        print(f"[{done}/{total}] {j['method']}-{j['task']}-s{j['seed']}: {r.get('checkpoints', 0)} checkpoints, "
              f"{r.get('prompts', 0)} prompts ({tag})", flush=True)

    results = run_jobs(jobs, out, workers=args.workers, ray_address=args.ray_address, spec_name=spec, progress=progress)
    from ..dataset import PolicyDataset

    root = Path(out)
    ck, pr = PolicyDataset(root / "checkpoints", verify=True), PolicyDataset(root / "prompts", verify=True)
    per_task = Counter(m["task"] for m in ck.meta())
    short = [f"{t}={n}" for t, n in sorted(per_task.items())]
    print(f"{out}: {len(ck)} checkpoints ({', '.join(short) or 'none'}), {len(pr)} prompts over "
          f"{len(pr.tasks())} tasks; {sum(not r.get('skipped') for r in results)} jobs run in {time.time() - t0:.1f}s")
    return 0
