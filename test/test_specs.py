import numpy as np
import pytest
import torch

from maa_core.errors import MaaError
from maa_core.specs import BUILTIN_SPECS, PolicySpec, get_spec, locomotion_spec


def test_paper_parameter_counts():
    assert get_spec("metaworld-sac").num_params == 22664
    assert get_spec("robosuite-sac").num_params == 23952


@pytest.mark.parametrize("name", sorted(BUILTIN_SPECS))
def test_flatten_unflatten_is_exact(name):
    spec = get_spec(name)
    torch.manual_seed(0)
    actor = spec.build()
    flat = spec.flatten(actor)
    assert flat.shape == (spec.num_params,)
    assert sum(p.numel() for p in actor.parameters()) == spec.num_params
    clone = spec.unflatten(flat.numpy())
    obs = torch.randn(16, spec.obs_dim)
    assert torch.equal(actor(obs), clone(obs))  # bit-identical
    assert torch.equal(spec.flatten(clone), flat)


def test_unflattened_actors_are_independent_and_trainable():
    # actors are cheap clones of one template: they must not share weights, hooks or the caller's array
    spec = get_spec("metaworld-sac")
    flat = np.random.default_rng(0).standard_normal(spec.num_params).astype(np.float32)
    a, b = spec.unflatten(flat), spec.unflatten(flat)
    with torch.no_grad():
        a.trunk[0].weight.add_(1.0)
    assert not torch.equal(a.trunk[0].weight, b.trunk[0].weight)
    assert np.array_equal(spec.flatten(b).numpy(), flat)
    a.register_forward_hook(lambda *_: None)
    assert len(b._forward_hooks) == 0
    sum(h.sum() for h in b.head_outputs(torch.randn(4, spec.obs_dim)).values()).backward()
    assert all(p.grad is not None for p in b.parameters())


@pytest.mark.parametrize("name", sorted(BUILTIN_SPECS))
def test_token_groups_tile_the_vector(name):
    spec = get_spec(name)
    groups = spec.token_groups()
    assert groups[0].start == 0 and groups[-1].stop == spec.num_params
    assert all(a.stop == b.start for a, b in zip(groups, groups[1:]))


def test_paper_grouping_heads_join_last_layer():
    g = get_spec("metaworld-sac").token_groups()
    assert [x.size for x in g] == [39 * 128 + 128, 128 * 128 + 128 + 2 * (128 * 4 + 4)]


def test_locomotion_spec_from_config():
    s = locomotion_spec(obs_dim=70, history=30, latent_dim=2, hidden=(256, 128), max_group_params=50000)
    assert s.obs_dim == 2102 and s.act_dim == 12 and s.squash == "none"
    assert max(g.size for g in s.token_groups()) <= 50000


def test_spec_json_round_trip():
    for s in BUILTIN_SPECS.values():
        assert PolicySpec.from_json(s.to_json()) == s


def test_spec_text_is_parsed_once_and_errors_every_time():
    text = get_spec("go2-walk").to_json()
    assert PolicySpec.from_json(text) is PolicySpec.from_json(text)  # the swap path parses no spec twice
    assert PolicySpec.from_json(text, "blob a") is PolicySpec.from_json(text, "blob b")  # keyed by text
    assert PolicySpec.from_json(text) == get_spec("go2-walk")
    for where in ("first", "second"):  # a refusal is not cached: each call refuses, naming its own source
        with pytest.raises(MaaError, match=f"^{where}: not valid JSON"):
            PolicySpec.from_json("{", where)
    with pytest.raises(MaaError, match="^spec x: expected JSON text, got list"):
        PolicySpec.from_json([1], "spec x")  # unhashable: no Python error from the cache either


def test_bad_specs_are_one_line_errors():
    with pytest.raises(MaaError, match="unknown policy spec"):
        get_spec("nope")
    with pytest.raises(MaaError, match="not valid JSON"):
        PolicySpec.from_json("{")
    d = get_spec("metaworld-sac").to_dict()
    d["trunk"][1]["in_dim"] = 7
    with pytest.raises(MaaError, match="in_dim"):
        PolicySpec.from_dict(d)
    with pytest.raises(MaaError, match="expected a vector of 22664"):
        get_spec("metaworld-sac").unflatten(np.zeros(10))
