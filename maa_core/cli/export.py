"""maa export: an actor file -> standalone safetensors + spec JSON + TorchScript."""
from pathlib import Path


def add_parser(sub, name):
    p = sub.add_parser(name, help="export a generated actor for deployment",
                       description="Write ACTOR as NAME.safetensors, NAME.spec.json and (unless --no-torchscript) NAME.pt.")
    p.add_argument("actor", type=Path, help="actor .safetensors file (from maa generate)")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--name", default="actor")
    p.add_argument("--no-torchscript", action="store_true")
    return p


def run(args):
    from ..actor_io import ActorBlob
    from ..export import export_actor

    paths = export_actor(ActorBlob.load(args.actor), args.out, args.name, torchscript=not args.no_torchscript)
    for kind, p in paths.items():
        print(f"{kind:12s} {p}")
