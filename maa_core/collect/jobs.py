"""(task, seed) collection jobs: the same job code runs inline, in local worker processes or as Ray tasks.

Dataset root layout:
    collect.json          the recipe this root was collected with (a rerun must use the same one)
    checkpoints/          maa dataset (spec metaworld-sac): successful checkpoints + deployed trajectories
    prompts/              maa dataset, same spec: early / partly-trained checkpoints + their trajectories
    jobs/<job>.json       done-marker with the job's summary (a rerun skips these jobs)
    .staging/<job>/       per-job maa datasets a running job appends to, one record per append;
                          merged into checkpoints/ and prompts/ as one shard each when the job ends

Record keys are `<task>/<method>/<seed>/<step>`: deterministic, so a rerun skips finished records,
and 1 or N workers give identical records. A SIGKILL loses at most the checkpoint being computed:
everything appended to staging survives (appends are atomic) and is merged by the rerun.
"""
from __future__ import annotations

import errno
import hashlib
import importlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import MaaError, check

# method -> module of this package. Each method module defines
#   collect_run(task, seed, n_checkpoints, n_prompts, cfg, emit_checkpoint, emit_prompt, spec_name, log) -> summary
#   TRAJ_OBS_DIM: int | None   the stored trajectories' state size when it is not the actor's input size
METHODS = {"distill": "distill", "sac": "sac", "go2-walk": "go2_walk"}
RENAMED = {"gait": "go2-walk"}  # method names of earlier versions (job ids and record keys hold them)


def method_module(name: str):
    """The module implementing collection method `name` (imported on first use: simulators are heavy)."""
    if name not in METHODS:
        hint = f"; it is called {RENAMED[name]!r} now" if name in RENAMED else ""
        raise MaaError(f"unknown collection method {name!r} (known: {', '.join(METHODS)}){hint}")
    return importlib.import_module(f"{__package__}.{METHODS[name]}")


def traj_obs_dim(method: str) -> int | None:
    return method_module(method).TRAJ_OBS_DIM


@dataclass(frozen=True)
class Job:
    task: str           # the paper's short name
    seed: int
    method: str         # a key of METHODS
    checkpoints: int    # successful checkpoints to save (0: prompt-only run, e.g. unseen tasks)
    prompts: int        # prompt records to save
    cfg: str = "{}"     # method hyper-parameters as sorted JSON (hashable, picklable)

    @property
    def id(self) -> str:
        return f"{self.method}-{self.task}-s{self.seed}"


def _keys_fast(root: Path) -> set[str]:
    """Record keys of a maa dataset dir from shard headers only (no tensor reads)."""
    from safetensors import safe_open

    man = root / "manifest.json"
    if not man.exists():
        return set()
    keys = set()
    for s in json.loads(man.read_text())["shards"]:
        with safe_open(str(root / s["file"]), framework="numpy") as f:
            keys |= {m["key"] for m in json.loads(f.metadata()["records"])}
    return keys


def _disk_error(e: OSError, where: Path) -> MaaError:
    if e.errno == errno.ENOSPC:
        return MaaError(f"{where}: disk full while writing; records already written are intact — free space and rerun to continue")
    return MaaError(f"{where}: write failed ({e.strerror or e}); records already written are intact — rerun to continue")


def _write_json_atomic(path: Path, obj) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True))
    os.replace(tmp, path)


def run_job(job: Job | dict, root: str, spec_name: str = "metaworld-sac", verbose: bool = False) -> dict:
    """Runs one job to completion (or resumes it). Returns its summary. Safe to call in any process."""
    from ..dataset import DatasetWriter, PolicyDataset, PolicyRecord

    if isinstance(job, dict):
        job = Job(**job)
    root = Path(root)
    marker = root / "jobs" / f"{job.id}.json"
    stage = root / ".staging" / job.id
    if marker.exists():
        # a kill between the marker and the cleanup leaves a merged stage behind
        _drop_stage(root, stage)
        return {**json.loads(marker.read_text()), "skipped": True}
    t0, c0 = time.time(), time.process_time()
    try:
        writers = {kind: DatasetWriter(stage / kind, spec_name, traj_obs_dim(job.method))
                   for kind in ("checkpoints", "prompts")}
    except OSError as e:
        raise _disk_error(e, stage) from None
    have = {kind: _keys_fast(root / kind) | _keys_fast(stage / kind) for kind in writers}
    written = {"checkpoints": 0, "prompts": 0}

    def emitter(kind: str):
        def emit(item):
            key = f"{job.task}/{job.method}/{job.seed}/{item.step}"
            if key in have[kind]:
                return
            src = {"run": job.id, "seed": job.seed, "step": item.step, "method": job.method,
                   "kind": kind[:-1], **item.extra}
            rec = PolicyRecord(item.params, job.task, item.trajectories, item.success_rate, src, key=key)
            try:
                writers[kind].append([rec])
            except OSError as e:
                raise _disk_error(e, stage / kind) from None
            have[kind].add(key)
            written[kind] += 1
        return emit

    cfg = json.loads(job.cfg)
    log = print if verbose else None
    summary = method_module(job.method).collect_run(job.task, job.seed, job.checkpoints, job.prompts, cfg,
                                                    emitter("checkpoints"), emitter("prompts"), spec_name, log)

    # merge the job's staged records into the dataset: one shard per kind, atomically
    for kind in ("checkpoints", "prompts"):
        staged = PolicyDataset(stage / kind)
        recs = list(staged)
        if recs:
            try:
                DatasetWriter(root / kind, spec_name, traj_obs_dim(job.method)).append(recs)
            except OSError as e:
                raise _disk_error(e, root / kind) from None
    summary = {"job": asdict(job), **summary, "seconds": round(time.time() - t0, 3),
               "cpu_seconds": round(time.process_time() - c0, 3),
               "written": written, "skipped": False}
    try:
        (root / "jobs").mkdir(parents=True, exist_ok=True)
        _write_json_atomic(marker, summary)
    except OSError as e:
        raise _disk_error(e, marker) from None
    _drop_stage(root, stage)
    return summary


