"""walk-these-ways (WTW) runs -> maa dataset records: configuration and the collection loop.

The loop follows run dirs (re-globbed every poll), converts each new iteration-numbered checkpoint
(`wtw_convert.py`), deploys it through a `Deployer` (IsaacGym on a GPU machine: `wtw_isaacgym.py`;
a stand-in simulator in the tests) and appends the records. Nothing here imports IsaacGym.

Records: key `<task>/wtw/<run id>/<iteration>`; trajectory states = the 70-value observation of each
step (the newest history row: the rows the Go2 controller streams as prompts; the dataset manifest's
`traj_obs_dim`) or, with `deploy.states: actor_input`, the whole actor input (history ‖ latent);
actions = the actor's output; no success flags (segment-mode embedding).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from torch import nn

from ..errors import MaaError, check
from ..specs import get_spec
from .wtw_convert import (ConvertedCheckpoint, Rollout, WtwCheckpoint, check_run_fits_spec, convert_checkpoint,
                          expand_runs, find_checkpoints, is_run_dir, load_jit, load_run_parameters,
                          rollout_to_trajectories)

SETTINGS_FILE = "wtw_collect.json"
SKIPPED_FILE = "wtw_skipped.json"


# -- configuration ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class WtwTrainConfig:
    """Training WTW runs (IsaacGym): one run per seed under `runs_root/seed-<seed>`."""
    seeds: tuple[int, ...] = (0,)
    iterations: int = 10_000           # PPO iterations per run
    save_every: int = 100              # K: RunnerArgs.save_interval (ac_weights_<it>.pt every K iterations)
    runs_root: str = "runs/wtw"
    base_parameters: str | None = None  # parameters.pkl (or run dir) whose Cfg the runs start from
    cfg: dict = field(default_factory=dict)  # overrides, "section.key": value (e.g. "env.num_envs": 4000)
    num_envs: int = 4000
    device: str = "cuda:0"
    parallel: int = 1                  # training processes at once (one GPU each is typical)


@dataclass(frozen=True)
class WtwDeployConfig:
    """Deploying every checkpoint in IsaacGym to record its trajectories."""
    episodes: int = 4                  # parallel environments = episodes per checkpoint
    episode_steps: int = 250           # policy steps per episode (5 s at 50 Hz)
    min_steps: int = 60                # shorter episodes (the robot fell) are not kept
    commands: tuple[tuple[float, ...], ...] | None = None  # per-episode 15-value commands; None: the env samples them
    seed: int = 0                      # torch seed before every rollout: every checkpoint sees the same starts
    domain_rand: bool = False          # keep the run's domain randomization (False: off, as WTW's play.py)
    parameters: str | None = None      # parameters.pkl (or run dir) the deployment env is built from (default: first run)
    adaptation_module: str | None = None  # TorchScript estimator for body_*.jit checkpoints without their own
    states: str = "observation"       # trajectory states: "observation" (newest history row) | "actor_input"
    obs_dim: int = 70                  # one observation (Cfg.env.num_observations)
    sim_device: str = "cuda:0"


@dataclass(frozen=True)
class WtwCollectConfig:
    out: str                           # dataset root: checkpoints/ and prompts/ (maa dataset dirs)
    runs: tuple[str, ...] = ()         # run dirs or glob patterns to follow (re-globbed every poll)
    train: WtwTrainConfig | None = None
    deploy: WtwDeployConfig = WtwDeployConfig()
    spec: str = "go2-wtw"
    task: str = "wtw-locomotion"
    prompt_below: int = 0              # checkpoints of iterations < this go to prompts/ (paper: early iterations)
    shard_records: int = 8             # records per appended shard
    watch: bool = False                # keep following the runs for new checkpoints
    poll_s: float = 30.0
    idle_timeout_s: float = 3600.0     # watch mode ends after this long without a new checkpoint
    settle_s: float = 10.0             # a checkpoint file must be this old (not still being written)
    verify_batch: int = 32             # inputs of the bit-exact round-trip check of TorchScript bodies


def _dataclass_from(cls, d: dict, where: str):
    known = set(cls.__dataclass_fields__)
    unknown = set(d) - known
    check(not unknown, f"{where}: unknown settings {sorted(unknown)} (known: {', '.join(sorted(known))})")
    return cls(**d)


def config_from_dict(d: dict, where: str = "wtw config") -> WtwCollectConfig:
    """A `WtwCollectConfig` from a recipe mapping (config/dataset_wtw_isaacgym.yaml)."""
    check(isinstance(d, dict), f"{where}: expected a mapping")
    check(d.get("method", "wtw") == "wtw", f"{where}: method {d.get('method')!r}, this collector is 'wtw'")
    d = {k: v for k, v in d.items() if k != "method"}
    try:
        train = d.pop("train", None)
        if train is not None:
            check(isinstance(train, dict), f"{where}: 'train' must be a mapping")
            train = dict(train)
            train["seeds"] = tuple(int(s) for s in (range(train["seeds"]) if isinstance(train.get("seeds"), int)
                                                    else train.get("seeds", (0,))))
            train = _dataclass_from(WtwTrainConfig, train, f"{where}: train")
        deploy = dict(d.pop("deploy", None) or {})
        if deploy.get("commands") is not None:
            deploy["commands"] = tuple(tuple(float(x) for x in c) for c in deploy["commands"])
        deploy = _dataclass_from(WtwDeployConfig, deploy, f"{where}: deploy")
        runs = d.pop("runs", ())
        runs = (runs,) if isinstance(runs, str) else tuple(runs or ())
        cfg = _dataclass_from(WtwCollectConfig, {**d, "runs": runs, "train": train, "deploy": deploy}, where)
    except MaaError:
        raise
    except (TypeError, ValueError) as e:
        raise MaaError(f"{where}: malformed ({type(e).__name__}: {e})") from None
    validate_config(cfg, where)
    return cfg


def validate_config(cfg: WtwCollectConfig, where: str = "wtw config") -> None:
    check(bool(cfg.out), f"{where}: 'out' (dataset root) is required")
    check(bool(cfg.runs) or cfg.train is not None, f"{where}: give run dirs to follow ('runs') or a 'train' section")
    d = cfg.deploy
    check(d.episodes >= 1 and d.episode_steps >= 1, f"{where}: deploy.episodes and deploy.episode_steps must be >= 1")
    check(1 <= d.min_steps <= d.episode_steps, f"{where}: deploy.min_steps must be in [1, episode_steps]")
    check(d.states in ("observation", "actor_input"), f"{where}: deploy.states must be 'observation' or 'actor_input'")
    if d.commands is not None:
        check(len(d.commands) >= 1 and all(len(c) == 15 for c in d.commands),
              f"{where}: deploy.commands must be a list of 15-value command vectors")
    check(cfg.shard_records >= 1, f"{where}: shard_records must be >= 1")
    check(cfg.poll_s > 0 and cfg.settle_s >= 0 and cfg.idle_timeout_s >= 0, f"{where}: poll_s/settle_s/idle_timeout_s out of range")
    if cfg.train is not None:
        t = cfg.train
        check(t.iterations >= 1 and 1 <= t.save_every <= t.iterations,
              f"{where}: train.iterations >= 1 and 1 <= train.save_every <= iterations required")
        check(len(t.seeds) >= 1 and t.parallel >= 1 and t.num_envs >= 1, f"{where}: train.seeds, parallel, num_envs must be non-empty / >= 1")
    get_spec(cfg.spec)


# -- collection loop ---------------------------------------------------------------------------------
class Deployer(Protocol):
    def rollout(self, actor: nn.Module, adaptation: nn.Module) -> Rollout: ...


def deploy_settings(cfg: WtwCollectConfig) -> dict:
    """What makes a record of a key what it is; a root collected with other settings is refused."""
    d = asdict(cfg.deploy)
    d.pop("sim_device")
    return {"spec": cfg.spec, "task": cfg.task, "prompt_below": cfg.prompt_below, "deploy": d}


def _settings_check(root: Path, cfg: WtwCollectConfig) -> None:
    path = root / SETTINGS_FILE
    mine = json.loads(json.dumps(deploy_settings(cfg)))
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except json.JSONDecodeError:
            raise MaaError(f"{path}: not valid JSON") from None
        diff = sorted(k for k in set(old) | set(mine) if old.get(k) != mine.get(k))
        check(not diff, f"{root}: collected with other settings ({', '.join(diff)}); use another 'out' "
                        f"(records with the same keys would differ)")
    else:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(mine, indent=1, sort_keys=True))
        tmp.replace(path)


def collected_keys(root) -> set[str]:
    """Keys already in the dataset root (checkpoints/, prompts/) or remembered as skipped; reads only headers."""
    from .jobs import _keys_fast

    root = Path(root)
    sk = root / SKIPPED_FILE
    skipped = set(json.loads(sk.read_text())) if sk.exists() else set()
    return _keys_fast(root / "checkpoints") | _keys_fast(root / "prompts") | skipped


class WtwCollector:
    """Converts and deploys every not-yet-collected checkpoint of the followed runs into `cfg.out`.

    `deployer` runs a checkpoint in the simulator (`wtw_isaacgym.IsaacGymDeployer` on a GPU machine);
    `running` says whether training processes are still producing checkpoints."""

    def __init__(self, cfg: WtwCollectConfig, deployer_factory: Callable[[dict], Deployer] | None = None,
                 log=print, progress: bool = True):
        from ..dataset import DatasetWriter
        from .jobs import _keys_fast

        validate_config(cfg)
        self.cfg, self.spec = cfg, get_spec(cfg.spec)
        self.root = Path(cfg.out)
        self.root.mkdir(parents=True, exist_ok=True)
        d = cfg.deploy
        traj_dim = d.obs_dim if d.states == "observation" else self.spec.obs_dim
        self.writers = {k: DatasetWriter(self.root / k, self.spec, traj_obs_dim=traj_dim) for k in ("checkpoints", "prompts")}
        _settings_check(self.root, cfg)
        self.have = _keys_fast(self.root / "checkpoints") | _keys_fast(self.root / "prompts")
        sk = self.root / SKIPPED_FILE
        self.skipped: dict[str, str] = json.loads(sk.read_text()) if sk.exists() else {}
        self.deployer_factory, self.deployer = deployer_factory, None
        self.log, self.progress = log or (lambda *a, **k: None), progress
        self.pending: dict[str, list] = {"checkpoints": [], "prompts": []}
        self.run_params: dict[Path, dict] = {}
        self._adaptation_fallback = None
        self.written = {"checkpoints": 0, "prompts": 0}
        self.attempted: set[str] = set()  # keys handled in this session (a pass never repeats one)

    # one checkpoint -------------------------------------------------------------------------------
    def _params_of(self, run_dir: Path) -> dict:
        if run_dir not in self.run_params:
            p = load_run_parameters(run_dir)
            check_run_fits_spec(p, self.spec, str(run_dir / "parameters.pkl"), self.cfg.deploy.obs_dim)
            self.run_params[run_dir] = p
        return self.run_params[run_dir]

    def _deployer(self, run_dir: Path) -> Deployer:
        if self.deployer is None:
            check(self.deployer_factory is not None, "no simulator to deploy checkpoints in (IsaacGym deployer missing)")
            src = self.cfg.deploy.parameters
            params = load_run_parameters(src) if src else self._params_of(run_dir)
            check_run_fits_spec(params, self.spec, f"{src or run_dir}: deployment config", self.cfg.deploy.obs_dim)
            self.deployer = self.deployer_factory(params)
        return self.deployer

    def _adaptation(self, conv: ConvertedCheckpoint, ck: WtwCheckpoint) -> nn.Module:
        if conv.adaptation is not None:
            return conv.adaptation
        path = self.cfg.deploy.adaptation_module
        check(path is not None, f"{ck.path}: a body-only checkpoint without adaptation_module_{ck.iteration:06d}.jit; "
                                f"set deploy.adaptation_module")
        if self._adaptation_fallback is None:
            self._adaptation_fallback = load_jit(Path(path))
        return self._adaptation_fallback

    def collect_one(self, ck: WtwCheckpoint) -> str:
        """Converts, deploys and queues one checkpoint. Returns 'written' or the reason it was skipped."""
        key = ck.key(self.cfg.task)
        self.attempted.add(key)
        run_params = self._params_of(ck.run_dir)
        conv = convert_checkpoint(ck, self.spec, run_params, self.cfg.verify_batch)
        adaptation = self._adaptation(conv, ck)
        actor = self.spec.unflatten(conv.params).eval()
        rollout = self._deployer(ck.run_dir).rollout(actor, adaptation)
        d = self.cfg.deploy
        trajs, summary = rollout_to_trajectories(rollout, self.spec, d.min_steps, d.states, d.obs_dim, where=str(ck.path))
        if not trajs:
            self.skipped[key] = f"no episode reached {self.cfg.deploy.min_steps} steps"
            self._save_skipped()
            return self.skipped[key]
        from ..dataset import PolicyRecord

        kind = "prompts" if ck.iteration < self.cfg.prompt_below else "checkpoints"
        src = {"run": ck.run_id, "run_dir": str(ck.run_dir.resolve()), "seed": (run_params.get("maa") or {}).get("seed"),
               "step": ck.iteration, "method": "wtw", "kind": kind[:-1], "file": ck.path.name, **summary}
        self.pending[kind].append(PolicyRecord(conv.params, self.cfg.task, trajs, math.nan, src, key=key))
        if len(self.pending[kind]) >= self.cfg.shard_records:
            self.flush()
        return "written"

    def _save_skipped(self) -> None:
        p = self.root / SKIPPED_FILE
        tmp = p.with_name(f".{p.name}.tmp")
        tmp.write_text(json.dumps(self.skipped, indent=1, sort_keys=True))
        tmp.replace(p)

    def flush(self) -> None:
        for kind, recs in self.pending.items():
            if recs:
                self.written[kind] += self.writers[kind].append(recs)
                self.have |= {r.key for r in recs}
                self.pending[kind] = []

    # the loop ---------------------------------------------------------------------------------------
    def todo(self, extra_runs=()) -> list[WtwCheckpoint]:
        runs = expand_runs(self.cfg.runs, strict=not self.cfg.watch)
        runs += [r for r in extra_runs if is_run_dir(Path(r)) and Path(r) not in runs]
        seen = self.attempted | self.have | set(self.skipped)
        out = []
        for run in runs:
            for ck in find_checkpoints(run, self.cfg.settle_s):
                k = ck.key(self.cfg.task)
                if k not in seen:
                    seen.add(k)
                    out.append(ck)
        return out

    def run(self, extra_runs=(), running: Callable[[], bool] = lambda: False, sleep=time.sleep) -> dict:
        """Collects until done: one pass (default), until `running()` is false and nothing is left
        (training), or until `idle_timeout_s` passes without new checkpoints (watch)."""
        from tqdm import tqdm

        t_idle = time.monotonic()
        n_done = 0
        try:
            while True:
                todo = self.todo(extra_runs)
                if todo:
                    t_idle = time.monotonic()
                for ck in tqdm(todo, desc="wtw checkpoints", unit="ckpt", disable=not self.progress or not todo):
                    status = self.collect_one(ck)
                    n_done += 1
                    if status != "written":
                        self.log(f"{ck.path}: skipped ({status})")
                self.flush()
                training = running()
                if not training and not self.cfg.watch:
                    if not self.todo(extra_runs):  # files that settled meanwhile
                        break
                    continue
                if self.cfg.watch and not training and time.monotonic() - t_idle > self.cfg.idle_timeout_s:
                    break
                sleep(self.cfg.poll_s)
        finally:
            self.flush()
        return {"out": str(self.root), "processed": n_done, "written": dict(self.written),
                "skipped": len(self.skipped), "checkpoints": len(self._count("checkpoints")),
                "prompts": len(self._count("prompts"))}

    def _count(self, kind: str) -> set[str]:
        from .jobs import _keys_fast

        return _keys_fast(self.root / kind)
