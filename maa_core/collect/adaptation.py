"""Our own walk-these-ways adaptation module, trained in the MuJoCo Go2 (the one `models/go2-adaptation`
ships, so the Go2 path needs nothing outside the repository).

The walk-these-ways way: an MLP reads the policy's 30-step observation history (30 x 70 = 2100
values; maa_core/go2/wtw.py) and regresses privileged simulator truth, here the two quantities the
pretrained WTW run estimates: ground friction and restitution, each normalized as that run's config
normalizes its privileged observations, `(x - mid) * 2 / (hi - lo)` over `normalization.*_range`
= [0, 1] (so friction 0.8 -> 0.6, restitution 0 -> -1).

Data: episodes of the commanded trot expert (maa_core/go2/gait.py) over the students' gait box,
each following a random command schedule (go2/commands.py random_course: what students are driven
with, so the module has seen turns, backward and sideways walking), with an
action-noise level drawn per episode (the distillation data path's noise range), on a floor whose
friction and restitution are drawn per episode (maa_core/go2/sim/contact.py says how restitution maps
to MuJoCo's contact damping). Every step's history is one sample, labelled with the episode's truth.
Held-out episodes (by episode, not by step: neighbouring steps are near-copies) give the accuracy,
against the mean predictor.

    .venv/bin/python -m maa_core adaptation --out models/go2-adaptation   # ~4 min on one core
    (or `python -m maa_core.collect.adaptation`, the same command)
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import MaaError, check

MODULE_FILE = "adaptation_module_latest.jit"        # the file name a WTW run directory uses
CONFIG_FILE = "go2_adaptation_config.json"          # our run config (WTW's Cfg layout; wtw.load_wtw_run reads it)


@dataclass(frozen=True)
class AdaptationTrainConfig:
    """Every number of one adaptation-module build."""
    episodes: int = 800               # simulated episodes (one floor each)
    episode_seconds: float = 6.0      # walking per episode, after the standing warm-up
    heldout_fraction: float = 0.2     # episodes kept out of training (the accuracy is measured on them)
    friction: tuple = (0.1, 1.5)      # sliding friction drawn per episode (uniform). WTW draws 0.1..3.0; above
                                      # ~1.5 a trot never slips, so proprioception cannot tell those floors apart
    restitution: tuple = (0.0, 0.4)   # coefficient of restitution drawn per episode (WTW's domain_rand range)
    noise: tuple = (0.0, 0.4)         # expert action-noise std per episode (raw action units)
    friction_norm: tuple = (0.0, 1.0)     # WTW normalization.friction_range: target = (mu - 0.5) * 2
    restitution_norm: tuple = (0.0, 1.0)  # WTW normalization.restitution_range: target = (e - 0.5) * 2
    hidden: tuple = (256, 128)        # WTW's adaptation module: 2100 -> 256 -> 128 -> 2, ELU
    steps: int = 6000                 # Adam steps
    batch_size: int = 256
    lr: float = 1e-3
    lr_final: float = 1e-4            # cosine decay to this
    weight_decay: float = 0.0
    seed: int = 0

    @classmethod
    def from_dict(cls, d: dict | None) -> "AdaptationTrainConfig":
        d = dict(d or {})
        known = set(cls.__dataclass_fields__)
        check(not set(d) - known, f"adaptation training: unknown settings {sorted(set(d) - known)} (known: {sorted(known)})")
        for k in ("friction", "restitution", "noise", "friction_norm", "restitution_norm", "hidden"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)


def normalize(x, rng: tuple) -> np.ndarray:
    """WTW's privileged-observation normalization (its get_scale_shift): (x - mid) * 2 / (hi - lo)."""
    lo, hi = rng
    return (np.asarray(x, dtype=np.float64) - (hi + lo) / 2.0) * (2.0 / (hi - lo))


def denormalize(z, rng: tuple) -> np.ndarray:
    lo, hi = rng
    return np.asarray(z, dtype=np.float64) * ((hi - lo) / 2.0) + (hi + lo) / 2.0