def _drop_stage(root: Path, stage: Path) -> None:
    """Removes a merged job's staging dir, and .staging itself when no other job is staging."""
    shutil.rmtree(stage, ignore_errors=True)
    try:
        (root / ".staging").rmdir()
    except OSError:
        pass


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)
    os.environ.setdefault("MUJOCO_GL", "egl")


def _recipe_fingerprint(jobs: list[Job], spec_name: str) -> dict:
    """What makes records of a key what they are: per (task, method) hyper-parameters and the spec."""
    per = sorted({(j.task, j.method, j.cfg) for j in jobs})
    blob = json.dumps([spec_name, per], sort_keys=True)
    return {"spec": spec_name, "methods": sorted({j.method for j in jobs}),
            "fingerprint": hashlib.sha256(blob.encode()).hexdigest()[:16],
            "per_task": {f"{t}/{m}": json.loads(c) for t, m, c in per}}


def prepare_root(root, jobs: list[Job], spec_name: str = "metaworld-sac") -> Path:
    """Creates or checks the dataset root. Refuses a root collected with another recipe or spec."""
    from ..dataset import DatasetWriter
    from ..files import read_json

    root = Path(root)
    info = _recipe_fingerprint(jobs, spec_name)
    try:
        root.mkdir(parents=True, exist_ok=True)
        dims = {traj_obs_dim(m) for m in {j.method for j in jobs}}
        check(len(dims) <= 1, f"{root}: jobs mix trajectory layouts ({sorted(map(str, dims))}); collect them into separate roots")
        path = root / "collect.json"
        if path.exists():  # checked before anything is written into the root
            old = read_json(path, "collect.json")
            check(isinstance(old, dict), f"{path}: expected a JSON object, got {type(old).__name__}")
            check(old.get("spec") == spec_name,
                  f"{root}: collected with spec {old.get('spec')!r}, not {spec_name!r}; use another --out")
            renamed = sorted(set(old.get("methods", [])) & set(RENAMED))
            check(not renamed, f"{root}: collected with method(s) {renamed}, renamed since "
                               f"({', '.join(f'{k} -> {RENAMED[k]}' for k in renamed)}); use another --out")
            old_pt = old.get("per_task", {})
            clash = [k for k, v in info["per_task"].items() if k in old_pt and old_pt[k] != v]
            check(not clash, f"{root}: collected with different hyper-parameters for {', '.join(clash[:3])}; "
                             f"use another --out (records with the same keys would differ)")
            info["per_task"] = {**old_pt, **info["per_task"]}
            info["methods"] = sorted(set(old.get("methods", [])) | set(info["methods"]))
        for kind in ("checkpoints", "prompts"):
            DatasetWriter(root / kind, spec_name, next(iter(dims), None))  # MaaError when owned by another spec
        _write_json_atomic(path, info)
    except OSError as e:
        raise _disk_error(e, root) from None
    return root


def run_jobs(jobs: list[Job], root, workers: int = 1, ray_address: str | None = None,
             spec_name: str = "metaworld-sac", progress=None) -> list[dict]:
    """Runs jobs (skipping finished ones) inline (workers=1), in `workers` local processes, or as
    Ray tasks on the cluster at `ray_address`. Returns the summaries in job order."""
    root = prepare_root(root, jobs, spec_name)
    results: dict[int, dict] = {}
    todo = []
    for i, j in enumerate(jobs):
        marker = root / "jobs" / f"{j.id}.json"
        if marker.exists():
            results[i] = {**json.loads(marker.read_text()), "skipped": True}
        else:
            todo.append(i)
    done = len(results)

    def report(i, r):
        nonlocal done
        done += 1
        results[i] = r
        if progress:
            progress(done, len(jobs), r)

    if ray_address:
        try:
            import ray
        except ImportError:
            raise MaaError("--ray-address needs the 'ray' package (pip install ray)") from None
        ray.init(address=None if ray_address == "local" else ray_address, ignore_reinit_error=True,
                 log_to_driver=False, runtime_env={"env_vars": {"OMP_NUM_THREADS": "1", "MUJOCO_GL": "egl"}})
        remote = ray.remote(num_cpus=1, max_retries=2)(_ray_job)
        refs = {remote.remote(asdict(jobs[i]), str(root.resolve()), spec_name): i for i in todo}
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            for ref in ready:
                i = refs.pop(ref)
                report(i, ray.get(ref))
    elif workers <= 1:
        _worker_init()
        for i in todo:
            report(i, run_job(jobs[i], str(root), spec_name))
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(max_workers=int(workers), mp_context=ctx, initializer=_worker_init) as ex:
            futs = {ex.submit(run_job, asdict(jobs[i]), str(root), spec_name): i for i in todo}
            try:
                for f in as_completed(futs):
                    report(futs[f], f.result())
            except BaseException:
                # a failed job (or Ctrl-C) ends the collection: the queued jobs are dropped, the running ones
                # finish (their records are kept; leaving the block waits for them), a rerun continues
                for f in futs:
                    f.cancel()
                raise
    return [results[i] for i in range(len(jobs))]


def _ray_job(job: dict, root: str, spec_name: str) -> dict:
    _worker_init()
    return run_job(job, root, spec_name)
