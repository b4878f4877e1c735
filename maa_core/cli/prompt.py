"""maa prompt: a bag or a controller recording -> prompt .npz file(s) (what `maa generate --prompt` reads)."""
from pathlib import Path


def add_parser(sub, name):
    p = sub.add_parser(name, help="write the prompt trajectories of a bag / recording as .npz files",
                       description="Prompts from a ROS 2 bag or a Go2 controller recording (.mcap), as maa generate "
                                   "--bag reads them; with --window, step streams are cut into windows.")
    p.add_argument("--bag", type=Path, required=True, help="ROS 2 bag folder, or one .mcap file (e.g. a recording)")
    add_bag_options(p)
    p.add_argument("--limit", type=int, default=None, help="write at most this many prompts (the first ones)")
    p.add_argument("--out", type=Path, required=True,
                   help="FILE.npz for one prompt, else a folder that gets <prompt id>.npz per prompt")
    p.add_argument("--force", action="store_true", help="overwrite files that exist already")
    return p


def add_bag_options(p) -> None:
    """--topic/--window/--stride: shared with maa generate --bag."""
    p.add_argument("--topic", help="bag topic to read (default: every Float32MultiArray prompt topic in the bag)")
    p.add_argument("--window", type=int, default=None,
                   help="cut each topic's step stream (e.g. a recording's /maa/steps) into windows of this many steps")
    p.add_argument("--stride", type=int, default=None, help="steps between window starts (default: --window)")


def read_bag_prompts(args):
    from ..errors import check
    from ..prompts import read_prompts_from_bag

    check(args.window is None or args.window >= 1, f"--window must be >= 1, got {args.window}")
    check(args.stride is None or (args.window is not None and args.stride >= 1), "--stride needs --window and must be >= 1")
    return read_prompts_from_bag(args.bag, topic=args.topic, window=args.window, stride=args.stride)


def run(args):
    from ..errors import MaaError, check
    from ..trajectory import save_trajectory
    from .common import refuse_overwrite

    check(args.limit is None or args.limit >= 1, f"--limit must be >= 1, got {args.limit}")
    items = read_bag_prompts(args)[: args.limit]
    if not items:
        raise MaaError(f"{args.bag}: no prompt trajectories (fewer steps than --window?)")
    if args.out.suffix == ".npz":
        check(len(items) == 1, f"--out {args.out}: one file, but the bag holds {len(items)} prompts "
                               "(give a folder, or --limit 1)")
        paths = [args.out]
    else:
        check(not args.out.is_file(), f"--out {args.out}: is a file; give a folder or FILE.npz")
        paths = [args.out / f"{pid}.npz" for pid, _ in items]
    refuse_overwrite(paths, args.force)
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    for path, (pid, traj) in zip(paths, items):
        save_trajectory(path, traj)
        print(f"{pid}: {len(traj)} steps, state {traj.states.shape[1]}, action {traj.actions.shape[1]} -> {path}")
