"""The paper's collection path: SAC on one MetaWorld task with a fixed configuration per run.

The actor is the spec's network (trunk -> mean, log_std; tanh-squashed Gaussian); two Q critics of
two 256-unit layers with target copies; automatic entropy tuning. Once the deterministic test
rollout on the run's configuration succeeds (test success rate 1), every `save_every` env steps
the actor is tested again and, if it still succeeds, saved as a checkpoint with its deployed
trajectory (paper: every 5,000 steps). Episodes the replay buffer collects during the first
`prompt_steps` env steps (paper: 0.5 M) are saved as prompts, each with the actor parameters that
were current when the episode began. Runs on CUDA when present.
"""
from __future__ import annotations

import copy
import math

import numpy as np

from .distill import Emitted, run_seed

DEFAULTS = {
    "total_steps": 1_000_000,   # env steps per run (upper bound; the run stops once enough checkpoints are saved)
    "start_steps": 5_000,       # uniform random actions before the actor acts
    "update_after": 1_000,
    "update_every": 1,          # gradient updates per env step (1 = one update each step)
    "batch_size": 256,
    "gamma": 0.99,
    "tau": 0.005,
    "lr": 3e-4,
    "critic_hidden": 256,
    "buffer_size": 1_000_000,
    "eval_every": 5_000,        # env steps between tests before the first success
    "save_every": 5_000,        # env steps between checkpoints once the test success rate is 1
    "prompt_steps": 500_000,    # episodes inside the first prompt_steps env steps can become prompts
    "max_episode_steps": 500,
    "log_std_min": -5.0,
    "log_std_max": 2.0,
    "device": "auto",
    "robot": None,              # Robosuite tasks: training robot (default Panda)
}


