"""IsaacGym side of walk-these-ways collection: training runs with WTW's own `Runner` (one subprocess
per seed) and deploying a checkpoint in `VelocityTrackingEasyEnv` to record its trajectories.

Nothing here imports isaacgym, walk-these-ways or torch at module import. isaacgym refuses to load
after torch, so `training/wtw_collect.py` imports it first thing; library callers must do the same.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

from ..errors import MaaError, check

REQUIREMENTS = {
    "isaacgym": "NVIDIA Isaac Gym Preview 4 (pip install -e isaacgym/python)",
    "go1_gym": "walk-these-ways (pip install -e walk-these-ways)",
    "go1_gym_learn": "walk-these-ways (pip install -e walk-these-ways)",
    "ml_logger": "ml_logger (a walk-these-ways dependency)",
    "params_proto": "params_proto (a walk-these-ways dependency)",
}
# WTW's play.py switches these off for evaluation; deployment does the same unless deploy.domain_rand
DOMAIN_RAND_OFF = ("push_robots", "randomize_friction", "randomize_gravity", "randomize_restitution",
                   "randomize_motor_offset", "randomize_motor_strength", "randomize_friction_indep",
                   "randomize_ground_friction", "randomize_base_mass", "randomize_Kd_factor",
                   "randomize_Kp_factor", "randomize_joint_friction", "randomize_com_displacement")
# play.py's small evaluation terrain
DEPLOY_TERRAIN = {"num_rows": 5, "num_cols": 5, "border_size": 0, "center_robots": True, "center_span": 1,
                  "teleport_robots": True}
NUM_COMMANDS = 15
TRAIN_DONE = "maa_train.done"
TRAIN_LOG = "maa_train.log"


def missing_requirements() -> list[str]:
    out = []
    for mod, what in REQUIREMENTS.items():
        try:
            found = importlib.util.find_spec(mod) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            out.append(f"{mod} ({what})")
    return out


def require(what: str) -> None:
    missing = missing_requirements()
    check(not missing, f"{what} needs IsaacGym and walk-these-ways; not importable here: {', '.join(missing)}")


def import_isaacgym() -> None:
    """Imports isaacgym before torch (its own rule). No-op when absent or already imported."""
    if "isaacgym" in sys.modules:
        return
    try:
        found = importlib.util.find_spec("isaacgym") is not None
    except (ImportError, ValueError):
        found = False
    if found and "torch" not in sys.modules:
        import isaacgym  # noqa: F401


def _ensure(what: str) -> None:
    require(what)
    if "isaacgym" not in sys.modules:
        check("torch" not in sys.modules, f"{what}: isaacgym must be imported before torch "
                                           f"(training/wtw_collect.py does; in your own code, import isaacgym first)")
        import isaacgym  # noqa: F401


def apply_cfg(target, values: dict, where: str = "Cfg") -> None:
    """Sets a params_proto `Cfg` (nested classes) from a saved Cfg dict, section by section."""
    for k, v in values.items():
        cur = getattr(target, k, None)
        if isinstance(v, dict) and isinstance(cur, type):
            apply_cfg(cur, v, f"{where}.{k}")
        else:
            setattr(target, k, v)


def apply_overrides(Cfg, overrides: dict) -> None:
    """'section.key' (dots for nesting) -> value."""
    for dotted, v in overrides.items():
        *path, last = str(dotted).split(".")
        obj = Cfg
        for p in path:
            check(hasattr(obj, p), f"train.cfg: {dotted!r}: Cfg has no section {p!r}")
            obj = getattr(obj, p)
        check(hasattr(obj, last), f"train.cfg: {dotted!r}: Cfg has no setting {last!r}")
        setattr(obj, last, v)


# -- deployment ------------------------------------------------------------------------------------
class IsaacGymDeployer:
    """One `VelocityTrackingEasyEnv` (+ WTW's HistoryWrapper) with `deploy.episodes` environments, built once
    from a run's Cfg and reused for every checkpoint: reset, then `episode_steps` steps of
    latent = adaptation(obs_history); action = actor(obs_history ‖ latent), as WTW's play.py; after the
    reset, `get_observations()` puts the first observation into the history, as `Runner.learn` does."""

    def __init__(self, run_params: dict, deploy):
        _ensure("deploying WTW checkpoints")
        from go1_gym.envs.base.legged_robot_config import Cfg
        from go1_gym.envs.go1.velocity_tracking import VelocityTrackingEasyEnv
        from go1_gym.envs.wrappers.history_wrapper import HistoryWrapper

        apply_cfg(Cfg, run_params["Cfg"])
        if not deploy.domain_rand:
            for flag in DOMAIN_RAND_OFF:
                setattr(Cfg.domain_rand, flag, False)
        for k, v in DEPLOY_TERRAIN.items():
            setattr(Cfg.terrain, k, v)
        Cfg.env.num_envs = deploy.episodes
        Cfg.env.num_recording_envs = 1
        self.deploy = deploy
        self.env = HistoryWrapper(VelocityTrackingEasyEnv(sim_device=deploy.sim_device, headless=True, cfg=Cfg))

    def rollout(self, actor, adaptation):
        import numpy as np
        import torch

        from .wtw_convert import Rollout

        d, env = self.deploy, self.env
        dev = env.device
        torch.manual_seed(d.seed)
        np.random.seed(d.seed)
        actor, adaptation = actor.to(dev).eval(), adaptation.to(dev).eval()
        cmds = None
        if d.commands is not None:
            cmds = torch.tensor([d.commands[i % len(d.commands)] for i in range(d.episodes)], dtype=torch.float32, device=dev)
        T, N = d.episode_steps, d.episodes
        hist, lat, act = [], [], []
        rew, done, vel, contacts = (np.zeros((T, N)), np.zeros((T, N), bool), np.zeros((T, N, 3)), np.zeros((T, N, 4), bool))
        env.reset()
        obs = env.get_observations()
        for t in range(T):
            h = obs["obs_history"]
            with torch.inference_mode():
                z = adaptation(h)
                a = actor(torch.cat((h, z), dim=-1))
            hist.append(h.cpu().numpy().astype(np.float32))
            lat.append(z.cpu().numpy().astype(np.float32))
            act.append(a.cpu().numpy().astype(np.float32))
            if cmds is not None:
                env.commands[:, :NUM_COMMANDS] = cmds
            obs, r, dn, info = env.step(a)
            rew[t], done[t] = r.cpu().numpy(), dn.cpu().numpy().astype(bool)
            vel[t] = np.asarray(info["body_linear_vel"])[:, :3]
            contacts[t] = np.asarray(info["contact_states"]).astype(bool)
        return Rollout(np.stack(hist), np.stack(lat), np.stack(act), rew, done, vel, contacts, dt=float(env.dt))


# -- training --------------------------------------------------------------------------------------
def train_run(job: dict) -> None:
    """One WTW training run (in its own process, cwd = its run dir): WTW's Cfg (+ a base run's Cfg and
    overrides), seeded, `Runner.learn` with `RunnerArgs.save_interval = save_every`, so WTW itself saves
    `checkpoints/ac_weights_<it>.pt` every K iterations; ml_logger writes parameters.pkl beside them."""
    _ensure("training WTW runs")
    import random

    import numpy as np
    import torch
    from go1_gym.envs.base.legged_robot_config import Cfg
    from go1_gym.envs.go1.go1_config import config_go1
    from go1_gym.envs.go1.velocity_tracking import VelocityTrackingEasyEnv
    from go1_gym.envs.wrappers.history_wrapper import HistoryWrapper
    from go1_gym_learn.ppo_cse import Runner, RunnerArgs
    from go1_gym_learn.ppo_cse.actor_critic import AC_Args
    from go1_gym_learn.ppo_cse.ppo import PPO_Args
    from ml_logger import logger

    from .wtw_convert import load_run_parameters

    config_go1(Cfg)
    if job.get("base_parameters"):
        base = load_run_parameters(job["base_parameters"])
        apply_cfg(Cfg, base["Cfg"])
        for name, proto in (("AC_Args", AC_Args), ("PPO_Args", PPO_Args)):
            if isinstance(base.get(name), dict):
                apply_cfg(proto, base[name])
    apply_overrides(Cfg, job.get("cfg") or {})
    Cfg.env.num_envs = int(job["num_envs"])
    RunnerArgs.save_interval = int(job["save_every"])
    RunnerArgs.save_video_interval = 0  # no video recording
    seed = int(job["seed"])
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    run_dir = Path(job["run_dir"]).resolve()
    logger.configure(run_dir.name, root=str(run_dir.parent))
    logger.log_params(AC_Args=vars(AC_Args), PPO_Args=vars(PPO_Args), RunnerArgs=vars(RunnerArgs), Cfg=vars(Cfg),
                      maa={"seed": seed, "iterations": int(job["iterations"]), "save_every": int(job["save_every"])})
    env = HistoryWrapper(VelocityTrackingEasyEnv(sim_device=job["device"], headless=True, cfg=Cfg))
    runner = Runner(env, device=job["device"])
    runner.learn(num_learning_iterations=int(job["iterations"]), init_at_random_ep_len=True, eval_freq=100)
    (run_dir / TRAIN_DONE).write_text(json.dumps({"seed": seed, "iterations": int(job["iterations"])}))


class TrainerPool:
    """Runs `train_run` for each seed in subprocesses, `parallel` at a time; `running()` polls them and
    starts the next. A run dir that already finished (maa_train.done) is not retrained; one that holds
    checkpoints of an interrupted training is followed, not retrained (its keys would change)."""

    def __init__(self, train, log=print):
        self.t, self.log = train, log
        root = Path(train.runs_root)
        self.dirs = {s: root / f"seed-{s}" for s in train.seeds}
        self.queue = []
        for s, d in self.dirs.items():
            if (d / TRAIN_DONE).exists():
                continue
            if (d / "checkpoints").is_dir() and any((d / "checkpoints").glob("ac_weights_*.pt")):
                log(f"{d}: checkpoints of an interrupted training; collecting them, not retraining")
                continue
            self.queue.append(s)
        self.procs: dict[int, subprocess.Popen] = {}
        if self.queue:
            require("training WTW runs")

    def run_dirs(self) -> list[Path]:
        return list(self.dirs.values())

    def _start(self, seed: int) -> None:
        d = self.dirs[seed]
        d.mkdir(parents=True, exist_ok=True)
        job = {"seed": seed, "run_dir": str(d.resolve()), "iterations": self.t.iterations, "save_every": self.t.save_every,
               "base_parameters": self.t.base_parameters and str(Path(self.t.base_parameters).resolve()),
               "cfg": dict(self.t.cfg), "num_envs": self.t.num_envs, "device": self.t.device}
        repo = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([repo] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
        with open(d / TRAIN_LOG, "ab") as logf:
            self.procs[seed] = subprocess.Popen([sys.executable, "-m", "maa_core.collect.wtw_isaacgym", json.dumps(job)],
                                                cwd=d, env=env, stdout=logf, stderr=subprocess.STDOUT)
        self.log(f"training seed {seed} -> {d} (log {d / TRAIN_LOG})")

    def running(self) -> bool:
        for seed, p in list(self.procs.items()):
            rc = p.poll()
            if rc is None:
                continue
            del self.procs[seed]
            if rc != 0:
                raise MaaError(f"training seed {seed} failed (exit {rc}); see {self.dirs[seed] / TRAIN_LOG}")
        while self.queue and len(self.procs) < self.t.parallel:
            self._start(self.queue.pop(0))
        return bool(self.procs)

    def stop(self) -> None:
        for p in self.procs.values():
            p.terminate()
        for p in self.procs.values():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    import_isaacgym()
    try:
        train_run(json.loads(sys.argv[1]))
    except MaaError as e:
        print(f"wtw train: error: {e}", file=sys.stderr)
        sys.exit(2)
