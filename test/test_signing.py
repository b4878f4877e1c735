"""Actor signatures (maa_core/signing.py): sign/verify over the exact blob bytes, the refusal kinds a
controller reports, key files and `maa keygen` / `maa sign` / `maa info`, the signature on the actor
message, and the launch arguments (the engine signing what it generates: test_ros_units.py)."""
import stat

import numpy as np
import pytest

from maa_core import signing
from maa_core.actor_io import ActorBlob
from maa_core.cli import main as maa_main
from maa_core.errors import MaaError
from maa_core.specs import get_spec


def blob_bytes(seed=0, gid="g-1"):
    s = get_spec("metaworld-sac")
    return ActorBlob(s, np.random.default_rng(seed).normal(size=s.num_params).astype(np.float32), gid, "p-1").to_bytes()


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    priv, pub, signer = signing.generate_key_pair(d)
    _, other_pub, other = signing.generate_key_pair(d, "other")
    return {"dir": d, "priv": priv, "pub": pub, "signer": signer, "other": other, "other_pub": other_pub}


def test_a_signature_covers_every_byte_of_the_blob(keys):
    data = blob_bytes()
    sig = keys["signer"].sign(data)
    assert signing.verify(data, sig)
    n_head = int.from_bytes(data[:8], "little") + 8
    for i in (0, 9, n_head // 2, n_head - 1, n_head, len(data) - 1):  # length, header JSON, params
        tampered = bytearray(data)
        tampered[i] ^= 0x01
        assert not signing.verify(bytes(tampered), sig), i
    assert not signing.verify(data + b"\x00", sig)  # nothing appended
    assert not signing.verify(data[:-1], sig)
    assert not signing.verify(data, signing.Signature(keys["other"].public_key, sig.value))  # another key's claim
    assert signing.Signature.from_text(sig.to_text()) == sig


def test_trusted_keys_refuse_unsigned_unknown_and_bad_signatures(keys):
    data = blob_bytes()
    trust = signing.TrustedKeys.from_files([keys["pub"]])
    assert trust.check(data, keys["signer"].sign(data).to_text()) == keys["signer"].key_id
    cases = {
        signing.UNSIGNED: None,
        signing.UNKNOWN_KEY: keys["other"].sign(data).to_text(),
        signing.BAD_SIGNATURE: keys["signer"].sign(blob_bytes(seed=1)).to_text(),  # a valid signature of other bytes
    }
    for kind, text in cases.items():
        with pytest.raises(signing.SignatureRefusal) as e:
            trust.check(data, text)
        assert e.value.kind == kind and "\n" not in str(e.value)
    assert keys["other"].key_id in str(pytest.raises(signing.SignatureRefusal, trust.check, data, cases["unknown_key"]).value)


@pytest.mark.parametrize("text,words", [
    ("maa-sig/1 ed25519 AAAA", "expected 'maa-sig/1"),
    ("maa-sig/1 rsa AAAA AAAA", "algorithm 'rsa'"),
    ("maa-sig/1 ed25519 !!!! AAAA", "not base64"),
    ("maa-sig/1 ed25519 AAAA AAAA", "public key of 3 bytes"),
    ("x" * 600, "at most 512"),
])
def test_malformed_signature_lines_are_one_line_errors(keys, text, words):
    with pytest.raises(MaaError, match=words):
        signing.Signature.from_text(text)
    with pytest.raises(signing.SignatureRefusal) as e:  # on a controller: a bad signature
        signing.TrustedKeys.from_files([keys["pub"]]).check(blob_bytes(), text)
    assert e.value.kind == signing.BAD_SIGNATURE


def test_key_files(keys, tmp_path):
    assert stat.S_IMODE(keys["priv"].stat().st_mode) == 0o600
    assert signing.Signer.from_file(keys["priv"]).public_key == signing.load_public_key(keys["pub"])
    loose = tmp_path / "loose.key"
    loose.write_bytes(keys["priv"].read_bytes())
    loose.chmod(0o640)
    with pytest.raises(MaaError, match="readable by group or others.*chmod 600"):
        signing.Signer.from_file(loose)
    with pytest.raises(MaaError, match="this is a private key"):
        signing.load_public_key(keys["priv"])
    (tmp_path / "junk.pub").write_text("hello")
    with pytest.raises(MaaError, match="not a PEM public key"):
        signing.load_public_key(tmp_path / "junk.pub")
    with pytest.raises(MaaError, match="no such public key file"):
        signing.TrustedKeys.from_files([tmp_path / "missing.pub"])


def test_keygen_cli_writes_a_pair_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "k"
    assert maa_main(["keygen", "--out", str(out)]) == 0
    priv, pub = signing.key_paths(out)
    assert stat.S_IMODE(priv.stat().st_mode) == 0o600 and pub.is_file()
    key_id = signing.Signer.from_file(priv).key_id
    assert key_id in capsys.readouterr().out
    assert maa_main(["keygen", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("maa: error:") and "exists already; pass --force" in err[0]
    assert signing.Signer.from_file(priv).key_id == key_id  # untouched
    assert maa_main(["keygen", "--out", str(out), "--force"]) == 0
    assert signing.Signer.from_file(priv).key_id != key_id
    (tmp_path / "file").write_text("")
    assert maa_main(["keygen", "--out", str(tmp_path / "file")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_sign_and_info_cli(keys, tmp_path, capsys):
    actor = tmp_path / "actor.safetensors"
    actor.write_bytes(blob_bytes())
    assert maa_main(["info", str(actor)]) == 0
    assert "signature: none (unsigned)" in capsys.readouterr().out
    assert maa_main(["sign", str(actor), "--key", str(keys["priv"])]) == 0
    assert signing.sidecar_path(actor).is_file()
    assert maa_main(["sign", str(actor), "--key", str(keys["priv"])]) == 2  # no silent overwrite
    assert "pass --force" in capsys.readouterr().err
    assert maa_main(["info", str(actor)]) == 0
    assert f"signature: ed25519 key {keys['signer'].key_id}, valid" in capsys.readouterr().out
    assert maa_main(["sign", str(actor), "--trusted", str(keys["pub"])]) == 0
    assert maa_main(["sign", str(actor), "--trusted", str(keys["other_pub"])]) == 2
    assert "signed by unknown key" in capsys.readouterr().err
    tampered = ActorBlob.from_bytes(actor.read_bytes())  # edited and re-saved: a well-formed blob, not the signed one
    tampered.params[0] += 1.0
    actor.write_bytes(tampered.to_bytes())
    assert maa_main(["info", str(actor)]) == 0
    assert "INVALID" in capsys.readouterr().out
    assert maa_main(["sign", str(actor), "--trusted", str(keys["pub"])]) == 2
    assert "bad signature" in capsys.readouterr().err


def test_the_signature_rides_in_the_actor_message_and_old_readers_decode_it(keys):
    from maa_ros.messages import actor_from_msg, actor_signature, actor_to_msg
    data = blob_bytes()
    line = keys["signer"].sign(data).to_text()
    msg = actor_to_msg(data, line)
    assert actor_signature(msg) == line
    assert actor_from_msg(msg).generation_id == "g-1"  # dim[0] unchanged: a reader that ignores signatures
    assert actor_signature(actor_to_msg(data)) is None


def test_controller_trust_policy(keys):
    data = blob_bytes()
    trust = signing.ActorTrust(signing.TrustedKeys.from_files([keys["pub"]]), required=True, local=("wtw-body",))
    kid = trust.check(data, keys["signer"].sign(data).to_text())
    trust.accepted("g-1", kid)
    assert trust.enable_refusal("g-1") is None and trust.enable_refusal("wtw-body") is None
    assert trust.enable_refusal("") is None  # nothing runs yet: the robot only stands up
    assert "has no trusted signature" in trust.enable_refusal("g-unsigned")
    off = signing.ActorTrust(signing.TrustedKeys(), required=False)
    assert off.check(data, None) == "" and off.enable_refusal("g-unsigned") is None


def test_launch_arguments_reach_the_nodes(keys):
    from maa_ros import launch_spec
    nodes = {n.name: n for n in launch_spec.build("go2_generate", {
        "signing_key": str(keys["priv"]), "trusted_keys": f"{keys['pub']},{keys['other_pub']}",
        "require_signature": "true"})}
    assert nodes["maa_generator"].parameters["signing_key"] == str(keys["priv"])
    ctl = nodes["maa_go2_controller"].parameters
    assert ctl["trusted_keys"] == f"{keys['pub']},{keys['other_pub']}" and ctl["require_signature"] == "true"
    assert "require_signature" not in {n.name: n for n in launch_spec.build("go2_generate", {})}[
        "maa_go2_controller"].parameters  # auto: the parameter file's
    with pytest.raises(MaaError, match="expected one of auto, true, false"):
        launch_spec.build("go2_generate", {"require_signature": "yes"})


# real-time loops, DDS and ROS graphs: one pytest-xdist worker runs all such files, in order (see Makefile)
pytestmark = pytest.mark.xdist_group("realtime")
