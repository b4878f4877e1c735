"""Training-data collection: policy checkpoints + trajectories (see docs/data.md).

    plan_jobs(load_recipe("config/dataset_reference_cpu.yaml")) -> [Job]
    run_jobs(jobs, root, workers=2, ray_address=None) -> [summary]
    run_job(job, root)                         one (task, seed) run; resumable
    with_shared_base(recipe, root)             runs of a recipe with `shared_base` start from <root>/base.npy ...
    prepare_shared_base(recipe, root)          ... which this trains, once per root
    jobs.METHODS                               method name -> module (distill, sac, go2_walk): each
                                               declares collect_run(...) and TRAJ_OBS_DIM
"""
from .jobs import Job, prepare_root, run_job, run_jobs
from .recipe import load_recipe, plan_jobs, prepare_shared_base, resolve_tasks, with_shared_base

__all__ = ["Job", "run_job", "run_jobs", "prepare_root", "load_recipe", "plan_jobs", "prepare_shared_base", "resolve_tasks", "with_shared_base"]
