#!/usr/bin/env python3
"""walk-these-ways / IsaacGym collection: train (or follow) WTW runs and write every saved actor body,
with trajectories deployed in IsaacGym, to a maa dataset (spec go2-wtw; see docs/data.md).

    training/wtw_collect.py --config config/dataset_wtw_isaacgym.yaml              # train the seeds, collect
    training/wtw_collect.py --config config/dataset_wtw_isaacgym.yaml --no-train --runs 'RUNS/*/train/*'
    training/wtw_collect.py --runs RUN_DIR --out data/wtw --watch                   # follow an ongoing run
    training/wtw_collect.py --runs RUN_DIR --out data/wtw --dry-run                 # list + check, no simulator

Needs IsaacGym and walk-these-ways on a GPU machine, except for --dry-run. Rerunning continues:
checkpoints already in the dataset are not converted again. Bad input: one line, exit code 2.
"""
import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from maa_core.collect.wtw_isaacgym import import_isaacgym  # noqa: E402  (imports no torch)

import_isaacgym()  # isaacgym must load before torch; a no-op where it is not installed


def build_config(a):
    import yaml

    from maa_core.collect.wtw import config_from_dict
    from maa_core.config import read_yaml_mapping
    from maa_core.errors import check

    d = {}
    if a.config:
        d = read_yaml_mapping(a.config)
    if a.out:
        d["out"] = a.out
    if a.runs:
        d["runs"] = list(d.get("runs") or []) + a.runs
    if a.no_train:
        d.pop("train", None)
    if a.watch:
        d["watch"] = True
    for kv in a.set:
        check("=" in kv, f"--set {kv!r}: expected KEY=VALUE")
        k, v = kv.split("=", 1)
        *path, last = k.strip().split(".")
        node = d
        for part in path:
            node = node.setdefault(part, {})
            check(isinstance(node, dict), f"--set {kv!r}: {part} is not a section")
        node[last] = yaml.safe_load(v)
    return config_from_dict(d, a.config or "command line")


def dry_run(cfg) -> int:
    from maa_core.collect.wtw import collected_keys
    from maa_core.collect.wtw_convert import (check_run_fits_spec, convert_checkpoint, expand_runs, find_checkpoints,
                                              load_run_parameters)
    from maa_core.specs import get_spec

    spec = get_spec(cfg.spec)
    have = collected_keys(cfg.out)  # writes nothing
    runs = expand_runs(cfg.runs, strict=True)
    if cfg.train is not None:
        print(f"would train seeds {list(cfg.train.seeds)} for {cfg.train.iterations} iterations "
              f"(ac_weights every {cfg.train.save_every}) under {cfg.train.runs_root}")
    for run in runs:
        params = load_run_parameters(run)
        check_run_fits_spec(params, spec, str(run / "parameters.pkl"), cfg.deploy.obs_dim)
        cks = find_checkpoints(run, cfg.settle_s)
        todo = [c for c in cks if c.key(cfg.task) not in have]
        if todo:
            convert_checkpoint(todo[0], spec, params, cfg.verify_batch)  # format and shapes, round trip
        its = [c.iteration for c in todo]
        print(f"{run}: {len(cks)} checkpoints, {len(cks) - len(todo)} collected, {len(todo)} to collect"
              + (f" (iterations {its[0]}..{its[-1]})" if its else ""))
    return 0


def main(argv=None) -> int:
    from maa_core.errors import MaaError

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="recipe YAML with method: wtw (e.g. config/dataset_wtw_isaacgym.yaml)")
    p.add_argument("--out", help="dataset root (default: the recipe's 'out')")
    p.add_argument("--runs", action="append", default=[], metavar="DIR_OR_GLOB", help="WTW run dir(s) to follow (repeatable)")
    p.add_argument("--no-train", action="store_true", help="ignore the recipe's train section; only follow runs")
    p.add_argument("--watch", action="store_true", help="keep following the runs for new checkpoints")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe value (YAML), e.g. --set deploy.episodes=8 --set train.seeds=[0,1]")
    p.add_argument("--dry-run", action="store_true", help="list and check the checkpoints to collect; no simulator")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    trainer = None
    try:
        cfg = build_config(a)
        if a.dry_run:
            return dry_run(cfg)
        from maa_core.collect.wtw import WtwCollector
        from maa_core.collect.wtw_convert import expand_runs
        from maa_core.collect.wtw_isaacgym import IsaacGymDeployer, TrainerPool, require

        expand_runs(cfg.runs, strict=not cfg.watch)  # missing run dirs fail here, before any GPU work
        log = (lambda *x: None) if a.quiet else print
        trainer = TrainerPool(cfg.train, log) if cfg.train is not None else None  # checks it can train
        require("deploying WTW checkpoints")
        collector = WtwCollector(cfg, lambda params: IsaacGymDeployer(params, cfg.deploy), log=log, progress=not a.quiet)
        summary = collector.run(extra_runs=trainer.run_dirs() if trainer else (),
                                running=trainer.running if trainer else (lambda: False))
        print(json.dumps(summary, indent=1))
    except MaaError as e:
        print(f"wtw_collect: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("wtw_collect: interrupted; records already written are kept, rerun to continue", file=sys.stderr)
        return 130
    finally:
        if trainer is not None:
            trainer.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
