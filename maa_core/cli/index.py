"""maa index: the retrieval index of a generator folder (serving/retrieval.py)."""
from pathlib import Path


def add_parser(sub, name):
    p = sub.add_parser(name, help="build a generator's retrieval index from its training checkpoints",
                       description="Embed every training checkpoint's trajectories with the generator's own behavior "
                                   "embedding and write GENERATOR/retrieval.safetensors (embeddings, parameters, keys, "
                                   "threshold), which `maa generate --mode retrieve|auto` and the generator node's "
                                   "`mode` parameter use.")
    p.add_argument("generator", type=Path, help="generator folder (from maa train)")
    p.add_argument("--dataset", type=Path, required=True, help="maa dataset directory of the generator's training checkpoints")
    p.add_argument("--dtype", choices=("float32", "float16"), default="float32",
                   help="storage of the embeddings and parameters (float16: half the size, values rounded)")
    p.add_argument("--threshold", type=float, default=None,
                   help="auto mode: retrieve when the cosine distance to the nearest checkpoint is at most this "
                        "(default: half the median distance between neighbouring checkpoints)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument("--force", action="store_true", help="replace an index the folder has already")
    return p


def run(args):
    import math

    from ..dataset import PolicyDataset
    from ..errors import check
    from ..pipeline import PolicyGenerator
    from ..serving import retrieval
    from .common import device, refuse_overwrite

    check(args.threshold is None or (math.isfinite(args.threshold) and 0 <= args.threshold <= 2),
          f"--threshold {args.threshold}: expected a cosine distance in [0, 2]")
    refuse_overwrite([args.generator / retrieval.INDEX_FILE], args.force)  # before the work
    gen = PolicyGenerator.from_pretrained(args.generator, device=device(args.device))
    index = retrieval.build_index(gen, PolicyDataset(args.dataset))
    if args.threshold is not None:
        index.threshold, index.threshold_rule = float(args.threshold), "set with maa index --threshold"
    path = retrieval.save_index(index, gen, args.generator, args.dtype, force=args.force)
    print(f"{len(index)} checkpoints, {len(index.cond)} trajectories, threshold {index.threshold:.4g}, "
          f"{args.dtype} -> {path} ({path.stat().st_size / 1e6:.2f} MB)")
