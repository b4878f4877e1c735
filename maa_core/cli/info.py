"""maa info: describe a dataset, a generator folder, an actor file, or a built-in spec."""
from pathlib import Path


def add_parser(sub, name):
    p = sub.add_parser(name, help="describe a dataset, generator, actor file or spec")
    p.add_argument("path", help="dataset dir, generator dir, actor .safetensors, or a built-in spec name")
    p.add_argument("--verify", action="store_true", help="datasets: verify shard checksums")
    return p


def run(args):
    from ..errors import MaaError
    from ..specs import BUILTIN_SPECS

    path = Path(args.path)
    if args.path in BUILTIN_SPECS and not path.exists():
        s = BUILTIN_SPECS[args.path]
        print(f"spec {s.name}: obs {s.obs_dim} -> act {s.act_dim}, {s.num_params} parameters, "
              f"{len(s.token_groups())} token groups")
        for g in s.token_groups():
            print(f"  {g.name:10s} params [{g.start}, {g.stop})  size {g.size}")
        return 0
    if (path / "manifest.json").is_file():
        from ..dataset import PolicyDataset
        ds = PolicyDataset(path, verify=args.verify)
        meta = ds.meta()
        tasks = {}
        for m in meta:
            tasks[m["task"]] = tasks.get(m["task"], 0) + 1
        n_traj = sum(int(s.get("trajectories", 0)) for s in ds.manifest["shards"])
        print(f"dataset {path}: spec {ds.spec.name}, {len(ds)} checkpoints, {n_traj} trajectories, "
              f"{len(ds.manifest['shards'])} shards{' (checksums verified)' if args.verify else ''}")
        for t, n in sorted(tasks.items()):
            print(f"  {t:24s} {n}")
        return 0
    if (path / "generator.json").is_file():
        from ..pipeline import read_generator_meta
        meta = read_generator_meta(path)
        c = meta["config"]
        print(f"generator {path}: spec {meta['spec'].name}, prompts obs {meta['obs_dim']} act {meta['act_dim']}, "
              f"preset {c.preset}")
        for k in ("autoencoder", "embedding", "diffusion"):
            print(f"  {k:12s} {getattr(c, k)}")
        from ..go2.contract import read_generator_contract
        _print_contract(read_generator_contract(path))
        return 0
    if path.is_file():
        from ..actor_io import ActorBlob
        b = ActorBlob.load(path)
        print(f"actor {path}: spec {b.spec.name} ({b.spec.num_params} params), generation {b.generation_id or '-'}, "
              f"prompt {b.prompt_id or '-'}, sha256 {b.checksum[:16]}")
        from ..go2.contract import contract_of_blob_extra
        _print_contract(contract_of_blob_extra(b.extra, str(path)))
        _print_signature(path)
        return 0
    raise MaaError(f"{path}: not a dataset, generator, actor file or built-in spec name")


def _print_signature(path) -> None:
    """Whether PATH.sig signs these exact bytes, and by which key (trust is the controller's decision)."""
    from ..files import read_bytes
    from ..signing import read_sidecar, sidecar_path, verify

    sig = read_sidecar(path)
    if sig is None:
        print("  signature: none (unsigned)")
        return
    state = "valid" if verify(read_bytes(path, "actor file", path.stat().st_size), sig) else \
        "INVALID (the file changed after signing)"
    print(f"  signature: ed25519 key {sig.key_id}, {state} ({sidecar_path(path)})")


def _print_contract(contract) -> None:
    """The policy I/O contract (maa_core/go2/contract.py), if the generator or actor carries one."""
    if contract is None:
        print("  policy contract: none")
        return
    print("  policy contract:")
    for line in contract.lines():
        print(f"    {line}")
