"""walk-these-ways (WTW) composition: run directory loading, the 70-value observation, the 30-step
history and `action = actor(history ‖ adaptation(history))`, and actions -> joint targets.

Everything here works on the policy's joint order; `JointMap` converts at the robot boundary."""
from __future__ import annotations

import hashlib
import io
import json
import math
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import MaaError, check
from ..resources import package_path, resolve
from .config import GaitCommand

DEFAULT_ADAPTATION = "go2-adaptation"   # models/<this>: maa's own adaptation module (a WTW run dir layout)
ADAPTATION_MARKER = "maa_adaptation"    # config section that marks a run directory as ours
ADAPTATION_KEY = "adaptation_module"    # generator.json: the module the students were trained with

# commands_scale slots as walk-these-ways orders them (15 commands)
COMMAND_SCALE_KEYS = ("lin_vel", "lin_vel", "ang_vel", "body_height_cmd", "gait_freq_cmd",
                      "gait_phase_cmd", "gait_phase_cmd", "gait_phase_cmd", "gait_phase_cmd",
                      "footswing_height_cmd", "body_pitch_cmd", "body_roll_cmd",
                      "stance_width_cmd", "stance_length_cmd", "aux_reward_cmd")
# observation flags this builder implements; any other `observe_*` switched on is refused
SUPPORTED_OBSERVE = {"observe_command", "observe_gait_commands", "observe_two_prev_actions", "observe_clock_inputs"}


@dataclass(frozen=True)
class WtwConfig:
    """The policy-side numbers of a WTW run (its `Cfg`). Defaults = the pretrained WTW run's numbers
    (which models/go2-adaptation's config repeats)."""
    num_obs: int = 70
    history_len: int = 30
    num_commands: int = 15
    num_actions: int = 12
    latent_dim: int = 2
    action_scale: float = 0.25
    hip_scale_reduction: float = 0.5
    clip_actions: float = 10.0
    clip_observations: float = 100.0
    dt: float = 0.02  # policy step: sim dt x decimation
    kp: float = 20.0
    kd: float = 0.5
    pacing_offset: bool = False
    obs_scales: dict = field(default_factory=lambda: {
        "dof_pos": 1.0, "dof_vel": 0.05, "lin_vel": 2.0, "ang_vel": 0.25, "body_height_cmd": 2.0,
        "gait_freq_cmd": 1.0, "gait_phase_cmd": 1.0, "footswing_height_cmd": 0.15, "body_pitch_cmd": 0.3,
        "body_roll_cmd": 0.3, "stance_width_cmd": 1.0, "stance_length_cmd": 1.0, "aux_reward_cmd": 1.0})

    @property
    def history_dim(self) -> int:
        return self.num_obs * self.history_len

    @property
    def actor_in_dim(self) -> int:
        return self.history_dim + self.latent_dim

    @classmethod
    def from_run_config(cls, cfg: dict, where: str = "wtw config") -> "WtwConfig":
        try:
            env, ctrl, norm = cfg["env"], cfg["control"], cfg["normalization"]
            on = {k for k, v in env.items() if k.startswith("observe_") and v is True}
            check(on <= SUPPORTED_OBSERVE, f"{where}: observation terms {sorted(on - SUPPORTED_OBSERVE)} are not supported")
            check(env.get("observe_clock_inputs") and env.get("observe_two_prev_actions"),
                  f"{where}: only the gait-conditioned layout (clock inputs, two previous actions) is supported")
            stiff, damp = ctrl["stiffness"], ctrl["damping"]
            return cls(
                num_obs=int(env["num_observations"]), history_len=int(env["num_observation_history"]),
                num_commands=int(cfg["commands"]["num_commands"]), num_actions=int(env["num_actions"]),
                latent_dim=int(env.get("num_privileged_obs", 2)),
                action_scale=float(ctrl["action_scale"]), hip_scale_reduction=float(ctrl.get("hip_scale_reduction", 1.0)),
                clip_actions=float(norm["clip_actions"]), clip_observations=float(norm["clip_observations"]),
                dt=float(cfg["sim"]["dt"]) * int(ctrl["decimation"]),
                kp=float(next(iter(stiff.values()))), kd=float(next(iter(damp.values()))),
                pacing_offset=bool(cfg["commands"].get("pacing_offset", False)),
                obs_scales={k: float(v) for k, v in cfg["obs_scales"].items()},
            )
        except (KeyError, TypeError, ValueError, StopIteration) as e:
            if isinstance(e, MaaError):
                raise
            raise MaaError(f"{where}: malformed walk-these-ways config ({type(e).__name__}: {e})") from None

    def check_layout(self) -> None:
        expected = 3 + self.num_commands + 4 * self.num_actions + 4
        check(self.num_obs == expected, f"wtw config: num_observations {self.num_obs} != {expected} for this layout")
        check(self.num_commands == len(COMMAND_SCALE_KEYS), f"wtw config: num_commands must be {len(COMMAND_SCALE_KEYS)}")