# -- data -----------------------------------------------------------------------------------------
@dataclass
class AdaptationData:
    obs: np.ndarray        # (N, 70) float32: every episode's observations back to back (warm-up included)
    ends: np.ndarray       # (S,) int: sample i's history is obs[ends[i] - 29 : ends[i] + 1]
    episode: np.ndarray    # (S,) int: the episode of sample i
    truth: np.ndarray      # (E, 2): per episode (friction, restitution), raw units
    history_len: int = 30

    def histories(self, idx: np.ndarray) -> np.ndarray:
        """(len(idx), history_len * 70) float32 inputs, oldest row first (the builder's layout)."""
        rows = self.ends[idx][:, None] + np.arange(-self.history_len + 1, 1)[None, :]
        return self.obs[rows].reshape(len(idx), -1)


def collect(cfg: AdaptationTrainConfig = AdaptationTrainConfig(), progress: bool = True) -> AdaptationData:
    """Expert episodes on randomized floors (module docstring). Deterministic in `cfg.seed`."""
    from tqdm import tqdm

    from ..go2.commands import course_commands, random_course
    from ..go2.gait import GaitExpert, GaitRange
    from ..go2.sim.contact import GroundContact
    from ..go2.sim.env import WtwSimEnv
    from ..go2.walk import WalkCriteria
    from ..go2.wtw import WtwConfig

    wtw = WtwConfig()
    env = WtwSimEnv("go2", wtw)
    crit = WalkCriteria()
    rng = np.random.default_rng(cfg.seed)
    hl = wtw.history_len
    obs, ends, episode, truth = [], [], [], []
    n_rows, falls = 0, 0
    zero = np.zeros(wtw.num_actions)
    n = int(round(cfg.episode_seconds / wtw.dt))
    for e in tqdm(range(cfg.episodes), desc="adaptation data (expert episodes)", unit="ep", disable=not progress):
        contact = GroundContact(float(rng.uniform(*cfg.friction)), float(rng.uniform(*cfg.restitution)))
        gait = GaitRange().sample(rng)
        noise = float(rng.uniform(*cfg.noise))
        contact.apply(env.sim.model)
        env.reset("stand")
        expert = GaitExpert(env, gait, commanded=True)
        cmds = course_commands(random_course(rng, cfg.episode_seconds), wtw.dt, n)
        env.builder.set_velocity(0.0, 0.0, 0.0)
        rows = []
        for _ in range(crit.warmup_steps):       # standing fills the history, as on the robot
            rows.append(env.step(zero).copy())
        d = env.sim.data
        from ..go2.gait import quat_to_rpy
        for k in range(n):
            env.builder.set_velocity(*cmds[k])
            a = expert.act()
            if noise > 0.0:
                a = a + rng.normal(0.0, noise, a.shape)
            rows.append(env.step(a).copy())
            r, p, _ = quat_to_rpy(d.qpos[3:7])
            if d.qpos[2] < crit.min_height or abs(r) > crit.max_tilt or abs(p) > crit.max_tilt:
                falls += 1
                break
        rows = np.asarray(rows, np.float32)
        first = hl - 1                            # the first full history
        idx = np.arange(first, len(rows))
        obs.append(rows)
        ends.append(n_rows + idx)
        episode.append(np.full(len(idx), e))
        truth.append((contact.friction, contact.restitution))
        n_rows += len(rows)
    if progress:
        print(f"      {cfg.episodes} episodes, {n_rows} steps, {falls} ended in a fall")
    return AdaptationData(np.concatenate(obs), np.concatenate(ends), np.concatenate(episode),
                          np.asarray(truth, np.float64), hl)


# -- model and training ---------------------------------------------------------------------------
def build_module(in_dim: int, cfg: AdaptationTrainConfig, out_dim: int = 2):
    """WTW's adaptation-module layout: a plain Sequential of Linear/ELU (what the controller's numpy
    path (maa_core/go2/inference.py) and a pretrained WTW module both are)."""
    import torch

    layers, d = [], in_dim
    for h in cfg.hidden:
        layers += [torch.nn.Linear(d, h), torch.nn.ELU()]
        d = h
    layers.append(torch.nn.Linear(d, out_dim))
    return torch.nn.Sequential(*layers)


