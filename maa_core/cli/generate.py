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
    from .prompt import add_bag_options
    add_bag_options(p)  # --topic, --window, --stride (as maa prompt)
    p.add_argument("--limit", type=int, default=None, help="use at most this many prompts")
    p.add_argument("-k", "--num-policies", type=int, default=1, help="actors per prompt")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument("--mode", choices=("generate", "retrieve", "auto"), default="generate",
                   help="generate: diffusion samples; retrieve: the training checkpoint nearest to each prompt in the "
                        "generator's embedding (needs the folder's index, `maa index`); auto: retrieve when that "
                        "checkpoint is within the index's threshold, else generate. A retrieved prompt gets one actor")
    p.add_argument("--threshold", type=float, default=None,
                   help="--mode auto: cosine distance up to which a prompt retrieves (default: the index's)")
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
        from .prompt import read_bag_prompts
        items = read_bag_prompts(args)
    if args.limit is not None:
        items = items[: args.limit]
    if not items:
        raise MaaError("no prompt trajectories found")
    return items


def run(args):
    import time
    import uuid

    from ..actor_io import ActorBlob
    from ..errors import MaaError, check
    from ..pipeline import PolicyGenerator
    from .common import device, out_dir, refuse_overwrite, table

    check(args.num_policies >= 1, f"--num-policies must be >= 1, got {args.num_policies}")
    check(args.limit is None or args.limit >= 1, f"--limit must be >= 1, got {args.limit}")
    check(args.mode != "retrieve" or args.num_policies == 1,
          f"--num-policies {args.num_policies}: --mode retrieve gives one actor per prompt (its nearest checkpoint)")
    check(args.threshold is None or args.mode == "auto", "--threshold applies to --mode auto only")
    check(args.threshold is None or 0 <= args.threshold <= 2, f"--threshold {args.threshold}: expected a cosine distance in [0, 2]")
    out_dir(args.out)
    gen = PolicyGenerator.from_pretrained(args.generator, device=device(args.device))
    index = None
    if args.mode != "generate":
        from ..serving.retrieval import load_index
        try:
            index = load_index(args.generator, gen)
        except MaaError as e:
            raise MaaError(f"--mode {args.mode}: {e}") from None
    items = load_prompts(args)
    # where each prompt's actors come from: {"source": ..., nearest checkpoint}
    sources = [{"source": "generated"}] * len(items)
    retrieved = {}
    if index is not None:
        matches = index.match(gen, [t for _, t in items])
        sources = []
        for i, m in enumerate(matches):
            near = {"nearest_key": m.key, "nearest_distance": round(m.distance, 6)}
            if index.retrieves(args.mode, m, args.threshold):
                retrieved[i] = m
            sources.append({"source": "retrieved" if i in retrieved else "generated", **near})
    # every name is known before anything is generated: refuse to overwrite before doing the work
    names = {}
    for i, (pid, _) in enumerate(items):
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in pid)
        for k in range(1 if i in retrieved else args.num_policies):
            names[(pid, k)] = args.out / f"{safe}-{k}.safetensors"
    check(len(set(names.values())) == len(names), "two prompts have the same name: their actor files would collide")
    refuse_overwrite(names.values(), args.force)
    t0 = time.perf_counter()
    todo = [i for i in range(len(items)) if i not in retrieved]
    params = {i: index.params[m.checkpoint][None] for i, m in retrieved.items()}
    if todo:
        out = gen.generate([items[i][1] for i in todo], num_policies=args.num_policies, seed=args.seed)
        params.update(zip(todo, out.params))
    dt = time.perf_counter() - t0
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (pid, _) in enumerate(items):
        for k in range(len(params[i])):
            gid = uuid.uuid4().hex[:12]
            extra = {"seed": args.seed, "k": k, **sources[i]}
            blob = ActorBlob(gen.spec, params[i][k], generation_id=gid, prompt_id=pid, extra=extra)
            path = blob.save(names[(pid, k)])
            row = {"prompt": pid, "k": k, "generation_id": gid, "file": path.name}
            if index is not None:
                row.update(source=sources[i]["source"], nearest=sources[i]["nearest_key"],
                           distance=sources[i]["nearest_distance"])
            rows.append(row)
    table(rows[:20])
    if len(rows) > 20:
        print(f"... {len(rows) - 20} more")
    done = f"{len(rows)} actors ({gen.spec.name}"
    if index is not None:
        t = index.threshold if args.threshold is None else args.threshold
        done += f"; {len(retrieved)} of {len(items)} prompts retrieved" + (f", threshold {t:.4g}" if args.mode == "auto" else "")
    print(f"{done}) in {dt * 1000:.0f} ms -> {args.out}")