# -- run directory -------------------------------------------------------------------------------
class _CpuUnpickler(pickle.Unpickler):
    """WTW's parameters.pkl pickles CUDA tensors; torch stores each storage as `torch.load` bytes,
    which would try to restore them on the GPU. Route those loads to the CPU."""

    def find_class(self, module, name):
        if module == "torch.storage" and name == "_load_from_bytes":
            return lambda b: torch.load(io.BytesIO(b), map_location="cpu", weights_only=False)
        return super().find_class(module, name)


def load_parameters_pkl(path) -> dict:
    """The run's `Cfg` dict from parameters.pkl (CPU-only safe); tensors become lists."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            d = _CpuUnpickler(f).load()
    except (pickle.UnpicklingError, EOFError, RuntimeError, AttributeError, ModuleNotFoundError) as e:
        raise MaaError(f"{path}: cannot unpickle ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    check(isinstance(d, dict), f"{path}: expected a dict, got {type(d).__name__}")
    cfg = d.get("Cfg", d)

    def plain(x):
        if torch.is_tensor(x):
            return x.tolist()
        if isinstance(x, dict):
            return {k: plain(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [plain(v) for v in x]
        return x
    return plain(cfg)


@dataclass
class WtwRun:
    config: WtwConfig
    raw: dict
    adaptation: torch.nn.Module
    body: torch.nn.Module | None  # the run's own actor body, if present
    source: str
    adaptation_path: str = ""     # the adaptation module's file (its SHA-256 names the module)

    @property
    def ours(self) -> bool:
        """maa's own module (models/go2-adaptation, trained in the MuJoCo Go2), not a WTW run."""
        return ADAPTATION_MARKER in self.raw

    @property
    def adaptation_sha256(self) -> str:
        return file_sha256(self.adaptation_path)

    def describe(self) -> str:
        """The one line that says which adaptation module is in use."""
        where = self.source
        try:  # short when it lies under the working directory (the usual case)
            where = str(Path(self.source).resolve().relative_to(Path.cwd().resolve()))
        except ValueError:
            pass
        kind = "ours (trained in the MuJoCo Go2)" if self.ours else "a walk-these-ways run"
        return f"adaptation module: {where}, {kind}, sha256 {self.adaptation_sha256[:12]}"


def _load_jit(path: Path) -> torch.nn.Module:
    try:
        m = torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError) as e:
        raise MaaError(f"{path}: not a loadable TorchScript module ({str(e).splitlines()[0]})") from None
    return m.eval()


def default_wtw_run_dir() -> Path:
    """The adaptation module shipped with the package (ours; a pretrained WTW run dir replaces it)."""
    return package_path("models", DEFAULT_ADAPTATION)


def wtw_run_dir(path=None) -> Path:
    """`path` as given (or the package's models/<name>), or the shipped module when empty."""
    return default_wtw_run_dir() if not path else resolve(path, "models")


