"""walk-these-ways checkpoints and rollouts -> maa values, without IsaacGym: parameters.pkl (CUDA tensors
mapped to the CPU), actor bodies (ActorCritic state dicts or TorchScript) -> flat `go2-wtw` parameters,
iteration-numbered checkpoint discovery in run dirs, and rollout arrays -> trajectories.

WTW facts this relies on (walk-these-ways, `go1_gym_learn/ppo_cse`):
- `Runner.learn` saves `ActorCritic.state_dict()` as `checkpoints/ac_weights_{it:06d}.pt` every
  `RunnerArgs.save_interval` iterations; the actor is `actor_body.{0,2,4,6}` (Linear layers with one
  activation module between them), the estimator `adaptation_module.{0,2,4}`;
- `body_latest.jit` / `adaptation_module_latest.jit` are TorchScript copies of the latest ones;
- the actor reads `cat(obs_history, adaptation_module(obs_history))`, history oldest first;
- `parameters.pkl` pickles {"Cfg", "AC_Args", "PPO_Args", "RunnerArgs"}, with CUDA tensors inside.
"""
from __future__ import annotations

import glob
import pickle
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import MaaError, check
from ..specs import PolicySpec
from ..trajectory import Trajectory

CHECKPOINT_PATTERNS = (("state_dict", re.compile(r"^ac_weights_(\d+)\.pt$")),
                       ("jit", re.compile(r"^body_(\d+)\.jit$")))
ACTIVATION_MODULES = {"elu": "ELU", "relu": "ReLU", "tanh": "Tanh"}  # spec name -> torch module class name


