"""PolicyGenerator: prompt trajectories in, deployable actors out (diffusers-style pipeline).

One folder is one deployable generator:
    generator.json              spec, config, prompt dims, versions
    autoencoder.safetensors     parameter autoencoder (+ parameter and latent normalizers)
    embedding.safetensors       behavior embedding (+ state/action normalizers)
    unet.safetensors            U-Net (EMA weights)
    scheduler/                  diffusers DDIM scheduler config
    retrieval.safetensors       optional: the training checkpoints' embeddings + parameters, for the
                                serving modes retrieve / auto (serving/retrieval.py, `maa index`)

A compact copy for shipping (`save_pretrained(..., dtype=torch.float16, max_shard_bytes=...)`) stores
weights in float16 (normalizers stay float32: they hold exact constants such as a frozen layer) and
splits each model over `<name>-0000i-of-0000n.safetensors` files listed in `<name>.safetensors.index.json`;
loading upcasts to float32.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from . import __version__
from .config import GeneratorConfig
from .errors import MaaError, check
from .files import read_json, read_safetensors_header
from .models import BehaviorEmbedding, ConditionalUnet1D, ParameterAutoencoder
from .models.behavior import min_prompt_length
from .models.normalizer import Normalizer
from .specs import Actor, PolicySpec, get_spec
from .trajectory import Trajectory

GENERATOR_FORMAT = "maa-generator/1"


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def make_scheduler(cfg: GeneratorConfig, kind: str = "ddim"):
    from diffusers import DDIMScheduler, DDPMScheduler

    d = cfg.diffusion
    cls = DDIMScheduler if kind == "ddim" else DDPMScheduler
    return cls(num_train_timesteps=d.num_train_timesteps, beta_schedule=d.beta_schedule,
               prediction_type=d.prediction_type, clip_sample=d.clip_sample)


@dataclass
class GenerationOutput:
    params: np.ndarray  # (N prompts, K policies, P) float32
    spec: PolicySpec

    def actor(self, i: int, k: int = 0) -> Actor:
        return self.spec.unflatten(self.params[i, k])

    def actors(self) -> list[list[Actor]]:
        return [[self.actor(i, k) for k in range(self.params.shape[1])] for i in range(self.params.shape[0])]


class PolicyGenerator:
    def __init__(self, spec: PolicySpec, obs_dim: int, act_dim: int, config: GeneratorConfig, device=None):
        self.spec, self.obs_dim, self.act_dim, self.config = spec, obs_dim, act_dim, config
        self.device = torch.device(device) if device is not None else default_device()
        self.autoencoder = ParameterAutoencoder(spec, config.autoencoder)
        self.embedding = BehaviorEmbedding(obs_dim, act_dim, config.embedding)
        self.unet = ConditionalUnet1D(self.autoencoder.num_tokens, config.autoencoder.token_dim, config.embedding.cond_dim,
                                      config.diffusion.channels, config.diffusion.kernel_size, config.diffusion.step_embed_dim,
                                      config.diffusion.pos_channels)
        self.scheduler = make_scheduler(config)
        self.to(self.device)

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def untrained(cls, spec, obs_dim: int | None = None, act_dim: int | None = None, preset: str = "tiny", device=None,
                  **overrides) -> "PolicyGenerator":
        spec = get_spec(spec)
        cfg = GeneratorConfig.preset_named(preset, **overrides)
        return cls(spec, obs_dim or spec.obs_dim, act_dim or spec.act_dim, cfg, device)

    def to(self, device) -> "PolicyGenerator":
        self.device = torch.device(device)
        for m in self.modules():
            m.to(self.device).eval()
        return self

    def modules(self):
        return {"autoencoder": self.autoencoder, "embedding": self.embedding, "unet": self.unet}.values()

    @property
    def prompt_length(self) -> int:
        return min_prompt_length(self.config.embedding)

    # -- persistence -------------------------------------------------------------------------
    def save_pretrained(self, folder, dtype: torch.dtype | None = None, max_shard_bytes: int | None = None,
                        retrieval_dataset=None, retrieval_dtype: str = "float32") -> Path:
        """dtype (e.g. torch.float16): store weights in it, normalizer buffers stay float32.
        max_shard_bytes: split each model's tensors over files of at most this size (module docstring).
        retrieval_dataset: a PolicyDataset of the training checkpoints: also writes the retrieval index
        (serving/retrieval.py) in retrieval_dtype, built with the weights as saved (replacing one there). An
        index left from other weights is refused when loaded (its embedding fingerprint)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {"format": GENERATOR_FORMAT, "maa_version": __version__, "spec": self.spec.to_dict(),
                "obs_dim": self.obs_dim, "act_dim": self.act_dim, "config": self.config.to_dict()}
        for name, m in {"autoencoder": self.autoencoder, "embedding": self.embedding, "unet": self.unet}.items():
            exact = {f"{n}.{b}" if n else b for n, mod in m.named_modules() if isinstance(mod, Normalizer)
                     for b in ("mean", "std")}
            sd = {k: (v.to(dtype) if dtype is not None and v.is_floating_point() and k not in exact else v)
                  .detach().cpu().contiguous() for k, v in m.state_dict().items()}
            for old in [folder / f"{name}.safetensors", folder / f"{name}.safetensors.index.json",
                        *folder.glob(f"{name}-*-of-*.safetensors")]:
                old.unlink(missing_ok=True)  # a re-save in the other layout must not leave stale files
            if max_shard_bytes is None:
                save_file(sd, str(folder / f"{name}.safetensors"), metadata={"format": GENERATOR_FORMAT})
                continue
            shards: list[dict] = [{}]
            used = 0
            for k, v in sd.items():  # greedy, in state-dict order; a tensor is never split
                size = v.numel() * v.element_size()
                check(size <= max_shard_bytes, f"{name}: tensor {k} ({size} bytes) exceeds max_shard_bytes {max_shard_bytes}")
                if shards[-1] and used + size > max_shard_bytes:
                    shards.append({})
                    used = 0
                shards[-1][k] = v
                used += size
            files = [f"{name}-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
            for f, part in zip(files, shards):
                save_file(part, str(folder / f), metadata={"format": GENERATOR_FORMAT})
            index = {"format": GENERATOR_FORMAT, "weight_map": {k: f for f, part in zip(files, shards) for k in part}}
            (folder / f"{name}.safetensors.index.json").write_text(json.dumps(index, indent=1))
        self.scheduler.save_pretrained(folder / "scheduler")
        (folder / "generator.json").write_text(json.dumps(meta, indent=1))
        from .serving import retrieval

        if retrieval_dataset is not None:  # the embedding as it is served (float16 copies: rounded)
            served = self if dtype is None else type(self).from_pretrained(folder, device="cpu")
            retrieval.save_index(retrieval.build_index(served, retrieval_dataset), served, folder, retrieval_dtype,
                                 force=True)
        return folder

    @classmethod
    def from_pretrained(cls, folder, device=None) -> "PolicyGenerator":
        folder = Path(folder)
        check(folder.is_dir(), f"{folder}: no such generator folder")
        meta = read_generator_meta(folder)
        gen = cls(meta["spec"], meta["obs_dim"], meta["act_dim"], meta["config"], device="cpu")
        for name, m in {"autoencoder": gen.autoencoder, "embedding": gen.embedding, "unet": gen.unet}.items():
            path, sd = _load_weights(folder, name)
            want = m.state_dict()
            missing, extra = set(want) - set(sd), set(sd) - set(want)
            check(not missing and not extra, f"{path}: tensors do not match the config (missing {sorted(missing)[:3]}, unexpected {sorted(extra)[:3]})")
            for k, v in sd.items():
                check(v.shape == want[k].shape, f"{path}: {k} has shape {tuple(v.shape)}, config expects {tuple(want[k].shape)}")
                check(bool(torch.isfinite(v).all()), f"{path}: {k} contains NaN or Inf")
            m.load_state_dict({k: v.to(want[k].dtype) for k, v in sd.items()})  # float16 copies: back to float32
        return gen.to(device if device is not None else default_device())

    # -- generation --------------------------------------------------------------------------
    def check_prompt(self, traj: Trajectory, where: str = "prompt") -> Trajectory:
        check(isinstance(traj, Trajectory), f"{where}: expected a Trajectory, got {type(traj).__name__}")
        traj.validate(self.obs_dim, self.act_dim, where=where)
        check(len(traj) >= self.prompt_length, f"{where}: {len(traj)} steps, the generator needs at least {self.prompt_length}")
        return traj

    @torch.inference_mode()
    def condition(self, trajectories: list[Trajectory]) -> torch.Tensor:
        for i, t in enumerate(trajectories):
            self.check_prompt(t, where=f"prompt {i}")
        return self.embedding.condition_from_trajectories(trajectories)

    @torch.inference_mode()
    def sample_latents(self, cond: torch.Tensor, num_policies: int = 1, seed: int | None = None,
                       num_inference_steps: int | None = None) -> torch.Tensor:
        """cond (N, C) -> standardized latents (N*K, T, D), prompt-major."""
        cond = cond.repeat_interleave(num_policies, 0)
        g = torch.Generator(device="cpu")
        g.manual_seed(int(seed) if seed is not None else int(torch.seed() % 2 ** 63))
        shape = (cond.shape[0], self.autoencoder.num_tokens, self.config.autoencoder.token_dim)
        z = torch.randn(shape, generator=g).to(self.device)
        self.scheduler.set_timesteps(num_inference_steps or self.config.diffusion.num_inference_steps)
        for t in self.scheduler.timesteps:
            out = self.unet(z, t.to(self.device), cond)
            z = self.scheduler.step(out, t, z).prev_sample
        return z

    @torch.inference_mode()
    def generate(self, trajectories: list[Trajectory] | Trajectory, num_policies: int = 1, seed: int | None = None,
                 num_inference_steps: int | None = None) -> GenerationOutput:
        """Each prompt trajectory -> num_policies actors. Deterministic under a seed."""
        if isinstance(trajectories, Trajectory):
            trajectories = [trajectories]
        check(len(trajectories) > 0, "generate: no prompt trajectories given")
        check(num_policies >= 1, f"generate: num_policies must be >= 1, got {num_policies}")
        return self.generate_from_condition(self.condition(trajectories), num_policies, seed, num_inference_steps)

    @torch.inference_mode()
    def generate_from_condition(self, cond: torch.Tensor, num_policies: int = 1, seed: int | None = None,
                                num_inference_steps: int | None = None) -> GenerationOutput:
        """`condition(...)` (N, C) -> num_policies actors per row; `generate` without the embedding pass,
        for a caller that already holds the condition (the serving engine's auto mode matches it first)."""
        check(num_policies >= 1, f"generate: num_policies must be >= 1, got {num_policies}")
        z = self.sample_latents(cond, num_policies, seed, num_inference_steps)
        params = self.autoencoder.latents_to_params(z).float().cpu().numpy()
        check(np.isfinite(params).all(), "generate: the generator produced non-finite parameters")
        return GenerationOutput(params.reshape(cond.shape[0], num_policies, -1), self.spec)


def read_generator_meta(folder) -> dict:
    """generator.json, checked: {"spec": PolicySpec, "obs_dim": int, "act_dim": int, "config": GeneratorConfig, ...}."""
    from .files import positive_int, read_json

    folder = Path(folder)
    meta_path = folder / "generator.json"
    check(meta_path.is_file(), f"{folder}: not a generator folder (no generator.json)")
    meta = read_json(meta_path, "generator.json")
    check(isinstance(meta, dict), f"{meta_path}: expected a JSON object, got {type(meta).__name__}")
    for k in ("format", "spec", "obs_dim", "act_dim", "config"):
        check(k in meta, f"{meta_path}: missing key {k!r}")
    check(meta["format"] == GENERATOR_FORMAT, f"{meta_path}: format {meta['format']!r}, expected {GENERATOR_FORMAT!r}")
    from .specs import MAX_DIM

    return {**meta, "spec": PolicySpec.from_dict(meta["spec"], f"{meta_path}: spec"),
            "obs_dim": positive_int(meta["obs_dim"], f"{meta_path}: 'obs_dim'", MAX_DIM),
            "act_dim": positive_int(meta["act_dim"], f"{meta_path}: 'act_dim'", MAX_DIM),
            "config": _config_from(meta["config"], meta_path)}


def _config_from(d, where: Path) -> GeneratorConfig:
    try:
        return GeneratorConfig.from_dict(d)
    except MaaError as e:
        raise MaaError(f"{where}: {e}") from None


def _load_weights(folder: Path, name: str) -> tuple[Path, dict]:
    """One model's tensors from `<name>.safetensors` or from the shards its index lists."""
    path, index = folder / f"{name}.safetensors", folder / f"{name}.safetensors.index.json"
    files = [path]
    if not path.is_file() and index.is_file():
        idx = read_json(index, "shard index")
        wmap = idx.get("weight_map") if isinstance(idx, dict) else None
        check(isinstance(wmap, dict) and wmap, f"{index}: not a shard index (expected a non-empty 'weight_map' object)")
        check(all(isinstance(f, str) and f == Path(f).name and f.endswith(".safetensors") for f in wmap.values()),
              f"{index}: weight_map must name .safetensors files inside the generator folder")
        files = [folder / f for f in sorted(set(wmap.values()))]
        path = index
    sd = {}
    for f in files:
        check(f.is_file(), f"{f}: missing")
        try:
            read_safetensors_header(f)  # dtypes, shapes and sizes checked before the file is loaded
        except MaaError as e:
            raise MaaError(f"{f}: not a readable safetensors file ({str(e).removeprefix(f'{f}: ')})") from None
        try:
            part = load_file(str(f))
        except (SafetensorError, OSError) as e:
            raise MaaError(f"{f}: not a readable safetensors file ({str(e).splitlines()[0]})") from None
        check(not set(part) & set(sd), f"{f}: tensors {sorted(set(part) & set(sd))[:3]} appear in two shards")
        sd.update(part)
    return path, sd