def targets(data: AdaptationData, cfg: AdaptationTrainConfig) -> np.ndarray:
    """(E, 2) normalized targets per episode."""
    return np.stack([normalize(data.truth[:, 0], cfg.friction_norm),
                     normalize(data.truth[:, 1], cfg.restitution_norm)], axis=1).astype(np.float32)


def split_episodes(n_episodes: int, cfg: AdaptationTrainConfig) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(cfg.seed + 1)
    perm = rng.permutation(n_episodes)
    k = max(1, int(round(cfg.heldout_fraction * n_episodes)))
    return np.sort(perm[k:]), np.sort(perm[:k])


def evaluate(module, data: AdaptationData, episodes: np.ndarray, y_ep: np.ndarray, mean: np.ndarray,
             batch: int = 2048) -> dict:
    """MSE and R^2 per output on the samples of `episodes`, beside the mean predictor `mean` (the
    training targets' mean: what a module that learned nothing would answer)."""
    import torch

    sel = np.flatnonzero(np.isin(data.episode, episodes))
    preds = []
    with torch.inference_mode():
        for i in range(0, len(sel), batch):
            preds.append(module(torch.from_numpy(data.histories(sel[i:i + batch]))).numpy())
    p = np.concatenate(preds)
    y = y_ep[data.episode[sel]]
    mse = ((p - y) ** 2).mean(axis=0)
    mse_mean = ((mean[None, :] - y) ** 2).mean(axis=0)
    var = y.var(axis=0)
    out = {}
    for j, name in enumerate(("friction", "restitution")):
        out[name] = {"mse": round(float(mse[j]), 5), "mean_predictor_mse": round(float(mse_mean[j]), 5),
                     "ratio": round(float(mse[j] / max(mse_mean[j], 1e-12)), 4),
                     "r2": round(float(1.0 - mse[j] / var[j]), 4) if var[j] > 1e-12 else float("nan")}
    out["all"] = {"mse": round(float(mse.mean()), 5), "mean_predictor_mse": round(float(mse_mean.mean()), 5),
                  "ratio": round(float(mse.mean() / max(mse_mean.mean(), 1e-12)), 4)}
    out["samples"] = int(len(sel))
    return out


