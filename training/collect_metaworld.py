#!/usr/bin/env python3
"""Builds a MetaWorld training dataset: a thin wrapper over `maa collect`.

    training/collect_metaworld.py                           # reference CPU recipe, 2 workers
    training/collect_metaworld.py --config config/dataset_sac_paper.yaml --ray-address auto
Any `maa collect` option is accepted; defaults: --config config/dataset_reference_cpu.yaml --workers 2.
"""
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from maa_core.cli import main  # noqa: E402

if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--config" not in argv and "--tasks" not in argv:
        argv = ["--config", str(REPO / "config" / "dataset_reference_cpu.yaml")] + argv
    if "--workers" not in argv and "--ray-address" not in argv:
        argv += ["--workers", "2"]
    sys.exit(main(["collect"] + argv))
