"""maa export: an actor file -> standalone safetensors + spec JSON + TorchScript (+ ONNX)."""
from pathlib import Path


def add_parser(sub, name):
    p = sub.add_parser(name, help="export a generated actor for deployment",
                       description="Write ACTOR as NAME.safetensors, NAME.spec.json, (unless --no-torchscript) NAME.pt and (with --onnx) NAME.onnx.")
    p.add_argument("actor", type=Path, help="actor .safetensors file (from maa generate)")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--name", default="actor")
    p.add_argument("--no-torchscript", action="store_true")
    p.add_argument("--onnx", action="store_true", help="also write NAME.onnx (input obs [batch, obs_dim], output action)")
    p.add_argument("--force", action="store_true", help="overwrite files of an earlier export in --out")
    return p


def run(args):
    from ..actor_io import ActorBlob
    from ..export import export_actor

    paths = export_actor(ActorBlob.load(args.actor), args.out, args.name, torchscript=not args.no_torchscript,
                         overwrite=args.force, onnx=args.onnx)
    for kind, p in paths.items():
        print(f"{kind:12s} {p}")
