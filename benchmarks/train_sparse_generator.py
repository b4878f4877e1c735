"""A Go2 generator trained on the first N training runs only (issue #15 item 5: where does generation
earn its place?), with the demo's generator settings (config/demo_go2.yaml), beside the subset bank
that bench_go2_course.py --runs N retrieves from.

    .venv/bin/python benchmarks/train_sparse_generator.py --data data/go2-walk --runs 12 --out runs/sparse/gen-12
"""
import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from sparse_bank import first_runs_bank  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/go2-walk")
    ap.add_argument("--runs", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--config", default=str(REPO / "config" / "demo_go2.yaml"))
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()

    import torch

    from maa_core.dataset import PolicyDataset
    from maa_core.demos.go2 import Go2DemoConfig, generator_config
    from maa_core.go2.wtw import adaptation_record, load_wtw_run, write_adaptation_record
    from maa_core.train import TrainerOptions, train_from_dataset

    torch.set_num_threads(a.threads)
    cfg = Go2DemoConfig.load(a.config)
    sub = first_runs_bank(a.data, a.runs)  # the bank bench_go2_course.py --runs retrieves from
    t0 = time.time()
    out = Path(a.out)
    train_from_dataset(sub, out, generator_config(cfg), TrainerOptions(run_dir=out.with_name(out.name + ".run"), progress=False))
    write_adaptation_record(out, adaptation_record(load_wtw_run(dict(cfg.distill).get("wtw_dir", ""))))
    print(f"{out}: trained on {len(PolicyDataset(sub))} checkpoints of runs 0..{a.runs - 1} in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
