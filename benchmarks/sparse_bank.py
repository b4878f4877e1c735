"""The sparse-dataset study's retrieval banks: the checkpoints of training runs 0..N-1 of a Go2 dataset,
written once beside it as DATA/checkpoints-first-N-runs (shared by train_sparse_generator.py,
bench_go2_course.py --runs and go2_novelty.py).

Written to a staging folder and renamed when complete, so a run killed mid-write leaves no bank that
looks finished but is empty (it did: a cut session left manifests without shards).
"""
import shutil
from pathlib import Path


def run_of(key: str) -> int:
    """'go2-walk/go2-walk/<seed>/<step>' -> seed (the run is its seed)"""
    return int(key.split("/")[2])


def first_runs_bank(data: str | Path, runs: int) -> Path:
    """DATA/checkpoints-first-RUNS-runs, built from DATA/checkpoints if missing or incomplete."""
    from maa_core.dataset import DatasetWriter, PolicyDataset

    sub = Path(data) / f"checkpoints-first-{runs}-runs"
    if sub.is_dir():
        try:
            if len(PolicyDataset(sub)):
                return sub
        except Exception:  # a bank from before staging, half written: rebuild it
            pass
        shutil.rmtree(sub)
    ckpts = PolicyDataset(Path(data) / "checkpoints")
    stage = sub.with_name(sub.name + ".staging")
    shutil.rmtree(stage, ignore_errors=True)
    DatasetWriter(stage, ckpts.spec, ckpts.traj_obs_dim).append([r for r in ckpts if run_of(r.key) < runs])
    stage.rename(sub)
    return sub