def sac_run(task: str, seed: int, n_checkpoints: int, n_prompts: int, cfg: dict | None = None,
            emit_checkpoint=None, emit_prompt=None, spec_name: str = "metaworld-sac", log=None) -> dict:
    import torch
    from torch import nn

    from ..envs import NumpyPolicy, make_env, rollout
    from ..specs import get_spec

    cfg = {**DEFAULTS, **(cfg or {})}
    rs = run_seed(task, seed, "sac")
    rng = np.random.default_rng(rs)
    torch.manual_seed(rs)
    dev = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if cfg["device"] == "auto" else cfg["device"])
    spec = get_spec(spec_name)
    # MetaWorld task (39/4), or a Robosuite task with the training robot (41/8; spec robosuite-sac)
    env = make_env(task, robot=cfg.get("robot"), seed=seed, max_episode_steps=cfg["max_episode_steps"])
    config = env.train_config
    env_id = getattr(env, "env_id", None) or f"{env.env_name}/{env.robot}"
    from ..errors import check

    check((spec.obs_dim, spec.act_dim) == (env.obs_dim, env.act_dim),
          f"spec {spec.name} ({spec.obs_dim}->{spec.act_dim}) does not fit {task} ({env.obs_dim}->{env.act_dim})")
    od, ad = env.obs_dim, env.act_dim

    actor = spec.build().to(dev)
    H = int(cfg["critic_hidden"])

    def q_net():
        return nn.Sequential(nn.Linear(od + ad, H), nn.ReLU(), nn.Linear(H, H), nn.ReLU(), nn.Linear(H, 1)).to(dev)

    q1, q2 = q_net(), q_net()
    q1_t, q2_t = copy.deepcopy(q1), copy.deepcopy(q2)
    for p in list(q1_t.parameters()) + list(q2_t.parameters()):
        p.requires_grad_(False)
    log_alpha = torch.zeros((), device=dev, requires_grad=True)
    target_entropy = -float(ad)
    opt_a = torch.optim.Adam(actor.parameters(), lr=cfg["lr"])
    opt_q = torch.optim.Adam(list(q1.parameters()) + list(q2.parameters()), lr=cfg["lr"])
    opt_t = torch.optim.Adam([log_alpha], lr=cfg["lr"])

    N = int(min(cfg["buffer_size"], cfg["total_steps"]))
    B_o = np.zeros((N, od), np.float32)
    B_a = np.zeros((N, ad), np.float32)
    B_r = np.zeros(N, np.float32)
    B_o2 = np.zeros((N, od), np.float32)
    B_s = np.zeros(N, bool)
    size, ptr = 0, 0

    def sample(obs_t):
        out = actor.head_outputs(obs_t)
        mu = out["mean"]
        log_std = out["log_std"].clamp(cfg["log_std_min"], cfg["log_std_max"])
        std = log_std.exp()
        u = mu + std * torch.randn_like(mu)
        a = torch.tanh(u)
        logp = (-0.5 * ((u - mu) / std) ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        logp = logp - (2 * (math.log(2) - u - nn.functional.softplus(-2 * u))).sum(-1)
        return a, logp

    def update():
        idx = rng.integers(0, size, int(cfg["batch_size"]))
        o = torch.as_tensor(B_o[idx], device=dev)
        a = torch.as_tensor(B_a[idx], device=dev)
        r = torch.as_tensor(B_r[idx], device=dev)
        o2 = torch.as_tensor(B_o2[idx], device=dev)
        alpha = log_alpha.exp().detach()
        with torch.no_grad():
            a2, logp2 = sample(o2)
            oa2 = torch.cat([o2, a2], -1)
            # MetaWorld never terminates (only truncates), so always bootstrap
            y = r + cfg["gamma"] * (torch.min(q1_t(oa2), q2_t(oa2)).squeeze(-1) - alpha * logp2)
        oa = torch.cat([o, a], -1)
        lq = ((q1(oa).squeeze(-1) - y) ** 2).mean() + ((q2(oa).squeeze(-1) - y) ** 2).mean()
        opt_q.zero_grad(set_to_none=True)
        lq.backward()
        opt_q.step()
        for p in list(q1.parameters()) + list(q2.parameters()):
            p.requires_grad_(False)
        an, logp = sample(o)
        oan = torch.cat([o, an], -1)
        la = (alpha * logp - torch.min(q1(oan), q2(oan)).squeeze(-1)).mean()
        opt_a.zero_grad(set_to_none=True)
        la.backward()
        opt_a.step()
        for p in list(q1.parameters()) + list(q2.parameters()):
            p.requires_grad_(True)
        lt = -(log_alpha * (logp.detach() + target_entropy)).mean()
        opt_t.zero_grad(set_to_none=True)
        lt.backward()
        opt_t.step()
        with torch.no_grad():
            for net, tgt in ((q1, q1_t), (q2, q2_t)):
                for p, pt in zip(net.parameters(), tgt.parameters()):
                    pt.mul_(1 - cfg["tau"]).add_(p, alpha=cfg["tau"])

    def params() -> np.ndarray:
        return spec.flatten(actor.state_dict()).cpu().numpy().copy()

    def test():
        return rollout(env, NumpyPolicy(spec=spec, params=params()), config)

    def save(ro) -> int:
        if n_saved >= n_checkpoints:
            return 0
        if emit_checkpoint:
            emit_checkpoint(Emitted(steps, params(), [ro.trajectory], 1.0,
                                    {"config": np.ravel(config).tolist(), "env_id": env_id,
                                     "return": ro.ret, "first_success": ro.first_success}))
        return 1

    # prompts: spread n_prompts over the episodes that fit in the first prompt_steps env steps
    T = int(cfg["max_episode_steps"])
    n_prompt_eps = max(1, int(min(cfg["prompt_steps"], cfg["total_steps"])) // T)
    prompt_eps = set(np.linspace(0, n_prompt_eps - 1, int(n_prompts)).round().astype(int).tolist()) if n_prompts > 0 else set()

    obs = env.reset(config)
    ep, ep_start, ep_params = 0, 0, params() if 0 in prompt_eps else None
    ep_ret, ep_rets, test_returns = 0.0, [], []
    qualified_at, last_save, n_saved, n_prompted = None, 0, 0, 0
    steps = 0
    for steps in range(1, int(cfg["total_steps"]) + 1):
        if steps <= cfg["start_steps"]:
            a = rng.uniform(-1, 1, ad).astype(np.float32)
        else:
            with torch.no_grad():
                a = sample(torch.as_tensor(obs, device=dev)[None])[0][0].cpu().numpy()
        obs2, r, succ, done = env.step(a)
        B_o[ptr], B_a[ptr], B_r[ptr], B_o2[ptr], B_s[ptr] = obs, a, r, obs2, succ
        ptr, size = (ptr + 1) % N, min(size + 1, N)
        obs, ep_ret = obs2, ep_ret + r
        if steps >= cfg["update_after"] and steps % int(cfg["update_every"]) == 0:
            update()
        if done:
            if ep in prompt_eps and steps <= cfg["prompt_steps"]:
                from ..trajectory import Trajectory

                sl = np.arange(ep_start, steps) % N
                tr = Trajectory(B_o[sl], B_a[sl], B_s[sl])
                if emit_prompt:
                    emit_prompt(Emitted(ep_start, ep_params, [tr], float(tr.first_success >= 0),
                                        {"config": np.ravel(config).tolist(), "env_id": env_id,
                                         "return": ep_ret, "episode": ep, "stochastic": True}))
                n_prompted += 1
            ep_rets.append(ep_ret)
            ep, ep_start, ep_ret = ep + 1, steps, 0.0
            ep_params = params() if ep in prompt_eps else None
            obs = env.reset(config)
        if qualified_at is None and steps % int(cfg["eval_every"]) == 0:
            ro = test()
            test_returns.append((steps, ro.ret))
            if log:
                log(f"sac {task} s{seed} step {steps}: test return {ro.ret:.1f} success={ro.success}")
            if ro.success:
                qualified_at = last_save = steps
                n_saved += save(ro)
        elif qualified_at is not None and steps - last_save >= int(cfg["save_every"]):
            last_save = steps
            ro = test()
            test_returns.append((steps, ro.ret))
            if ro.success:
                n_saved += save(ro)
        if n_saved >= n_checkpoints and (n_prompted >= len(prompt_eps) or steps > cfg["prompt_steps"]):
            break
    env.close()
    return {"checkpoints": n_saved, "prompts": n_prompted, "env_steps": steps, "qualified_at": qualified_at,
            "episode_returns": [round(x, 2) for x in ep_rets], "test_returns": test_returns, "device": str(dev)}


# the method-table entry (collect/jobs.py METHODS): trajectories hold the actor's own inputs
TRAJ_OBS_DIM = None
collect_run = sac_run
