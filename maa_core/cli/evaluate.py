"""maa eval: generate policies from prompts and score them in the paper's protocol (+ baselines)."""
from pathlib import Path


def add_parser(sub, name):
    p = sub.add_parser(name, help="evaluate a generator: success of generated policies, baselines, novelty",
                       description="Generate K policies per prompt and evaluate each in N seeded random initial "
                                   "configurations (paper protocol). Writes results.json, report.md and figures.")
    p.add_argument("generator", type=Path, help="generator folder (from maa train)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", type=Path, help="dataset root (prompts/ + checkpoints/) or one maa dataset dir")
    src.add_argument("--prompt", type=Path, nargs="+", help=".npz prompt file(s); needs --task")
    src.add_argument("--bag", type=Path, help="ROS 2 bag with prompt trajectories; needs --task")
    p.add_argument("--task", help="task of --prompt/--bag prompts (e.g. window-open)")
    p.add_argument("--topic", help="bag topic (default: every prompt topic)")
    p.add_argument("--tasks", help="comma-separated tasks to take from --dataset (default: all)")
    p.add_argument("--prompts-per-task", type=int, default=None, help="at most this many prompts per task")
    p.add_argument("--checkpoints", type=Path, help="training checkpoints (retrieval baseline, novelty); "
                                                   "default: checkpoints/ beside the --dataset prompts")
    p.add_argument("-k", "--num-policies", type=int, default=1, help="generated policies per prompt")
    p.add_argument("--configs", type=int, default=5, help="random initial configurations per policy (paper: 5)")
    p.add_argument("--episodes", type=int, default=1, help="episodes per configuration")
    p.add_argument("--max-steps", type=int, default=500, help="episode length")
    p.add_argument("--stop-after-success", type=int, default=None, metavar="N",
                   help="end an episode N steps after its first success (same success rates, less time; "
                        "returns then cover the episode so far)")
    p.add_argument("--robot", default=None, help="Robosuite tasks: the robot the policies run on (default Sawyer, "
                                                 "the paper's evaluation robot; Panda is the training robot)")
    p.add_argument("--seed", type=int, default=0, help="generation seed")
    p.add_argument("--eval-seed", type=int, default=0, help="seed of the evaluation configurations")
    p.add_argument("--workers", type=int, default=2, help="evaluation worker processes")
    p.add_argument("--action-noise", type=float, default=0.0, help="also evaluate prompts with N(0, s^2) action noise")
    p.add_argument("--baselines", default="", help="comma-separated: retrieval, noised-retrieval, average, bc, bc-task")
    p.add_argument("--noise-scale", type=float, default=None,
                   help="noised-retrieval: noise std as a fraction of the checkpoint's per-layer RMS (0.05 = 5%%); "
                        "default: per prompt, the generator's own distance to its nearest training checkpoint")
    p.add_argument("--average-k", type=int, default=None, help="average: nearest checkpoints averaged (default: 5)")
    p.add_argument("--bc-steps", type=int, default=None, help="gradient steps per behavior-cloned policy")
    p.add_argument("--compare", nargs="+", default=[], metavar="NAME=DIR", help="other generator folders to evaluate")
    p.add_argument("--no-novelty", action="store_true", help="skip the parameter-similarity check")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--force", action="store_true", help="overwrite the results of an earlier run in --out")
    return p


def _prompts(args):
    from ..errors import check
    from ..evaluation import sources

    check(args.prompts_per_task is None or args.prompts_per_task >= 1,
          f"--prompts-per-task must be >= 1, got {args.prompts_per_task}")
    if args.dataset:
        check(args.task is None, "--task is for --prompt/--bag; use --tasks to pick tasks from a dataset")
        pdir, cdir = sources.dataset_dirs(args.dataset)
        tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
        return sources.from_dataset(pdir, tasks, args.prompts_per_task), cdir
    items = (sources.from_files(args.prompt, args.task) if args.prompt else sources.from_bag(args.bag, args.task, args.topic))
    if args.prompts_per_task is not None:
        items = items[: args.prompts_per_task]
    return items, None


def _baseline_options(args, baselines) -> tuple[float | None, int]:
    """Checked before anything is loaded: -> (noise scale or None, average k)."""
    import math

    from ..errors import check
    from ..evaluation.study import BASELINES, StudyConfig

    for b in baselines:
        check(b in BASELINES, f"--baselines: unknown baseline {b!r} (choose from {', '.join(BASELINES)})")
    check(args.noise_scale is None or "noised-retrieval" in baselines, "--noise-scale is for --baselines noised-retrieval")
    check(args.average_k is None or "average" in baselines, "--average-k is for --baselines average")
    check(args.noise_scale is None or (math.isfinite(args.noise_scale) and args.noise_scale >= 0),
          f"--noise-scale must be a number >= 0, got {args.noise_scale}")
    check(args.average_k is None or args.average_k >= 1, f"--average-k must be >= 1, got {args.average_k}")
    return args.noise_scale, StudyConfig().average_k if args.average_k is None else args.average_k


def run(args):
    from dataclasses import replace

    from ..dataset import PolicyDataset
    from ..errors import check
    from ..evaluation.baselines import BCConfig, NoiseConfig
    from ..evaluation.report import method_rows, write
    from ..evaluation.runner import EvalSettings, RobosuiteSuite, suite_for
    from ..evaluation.study import StudyConfig, run_study
    from ..pipeline import PolicyGenerator
    from .common import device, out_dir, refuse_overwrite, table

    baselines = tuple(b.strip() for b in args.baselines.split(",") if b.strip())
    noise, average_k = _baseline_options(args, baselines)
    out_dir(args.out)
    # refused before the study runs: an evaluation can take hours, and its results are what it leaves
    refuse_overwrite([args.out / "results.json", args.out / "report.md"], args.force)
    dev = device(args.device)
    gen = PolicyGenerator.from_pretrained(args.generator, device=dev)
    others = {}
    for item in args.compare:
        check("=" in item, f"--compare {item!r}: expected NAME=DIR")
        n, d = item.split("=", 1)
        others[n] = PolicyGenerator.from_pretrained(d, device=dev)
    prompts, cdir = _prompts(args)
    cdir = args.checkpoints or cdir
    checkpoints = PolicyDataset(cdir) if cdir is not None and (baselines or not args.no_novelty) else None
    bc = BCConfig() if args.bc_steps is None else replace(BCConfig(), steps=args.bc_steps)
    check(bc.steps >= 1, f"--bc-steps must be >= 1, got {bc.steps}")
    cfg = StudyConfig(num_policies=args.num_policies, seed=args.seed, action_noise=args.action_noise,
                      baselines=baselines, novelty=not args.no_novelty, bc=bc, noise=NoiseConfig(noise),
                      average_k=average_k,
                      eval=EvalSettings(n_configs=args.configs, episodes_per_config=args.episodes, seed=args.eval_seed,
                                        workers=args.workers, max_episode_steps=args.max_steps,
                                        stop_after_success=args.stop_after_success,
                                        progress=not args.no_progress))
    suite = suite_for([p.task for p in prompts], args.robot)
    if prompts and isinstance(suite, RobosuiteSuite):  # a robot whose state or action does not fit: one line, before any work
        suite.env(suite.task_name(prompts[0].task), args.max_steps)
        print(f"Robosuite policies run on the {suite.robot}")
    results = run_study(gen, prompts, cfg, checkpoints, others, suite=suite)
    paths = write(results, args.out, title=f"maa eval {args.generator}")
    table(method_rows(results))
    print(f"results -> {paths['json']}, {paths['markdown']}, figures in {args.out}")
