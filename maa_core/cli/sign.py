"""maa sign: sign an actor file (writes ACTOR.sig beside it), or check one against trusted keys."""
from pathlib import Path


def add_parser(sub, name):
    p = sub.add_parser(name, help="sign an actor file, or verify its signature",
                       description="With --key: write ACTOR.sig, an Ed25519 signature of the file's exact bytes. "
                                   "With --trusted: check ACTOR.sig against these public keys (exit 2 if refused).")
    p.add_argument("actor", type=Path, help="actor .safetensors file")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--key", type=Path, help="private key file (maa keygen)")
    g.add_argument("--trusted", type=Path, nargs="+", metavar="PUB", help="public key files to verify against")
    p.add_argument("--force", action="store_true", help="replace an existing ACTOR.sig")
    return p


def run(args):
    from ..actor_io import MAX_ACTOR_FILE_BYTES, ActorBlob
    from ..files import read_bytes
    from ..signing import Signer, TrustedKeys, read_sidecar, sidecar_path, write_sidecar

    data = read_bytes(args.actor, "actor file", MAX_ACTOR_FILE_BYTES)
    blob = ActorBlob.from_bytes(data, where=str(args.actor))  # only well-formed actors are signed or vouched for
    if args.key is not None:
        signer = Signer.from_file(args.key)
        path = write_sidecar(args.actor, signer.sign(data), force=args.force)
        print(f"signed {args.actor} (generation {blob.generation_id or '-'}) with key {signer.key_id}: {path}")
        return 0
    sig = read_sidecar(args.actor)
    kid = TrustedKeys.from_files(args.trusted).check(data, sig.to_text() if sig else None)  # SignatureRefusal: exit 2
    print(f"{args.actor}: signature valid, trusted key {kid} ({sidecar_path(args.actor)})")
    return 0