def load_wtw_run(path=None) -> WtwRun:
    """A WTW run directory: parameters.pkl (or a JSON dump of its Cfg), checkpoints/adaptation_module_latest.jit,
    optional checkpoints/body_latest.jit. Files may also sit at the top of the directory. Empty or
    None = the shipped module (models/go2-adaptation)."""
    root = wtw_run_dir(path)
    check(root.is_dir(), f"{root}: no such walk-these-ways run directory")

    def find(*names):
        for n in names:
            for p in (root / "checkpoints" / n, root / n):
                if p.is_file():
                    return p
        return None
    pkl = find("parameters.pkl")
    if pkl is not None:
        raw = load_parameters_pkl(pkl)
        src = pkl
    else:
        js = sorted(root.glob("*.json"))
        check(bool(js), f"{root}: neither parameters.pkl nor a JSON config found")
        src = js[0]
        try:
            raw = json.loads(src.read_text())
        except json.JSONDecodeError as e:
            raise MaaError(f"{src}: not valid JSON ({e})") from None
    cfg = WtwConfig.from_run_config(raw, str(src))
    cfg.check_layout()
    ad = find("adaptation_module_latest.jit")
    check(ad is not None, f"{root}: checkpoints/adaptation_module_latest.jit not found")
    adaptation = _load_jit(ad)
    body_path = find("body_latest.jit")
    body = _load_jit(body_path) if body_path else None
    with torch.inference_mode():
        out = adaptation(torch.zeros(1, cfg.history_dim))
    check(tuple(out.shape) == (1, cfg.latent_dim),
          f"{ad}: adaptation module maps (1, {cfg.history_dim}) to {tuple(out.shape)}, expected (1, {cfg.latent_dim})")
    return WtwRun(cfg, raw, adaptation, body, str(root), str(ad))


