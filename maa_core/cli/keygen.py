"""maa keygen: an Ed25519 key pair for signing actors (maa_core/signing.py)."""
from pathlib import Path


def add_parser(sub, name):
    p = sub.add_parser(name, help="create a key pair for signing actors",
                       description="Write OUT/NAME.key (private, mode 0600: the generator's signing_key) and "
                                   "OUT/NAME.pub (public: a controller's trusted_keys).")
    p.add_argument("--out", type=Path, required=True, help="folder for the key files (created if missing)")
    p.add_argument("--name", default="maa_signing", help="file name stem (default maa_signing)")
    p.add_argument("--force", action="store_true", help="replace an existing key pair of that name")
    return p


def run(args):
    from ..signing import generate_key_pair

    priv, pub, signer = generate_key_pair(args.out, args.name, force=args.force)
    print(f"private key {priv}  (mode 0600; keep it on the generator's machine)")
    print(f"public key  {pub}  (key id {signer.key_id}; list it in the controller's trusted_keys)")
