"""Typed configs for the three models and their training. Every number is named here.

Presets: `paper` follows the paper's Tables 1-3; `cpu` (the default) is sized for generation in
tens of milliseconds on a 2-core CPU; `tiny` is for tests and wiring.
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field

from .errors import MaaError
from .files import read_yaml_mapping  # noqa: F401  (moved to files.py; imported from here by older callers)


@dataclass
class AutoencoderConfig:
    token_dim: int = 64  # every token group becomes one latent token of this size (equal across groups)
    hidden_dim: int = 256
    depth: int = 1  # hidden layers in encoder and decoder (paper: 1)
    input_noise: float = 1e-3  # std of noise added to (normalized) parameters while training
    latent_noise: float = 5e-2  # std of noise added to latents while training: makes the decoder tolerant of diffusion error
    latent_clamp: float = 6.0  # tokens (layer-normalized, unit scale) are clamped to +-this before decoding
    # token groups every training checkpoint shares bit for bit (a frozen shared layer): not coded, decoded as
    # the dataset's value. Training fills this from the data (train.constant_groups); empty = code every group.
    constant_groups: tuple[str, ...] = ()


@dataclass
class EmbeddingConfig:
    mode: str = "success"  # "success": v = m states after first success; "segment": locomotion, no success signal
    n_steps: int = 60  # h reads the first n state-action pairs (paper: 60)
    m_states: int = 3  # v reads m states (paper: 3)
    num_segments: int = 1  # segment mode: trajectory is cut into this many segments, embeddings concatenated
    hidden_dim: int = 256
    out_dim: int = 128  # h and v are each out_dim; the condition is h || v (per segment)

    @property
    def cond_dim(self) -> int:
        return 2 * self.out_dim * (self.num_segments if self.mode == "segment" else 1)


@dataclass
class DiffusionConfig:
    channels: tuple[int, ...] = (32, 64)  # U-Net widths per resolution level
    kernel_size: int = 3
    step_embed_dim: int = 64  # sinusoidal diffusion-step embedding size (paper: 128)
    pos_channels: int = 8  # learned position channels concatenated to the latent (see models/unet.py)
    num_train_timesteps: int = 1000
    num_inference_steps: int = 10  # DDIM steps (paper: 10)
    beta_schedule: str = "squaredcos_cap_v2"
    # "sample" (predict the clean latent): on a two-mode toy it lands 0.09 from the mode where "epsilon" lands
    # 3.7 away (same budget); policy latents are few-mode data of exactly this kind
    prediction_type: str = "sample"  # or "epsilon", "v_prediction"
    clip_sample: bool = False
    ema_decay: float = 0.999
    # std of Gaussian noise on the condition while the diffusion model trains, in units of the condition's
    # per-element spread over the training set: nearby behaviours then share latent modes, so a prompt between
    # training behaviours samples a neighbour's mode instead of a blend of parameters (0 = paper)
    cond_noise: float = 0.0


@dataclass
class OptimConfig:
    steps: int = 2000
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 5e-3
    warmup_steps: int = 100
    betas: tuple[float, float] = (0.9, 0.999)


@dataclass
class GeneratorConfig:
    preset: str = "cpu"
    autoencoder: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    embedding: EmbeddingConfig = field(default_factory=EmbeddingConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    train_autoencoder: OptimConfig = field(default_factory=lambda: OptimConfig(steps=3000, batch_size=64, lr=1e-3, weight_decay=5e-3))
    train_embedding: OptimConfig = field(default_factory=lambda: OptimConfig(steps=1500, batch_size=64, lr=3e-4, weight_decay=1e-4))
    train_diffusion: OptimConfig = field(default_factory=lambda: OptimConfig(steps=4000, batch_size=128, lr=2e-4, weight_decay=5e-4, betas=(0.95, 0.999)))
    # Checkpoint(s) each trajectory is paired with when training the diffusion model (train.TrainingData):
    # "own": the checkpoint that produced it (the paper). "run": every checkpoint of the same run (source["run"])
    # saved at the same step or later, plus, when training is given a prompt dataset, the run's sub-optimal prompt
    # trajectories paired the same way. Evaluation prompts are sub-optimal; trained "own", the model never saw
    # such a condition and lands far from every checkpoint (BENCHMARKS.md, Table 4).
    diffusion_pairing: str = "own"
    seed: int = 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "GeneratorConfig":
        return _from_dict(cls, d, "config")

    @classmethod
    def preset_named(cls, name: str, **overrides) -> "GeneratorConfig":
        if name not in PRESETS:
            raise MaaError(f"unknown preset {name!r} (choose from {', '.join(PRESETS)})")
        cfg = PRESETS[name]()
        return apply_overrides(cfg, overrides) if overrides else cfg


def _from_dict(cls, d, where):
    if not isinstance(d, dict):
        raise MaaError(f"{where}: expected a mapping, got {type(d).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(d) - set(fields)
    if unknown:
        raise MaaError(f"{where}: unknown key(s) {sorted(unknown)} (known: {sorted(fields)})")
    kw = {}
    for k, v in d.items():
        sub = _DATACLASS_FIELDS.get((cls, k))
        if sub is not None:
            kw[k] = _from_dict(sub, v, f"{where}.{k}")
        elif isinstance(v, list):
            kw[k] = tuple(_number(x) for x in v)
        else:
            kw[k] = _number(v)
    obj = cls(**kw)
    _validate(obj, where)
    return obj


# -- validation of configs read from files, --set and generator.json --------------------------
MAX_WIDTH = 1 << 16  # any layer width / token size: a typo like 1e9 must fail here, not as an out-of-memory
MAX_STEPS = 1 << 31

# (class, field) -> (lowest, highest) for numbers, or the allowed strings. Types come from the defaults.
_RULES = {
    (AutoencoderConfig, "token_dim"): (1, MAX_WIDTH), (AutoencoderConfig, "hidden_dim"): (1, MAX_WIDTH),
    (AutoencoderConfig, "depth"): (0, 64), (AutoencoderConfig, "input_noise"): (0.0, math.inf),
    (AutoencoderConfig, "latent_noise"): (0.0, math.inf), (AutoencoderConfig, "latent_clamp"): (1e-6, math.inf),
    (EmbeddingConfig, "mode"): ("success", "segment"), (EmbeddingConfig, "n_steps"): (1, MAX_STEPS),
    (EmbeddingConfig, "m_states"): (1, MAX_STEPS), (EmbeddingConfig, "num_segments"): (1, 4096),
    (EmbeddingConfig, "hidden_dim"): (1, MAX_WIDTH), (EmbeddingConfig, "out_dim"): (1, MAX_WIDTH),
    (DiffusionConfig, "channels"): (1, MAX_WIDTH), (DiffusionConfig, "kernel_size"): (1, 63),
    (DiffusionConfig, "step_embed_dim"): (2, MAX_WIDTH), (DiffusionConfig, "pos_channels"): (0, MAX_WIDTH),
    (DiffusionConfig, "num_train_timesteps"): (1, 1 << 20), (DiffusionConfig, "num_inference_steps"): (1, 1 << 20),
    # the schedules diffusers' DDPM and DDIM schedulers both implement
    (DiffusionConfig, "beta_schedule"): ("linear", "scaled_linear", "squaredcos_cap_v2"),
    (DiffusionConfig, "prediction_type"): ("epsilon", "sample", "v_prediction"),
    (DiffusionConfig, "ema_decay"): (0.0, 1.0), (DiffusionConfig, "cond_noise"): (0.0, math.inf),
    (OptimConfig, "steps"): (0, MAX_STEPS), (OptimConfig, "batch_size"): (1, 1 << 24),
    (OptimConfig, "lr"): (1e-12, math.inf), (OptimConfig, "weight_decay"): (0.0, math.inf),
    (OptimConfig, "warmup_steps"): (0, MAX_STEPS), (OptimConfig, "betas"): (0.0, 0.999999),
    (GeneratorConfig, "diffusion_pairing"): ("own", "run"),
}
_TUPLE_ITEMS = {(DiffusionConfig, "channels"): int, (OptimConfig, "betas"): float, (AutoencoderConfig, "constant_groups"): str}
_TUPLE_LEN = {(OptimConfig, "betas"): 2}


def _validate(obj, where: str) -> None:
    """Type and range of every field (numbers: int where the default is an int; bool only for bools)."""
    cls = type(obj)
    for f in dataclasses.fields(cls):
        if (cls, f.name) in _DATACLASS_FIELDS:
            continue
        v, w = getattr(obj, f.name), f"{where}.{f.name}"
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        rule = _RULES.get((cls, f.name))
        if isinstance(default, tuple):
            item = _TUPLE_ITEMS.get((cls, f.name), float)
            if not isinstance(v, tuple) or not all(_is(x, item) for x in v):
                raise MaaError(f"{w}: {v!r}, expected a list of {_PLURAL[item]}")
            n = _TUPLE_LEN.get((cls, f.name))
            if n is not None and len(v) != n:
                raise MaaError(f"{w}: {list(v)}, expected {n} values")
            if item is int and not v:
                raise MaaError(f"{w}: expected at least one value")
            values = v
        else:
            if not _is(v, type(default)):
                raise MaaError(f"{w}: {v!r}, expected {_KIND.get(type(default), type(default).__name__)}")
            values = (v,)
        if rule is None:
            continue
        if isinstance(rule[0], str):
            if v not in rule:
                raise MaaError(f"{w}: {v!r}, choose from {', '.join(rule)}")
            continue
        lo, hi = rule
        for x in values:
            if not lo <= x <= hi:
                raise MaaError(f"{w}: {x!r} is out of range, expected {lo} <= value <= {hi}")
    if cls is DiffusionConfig:
        if obj.num_inference_steps > obj.num_train_timesteps:
            raise MaaError(f"{where}.num_inference_steps: {obj.num_inference_steps} exceeds num_train_timesteps {obj.num_train_timesteps}")


_FLOAT_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _number(v):
    """YAML 1.1 reads 1e-3 (no dot) as a string; take it as the number it is meant to be."""
    return float(v) if isinstance(v, str) and _FLOAT_TEXT.fullmatch(v) else v


_KIND = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
_PLURAL = {int: "integers", float: "numbers", str: "strings"}


def _is(v, kind) -> bool:
    if kind is bool:
        return isinstance(v, bool)
    if kind is int:
        return isinstance(v, int) and not isinstance(v, bool)
    if kind is float:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    return isinstance(v, kind)


_DATACLASS_FIELDS = {
    (GeneratorConfig, "autoencoder"): AutoencoderConfig,
    (GeneratorConfig, "embedding"): EmbeddingConfig,
    (GeneratorConfig, "diffusion"): DiffusionConfig,
    (GeneratorConfig, "train_autoencoder"): OptimConfig,
    (GeneratorConfig, "train_embedding"): OptimConfig,
    (GeneratorConfig, "train_diffusion"): OptimConfig,
}


def apply_overrides(cfg: GeneratorConfig, overrides: dict) -> GeneratorConfig:
    """Nested overrides, e.g. {"autoencoder": {"token_dim": 64}} or {"autoencoder.token_dim": 64}."""
    d = cfg.to_dict()
    for k, v in overrides.items():
        node, parts = d, k.split(".")
        for p in parts[:-1]:
            if p not in node or not isinstance(node[p], dict):
                raise MaaError(f"config override {k!r}: no section {p!r}")
            node = node[p]
        if isinstance(v, dict) and isinstance(node.get(parts[-1]), dict):
            node[parts[-1]].update(v)
        else:
            if parts[-1] not in node:
                raise MaaError(f"config override {k!r}: unknown key {parts[-1]!r}")
            node[parts[-1]] = v
    return GeneratorConfig.from_dict(d)


def load_config(path, preset: str | None = None) -> GeneratorConfig:
    d = read_yaml_mapping(path)
    base = GeneratorConfig.preset_named(preset or d.pop("preset", "cpu"))
    d.pop("preset", None)
    try:
        return apply_overrides(base, d)
    except MaaError as e:
        raise MaaError(f"{path}: {e}") from None


def _paper() -> GeneratorConfig:
    # Paper Tables 1-3 (hidden 1024, latent [2, 1024], embeddings 128 each, DDIM 10 steps)
    return GeneratorConfig(
        preset="paper",
        autoencoder=AutoencoderConfig(token_dim=1024, hidden_dim=1024, depth=1, input_noise=1e-4, latent_noise=1e-3),
        embedding=EmbeddingConfig(n_steps=60, m_states=3, hidden_dim=1024, out_dim=128),
        diffusion=DiffusionConfig(channels=(64, 128, 256), kernel_size=3, step_embed_dim=128, num_inference_steps=10),
        train_autoencoder=OptimConfig(steps=30000, batch_size=32, lr=1e-3, weight_decay=5e-3),
        train_embedding=OptimConfig(steps=10000, batch_size=16, lr=1e-4, weight_decay=1e-4),
        train_diffusion=OptimConfig(steps=30000, batch_size=128, lr=2e-4, weight_decay=5e-4, warmup_steps=500, betas=(0.95, 0.999)),
    )


def _tiny() -> GeneratorConfig:
    return GeneratorConfig(
        preset="tiny",
        autoencoder=AutoencoderConfig(token_dim=32, hidden_dim=64),
        embedding=EmbeddingConfig(n_steps=10, m_states=2, hidden_dim=64, out_dim=16),
        diffusion=DiffusionConfig(channels=(16, 32), step_embed_dim=16, num_inference_steps=5),
        train_autoencoder=OptimConfig(steps=300, batch_size=32, lr=1e-3, warmup_steps=10),
        train_embedding=OptimConfig(steps=300, batch_size=32, lr=1e-3, warmup_steps=10),
        train_diffusion=OptimConfig(steps=600, batch_size=64, lr=1e-3, warmup_steps=10),
    )


PRESETS = {"cpu": GeneratorConfig, "paper": _paper, "tiny": _tiny}
