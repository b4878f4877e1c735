"""maa demo [go2|metaworld]: the main job on the embedded default (maa_core/demos/).

go2 (default, `make demo`): the shipped locomotion generator (or, with --train, dataset in MuJoCo ->
generator) -> the go2_generate ROS graph on the simulated Go2 with the shipped prompt bag
(config/demo_go2.yaml; needs the ROS package, reached through its entry point).
metaworld: collect -> train -> generate -> evaluate at a tiny scale (config/demo.yaml).
Default configs are the package's own (a checkout or an installed share/ folder)."""
from pathlib import Path

DEFAULT_CONFIGS = {"go2": "config/demo_go2.yaml", "metaworld": "config/demo.yaml"}


def add_parser(sub, name):
    p = sub.add_parser(name, help="run the demo: a generated actor walks the simulated Go2 over ROS (default), "
                                  "or the MetaWorld loop (`maa demo metaworld`)")
    p.add_argument("which", nargs="?", choices=sorted(DEFAULT_CONFIGS), default="go2",
                   help="go2 (default): the go2_generate graph on the simulated Go2; metaworld: the MetaWorld loop")
    p.add_argument("--config", type=Path, default=None, help="demo config (default: config/demo_go2.yaml or config/demo.yaml)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--train", action="store_true",
                   help="go2: build the dataset and train the generator even if one is shipped or trained already")
    p.add_argument("--export", type=Path, default=None, metavar="DIR",
                   help="go2: write the generator's float16 shipping copy to DIR (how config `pretrained` is made)")
    p.add_argument("--wtw-run-dir", default=None, metavar="DIR",
                   help="go2: a pretrained walk-these-ways run directory instead of the shipped adaptation module")
    p.add_argument("--accept-adaptation-mismatch", action="store_true", default=None,
                   help="go2: run a generator whose students were trained with another adaptation module")
    return p


def run(args):
    from ..resources import resolve

    config = args.config or resolve(DEFAULT_CONFIGS[args.which], "config")
    if args.which == "metaworld":
        from ..demos.metaworld import run_demo

        run_demo(config, progress=not args.no_progress)
        return
    # its ROS step is the ROS package's, found through an entry point (maa_core never imports ROS)
    from ..demos.go2 import run_go2_demo

    run_go2_demo(config, progress=not args.no_progress, train=args.train, export=args.export,
                 wtw_run_dir=args.wtw_run_dir, accept_adaptation_mismatch=args.accept_adaptation_mismatch)
