"""maa demo: the main job on the embedded default (collect -> train -> generate -> evaluate)."""
from pathlib import Path


def add_parser(sub, name):
    p = sub.add_parser(name, help="run the demo: collect, train, generate, evaluate (MetaWorld, tiny scale)")
    p.add_argument("--config", type=Path, default=Path("config/demo.yaml"))
    p.add_argument("--no-progress", action="store_true")
    return p


def run(args):
    from ..demo import run_demo

    run_demo(args.config, progress=not args.no_progress)
