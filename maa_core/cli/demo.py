"""maa demo [go2|metaworld]: the main job on the embedded default.

go2 (default, `make demo`): the shipped locomotion generator (or, with --train, dataset in MuJoCo ->
generator) -> the go2_generate ROS graph on the simulated Go2 with the shipped prompt bag
(config/demo_go2.yaml; needs the ROS extras).
metaworld: collect -> train -> generate -> evaluate at a tiny scale (config/demo.yaml)."""
from pathlib import Path

DEFAULT_CONFIGS = {"go2": Path("config/demo_go2.yaml"), "metaworld": Path("config/demo.yaml")}


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
    return p


def run(args):
    config = args.config or DEFAULT_CONFIGS[args.which]
    if args.which == "metaworld":
        from ..demo import run_demo

        run_demo(config, progress=not args.no_progress)
        return
    # the Go2 demo runs ROS nodes, so its orchestrator lives in maa_ros (maa_core itself never imports ROS)
    from maa_ros.demo_go2 import run_go2_demo

    run_go2_demo(config, progress=not args.no_progress, train=args.train, export=args.export)
