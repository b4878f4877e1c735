"""Ed25519 signatures of actor blobs: who made an actor, and that not one byte of it changed since.

What is signed: the whole blob as it travels (`ActorBlob.to_bytes()`: the safetensors header with
spec, generation id, prompt id, checksum, contract, and the parameter bytes), exactly as received.
The signed message is `DOMAIN ‖ SHA-256(blob)`: a domain prefix (a signature over anything else
never verifies here) and a digest, so the verifier hashes the 5 MB blob with hashlib (which
releases the GIL: the control loop keeps running) and Ed25519 itself works on 54 bytes.
Nothing can be appended, removed or edited without the signature failing.

A signature travels beside the blob, not inside it, so the blob bytes stay the format every
reader already decodes: one text line `maa-sig/1 ed25519 <public key> <signature>` (both base64).
On the actor topic it is the label of the message's second layout dimension
(maa_ros/messages.py); for a file it is `<file>.sig` (`sidecar_path`). The line names the public
key so a verifier looks it up in its trusted set before any hashing; trust comes only from that
set (`TrustedKeys`), never from the line.

Keys: PEM files (PKCS#8 private key, SubjectPublicKeyInfo public key), the formats OpenSSL reads
(`openssl pkey -in maa_signing.key -pubout` prints the public key). `generate_key_pair` writes the
private key with mode 0600; `Signer.from_file` refuses one that group or others can read.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .errors import MaaError, check
from .files import read_bytes

SIGNATURE_FORMAT = "maa-sig/1"
ALGORITHM = "ed25519"
DOMAIN = b"maa-actor-signature/1\x00"  # what a maa actor signature is over, before the digest
KEY_FILE_BYTES = 16384  # a PEM Ed25519 key is ~120 bytes; anything far larger is not one
SIGNATURE_LINE_CHARS = 512  # the line is ~150 characters
DEFAULT_KEY_NAME = "maa_signing"  # maa keygen: <dir>/maa_signing.key and <dir>/maa_signing.pub
PUBLIC_KEY_BYTES, SIGNATURE_BYTES = 32, 64

# refusal kinds (diagnostics counters `signature_refused_<kind>`)
UNSIGNED, UNKNOWN_KEY, BAD_SIGNATURE = "unsigned", "unknown_key", "bad_signature"


class SignatureRefusal(MaaError):
    """An actor that a controller requiring signatures must not run; `kind` is one of
    UNSIGNED, UNKNOWN_KEY, BAD_SIGNATURE."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def signed_message(blob: bytes) -> bytes:
    return DOMAIN + hashlib.sha256(blob).digest()


