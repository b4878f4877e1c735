"""maa train: dataset of checkpoints -> generator folder."""
from pathlib import Path


def add_parser(sub, name):
    p = sub.add_parser(name, help="train the autoencoder, behavior embedding and diffusion model",
                       description="Train a policy generator on a maa dataset (policy checkpoints + trajectories). "
                                   "Runs under torchrun for multi-GPU / multi-node (DDP).")
    p.add_argument("data", type=Path, help="maa dataset directory (with manifest.json)")
    p.add_argument("--out", type=Path, required=True, help="generator folder to write")
    p.add_argument("--preset", default=None, help="config preset: cpu (default), paper, tiny")
    p.add_argument("--config", type=Path, help="YAML file overriding preset fields")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override one field, e.g. autoencoder.token_dim=64")
    p.add_argument("--prompts", type=Path, help="prompt dataset whose trajectories also train the diffusion model, "
                                                "paired with their run's checkpoints (needs diffusion_pairing=run)")
    p.add_argument("--run-dir", type=Path, help="checkpoints and logs (default: OUT/../OUT.run)")
    p.add_argument("--devices", default="auto", help="devices per node (Lightning); under torchrun use nproc_per_node")
    p.add_argument("--num-nodes", type=int, default=1)
    p.add_argument("--accelerator", default="auto", help="auto, cpu, gpu")
    p.add_argument("--strategy", default="auto", help="auto, ddp, ...")
    p.add_argument("--no-resume", action="store_true", help="start over instead of resuming from the run directory")
    p.add_argument("--no-progress", action="store_true")
    return p


def run(args):
    from ..config import GeneratorConfig, apply_overrides, load_config
    from ..errors import MaaError
    from ..train import TrainerOptions, train_from_dataset
    from .common import out_dir, parse_sets

    out_dir(args.out)
    cfg = load_config(args.config, args.preset) if args.config else GeneratorConfig.preset_named(args.preset or "cpu")
    sets = parse_sets(args.set)
    if sets:
        try:
            cfg = apply_overrides(cfg, sets)
        except MaaError as e:
            raise MaaError(f"--set: {e}") from None
    devices = int(args.devices) if str(args.devices).isdigit() else args.devices
    run_dir = args.run_dir or args.out.with_name(args.out.name + ".run")
    opts = TrainerOptions(run_dir=run_dir, devices=devices, num_nodes=args.num_nodes, accelerator=args.accelerator,
                          strategy=args.strategy, progress=not args.no_progress, resume=not args.no_resume)
    if (args.out / "generator.json").exists():
        print(f"note: {args.out} holds a generator already: it is replaced when training finishes")
    train_from_dataset(args.data, args.out, cfg, opts, prompts_dir=args.prompts)
    print(f"generator written to {args.out} (logs and checkpoints in {run_dir})")