def train(data: AdaptationData, cfg: AdaptationTrainConfig = AdaptationTrainConfig(), progress: bool = True):
    """Adam regression on the training episodes. Returns (module, metrics on the held-out episodes)."""
    import torch
    from tqdm import tqdm

    torch.manual_seed(cfg.seed)
    y_ep = targets(data, cfg)
    train_ep, held_ep = split_episodes(len(data.truth), cfg)
    # every episode weighs the same (an episode, then one of its steps): a fall ends an episode
    # early, and the slippery floors that fall are the ones whose friction shows
    counts = np.bincount(data.episode, minlength=len(data.truth))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    module = build_module(data.obs.shape[1] * data.history_len, cfg)
    opt = torch.optim.Adam(module.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps, eta_min=cfg.lr_final)
    gen = np.random.default_rng(cfg.seed + 2)
    bar = tqdm(range(cfg.steps), desc="adaptation module (Adam)", unit="step", disable=not progress)
    avg = None
    for step in bar:
        ep = train_ep[gen.integers(0, len(train_ep), cfg.batch_size)]
        idx = starts[ep] + (gen.random(cfg.batch_size) * counts[ep]).astype(np.int64)
        x = torch.from_numpy(data.histories(idx))
        y = torch.from_numpy(y_ep[data.episode[idx]])
        loss = ((module(x) - y) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        l = float(loss.detach())
        avg = l if avg is None else 0.98 * avg + 0.02 * l
        if step % 100 == 0:
            bar.set_postfix_str(f"loss {avg:.4f}")
    module.eval()
    mean = y_ep[train_ep].mean(axis=0)
    return module, evaluate(module, data, held_ep, y_ep, mean)


# -- the run directory ----------------------------------------------------------------------------
def run_config(cfg: AdaptationTrainConfig, info: dict) -> dict:
    """Our run's config in walk-these-ways' `Cfg` layout (what `WtwConfig.from_run_config` reads), with
    the numbers of maa's WtwConfig (the pretrained run's policy-side facts) and our training record."""
    from ..go2.wtw import ADAPTATION_MARKER, COMMAND_SCALE_KEYS, WtwConfig

    w = WtwConfig()
    decimation = 10                    # our MuJoCo Go2: 2 ms physics steps, 20 ms policy steps
    scales = {k: w.obs_scales[k] for k in dict.fromkeys(("dof_pos", "dof_vel", *COMMAND_SCALE_KEYS))}
    return {
        "env": {"num_observations": w.num_obs, "num_observation_history": w.history_len,
                "num_privileged_obs": w.latent_dim, "num_actions": w.num_actions,
                "observe_command": True, "observe_gait_commands": True, "observe_two_prev_actions": True,
                "observe_clock_inputs": True, "priv_observe_friction": True, "priv_observe_restitution": True},
        "control": {"stiffness": {"joint": w.kp}, "damping": {"joint": w.kd}, "action_scale": w.action_scale,
                    "hip_scale_reduction": w.hip_scale_reduction, "decimation": decimation},
        "normalization": {"clip_observations": w.clip_observations, "clip_actions": w.clip_actions,
                          "friction_range": list(cfg.friction_norm), "restitution_range": list(cfg.restitution_norm)},
        "obs_scales": scales,
        "commands": {"num_commands": w.num_commands, "pacing_offset": w.pacing_offset},
        "domain_rand": {"randomize_friction": True, "friction_range": list(cfg.friction),
                        "randomize_restitution": True, "restitution_range": list(cfg.restitution)},
        "sim": {"dt": w.dt / decimation},
        ADAPTATION_MARKER: {"what": "maa's own adaptation module: friction and restitution regressed on MuJoCo Go2 truth",
                 "rebuild": "python -m maa_core adaptation --out models/go2-adaptation",
                 "restitution_mapping": "solref = (0.02, zeta), zeta = -ln e / sqrt(pi^2 + ln^2 e) "
                                        "(maa_core/go2/sim/contact.py)",
                 "train_config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
                 **info},
    }


def save_run(out, module, cfg: AdaptationTrainConfig, info: dict) -> Path:
    """A run directory `wtw.load_wtw_run` accepts: checkpoints/adaptation_module_latest.jit + our config."""
    import torch

    from ..go2.wtw import file_sha256

    out = Path(out)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    scripted = torch.jit.script(module.cpu().eval())
    path = out / "checkpoints" / MODULE_FILE
    tmp = path.with_suffix(".tmp")
    scripted.save(str(tmp))
    tmp.replace(path)
    stale = [p for p in out.glob("*.json") if p.name != CONFIG_FILE]
    check(not stale, f"{out}: other JSON files {[p.name for p in stale]} would be read as the run config")
    (out / CONFIG_FILE).write_text(json.dumps(run_config(cfg, {**info, "sha256": file_sha256(path)}), indent=1) + "\n")
    return out


def build(out, cfg: AdaptationTrainConfig = AdaptationTrainConfig(), progress: bool = True) -> dict:
    """Collect, train, save; returns the record written into the run config."""
    import torch

    torch.set_num_threads(1)
    t0 = time.time()
    data = collect(cfg, progress)
    t1 = time.time()
    module, metrics = train(data, cfg, progress)
    t2 = time.time()
    info = {"heldout": metrics, "data_seconds": round(t1 - t0, 1), "train_seconds": round(t2 - t1, 1),
            "samples": int(len(data.ends)), "episodes": int(len(data.truth))}
    save_run(out, module, cfg, info)
    return info


def main(argv=None) -> int:
    """`python -m maa_core.collect.adaptation ...` = `maa adaptation ...` (maa_core/cli/adaptation.py)."""
    import sys

    from ..cli import main as maa_main

    return maa_main(["adaptation", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