def key_id(public_key: bytes) -> str:
    """Short name of a public key in logs: 16 hex digits of the SHA-256 of its 32 raw bytes."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class Signature:
    public_key: bytes  # 32 raw bytes of the signer's Ed25519 public key (a claim, until trusted)
    value: bytes       # 64 bytes

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    def to_text(self) -> str:
        return (f"{SIGNATURE_FORMAT} {ALGORITHM} {base64.b64encode(self.public_key).decode()} "
                f"{base64.b64encode(self.value).decode()}")

    @classmethod
    def from_text(cls, text: str, where: str = "actor signature") -> "Signature":
        check(isinstance(text, str) and len(text) <= SIGNATURE_LINE_CHARS,
              f"{where}: not a signature line (at most {SIGNATURE_LINE_CHARS} characters)")
        parts = text.strip().split(" ")
        check(len(parts) == 4 and parts[0] == SIGNATURE_FORMAT,
              f"{where}: expected '{SIGNATURE_FORMAT} {ALGORITHM} <public key> <signature>'")
        check(parts[1] == ALGORITHM, f"{where}: algorithm {parts[1]!r}, expected {ALGORITHM!r}")
        try:
            pub, sig = base64.b64decode(parts[2], validate=True), base64.b64decode(parts[3], validate=True)
        except (binascii.Error, ValueError):
            raise MaaError(f"{where}: public key or signature is not base64") from None
        check(len(pub) == PUBLIC_KEY_BYTES, f"{where}: public key of {len(pub)} bytes, expected {PUBLIC_KEY_BYTES}")
        check(len(sig) == SIGNATURE_BYTES, f"{where}: signature of {len(sig)} bytes, expected {SIGNATURE_BYTES}")
        return cls(pub, sig)


# -- keys --------------------------------------------------------------------------------------------
class Signer:
    """A private key that signs actor blobs (the generator node's `signing_key`)."""

    def __init__(self, key: Ed25519PrivateKey, source: str = ""):
        self._key, self.source = key, source
        self.public_key = _raw_public(key.public_key())

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    @classmethod
    def generate(cls) -> "Signer":
        return cls(Ed25519PrivateKey.generate(), "generated")

    @classmethod
    def from_file(cls, path) -> "Signer":
        path = Path(path).expanduser()
        data = read_bytes(path, "private key file", KEY_FILE_BYTES)
        mode = path.stat().st_mode
        check(not mode & (stat.S_IRWXG | stat.S_IRWXO),
              f"{path}: private key readable by group or others (mode {stat.S_IMODE(mode):o}); chmod 600 it")
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as e:  # not PEM, encrypted, or a public key
            raise MaaError(f"{path}: not an unencrypted PEM private key ({str(e).splitlines()[0][:80]})") from None
        except Exception as e:  # cryptography's own "unsupported algorithm" and friends
            raise MaaError(f"{path}: cannot read the private key ({type(e).__name__})") from None
        check(isinstance(key, Ed25519PrivateKey), f"{path}: a {type(key).__name__.lstrip('_')}, expected an Ed25519 private key")
        return cls(key, str(path))

    def sign(self, blob: bytes) -> Signature:
        return Signature(self.public_key, self._key.sign(signed_message(blob)))

    def private_pem(self) -> bytes:
        return self._key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())

    def public_pem(self) -> bytes:
        return self._key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_key(path) -> bytes:
    """The 32 raw bytes of the Ed25519 public key in a PEM file; MaaError (one line) otherwise."""
    path = Path(path).expanduser()
    data = read_bytes(path, "public key file", KEY_FILE_BYTES)
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as e:
        hint = " (this is a private key: trust its .pub file)" if b"PRIVATE KEY" in data else ""
        raise MaaError(f"{path}: not a PEM public key{hint or ' (' + str(e).splitlines()[0][:80] + ')'}") from None
    except Exception as e:
        raise MaaError(f"{path}: cannot read the public key ({type(e).__name__})") from None
    check(isinstance(key, Ed25519PublicKey), f"{path}: a {type(key).__name__.lstrip('_')}, expected an Ed25519 public key")
    return _raw_public(key)


def key_paths(out_dir, name: str = DEFAULT_KEY_NAME) -> tuple[Path, Path]:
    return Path(out_dir) / f"{name}.key", Path(out_dir) / f"{name}.pub"


def generate_key_pair(out_dir, name: str = DEFAULT_KEY_NAME, force: bool = False) -> tuple[Path, Path, Signer]:
    """Writes `<out_dir>/<name>.key` (private, mode 0600) and `<name>.pub`; refuses to replace
    either unless `force`. -> (private path, public path, the signer)."""
    check(bool(name) and "/" not in name and name not in (".", ".."), f"key name {name!r}: expected a file name")
    out = Path(out_dir)
    check(not out.exists() or out.is_dir(), f"{out}: exists and is not a folder")
    priv, pub = key_paths(out, name)
    existing = [p for p in (priv, pub) if p.exists() or p.is_symlink()]
    check(not existing or force, f"{existing[0] if existing else ''}: exists already; pass --force to overwrite")
    signer = Signer.generate()
    try:
        out.mkdir(parents=True, exist_ok=True)
        _write_private(priv, signer.private_pem())
        tmp = pub.with_name(f".{pub.name}.{os.getpid()}.tmp")
        tmp.write_bytes(signer.public_pem())
        os.chmod(tmp, 0o644)
        os.replace(tmp, pub)
    except OSError as e:
        raise MaaError(f"{out}: cannot write the key pair ({e.strerror or e})") from None
    return priv, pub, signer


