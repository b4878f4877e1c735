import numpy as np
import pytest
import torch

from maa_core.actor_io import ActorBlob
from maa_core.errors import MaaError
from maa_core.export import export_actor
from maa_core.specs import get_spec

SPEC = get_spec("metaworld-sac")


def blob():
    torch.manual_seed(0)
    return ActorBlob(SPEC, SPEC.flatten(SPEC.build()).numpy(), "gen1", "prompt1", {"k": 0})


def test_blob_round_trip():
    b = blob()
    c = ActorBlob.from_bytes(b.to_bytes())
    assert c.spec == SPEC and c.generation_id == "gen1" and c.prompt_id == "prompt1" and c.extra == {"k": 0}
    assert np.array_equal(c.params, b.params) and c.checksum == b.checksum


@pytest.mark.parametrize("mutate,msg", [
    (lambda d: d[: len(d) // 2], "not a valid safetensors blob"),
    (lambda d: b"garbage", "not a valid safetensors blob"),
])
def test_malformed_blobs(mutate, msg):
    with pytest.raises(MaaError, match=msg):
        ActorBlob.from_bytes(mutate(blob().to_bytes()))


def test_nan_tamper_oversize():
    b = blob()
    b.params[0] = np.nan
    with pytest.raises(MaaError, match="NaN"):
        ActorBlob.from_bytes(b.to_bytes())
    b = blob()
    data = bytearray(b.to_bytes())
    data[-1] ^= 0x01  # flip a bit of the last parameter
    with pytest.raises(MaaError, match="checksum mismatch"):
        ActorBlob.from_bytes(bytes(data))
    with pytest.raises(MaaError, match="exceeds the limit"):
        ActorBlob.from_bytes(blob().to_bytes(), max_bytes=1000)


def test_export_torchscript_matches(tmp_path):
    b = blob()
    paths = export_actor(b, tmp_path)
    ts = torch.jit.load(str(paths["torchscript"]))
    obs = torch.randn(8, 39)
    assert torch.allclose(ts(obs), b.actor()(obs))
    assert ActorBlob.load(paths["safetensors"]).checksum == b.checksum