# -- which adaptation module a generator's students were trained with ------------------------------
def file_sha256(path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def recorded_adaptation(generator_dir) -> dict | None:
    """The `adaptation_module` record of generator_dir/generator.json (None: the folder has none)."""
    meta = Path(generator_dir) / "generator.json"
    try:
        rec = json.loads(meta.read_text()).get(ADAPTATION_KEY)
    except (OSError, ValueError, AttributeError):
        return None  # the generator loader reports an unreadable folder itself
    return rec if isinstance(rec, dict) and isinstance(rec.get("sha256"), str) else None


def adaptation_record(run: WtwRun, note: str = "") -> dict:
    """What generator.json keeps about the adaptation module the students were trained with."""
    rec = {"sha256": run.adaptation_sha256, "source": Path(run.source).name, "ours": run.ours}
    if note:
        rec["note"] = note
    return rec


def write_adaptation_record(generator_dir, rec: dict) -> None:
    meta_path = Path(generator_dir) / "generator.json"
    meta = json.loads(meta_path.read_text())
    meta[ADAPTATION_KEY] = rec
    meta_path.write_text(json.dumps(meta, indent=1))


def check_adaptation_match(generator_dir, run: WtwRun, accept: bool = False) -> str:
    """Refuses (MaaError, one line) a generator whose students were trained with another adaptation
    module than `run`'s, unless `accept`. Returns a line to print (the match, or why it was let through)."""
    rec = recorded_adaptation(generator_dir)
    have = run.adaptation_sha256
    if rec is None:
        return f"{generator_dir}: records no adaptation module; running with {have[:12]} unchecked"
    want = rec["sha256"]
    if want == have:
        return f"adaptation module matches the one {generator_dir} was trained with (sha256 {have[:12]})"
    msg = (f"{generator_dir}/generator.json: students trained with adaptation module sha256 {want[:12]} "
           f"({rec.get('source', '?')}), but {run.source} has {have[:12]}")
    if accept:
        return f"warning: {msg}; accepted (accept_adaptation_mismatch)"
    raise MaaError(f"{msg}; use the matching module, or set accept_adaptation_mismatch (maa demo: --accept-adaptation-mismatch)")


# -- observation ---------------------------------------------------------------------------------
def projected_gravity(quat_wxyz: np.ndarray, out: np.ndarray) -> np.ndarray:
    """World gravity direction (0, 0, -1) in the body frame: R(q)^T g."""
    w, x, y, z = quat_wxyz
    out[0] = -2.0 * (x * z - w * y)
    out[1] = -2.0 * (y * z + w * x)
    out[2] = -(1.0 - 2.0 * (x * x + y * y))
    return out


class ObservationBuilder:
    """Builds WTW's observation into a preallocated buffer and keeps the history (oldest first).

    The history lives inside `self.input` (history ‖ latent), the actor's input vector, so the policy
    reads it without a copy. Layout of one observation (policy joint order):
      gravity(3) | commands*scale(15) | (q - default)*s(12) | dq*s(12) | actions(12) | last actions(12) | clock(4)
    """

    def __init__(self, wtw: WtwConfig, default_angles: np.ndarray, gait: GaitCommand = GaitCommand()):
        wtw.check_layout()
        self.wtw = wtw
        n, a = wtw.num_obs, wtw.num_actions
        self.default_angles = np.asarray(default_angles, dtype=np.float64).copy()
        self.input = np.zeros(wtw.actor_in_dim, dtype=np.float32)
        self.history = self.input[: wtw.history_dim].reshape(wtw.history_len, n)
        self.obs = np.zeros(n, dtype=np.float32)
        self.commands = np.zeros(wtw.num_commands)
        self.commands_scale = np.array([wtw.obs_scales[k] for k in COMMAND_SCALE_KEYS])
        self.actions = np.zeros(a)
        self.last_actions = np.zeros(a)
        self.clock = np.zeros(4)
        self.gait_index = 0.0
        self.pushes = 0  # history version: +1 per push, +2 on reset (tells prepared partial sums apart)
        self._grav = np.zeros(3)
        self._tmp = np.zeros(a)
        # slices of one observation
        c = wtw.num_commands
        self.sl_grav, self.sl_cmd = slice(0, 3), slice(3, 3 + c)
        self.sl_q, self.sl_dq = slice(3 + c, 3 + c + a), slice(3 + c + a, 3 + c + 2 * a)
        self.sl_act, self.sl_last = slice(3 + c + 2 * a, 3 + c + 3 * a), slice(3 + c + 3 * a, 3 + c + 4 * a)
        self.sl_clock = slice(3 + c + 4 * a, n)
        self.set_gait(gait)

    def set_gait(self, g: GaitCommand) -> None:
        self.commands[3:] = (g.body_height, g.frequency, g.phase, g.offset, g.bound, g.duration,
                             g.footswing_height, g.pitch, g.roll, g.stance_width, g.stance_length, g.aux_reward)

    def set_velocity(self, vx: float, vy: float, yaw_rate: float) -> None:
        self.commands[0], self.commands[1], self.commands[2] = vx, vy, yaw_rate

    def reset(self) -> None:
        self.input[:] = 0.0
        self.actions[:] = 0.0
        self.last_actions[:] = 0.0
        self.gait_index = 0.0
        self.pushes += 2

    def restart_clock(self) -> None:
        """Gait phase back to its value after a reset (the next `step_clock` is the first)."""
        self.gait_index = 0.0

    def step_clock(self) -> None:
        """Advance the gait phase by one policy step (as WTW's simulator does before observing)."""
        freq, phase, offset, bound = self.commands[4:8]
        self.gait_index = math.fmod(self.gait_index + self.wtw.dt * freq, 1.0)
        gi = self.gait_index
        if self.wtw.pacing_offset:
            feet = (gi + phase + offset + bound, gi + bound, gi + offset, gi + phase)
        else:
            feet = (gi + phase + offset + bound, gi + offset, gi + bound, gi + phase)
        for i, f in enumerate(feet):
            self.clock[i] = math.sin(2.0 * math.pi * f)

    def build(self, quat_wxyz: np.ndarray, q: np.ndarray, dq: np.ndarray) -> np.ndarray:
        """One observation from the measured state (policy order) and the stored actions."""
        s, o = self.wtw.obs_scales, self.obs
        o[self.sl_grav] = projected_gravity(quat_wxyz, self._grav)
        np.multiply(self.commands, self.commands_scale, out=o[self.sl_cmd], casting="unsafe")
        np.subtract(q, self.default_angles, out=self._tmp)
        np.multiply(self._tmp, s["dof_pos"], out=o[self.sl_q], casting="unsafe")
        np.multiply(dq, s["dof_vel"], out=o[self.sl_dq], casting="unsafe")
        o[self.sl_act] = self.actions
        o[self.sl_last] = self.last_actions
        o[self.sl_clock] = self.clock
        np.clip(o, -self.wtw.clip_observations, self.wtw.clip_observations, out=o)
        return o

    def push(self) -> None:
        """Append the current observation to the history (drop the oldest)."""
        h = self.history
        h[:-1] = h[1:]
        h[-1] = self.obs
        self.pushes += 1

    def record_action(self, action: np.ndarray) -> None:
        """The action executed this step becomes `actions`; the previous one `last_actions`."""
        self.last_actions[:] = self.actions
        np.clip(action, -self.wtw.clip_actions, self.wtw.clip_actions, out=self.actions)


class ActionMapper:
    """Raw actions (policy order) -> joint position targets (policy order), as WTW deploys them."""

    def __init__(self, wtw: WtwConfig, default_angles: np.ndarray, hip_indices: np.ndarray):
        self.scale = np.full(wtw.num_actions, wtw.action_scale)
        self.scale[hip_indices] *= wtw.hip_scale_reduction
        self.default_angles = np.asarray(default_angles, dtype=np.float64).copy()
        self.clip = wtw.clip_actions
        self._tmp = np.zeros(wtw.num_actions)

    def targets(self, action: np.ndarray, out: np.ndarray) -> np.ndarray:
        np.clip(action, -self.clip, self.clip, out=self._tmp)
        np.multiply(self._tmp, self.scale, out=out)
        out += self.default_angles
        return out


class PolicyRunner:
    """latent = adaptation(history); action = actor(history ‖ latent). Reads the builder's input
    buffer in place and writes the latent into its tail.

    Plain MLPs run as numpy matrices (`HistoryMlp`); after the command went out, `prepare()`
    precomputes the next tick's contribution of the 29 older history rows, so the tick itself only
    multiplies the newest observation. Other modules (e.g. a TorchScript body) run through torch."""

    def __init__(self, builder: ObservationBuilder, adaptation: torch.nn.Module):
        from .inference import HistoryMlp
        self.builder = builder
        self.adaptation = adaptation
        w = builder.wtw
        self.x = torch.from_numpy(builder.input).view(1, -1)   # shares memory with builder.input
        self.hist = self.x[:, : w.history_dim]
        self.latent = self.x[:, w.history_dim:]
        self._latent_np = builder.input[w.history_dim:]
        self.action = np.zeros(w.num_actions, dtype=np.float32)
        self._action_t = torch.from_numpy(self.action).view(1, -1)
        self.fast_adaptation = HistoryMlp.of(adaptation, w.history_len, w.num_obs, w.history_dim)
        self._prepared_push, self._prepared_actor = -10, None

    def compile(self, actor: torch.nn.Module):
        """The actor as a `HistoryMlp`, or None when it is not a plain MLP (then torch runs it)."""
        from .inference import HistoryMlp
        w = self.builder.wtw
        return HistoryMlp.of(actor, w.history_len, w.num_obs, w.actor_in_dim)

    def _prepared(self) -> bool:
        return self._prepared_push == self.builder.pushes - 1

    def update_latent(self) -> None:
        if self.fast_adaptation is not None:
            self._latent_np[:] = self.fast_adaptation.forward(self.builder.input, self._prepared())
        else:
            with torch.inference_mode():
                self.latent.copy_(self.adaptation(self.hist))

    def run(self, actor: torch.nn.Module, fast=None) -> np.ndarray:
        """One action; `fast` = `compile(actor)` when available."""
        prepared = self._prepared()
        self.update_latent()
        if fast is not None:
            np.copyto(self.action, fast.forward(self.builder.input, prepared and self._prepared_actor is fast))
        else:
            with torch.inference_mode():
                self._action_t.copy_(actor(self.x))
        return self.action

    def prepare(self, fast=None) -> None:
        """Call after the command went out: the older rows' share of the next tick's first layers."""
        x = self.builder.input
        if self.fast_adaptation is not None:
            self.fast_adaptation.prepare(x)
        if fast is not None:
            fast.prepare(x)
        self._prepared_actor = fast
        self._prepared_push = self.builder.pushes
