"""Training-data collection: policy checkpoints + trajectories (see docs/data.md).

    plan_jobs(load_recipe("config/dataset_reference_cpu.yaml")) -> [Job]
    run_jobs(jobs, root, workers=2, ray_address=None) -> [summary]
    run_job(job, root)                         one (task, seed) run; resumable
    jobs.METHODS                               method name -> module (distill, sac, go2_walk): each
                                               declares collect_run(...) and TRAJ_OBS_DIM
"""
from .jobs import Job, prepare_root, run_job, run_jobs
from .recipe import load_recipe, plan_jobs, resolve_tasks

__all__ = ["Job", "run_job", "run_jobs", "prepare_root", "load_recipe", "plan_jobs", "resolve_tasks"]