def _write_private(path: Path, pem: bytes) -> None:
    """Created 0600 from the first byte (never briefly readable), then renamed into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        os.chmod(tmp, 0o600)  # the umask can only remove bits; this states the mode whatever it is
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# -- verification ------------------------------------------------------------------------------------
def verify(blob: bytes, signature: Signature) -> bool:
    """Whether `signature` is valid for these exact bytes under the key it names (not whether that
    key is trusted: `TrustedKeys.check` is the gate)."""
    try:
        Ed25519PublicKey.from_public_bytes(signature.public_key).verify(signature.value, signed_message(blob))
        return True
    except (InvalidSignature, ValueError):
        return False


class TrustedKeys:
    """The public keys a controller accepts actors from (its `trusted_keys` files)."""

    def __init__(self, keys: dict[bytes, str] | None = None):
        self.keys = dict(keys or {})  # raw public key -> the file it came from

    @classmethod
    def from_files(cls, paths) -> "TrustedKeys":
        return cls({load_public_key(p): str(p) for p in paths})

    def __len__(self) -> int:
        return len(self.keys)

    def ids(self) -> list[str]:
        return [key_id(k) for k in self.keys]

    def check(self, blob: bytes, signature_text: str | None) -> str:
        """-> the key id of the trusted key that signed these exact bytes; SignatureRefusal otherwise.
        The cheap refusals (no signature, a key not trusted) come before the hash of the blob."""
        if not signature_text:
            raise SignatureRefusal(UNSIGNED, "unsigned (a signature by one of the trusted keys is required)")
        try:
            sig = Signature.from_text(signature_text)
        except MaaError as e:
            raise SignatureRefusal(BAD_SIGNATURE, f"bad signature: {e}") from None
        if sig.public_key not in self.keys:
            known = ", ".join(self.ids()) or "none configured"
            raise SignatureRefusal(UNKNOWN_KEY, f"signed by unknown key {sig.key_id} (trusted: {known})")
        if not verify(blob, sig):
            raise SignatureRefusal(BAD_SIGNATURE, f"bad signature (key {sig.key_id}): the blob or the "
                                                  "signature changed after signing")
        return sig.key_id


# -- files -------------------------------------------------------------------------------------------
def sidecar_path(actor_path) -> Path:
    """Where the signature of an actor file lives: `<file>.sig` beside it."""
    p = Path(actor_path)
    return p.with_name(p.name + ".sig")


def read_sidecar(actor_path) -> Signature | None:
    """The signature beside an actor file, None when there is none; MaaError when it is malformed."""
    sp = sidecar_path(actor_path)
    if not sp.exists():
        return None
    text = read_bytes(sp, "signature file", SIGNATURE_LINE_CHARS).decode("ascii", "replace")
    return Signature.from_text(text, where=str(sp))


def write_sidecar(actor_path, signature: Signature, force: bool = False) -> Path:
    sp = sidecar_path(actor_path)
    check(force or not sp.exists(), f"{sp}: exists already; pass --force to overwrite")
    sp.write_text(signature.to_text() + "\n")
    return sp


# -- a controller's policy ---------------------------------------------------------------------------
class ActorTrust:
    """Which actors a controller may run. With `required`, an actor blob runs only with a valid
    signature by one of `keys` (`check`, before it is submitted), and enabling the robot is refused
    while the running actor is not one of those (`enable_refusal`): the actors that the operator's
    own files on the robot provide (`local`, e.g. the walk-these-ways run's body) are trusted as
    the configuration that names them is. Without `required` nothing is checked."""

    def __init__(self, keys: TrustedKeys, required: bool, local: tuple[str, ...] = ()):
        self.keys, self.required, self.local = keys, bool(required), tuple(local)
        self.signed: dict[str, str] = {}  # generation id -> key id, for every signed actor that became active

    def describe(self) -> str:
        if not self.required:
            return "signatures not required"
        ids = ", ".join(self.keys.ids()) or "none: every actor is refused"
        return f"signatures required (trusted keys: {ids})"

    def check(self, blob: bytes, signature_text: str | None) -> str:
        """-> key id of the trusted signer ("" when signatures are not required); SignatureRefusal."""
        return self.keys.check(blob, signature_text) if self.required else ""

    def accepted(self, generation_id: str, key_id: str) -> None:
        if key_id:
            self.signed[generation_id] = key_id

    def enable_refusal(self, active_generation: str) -> str | None:
        """Why enabling must be refused with this actor running, or None. No actor yet: the robot
        only stands up (no policy runs until a trusted actor is swapped in)."""
        if not self.required or not active_generation or active_generation in self.local \
                or active_generation in self.signed:
            return None
        return f"the running actor {active_generation} has no trusted signature (signatures are required)"
