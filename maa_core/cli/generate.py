"""maa generate: prompt trajectories -> actor files."""
from pathlib import Path


def add_parser(sub, name):
    p = sub.add_parser(name, help="generate actors from prompt trajectories",
                       description="Generate K actors per prompt. Prompts come from .npz files, a maa dataset, or a ROS 2 bag.")
    p.add_argument("generator", type=Path, help="generator folder (from maa train)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--prompt", type=Path, nargs="+", help=".npz file(s) with states, actions[, success]")
    src.add_argument("--dataset", type=Path, help="maa dataset directory: its trajectories are the prompts")
    src.add_argument("--bag", type=Path, help="ROS 2 bag (sqlite3 or mcap) holding prompt trajectories")
    p.add_argument("--topic", help="bag topic to read (default: every Float32MultiArray prompt topic in the bag)")
    p.add_argument("--limit", type=int, default=None, help="use at most this many prompts")
    p.add_argument("-k", "--num-policies", type=int, default=1, help="actors per prompt")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument("--out", type=Path, required=True, help="directory for the actor .safetensors files")
    p.add_argument("--force", action="store_true", help="overwrite actor files that exist already in --out")
    return p


def load_prompts(args) -> list[tuple[str, object]]:
    from ..errors import MaaError

    if args.prompt:
        from ..trajectory import load_trajectory
        items = [(p.stem, load_trajectory(p)) for p in args.prompt]
    elif args.dataset:
        from ..dataset import PolicyDataset
        ds = PolicyDataset(args.dataset)
        items = [(f"{r.key}#{j}", t) for r in ds for j, t in enumerate(r.trajectories)]
    else:
        from ..prompts import read_prompts_from_bag
        items = read_prompts_from_bag(args.bag, topic=args.topic)
    if args.limit is not None:
        items = items[: args.limit]
    if not items:
        raise MaaError("no prompt trajectories found")
    return items


def run(args):
    import time
    import uuid

    from ..actor_io import ActorBlob
    from ..errors import check
    from ..pipeline import PolicyGenerator
    from .common import device, out_dir, refuse_overwrite, table

    check(args.num_policies >= 1, f"--num-policies must be >= 1, got {args.num_policies}")
    check(args.limit is None or args.limit >= 1, f"--limit must be >= 1, got {args.limit}")
    out_dir(args.out)
    gen = PolicyGenerator.from_pretrained(args.generator, device=device(args.device))
    items = load_prompts(args)
    # every name is known before anything is generated: refuse to overwrite before doing the work
    names = {}
    for pid, _ in items:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in pid)
        for k in range(args.num_policies):
            names[(pid, k)] = args.out / f"{safe}-{k}.safetensors"
    check(len(set(names.values())) == len(names), "two prompts have the same name: their actor files would collide")
    refuse_overwrite(names.values(), args.force)
    t0 = time.perf_counter()
    out = gen.generate([t for _, t in items], num_policies=args.num_policies, seed=args.seed)
    dt = time.perf_counter() - t0
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (pid, _) in enumerate(items):
        for k in range(args.num_policies):
            gid = uuid.uuid4().hex[:12]
            blob = ActorBlob(gen.spec, out.params[i, k], generation_id=gid, prompt_id=pid, extra={"seed": args.seed, "k": k})
            path = blob.save(names[(pid, k)])
            rows.append({"prompt": pid, "k": k, "generation_id": gid, "file": path.name})
    table(rows[:20])
    if len(rows) > 20:
        print(f"... {len(rows) - 20} more")
    print(f"{len(rows)} actors ({gen.spec.name}) in {dt * 1000:.0f} ms -> {args.out}")
