"""CPU-feasible collection: DAgger-style distillation of MetaWorld's scripted expert into the SAC
actor architecture (spec metaworld-sac).

One run = (task, seed). The seed fixes the run's object/goal configuration (the paper's protocol),
the actor initialisation, and the run's own hyper-parameters drawn from ranges: demonstration
noise, the fraction of the data the run trains on, the learning rate. Diversity across checkpoints
therefore comes from different configurations, initialisations, data subsets, noise levels and
training lengths, as it does across SAC seeds and steps in the paper.

    1. demos: noisy expert episodes from the run's configuration, each visited state labelled with
       the clean expert action
    2. prompt phase: train in small increments; after each, the deterministic rollout of the
       partly-trained student is recorded as a *prompt* (sub-optimal behaviour, any success rate)
    3. rounds of `save_every` updates: deterministic rollout; if the student fails, DAgger (student
       + noise drives, expert labels, aggregated); once it succeeds (success rate 1 on the
       configuration), every successful round is saved as a *checkpoint* with its trajectory
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

DEFAULTS = {
    "demos": 4,                 # noisy expert episodes per run
    "noise": [0.05, 0.6],       # demo action-noise std range (per run)
    "subset": [0.5, 1.0],       # fraction of collected samples a run trains on (per run)
    "lr": [3e-4, 2e-3],         # Adam learning-rate range (log-uniform, per run)
    "batch_size": 256,
    "prompt_steps": [0, 20, 50, 100, 200, 400],  # update counts at which prompts are recorded
    "save_every": 100,          # updates between checkpoint candidates (paper: 5,000 env steps)
    "max_rounds": 200,          # give up after this many rounds
    "patience": 40,             # after the first success: stop after this many failed rounds in a row
    "dagger_noise": 0.5,        # DAgger rollout noise = dagger_noise * demo noise
    "max_episode_steps": 500,
    "eval_random_configs": 0,   # >0: also score each checkpoint in this many random configs (stored in source)
}


@dataclass
class Emitted:
    step: int
    params: np.ndarray
    trajectories: list
    success_rate: float
    extra: dict


def run_seed(task: str, seed: int, method: str) -> int:
    """Deterministic per-run seed (independent of process, worker count, hash randomisation)."""
    return zlib.crc32(f"{method}/{task}/{seed}".encode()) & 0x7FFFFFFF


def distill_run(task: str, seed: int, n_checkpoints: int, n_prompts: int, cfg: dict | None = None,
                emit_checkpoint=None, emit_prompt=None, spec_name: str = "metaworld-sac", log=None) -> dict:
    import torch

    from ..envs import MetaWorldEnv, NumpyPolicy, evaluate_policy, random_configs, rollout
    from ..specs import get_spec

    cfg = {**DEFAULTS, **(cfg or {})}
    torch.set_num_threads(1)
    rs = run_seed(task, seed, "distill")
    rng = np.random.default_rng(rs)
    torch.manual_seed(rs)
    spec = get_spec(spec_name)
    env = MetaWorldEnv(task, seed=seed, max_episode_steps=cfg["max_episode_steps"])
    config = env.train_config
    expert = env.expert()

    noise = float(rng.uniform(*cfg["noise"]))
    subset = float(rng.uniform(*cfg["subset"]))
    lr = float(math.exp(rng.uniform(math.log(cfg["lr"][0]), math.log(cfg["lr"][1]))))
    hyper = {"noise": round(noise, 6), "subset": round(subset, 6), "lr": round(lr, 8)}
    base = {"config": [float(x) for x in config], "env_id": env.env_id, **hyper}

    X: list[np.ndarray] = []
    Y: list[np.ndarray] = []

    def add(ro):
        keep = rng.random(len(ro.trajectory)) < subset  # this run's data subset
        X.append(ro.trajectory.states[keep])
        Y.append(ro.trajectory.actions[keep])

    for _ in range(int(cfg["demos"])):
        add(rollout(env, expert, config, action_noise=noise, rng=rng, label=expert))

    actor = spec.build()
    opt = torch.optim.Adam(actor.parameters(), lr=lr)
    log_std_target = math.log(max(noise, 1e-3))
    gen = torch.Generator().manual_seed(rs)

    def train(n: int):
        if n <= 0:
            return
        xs = torch.from_numpy(np.concatenate(X))
        ys = torch.from_numpy(np.concatenate(Y)).clamp(-1, 1)
        for _ in range(n):
            idx = torch.randint(0, len(xs), (int(cfg["batch_size"]),), generator=gen)
            out = actor.head_outputs(xs[idx])
            loss = ((torch.tanh(out["mean"]) - ys[idx]) ** 2).mean() + \
                0.1 * ((out["log_std"] - log_std_target) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    def params() -> np.ndarray:
        return spec.flatten(actor).numpy().copy()

    step, n_saved, n_prompted, first_success_step = 0, 0, 0, None
    # prompt phase: partly-trained students
    for target in list(cfg["prompt_steps"])[: int(n_prompts)]:
        train(int(target) - step)
        step = max(step, int(target))
        ro = rollout(env, NumpyPolicy(spec=spec, params=params()), config)
        if emit_prompt:
            emit_prompt(Emitted(step, params(), [ro.trajectory], float(ro.success), {**base, "return": ro.ret}))
        n_prompted += 1
    rounds, fails = 0, 0
    while n_saved < n_checkpoints and rounds < int(cfg["max_rounds"]):
        if first_success_step is not None and fails >= int(cfg["patience"]):
            break  # an unstable run: the recipe's spare runs make up for its missing checkpoints
        train(int(cfg["save_every"]))
        step += int(cfg["save_every"])
        rounds += 1
        pol = NumpyPolicy(spec=spec, params=params())
        ro = rollout(env, pol, config)
        fails = 0 if ro.success else fails + 1
        if ro.success:
            if first_success_step is None:
                first_success_step = step
            extra = {**base, "return": ro.ret, "first_success": ro.first_success}
            if int(cfg["eval_random_configs"]) > 0:
                r = evaluate_policy(pol, env, random_configs(task, int(cfg["eval_random_configs"]), seed),
                                    keep_trajectories=False)
                extra["random_config_success_rate"] = r.success_rate
            if emit_checkpoint:
                emit_checkpoint(Emitted(step, params(), [ro.trajectory], 1.0, extra))
            n_saved += 1
        else:
            add(rollout(env, pol, config, action_noise=noise * float(cfg["dagger_noise"]), rng=rng, label=expert))
        if log:
            log(f"distill {task} s{seed} step {step}: success={ro.success} saved={n_saved}")
    env.close()
    return {"checkpoints": n_saved, "prompts": n_prompted, "updates": step, "rounds": rounds,
            "first_success_step": first_success_step, **hyper}


# the method-table entry (collect/jobs.py METHODS): trajectories hold the actor's own inputs
TRAJ_OBS_DIM = None
collect_run = distill_run
