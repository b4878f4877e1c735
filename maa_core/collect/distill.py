"""CPU-feasible collection: DAgger-style distillation of a scripted expert into the SAC actor
architecture: MetaWorld's own scripted policies (spec metaworld-sac) or this package's Robosuite
experts (envs/robosuite_experts.py; spec robosuite-sac, training robot Panda).

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

With `base` (a flat .npy from train_shared_base) every run starts from one shared student instead
of a random initialisation, so checkpoints of different runs and tasks share one parameter
neighbourhood (on the Go2, blends of such runs walked where blends of independent runs did not).
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
    "stop_after_success": 0,    # >0: end a rollout this many steps after its first success (the embedding
                                # reads the first n_steps and m_states after success; the rest costs time)
    "base": "",                 # flat parameters (.npy) every run starts from ('' = random initialisation)
    "extra_configs": 0,         # >0: demos also in this many other configurations (seeded by the run; the
                                # `robust` variant: checkpoints are still saved on the run's own configuration)
    "also_robots": [],          # Robosuite: the same demos also on these robots (their own expert); checkpoints are
                                # still saved on the training robot. Not the paper's protocol (Panda data only)
    "robot": None,              # Robosuite tasks: training robot (default Panda)
}


def imitate(actor, opt, X: list, Y: list, n: int, batch_size: int, log_std_target: float, gen) -> float:
    """n Adam steps on the aggregated (state, expert action) data: MSE of tanh(mean) to the action, plus
    a small pull of log_std towards the demo noise (so the head carries SAC-like values). -> last loss."""
    import torch

    xs = torch.from_numpy(np.concatenate(X))
    ys = torch.from_numpy(np.concatenate(Y)).clamp(-1, 1)
    for _ in range(n):
        idx = torch.randint(0, len(xs), (batch_size,), generator=gen)
        out = actor.head_outputs(xs[idx])
        loss = ((torch.tanh(out["mean"]) - ys[idx]) ** 2).mean() + 0.1 * ((out["log_std"] - log_std_target) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return float(loss.item())


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

    from pathlib import Path

    from ..envs import NumpyPolicy, evaluate_actor, make_env, random_configs, rollout
    from ..envs.robosuite_env import robosuite_configs
    from ..errors import check
    from ..specs import get_spec

    cfg = {**DEFAULTS, **(cfg or {})}
    check(not cfg["base"] or Path(cfg["base"]).is_file(), f"distill {task}: base student {cfg['base']} not found")
    torch.set_num_threads(1)
    rs = run_seed(task, seed, "distill")
    rng = np.random.default_rng(rs)
    torch.manual_seed(rs)
    spec = get_spec(spec_name)
    env = make_env(task, robot=cfg["robot"], seed=seed, max_episode_steps=cfg["max_episode_steps"])
    check((env.obs_dim, env.act_dim) == (spec.obs_dim, spec.act_dim),
          f"distill {task}: spec {spec.name!r} is {spec.obs_dim} -> {spec.act_dim}, the task {env.obs_dim} -> {env.act_dim}")
    config = env.train_config
    expert = env.expert()
    stop = int(cfg["stop_after_success"]) or None

    def run_episode(policy, c=None, on=None, **kw):  # default: the run's own env and configuration
        return rollout(on or env, policy, config if c is None else c, stop_after_success=stop, **kw)

    noise = float(rng.uniform(*cfg["noise"]))
    subset = float(rng.uniform(*cfg["subset"]))
    lr = float(math.exp(rng.uniform(math.log(cfg["lr"][0]), math.log(cfg["lr"][1]))))
    hyper = {"noise": round(noise, 6), "subset": round(subset, 6), "lr": round(lr, 8)}
    base = {"config": [float(x) for x in np.atleast_1d(config)], "env_id": env.env_id, **hyper}

    X: list[np.ndarray] = []
    Y: list[np.ndarray] = []

    def add(ro):
        keep = rng.random(len(ro.trajectory)) < subset  # this run's data subset
        X.append(ro.trajectory.states[keep])
        Y.append(ro.trajectory.actions[keep])

    for _ in range(int(cfg["demos"])):
        add(run_episode(expert, action_noise=noise, rng=rng, label=expert))
    n = int(cfg["extra_configs"])
    others = [] if n <= 0 else robosuite_configs(n, rs) if env.domain == "robosuite" else random_configs(task, n, rs)
    for c in others:
        for _ in range(int(cfg["demos"])):
            add(run_episode(expert, c, action_noise=noise, rng=rng, label=expert))
    for robot in cfg["also_robots"]:
        check(env.domain == "robosuite", f"distill {task}: also_robots is for Robosuite tasks")
        other = make_env(task, robot=robot, seed=seed, max_episode_steps=cfg["max_episode_steps"])
        ex = other.expert()
        for c in [config, *others]:
            for _ in range(int(cfg["demos"])):
                add(run_episode(ex, c, on=other, action_noise=noise, rng=rng, label=ex))
        other.close()

    actor = spec.build()
    if cfg["base"]:
        spec.unflatten(np.load(cfg["base"]), actor)
    opt = torch.optim.Adam(actor.parameters(), lr=lr)
    log_std_target = math.log(max(noise, 1e-3))
    gen = torch.Generator().manual_seed(rs)

    def train(n: int):
        if n > 0:
            imitate(actor, opt, X, Y, n, int(cfg["batch_size"]), log_std_target, gen)

    def params() -> np.ndarray:
        return spec.flatten(actor).numpy().copy()

    step, n_saved, n_prompted, first_success_step = 0, 0, 0, None
    # prompt phase: partly-trained students
    for target in list(cfg["prompt_steps"])[: int(n_prompts)]:
        train(int(target) - step)
        step = max(step, int(target))
        ro = run_episode(NumpyPolicy(spec=spec, params=params()))
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
        ro = run_episode(pol)
        fails = 0 if ro.success else fails + 1
        if ro.success:
            if first_success_step is None:
                first_success_step = step
            extra = {**base, "return": ro.ret, "first_success": ro.first_success}
            if int(cfg["eval_random_configs"]) > 0:
                r = evaluate_actor(pol, task, int(cfg["eval_random_configs"]), seed=seed, keep_trajectories=False,
                                   robot=getattr(env, "robot", None), max_episode_steps=cfg["max_episode_steps"])
                extra["random_config_success_rate"] = r.success_rate
            if emit_checkpoint:
                emit_checkpoint(Emitted(step, params(), [ro.trajectory], 1.0, extra))
            n_saved += 1
        else:
            add(run_episode(pol, action_noise=noise * float(cfg["dagger_noise"]), rng=rng, label=expert))
        if log:
            log(f"distill {task} s{seed} step {step}: success={ro.success} saved={n_saved}")
    env.close()
    return {"checkpoints": n_saved, "prompts": n_prompted, "updates": step, "rounds": rounds,
            "first_success_step": first_success_step, **hyper}


# the method-table entry (collect/jobs.py METHODS): trajectories hold the actor's own inputs
TRAJ_OBS_DIM = None
collect_run = distill_run


# -- shared base student -------------------------------------------------------------------------
@dataclass(frozen=True)
class SharedBaseConfig:
    configs_per_task: int = 24      # expert configurations per task (seeds apart from every run's)
    config_offset: int = 1_000_000  # their seeds: offset + i (runs use seeds 0 .. a few hundred)
    rounds: int = 1                 # round 0: noisy expert demos; then DAgger rounds (student + noise drives).
                                    # On Robosuite, DAgger over many placements made the student worse (8/16 -> 0/16)
    updates_per_round: int = 4000   # Adam steps after each round's data
    lr: float = 1e-3
    noise: float = 0.1              # action-noise std of the driving policy
    batch_size: int = 256
    stop_after_success: int = 20    # rollouts end this many steps after success
    max_episode_steps: int = 500
    robot: str | None = None        # Robosuite tasks: training robot (default Panda)
    seed: int = 0
    report: bool = True             # log the finished student's success in its configurations (one rollout each)


def train_shared_base(tasks, spec_name: str, cfg: SharedBaseConfig = SharedBaseConfig(), log=None) -> np.ndarray:
    """One student distilled from every task's expert over many configurations (DAgger): the starting
    point of every run of a recipe with `base`. -> flat parameters of spec `spec_name`."""
    import torch

    from ..envs import NumpyPolicy, make_env, rollout
    from ..specs import get_spec

    torch.set_num_threads(1)
    rs = run_seed("+".join(tasks), cfg.seed, "shared-base")
    rng = np.random.default_rng(rs)
    torch.manual_seed(rs)
    spec = get_spec(spec_name)
    envs = {t: make_env(t, robot=cfg.robot, seed=cfg.config_offset, max_episode_steps=cfg.max_episode_steps) for t in tasks}
    experts = {t: e.expert() for t, e in envs.items()}
    actor = spec.build()
    opt = torch.optim.Adam(actor.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(rs)
    X, Y = [], []
    for rnd in range(cfg.rounds):
        pol = None if rnd == 0 else NumpyPolicy(spec=spec, params=spec.flatten(actor).numpy().copy())
        wins = {}
        for t, env in envs.items():
            wins[t] = 0
            for i in range(cfg.configs_per_task):
                c = cfg.config_offset + i
                if pol is not None:  # the student's own success, before its noisy DAgger episode
                    wins[t] += rollout(env, pol, c, stop_after_success=0).success
                ro = rollout(env, pol or experts[t], c, action_noise=cfg.noise, rng=rng, label=experts[t],
                             stop_after_success=cfg.stop_after_success)
                X.append(ro.trajectory.states)
                Y.append(ro.trajectory.actions)
        loss = imitate(actor, opt, X, Y, cfg.updates_per_round, cfg.batch_size, math.log(cfg.noise), gen)
        if log:
            won = ", ".join(f"{t} {w}/{cfg.configs_per_task}" for t, w in wins.items()) if pol is not None else "expert demos"
            log(f"shared base round {rnd}: {sum(map(len, X))} samples, loss {loss:.4f}; student before it: {won}")
    params = spec.flatten(actor).numpy().copy()
    if log and cfg.report:
        pol = NumpyPolicy(spec=spec, params=params)
        won = {t: sum(rollout(env, pol, cfg.config_offset + i, stop_after_success=0).success
                      for i in range(cfg.configs_per_task)) for t, env in envs.items()}
        log("shared base student: " + ", ".join(f"{t} {w}/{cfg.configs_per_task}" for t, w in won.items()) +
            " of its own configurations")
    for env in envs.values():
        env.close()
    return params