# -- parameters.pkl ----------------------------------------------------------------------------------
def load_run_parameters(path) -> dict:
    """The whole parameters.pkl of a WTW run ({"Cfg", "AC_Args", ...}) with its CUDA tensors mapped to the
    CPU. `path` is the file or its run directory. Tensors stay tensors (on the CPU)."""
    from ..go2.wtw import _CpuUnpickler  # routes torch's storage loads to map_location="cpu"

    p = Path(path)
    if p.is_dir():
        p = p / "parameters.pkl"
    check(p.is_file(), f"{p}: no parameters.pkl")
    try:
        with p.open("rb") as f:
            d = _CpuUnpickler(f).load()
    except (pickle.UnpicklingError, EOFError, RuntimeError, AttributeError, ModuleNotFoundError, ValueError) as e:
        raise MaaError(f"{p}: cannot unpickle ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    check(isinstance(d, dict) and isinstance(d.get("Cfg"), dict), f"{p}: expected a dict with a 'Cfg' mapping")
    return d


def check_run_fits_spec(params: dict, spec: PolicySpec, where: str, obs_dim: int | None = None) -> None:
    """The run's observation/actor layout (Cfg.env, AC_Args) against the spec: input = history ‖ latent
    (and one observation = `obs_dim` values, when given)."""
    env = params["Cfg"].get("env", {})
    try:
        n_obs = int(env["num_observations"])
        hist = n_obs * int(env["num_observation_history"])
        latent, acts = int(env["num_privileged_obs"]), int(env["num_actions"])
    except (KeyError, TypeError, ValueError) as e:
        raise MaaError(f"{where}: Cfg.env lacks the observation layout ({type(e).__name__}: {e})") from None
    check(hist + latent == spec.obs_dim and acts == spec.act_dim,
          f"{where}: run actor is ({hist} history + {latent} latent) -> {acts}, spec {spec.name} is {spec.obs_dim} -> {spec.act_dim}")
    check(obs_dim is None or n_obs == obs_dim, f"{where}: Cfg.env.num_observations {n_obs}, deploy.obs_dim is {obs_dim}")
    ac = params.get("AC_Args")
    if isinstance(ac, dict):
        hidden = [int(h) for h in ac.get("actor_hidden_dims", [])]
        want = [l.out_dim for l in spec.trunk]
        check(not hidden or hidden == want, f"{where}: AC_Args.actor_hidden_dims {hidden}, spec {spec.name} has {want}")
        act = ac.get("activation")
        acts_spec = {l.activation for l in spec.trunk}
        check(act is None or {act} == acts_spec,
              f"{where}: AC_Args.activation {act!r}, spec {spec.name} uses {sorted(acts_spec)}")


# -- checkpoint conversion ---------------------------------------------------------------------------
def _linear_layers(sd: dict, prefix: str, where: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(weight, bias) of `prefix.<i>.weight/bias`, in index order."""
    idx = sorted({int(m.group(1)) for k in sd if (m := re.match(re.escape(prefix) + r"(\d+)\.weight$", k))})
    check(bool(idx), f"{where}: no '{prefix}<i>.weight' entries (keys: {', '.join(sorted(sd)[:6])}...)")
    out = []
    for i in idx:
        w, b = sd.get(f"{prefix}{i}.weight"), sd.get(f"{prefix}{i}.bias")
        check(torch.is_tensor(w) and torch.is_tensor(b), f"{where}: {prefix}{i} needs a weight and a bias tensor")
        out.append((w.detach().cpu(), b.detach().cpu()))
    return out


def body_params(sd: dict, spec: PolicySpec, where: str = "checkpoint") -> np.ndarray:
    """Flat parameters (spec order) of a WTW actor body: an `ActorCritic` state dict (`actor_body.<i>.*`)
    or the body's own state dict (`<i>.*`). Layer count and every shape are checked against the spec."""
    prefix = "actor_body." if any(k.startswith("actor_body.") for k in sd) else ""
    layers = _linear_layers(sd, prefix, where)
    names = [k for k, _ in spec.param_shapes()]
    n_spec = len(names) // 2
    check(len(layers) == n_spec, f"{where}: actor body has {len(layers)} Linear layers, spec {spec.name} has {n_spec}")
    mapped = {}
    for j, (w, b) in enumerate(layers):
        mapped[names[2 * j]], mapped[names[2 * j + 1]] = w, b
    flat = spec.flatten(mapped).numpy()  # MaaError naming the layer on a shape mismatch
    check(np.isfinite(flat).all(), f"{where}: actor body parameters contain NaN or Inf")
    return flat.astype(np.float32)


def _check_body_structure(module: nn.Module, spec: PolicySpec, where: str) -> None:
    """Linear / activation order of a (scripted) Sequential body against the spec."""
    kinds = [getattr(c, "original_name", type(c).__name__) for _, c in module.named_children()]
    want = []
    for l in spec.trunk:
        want += ["Linear", ACTIVATION_MODULES.get(l.activation, "Identity")]
    want.append("Linear")
    check(kinds == want, f"{where}: body layers {kinds}, spec {spec.name} needs {want}")
    for _, c in module.named_children():
        alpha = getattr(c, "alpha", None)
        check(alpha is None or float(alpha) == 1.0, f"{where}: ELU alpha {alpha}, the spec's ELU uses 1.0")


def load_jit(path: Path) -> torch.jit.ScriptModule:
    try:
        return torch.jit.load(str(path), map_location="cpu").eval()
    except (RuntimeError, ValueError, OSError) as e:
        raise MaaError(f"{path}: not a loadable TorchScript module ({str(e).splitlines()[0]})") from None


def verify_round_trip(module: nn.Module, params: np.ndarray, spec: PolicySpec, n: int = 32,
                      seed: int = 0, where: str = "checkpoint") -> None:
    """The spec actor rebuilt from `params` must give bit-identical outputs to `module`."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, spec.obs_dim, generator=g)
    with torch.no_grad():
        want = module(x)
        got = spec.unflatten(params)(x)
    check(tuple(want.shape) == tuple(got.shape) and torch.equal(want, got),
          f"{where}: converted actor does not reproduce the original body's outputs "
          f"(max |diff| {float((want - got).abs().max()) if want.shape == got.shape else 'shape'})")


def load_state_dict_file(path: Path) -> dict:
    try:
        sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, OSError) as e:
        raise MaaError(f"{path}: not a loadable torch state dict ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    check(isinstance(sd, dict), f"{path}: expected a state dict, got {type(sd).__name__}")
    return sd


def sequential_from_state_dict(sd: dict, prefix: str, activation: str, where: str) -> nn.Sequential:
    """An MLP (Linear, act, ..., Linear) holding the `prefix<i>` layers of a state dict (e.g. the adaptation module)."""
    layers = _linear_layers(sd, prefix, where)
    mods: list[nn.Module] = []
    for j, (w, b) in enumerate(layers):
        lin = nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            lin.weight.copy_(w)
            lin.bias.copy_(b)
        mods.append(lin)
        if j < len(layers) - 1:
            mods.append({"elu": nn.ELU, "relu": nn.ReLU, "tanh": nn.Tanh}[activation]())
    return nn.Sequential(*mods).eval()


@dataclass(frozen=True)
class WtwCheckpoint:
    run_dir: Path
    run_id: str
    iteration: int
    path: Path
    kind: str                  # "state_dict" (ac_weights_<it>.pt) | "jit" (body_<it>.jit)

    def key(self, task: str) -> str:
        return f"{task}/wtw/{self.run_id}/{self.iteration}"


@dataclass
class ConvertedCheckpoint:
    params: np.ndarray                 # (P,) spec order
    adaptation: nn.Module | None       # the checkpoint's own estimator, when it has one


def convert_checkpoint(ck: WtwCheckpoint, spec: PolicySpec, run_params: dict | None = None,
                       verify_batch: int = 32) -> ConvertedCheckpoint:
    """A WTW checkpoint -> flat actor parameters (+ its adaptation module when the file holds one)."""
    where = str(ck.path)
    activation = spec.trunk[0].activation
    if ck.kind == "state_dict":
        sd = load_state_dict_file(ck.path)
        params = body_params(sd, spec, where)
        adaptation = None
        if any(k.startswith("adaptation_module.") for k in sd):
            ac = (run_params or {}).get("AC_Args") or {}
            adaptation = sequential_from_state_dict(sd, "adaptation_module.", ac.get("activation", activation), where)
        return ConvertedCheckpoint(params, adaptation)
    body = load_jit(ck.path)
    _check_body_structure(body, spec, where)
    params = body_params(dict(body.state_dict()), spec, where)
    verify_round_trip(body, params, spec, n=verify_batch, where=where)
    own = ck.path.with_name(f"adaptation_module_{ck.path.name[len('body_'):]}")
    return ConvertedCheckpoint(params, load_jit(own) if own.is_file() else None)


# -- run directories -------------------------------------------------------------------------------
def is_run_dir(p: Path) -> bool:
    return p.is_dir() and ((p / "parameters.pkl").is_file() or (p / "checkpoints").is_dir())


def run_id_of(run_dir: Path) -> str:
    """Stable id of a run for record keys: its last three path components (WTW names runs
    <date>/<script>/<time>, so the time alone is not unique)."""
    return "/".join(Path(run_dir).resolve().parts[-3:])


def expand_runs(patterns, strict: bool = False) -> list[Path]:
    """Run dirs from paths / glob patterns; a directory that is not a run dir contributes the run dirs
    below it. A literal path that does not exist is always an error; with `strict`, so is a pattern that
    finds no run dir (watch mode lets globs wait for runs that have not started yet)."""
    out: list[Path] = []
    for pat in patterns:
        pat = str(pat)
        is_glob = glob.has_magic(pat)
        check(is_glob or Path(pat).exists(), f"{pat}: no such walk-these-ways run directory")
        found = []
        for h in [Path(x) for x in sorted(glob.glob(pat))]:
            if is_run_dir(h):
                found.append(h)
            elif h.is_dir():
                found += sorted(p.parent for p in h.glob("**/parameters.pkl"))
        check(found or not strict, f"{pat}: no walk-these-ways run directory (one with parameters.pkl or checkpoints/)")
        out += [f for f in found if f not in out]
    return out


def find_checkpoints(run_dir, settle_s: float = 0.0, now: float | None = None) -> list[WtwCheckpoint]:
    """Iteration-numbered checkpoints of a run (checkpoints/ or the top level), oldest iteration first.
    Files modified less than `settle_s` ago are left for a later poll (they may still be written).
    `*_last.pt` / `*_latest.jit` are moving copies and are not collected."""
    run_dir = Path(run_dir)
    now = time.time() if now is None else now
    rid = run_id_of(run_dir)
    found: dict[int, WtwCheckpoint] = {}
    for folder in (run_dir / "checkpoints", run_dir):
        if not folder.is_dir():
            continue
        for p in sorted(folder.iterdir()):
            for kind, rx in CHECKPOINT_PATTERNS:
                m = rx.match(p.name)
                if not m or not p.is_file():
                    continue
                try:
                    if now - p.stat().st_mtime < settle_s:
                        continue
                except FileNotFoundError:
                    continue
                it = int(m.group(1))
                if it not in found or (kind == "state_dict" and found[it].kind != "state_dict"):
                    found[it] = WtwCheckpoint(run_dir, rid, it, p, kind)  # the full state dict wins over a body copy
    return [found[i] for i in sorted(found)]


# -- rollouts -> trajectories ----------------------------------------------------------------------
@dataclass
class Rollout:
    """One deployment of one checkpoint: N parallel episodes of T policy steps, as the simulator gave them.
    Step t: the actor read obs_history[t] ‖ latents[t] and output actions[t]; rewards/dones/lin_vel/contacts
    are what env.step(actions[t]) returned."""
    obs_history: np.ndarray            # (T, N, H)
    latents: np.ndarray                # (T, N, L)
    actions: np.ndarray                # (T, N, A)
    rewards: np.ndarray                # (T, N)
    dones: np.ndarray                  # (T, N) bool: the env reset after this step (fall or time-out)
    lin_vel: np.ndarray | None = None  # (T, N, 3) body-frame base velocity (info "body_linear_vel")
    contacts: np.ndarray | None = None  # (T, N, 4) foot contact states (info "contact_states")
    dt: float = 0.02                   # policy step, s


def rollout_to_trajectories(r: Rollout, spec: PolicySpec, min_steps: int, states: str = "observation",
                            obs_dim: int = 70, where: str = "rollout") -> tuple[list[Trajectory], dict]:
    """Cuts each environment's first episode (up to and including its first `done`) into a Trajectory.
    States: the step's observation (the newest `obs_dim` values of the history) or the whole actor input
    (`states="actor_input"`). Episodes shorter than `min_steps` are dropped. Returns the trajectories
    and a summary for the record's `source`."""
    h, lat, act = (np.asarray(a, dtype=np.float32) for a in (r.obs_history, r.latents, r.actions))
    check(h.ndim == 3 and lat.ndim == 3 and act.ndim == 3,
          f"{where}: obs_history, latents, actions must be (T, N, dim), got {h.shape}, {lat.shape}, {act.shape}")
    T, N = h.shape[:2]
    check(lat.shape[:2] == (T, N) and act.shape[:2] == (T, N),
          f"{where}: obs_history {h.shape}, latents {lat.shape}, actions {act.shape} disagree on (T, N)")
    check(h.shape[2] + lat.shape[2] == spec.obs_dim,
          f"{where}: history {h.shape[2]} + latent {lat.shape[2]} != spec {spec.name} input {spec.obs_dim}")
    check(act.shape[2] == spec.act_dim, f"{where}: actions have {act.shape[2]} dims, spec {spec.name} has {spec.act_dim}")
    check(states in ("observation", "actor_input"), f"{where}: states must be 'observation' or 'actor_input', got {states!r}")
    check(0 < obs_dim <= h.shape[2] and h.shape[2] % obs_dim == 0,
          f"{where}: history of {h.shape[2]} values is not a whole number of {obs_dim}-value observations")
    state_dim = obs_dim if states == "observation" else spec.obs_dim
    rew, done = np.asarray(r.rewards, dtype=np.float64), np.asarray(r.dones).astype(bool)
    check(rew.shape == (T, N) and done.shape == (T, N), f"{where}: rewards {rew.shape} / dones {done.shape}, expected ({T}, {N})")
    trajs, lengths, returns, vx, freq = [], [], [], [], []
    for i in range(N):
        d = np.flatnonzero(done[:, i])
        end = int(d[0]) + 1 if len(d) else T
        lengths.append(end)
        if end < min_steps:
            continue
        check(np.isfinite(h[:end, i]).all() and np.isfinite(lat[:end, i]).all(),
              f"{where} episode {i}: observation history or latent contain NaN or Inf")
        s = h[:end, i, -obs_dim:] if states == "observation" else np.concatenate([h[:end, i], lat[:end, i]], axis=1)
        trajs.append(Trajectory(s, act[:end, i]).validate(state_dim, spec.act_dim, where=f"{where} episode {i}"))
        returns.append(float(rew[:end, i].sum()))
        if r.lin_vel is not None:
            vx.append(float(np.asarray(r.lin_vel)[:end, i, 0].mean()))
        if r.contacts is not None:
            c = np.asarray(r.contacts)[:end, i].astype(bool)
            touchdowns = np.logical_and(c[1:], ~c[:-1]).sum(0)  # per foot
            freq.append(float(touchdowns.mean() / (end * r.dt)))
    summary = {"episodes": N, "kept": len(trajs), "episode_lengths": lengths,
               "fell": int(sum(1 for i in range(N) if done[:, i].any() and lengths[i] < T)),
               "return": float(np.mean(returns)) if returns else None}
    if vx:
        summary["mean_vx"] = float(np.mean(vx))
    if freq:
        summary["step_frequency_hz"] = float(np.mean(freq))
    return trajs, summary
