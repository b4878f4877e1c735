"""Training of the three models with Lightning (progress bars, checkpoint/resume, CSV and
TensorBoard logs, and DDP: the same call runs under `torchrun` on many GPUs or nodes).

Stages, each resumable and skipped once finished (its weights sit in the run directory):
    1. parameter autoencoder      on the checkpoints' flat parameters
    2. behavior embedding         InfoNCE on the checkpoints' trajectories
    3. latent diffusion           on (latent of a checkpoint, condition of one of its trajectories), or with
                                  diffusion_pairing "run" of a trajectory of its run (see TrainingData)
The autoencoder and the embedding are frozen while the diffusion model trains (paper, Sec. 3).
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from .config import GeneratorConfig, OptimConfig
from .dataset import PolicyDataset
from .errors import MaaError, check
from .models.behavior import min_prompt_length, prompt_windows
from .pipeline import PolicyGenerator, default_device, make_scheduler
from .trajectory import Trajectory



PAIRINGS = ("own", "run")  # GeneratorConfig.diffusion_pairing


@dataclass
class TrainingData:
    params: torch.Tensor  # (N, P) flat checkpoint parameters
    h_in: torch.Tensor  # (M, S, n, obs+act) prompt windows of every trajectory
    v_in: torch.Tensor  # (M, S, m, obs)
    traj_record: torch.Tensor  # (M,) index of the checkpoint that produced trajectory j; -1: a prompt's trajectory
    states: torch.Tensor  # all states, for the embedding's normalizer
    actions: torch.Tensor
    pairs: torch.Tensor | None = None  # (K, 2) diffusion pairs (trajectory j, checkpoint i); None: each with its own

    def diffusion_pairs(self) -> torch.Tensor:
        if self.pairs is not None:
            return self.pairs
        return torch.stack([torch.arange(len(self.traj_record)), self.traj_record], 1)

    @classmethod
    def from_records(cls, params: np.ndarray, trajectories: list[tuple[int, Trajectory]], cfg: GeneratorConfig,
                     obs_dim: int, act_dim: int, targets: list[list[int]] | None = None) -> "TrainingData":
        """`targets[k]`: the checkpoints trajectory k is paired with for the diffusion model (default: its own)."""
        check(len(params) > 0, "training data: no checkpoints")
        check(np.isfinite(params).all(), "training data: parameters contain NaN or Inf")
        check(targets is None or len(targets) == len(trajectories), "training data: one target list per trajectory")
        keep = [k for k, (_, t) in enumerate(trajectories) if len(t) >= min_prompt_length(cfg.embedding)]
        check(keep, f"training data: no trajectory is long enough (need {min_prompt_length(cfg.embedding)} steps)")
        usable = [trajectories[k] for k in keep]
        wins = []
        for i, t in usable:
            t.validate(obs_dim, act_dim, where=f"trajectory of checkpoint {i}")
            wins.append(prompt_windows(t, cfg.embedding))
        pairs = None
        if targets is None:
            check(all(i >= 0 for i, _ in usable), "training data: a trajectory without its checkpoint (-1) needs targets")
        else:
            pairs = torch.as_tensor([(j, i) for j, k in enumerate(keep) for i in targets[k]], dtype=torch.long).reshape(-1, 2)
            check(len(pairs) > 0, "training data: no (trajectory, checkpoint) pairs")
            check(bool(((pairs[:, 1] >= 0) & (pairs[:, 1] < len(params))).all()), "training data: pair target out of range")
        return cls(torch.as_tensor(params, dtype=torch.float32),
                   torch.as_tensor(np.stack([w[0] for w in wins])), torch.as_tensor(np.stack([w[1] for w in wins])),
                   torch.as_tensor([i for i, _ in usable]),
                   torch.as_tensor(np.concatenate([t.states for _, t in usable])),
                   torch.as_tensor(np.concatenate([t.actions for _, t in usable])), pairs)

    @classmethod
    def from_dataset(cls, ds: PolicyDataset, cfg: GeneratorConfig, prompts: PolicyDataset | None = None,
                     exclude_runs=()) -> "TrainingData":
        """`prompts` (pairing "run" only): records of sub-optimal policies; each of their trajectories is paired
        with the checkpoints of its run (prompts of runs without checkpoints, or in `exclude_runs`, are skipped:
        keep evaluation prompts out of training this way)."""
        check(cfg.diffusion_pairing in PAIRINGS,
              f"diffusion_pairing {cfg.diffusion_pairing!r}: choose from {', '.join(PAIRINGS)}")
        params = ds.params()
        trajs = [(i, t) for i, rec in enumerate(ds) for t in rec.trajectories]
        if cfg.diffusion_pairing == "own":
            check(prompts is None, "training on prompt trajectories needs diffusion_pairing 'run'")
            return cls.from_records(params, trajs, cfg, ds.traj_obs_dim, ds.spec.act_dim)
        meta = ds.meta()
        # a checkpoint of a record without a run stays paired with itself
        targets = [tg or [i] for (i, _), tg in zip(trajs, run_targets(meta, [meta[i] for i, _ in trajs]))]
        if prompts is not None:
            check(prompts.traj_obs_dim == ds.traj_obs_dim and prompts.spec.act_dim == ds.spec.act_dim,
                  f"{prompts.root}: prompt trajectories do not match the checkpoints' layout")
            pmeta, skip = prompts.meta(), set(exclude_runs)
            for k, tg in enumerate(run_targets(meta, pmeta)):
                if tg and (pmeta[k].get("source") or {}).get("run") not in skip:
                    for t in prompts[k].trajectories:
                        trajs.append((-1, t))
                        targets.append(tg)
        return cls.from_records(params, trajs, cfg, ds.traj_obs_dim, ds.spec.act_dim, targets)


def run_targets(checkpoints: list[dict], records: list[dict]) -> list[list[int]]:
    """Pairing "run": for each record's metadata, the indices of `checkpoints` (metadata too) from the same run
    (source["run"]) saved at the same step or later. Empty for a record without a run or whose run has none."""
    by_run: dict[str, list[tuple[float, int]]] = {}
    for i, m in enumerate(checkpoints):
        s = m.get("source") or {}
        if s.get("run"):
            by_run.setdefault(str(s["run"]), []).append((float(s.get("step", 0)), i))
    out = []
    for m in records:
        s = m.get("source") or {}
        step = float(s.get("step", 0))
        out.append([i for st, i in by_run.get(str(s.get("run", "")), []) if st >= step] if s.get("run") else [])
    return out


def _optimizer(params, oc: OptimConfig):
    opt = torch.optim.AdamW(params, lr=oc.lr, weight_decay=oc.weight_decay, betas=tuple(oc.betas))

    def lr_lambda(step):  # linear warmup, then cosine to 5% of the peak
        if step < oc.warmup_steps:
            return (step + 1) / max(oc.warmup_steps, 1)
        p = min(1.0, (step - oc.warmup_steps) / max(oc.steps - oc.warmup_steps, 1))
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * p))

    return {"optimizer": opt, "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda), "interval": "step"}}


def _tasks():
    """LightningModules are defined lazily so importing maa_core does not import Lightning."""
    import warnings

    import lightning as L

    # Lightning's start-up chatter (accelerator inventory, advertising) buries our progress output;
    # distributed initialisation (lightning.fabric) still logs.
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*treespec.*")
    warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
    # RandomBatches is sampled in-process (num_workers=0) and draws fresh batches on resume by design
    warnings.filterwarnings("ignore", message=".*IterableDataset. has .__len__. defined.*")
    warnings.filterwarnings("ignore", message=".*dataloader is not resumable.*")

    class AutoencoderTask(L.LightningModule):
        def __init__(self, ae, oc: OptimConfig):
            super().__init__()
            self.ae, self.oc = ae, oc

        def training_step(self, batch, _):
            loss = self.ae(batch[0])
            self.log("ae/loss", loss, prog_bar=True)
            return loss

        def configure_optimizers(self):
            return _optimizer(self.ae.parameters(), self.oc)

    class EmbeddingTask(L.LightningModule):
        def __init__(self, emb, oc: OptimConfig):
            super().__init__()
            self.emb, self.oc = emb, oc

        def training_step(self, batch, _):
            h_in, v_in = batch  # (B, S, ...): every segment is its own contrastive pair
            h, v = self.emb.embed_pair(h_in.flatten(0, 1), v_in.flatten(0, 1))
            loss, acc = self.emb.info_nce(h, v)
            self.log_dict({"emb/loss": loss, "emb/acc": acc}, prog_bar=True)
            return loss

        def configure_optimizers(self):
            return _optimizer(self.emb.parameters(), self.oc)

    class DiffusionTask(L.LightningModule):
        def __init__(self, unet, cfg: GeneratorConfig, cond_std: torch.Tensor):
            super().__init__()
            from diffusers.training_utils import EMAModel

            self.unet, self.cfg = unet, cfg
            self.register_buffer("cond_std", cond_std, persistent=False)
            self.noise_scheduler = make_scheduler(cfg, "ddpm")
            self.ema = EMAModel(unet.parameters(), decay=cfg.diffusion.ema_decay, use_ema_warmup=True)

        def training_step(self, batch, _):
            z0, cond = batch
            if self.cfg.diffusion.cond_noise > 0:
                cond = cond + self.cfg.diffusion.cond_noise * self.cond_std * torch.randn_like(cond)
            noise = torch.randn_like(z0)
            t = torch.randint(0, self.cfg.diffusion.num_train_timesteps, (len(z0),), device=z0.device)
            zt = self.noise_scheduler.add_noise(z0, noise, t)
            pred = self.unet(zt, t, cond)
            target = {"epsilon": noise, "sample": z0}.get(self.cfg.diffusion.prediction_type)
            if target is None:
                target = self.noise_scheduler.get_velocity(z0, noise, t)
            loss = nn.functional.mse_loss(pred, target)
            self.log("diff/loss", loss, prog_bar=True)
            return loss

        def on_train_batch_end(self, *_):
            self.ema.to(self.device)
            self.ema.step(self.unet.parameters())

        def on_save_checkpoint(self, ckpt):
            ckpt["ema"] = self.ema.state_dict()

        def on_load_checkpoint(self, ckpt):
            if "ema" in ckpt:
                self.ema.load_state_dict(ckpt["ema"])

        def configure_optimizers(self):
            return _optimizer(self.unet.parameters(), self.cfg.train_diffusion)

    return L, AutoencoderTask, EmbeddingTask, DiffusionTask


@dataclass
class TrainerOptions:
    run_dir: Path
    devices: int | str = "auto"
    num_nodes: int = 1
    accelerator: str = "auto"
    strategy: str = "auto"
    progress: bool = True
    resume: bool = True
    checkpoint_every: int = 500  # steps between resumable Lightning checkpoints


class RandomBatches(torch.utils.data.IterableDataset):
    """Batches sampled with replacement, indexed in one go: small in-memory datasets would
    otherwise pay per-sample collation and Lightning's per-epoch overhead. Under DDP each rank
    draws its own stream (seed + rank)."""

    def __init__(self, tensors, batch_size: int, steps: int, seed: int):
        self.tensors, self.batch_size, self.steps, self.seed = tensors, batch_size, steps, seed

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed + int(os.environ.get("RANK", "0")))
        n = len(self.tensors[0])
        for _ in range(self.steps):
            idx = torch.randint(0, n, (self.batch_size,), generator=g)
            yield tuple(t[idx] for t in self.tensors)

    def __len__(self) -> int:  # lets Lightning show "step/total" instead of an open-ended epoch
        return self.steps


def _fit(L, task, dataset: TensorDataset, oc: OptimConfig, stage: str, opts: TrainerOptions, seed: int = 0):
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    stage_dir = opts.run_dir / stage
    loader = DataLoader(RandomBatches(dataset.tensors, oc.batch_size, oc.steps, seed), batch_size=None)
    trainer = L.Trainer(
        max_steps=oc.steps, accelerator=opts.accelerator, devices=opts.devices, num_nodes=opts.num_nodes,
        strategy=opts.strategy, default_root_dir=str(stage_dir),
        logger=[CSVLogger(str(opts.run_dir / "logs"), name=stage, version=0),
                TensorBoardLogger(str(opts.run_dir / "logs"), name=stage, version=0)],
        callbacks=[ModelCheckpoint(dirpath=str(stage_dir), save_last=True, every_n_train_steps=opts.checkpoint_every,
                                   save_top_k=0)],
        enable_progress_bar=opts.progress, enable_model_summary=False, log_every_n_steps=10,
        max_epochs=1, num_sanity_val_steps=0,  # one epoch = `steps` batches (RandomBatches)
    )
    last = stage_dir / "last.ckpt"
    trainer.fit(task, loader, ckpt_path=str(last) if opts.resume and last.exists() else None)
    return trainer


def train_autoencoder(ae, params: torch.Tensor, cfg: GeneratorConfig, opts: TrainerOptions) -> None:
    L, AutoencoderTask, _, _ = _tasks()
    ae.fit_param_norm(params)
    _fit(L, AutoencoderTask(ae.train(), cfg.train_autoencoder), TensorDataset(params), cfg.train_autoencoder,
         "autoencoder", opts, cfg.seed)
    ae.cpu().eval()
    with torch.no_grad():
        ae.latent_norm.fit(ae.encode(ae.param_norm(params)))


def train_embedding(emb, data: TrainingData, cfg: GeneratorConfig, opts: TrainerOptions) -> None:
    L, _, EmbeddingTask, _ = _tasks()
    emb.fit_normalizers(data.states, data.actions)
    _fit(L, EmbeddingTask(emb.train(), cfg.train_embedding), TensorDataset(data.h_in, data.v_in), cfg.train_embedding,
         "embedding", opts, cfg.seed)
    emb.cpu().eval()


def train_diffusion(unet, latents: torch.Tensor, cond: torch.Tensor, cfg: GeneratorConfig, opts: TrainerOptions) -> None:
    """latents (M, T, D) standardized, cond (M, C): one row per (checkpoint, trajectory) pair."""
    L, _, _, DiffusionTask = _tasks()
    task = DiffusionTask(unet.train(), cfg, cond.std(0, unbiased=False))
    _fit(L, task, TensorDataset(latents, cond), cfg.train_diffusion, "diffusion", opts, cfg.seed)
    task.ema.to("cpu")
    task.ema.copy_to(unet.parameters())  # generate with the EMA weights
    unet.cpu().eval()


def constant_groups(spec, params: torch.Tensor) -> tuple[str, ...]:
    """Token groups whose values are bit-identical in every checkpoint (e.g. a frozen shared layer)."""
    if len(params) < 2:
        return ()
    return tuple(g.name for g in spec.token_groups()
                 if bool((params[:, g.start:g.stop] == params[:1, g.start:g.stop]).all()))


def _inputs_fingerprint(data: TrainingData, spec, cfg: GeneratorConfig) -> str:
    """What a run directory's checkpoints were trained on: the data's tensors, the spec and the config."""
    import hashlib
    import json

    h = hashlib.sha256(json.dumps([spec.name, dataclasses.asdict(cfg)], sort_keys=True, default=str).encode())
    for t in (data.params, data.h_in, data.v_in, data.traj_record, data.diffusion_pairs()):
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _claim_run_dir(opts: TrainerOptions, fingerprint: str) -> None:
    """Resuming continues only the run these inputs started: a run directory left by other data or
    settings would otherwise load its half-trained models silently. Rank 0 writes the claim."""
    import json

    from .files import read_json

    claim = opts.run_dir / "inputs.json"
    if opts.resume and claim.exists():
        old = read_json(claim, "training run claim")
        theirs = old.get("fingerprint") if isinstance(old, dict) else None
        check(theirs == fingerprint,
              f"{opts.run_dir}: holds a training run of other data or settings (inputs {theirs}, now {fingerprint}); "
              f"start over with --no-resume or give another --run-dir")
    if _is_rank0():
        tmp = claim.with_name(".inputs.json.tmp")
        tmp.write_text(json.dumps({"fingerprint": fingerprint}))
        os.replace(tmp, claim)


def train_generator(data: TrainingData, spec, obs_dim: int, act_dim: int, cfg: GeneratorConfig,
                    opts: TrainerOptions, out_dir: Path | None = None) -> PolicyGenerator:
    """Trains all three models; returns the generator (saved to out_dir when given, on rank 0)."""
    import lightning as L

    L.seed_everything(cfg.seed, workers=True, verbose=False)
    opts.run_dir.mkdir(parents=True, exist_ok=True)
    const = constant_groups(spec, data.params)
    if const != tuple(cfg.autoencoder.constant_groups):
        if const and opts.progress:
            print(f"constant token groups (shared by all {len(data.params)} checkpoints, not coded): {', '.join(const)}")
        cfg = dataclasses.replace(cfg, autoencoder=dataclasses.replace(cfg.autoencoder, constant_groups=const))
    _claim_run_dir(opts, _inputs_fingerprint(data, spec, cfg))
    gen = PolicyGenerator(spec, obs_dim, act_dim, cfg, device="cpu")
    ae, emb, unet = gen.autoencoder, gen.embedding, gen.unet

    def stage(name, module, train):
        done = opts.run_dir / f"{name}.done.pt"
        if opts.resume and done.exists():
            module.load_state_dict(torch.load(done, weights_only=True))
        else:
            train()
            _save_rank0(module.state_dict(), done)
        module.cpu().eval()

    stage("autoencoder", ae, lambda: train_autoencoder(ae, data.params, cfg, opts))
    stage("embedding", emb, lambda: train_embedding(emb, data, cfg, opts))
    with torch.no_grad():  # both frozen from here on (paper, Sec. 3)
        pairs = data.diffusion_pairs()  # (trajectory, checkpoint) rows; cfg.diffusion_pairing
        latents = ae.params_to_latents(data.params)[pairs[:, 1]]
        cond = emb.condition(data.h_in, data.v_in)[pairs[:, 0]]
    stage("diffusion", unet, lambda: train_diffusion(unet, latents, cond, cfg, opts))
    if out_dir is not None and _is_rank0():
        gen.save_pretrained(out_dir)
    return gen.to(default_device())


def _is_rank0() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _save_rank0(sd: dict, path: Path) -> None:
    if _is_rank0():
        tmp = path.with_suffix(".tmp")
        torch.save({k: v.detach().cpu() for k, v in sd.items()}, tmp)
        os.replace(tmp, path)


def train_from_dataset(dataset_dir, out_dir, cfg: GeneratorConfig, opts: TrainerOptions,
                       prompts_dir=None, exclude_runs=()) -> PolicyGenerator:
    """`prompts_dir`, `exclude_runs`: see TrainingData.from_dataset (diffusion_pairing "run")."""
    ds = PolicyDataset(dataset_dir)
    if len(ds) == 0:
        raise MaaError(f"{dataset_dir}: dataset is empty")
    data = TrainingData.from_dataset(ds, cfg, PolicyDataset(prompts_dir) if prompts_dir else None, exclude_runs)
    return train_generator(data, ds.spec, ds.traj_obs_dim, ds.spec.act_dim, cfg, opts, Path(out_dir))
