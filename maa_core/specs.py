"""Policy specs: the exact shape of an MLP actor, its flat parameter layout and its token groups.

A spec is a trunk of Linear layers (each followed by an activation) and one or more heads that
all read the trunk's output. Parameters flatten in `state_dict` order (trunk weight, bias, ...,
then heads), which is also the order the autoencoder's token groups slice.
"""
from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from .errors import MaaError, check

ACTIVATIONS = {"elu": nn.ELU, "relu": nn.ReLU, "tanh": nn.Tanh, "identity": nn.Identity}
# Plausibility limits, checked before anything is built from a spec read from a file or a message:
# go2-wtw, the largest spec we know, has 1.2 M parameters and a 2102-wide input.
MAX_DIM = 1 << 20
MAX_PARAMS = 1 << 28  # 1 GiB of float32


@dataclass(frozen=True)
class Layer:
    in_dim: int
    out_dim: int
    activation: str = "identity"  # applied after the Linear

    @property
    def num_params(self) -> int:
        return self.in_dim * self.out_dim + self.out_dim


@dataclass(frozen=True)
class TokenGroup:
    """A contiguous slice of the flat parameter vector that the autoencoder encodes as one token."""

    name: str
    start: int
    stop: int
    kind: str  # token groups of the same kind (chunks of one layer group) share an encoder

    @property
    def size(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class PolicySpec:
    name: str
    obs_dim: int
    act_dim: int
    trunk: tuple[Layer, ...]
    heads: tuple[tuple[str, Layer], ...]  # (name, layer); all heads read the trunk output
    action_head: str = "mean"
    squash: str = "tanh"  # deterministic action = squash(action_head(trunk(obs)))
    # Paper (App. A): every trunk layer is one token group and the heads join the last one.
    # Layer groups larger than max_group_params are cut into equal chunks (large input layers,
    # e.g. a locomotion actor reading a 2102-value observation history).
    max_group_params: int | None = None

    def __post_init__(self):
        check(isinstance(self.name, str) and self.name != "", f"spec {self.name!r}: name must be a non-empty string")
        check(len(self.trunk) >= 1, f"spec {self.name}: needs at least one trunk layer")
        check(len(self.heads) >= 1, f"spec {self.name}: needs at least one head")
        for what, v in [("obs_dim", self.obs_dim), ("act_dim", self.act_dim)] + \
                [(f"trunk layer {i} {k}", getattr(l, k)) for i, l in enumerate(self.trunk) for k in ("in_dim", "out_dim")] + \
                [(f"head {n} {k}", getattr(l, k)) for n, l in self.heads for k in ("in_dim", "out_dim")]:
            check(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_DIM,
                  f"spec {self.name}: {what} is {v!r}, expected an integer in [1, {MAX_DIM}]")
        check(self.max_group_params is None or (isinstance(self.max_group_params, int) and self.max_group_params >= 1),
              f"spec {self.name}: max_group_params {self.max_group_params!r}, expected a positive integer or null")
        check(self.num_params <= MAX_PARAMS,
              f"spec {self.name}: {self.num_params} parameters exceeds the limit of {MAX_PARAMS}")
        dims = [self.obs_dim] + [l.out_dim for l in self.trunk]
        for i, l in enumerate(self.trunk):
            check(l.in_dim == dims[i], f"spec {self.name}: trunk layer {i} in_dim {l.in_dim} != {dims[i]}")
            check(l.activation in ACTIVATIONS, f"spec {self.name}: unknown activation {l.activation!r}")
        names = [n for n, _ in self.heads]
        check(self.action_head in names, f"spec {self.name}: action_head {self.action_head!r} not in {names}")
        for n, l in self.heads:
            check(l.in_dim == dims[-1], f"spec {self.name}: head {n} in_dim {l.in_dim} != {dims[-1]}")
            check(l.activation == "identity", f"spec {self.name}: head {n} activation {l.activation!r}, "
                  "expected 'identity' (heads are linear)")
        check(dict(self.heads)[self.action_head].out_dim == self.act_dim,
              f"spec {self.name}: action head out_dim != act_dim {self.act_dim}")
        check(self.squash in ("tanh", "none"), f"spec {self.name}: squash must be 'tanh' or 'none'")

    # -- sizes -----------------------------------------------------------------------------
    @property
    def num_params(self) -> int:
        return sum(l.num_params for l in self.trunk) + sum(l.num_params for _, l in self.heads)

    def param_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        """(state_dict key, shape) in flattening order."""
        out = []
        for i, l in enumerate(self.trunk):
            out += [(f"trunk.{2 * i}.weight", (l.out_dim, l.in_dim)), (f"trunk.{2 * i}.bias", (l.out_dim,))]
        for n, l in self.heads:
            out += [(f"heads.{n}.weight", (l.out_dim, l.in_dim)), (f"heads.{n}.bias", (l.out_dim,))]
        return out

    def token_groups(self) -> list[TokenGroup]:
        sizes = [l.num_params for l in self.trunk]
        sizes[-1] += sum(l.num_params for _, l in self.heads)
        groups, start = [], 0
        for gi, size in enumerate(sizes):
            n_chunks = 1 if not self.max_group_params else -(-size // self.max_group_params)
            bounds = np.linspace(start, start + size, n_chunks + 1).round().astype(int)
            for c in range(n_chunks):
                name = f"layer{gi}" if n_chunks == 1 else f"layer{gi}.{c}"
                groups.append(TokenGroup(name, int(bounds[c]), int(bounds[c + 1]), kind=f"layer{gi}"))
            start += size
        return groups

    # -- (de)serialization -----------------------------------------------------------------
    def to_dict(self) -> dict:
        d = asdict(self)
        d["trunk"] = [asdict(l) for l in self.trunk]
        d["heads"] = [[n, asdict(l)] for n, l in self.heads]
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict, where: str = "policy spec") -> "PolicySpec":
        from .files import expect, get_field as field

        def layer(l, w):
            expect(l, dict, w)
            unknown = set(l) - {"in_dim", "out_dim", "activation"}
            check(not unknown, f"{w}: unknown key(s) {sorted(unknown)}")
            return Layer(field(l, "in_dim", int, w), field(l, "out_dim", int, w), expect(l.get("activation", "identity"), str, f"{w}: 'activation'"))

        def head(h, w):
            check(isinstance(h, (list, tuple)) and len(h) == 2 and isinstance(h[0], str), f"{w}: expected [name, layer]")
            return h[0], layer(h[1], w)

        expect(d, dict, where)
        trunk = field(d, "trunk", list, where)
        heads = field(d, "heads", list, where)
        mgp = d.get("max_group_params")
        kw = dict(
            name=field(d, "name", str, where), obs_dim=field(d, "obs_dim", int, where), act_dim=field(d, "act_dim", int, where),
            trunk=tuple(layer(l, f"{where}: trunk[{i}]") for i, l in enumerate(trunk)),
            heads=tuple(head(h, f"{where}: heads[{i}]") for i, h in enumerate(heads)),
            action_head=expect(d.get("action_head", "mean"), str, f"{where}: 'action_head'"),
            squash=expect(d.get("squash", "tanh"), str, f"{where}: 'squash'"),
            max_group_params=None if mgp is None else expect(mgp, int, f"{where}: 'max_group_params'"),
        )
        try:
            return cls(**kw)
        except MaaError as e:  # the spec's own consistency checks: say which file it came from
            raise MaaError(f"{where}: {e}") from None

    @classmethod
    def from_json(cls, s: str | bytes, where: str = "policy spec") -> "PolicySpec":
        # every actor blob carries its spec's text: parsed once per text (specs are immutable), not per swap
        if isinstance(s, (bytearray, memoryview)):
            s = bytes(s)  # hashable, for the cache
        try:
            return _spec_from_json(cls, s)   # keyed by the text alone, whatever the caller calls it
        except (MaaError, TypeError):        # refusals are not cached: parse again to name the caller's source
            from .files import loads_json

            return cls.from_dict(loads_json(s, where), where)

    def check_compatible(self, other: "PolicySpec", where: str = "") -> None:
        # equal dataclasses are equal dicts: the field comparison skips asdict's ~0.2 ms on the swap path
        if self is other or (type(self) is type(other) and self == other):
            return
        if self.to_dict() != other.to_dict():
            raise MaaError(f"{where + ': ' if where else ''}policy spec mismatch: "
                           f"expected {self.name} ({self.num_params} params), got {other.name} ({other.num_params} params)")

    # -- modules ---------------------------------------------------------------------------
    def build(self) -> "Actor":
        return Actor(self)

    def unflatten(self, flat, actor: "Actor | None" = None) -> "Actor":
        """Flat parameter vector -> actor module (bit-identical values; a new module is in eval mode)."""
        if not torch.is_tensor(flat):
            a = np.asarray(flat)
            check(a.ndim == 1 and a.size == self.num_params,
                  f"parameters: expected a vector of {self.num_params} values for spec {self.name}, got shape {a.shape}")
            # one copy, straight from `a` (it may be a read-only view of blob bytes, which torch cannot wrap)
            storage = torch.empty(a.size, dtype=torch.float32)
            np.copyto(storage.numpy(), a, casting="unsafe")
        else:
            flat = flat.to(torch.float32)
            check(flat.ndim == 1 and flat.numel() == self.num_params,
                  f"parameters: expected a vector of {self.num_params} values for spec {self.name}, got shape {tuple(flat.shape)}")
            storage = flat.detach().clone()
        if actor is not None:
            torch.nn.utils.vector_to_parameters(storage, actor.parameters())
            return actor
        # Cloning the template's module tree around views of one flat copy costs ~0.07 ms; building or
        # deep-copying a module costs 0.5-1.5 ms, which dominated batched generation of 100s of actors.
        views, offset = [], 0
        for p in _template(self).parameters():
            views.append(storage[offset:offset + p.numel()].view(p.shape))
            offset += p.numel()
        return _clone_module(_template(self), iter(views))

    def flatten(self, actor_or_state_dict) -> torch.Tensor:
        sd = actor_or_state_dict.state_dict() if isinstance(actor_or_state_dict, nn.Module) else actor_or_state_dict
        parts = []
        for key, shape in self.param_shapes():
            check(key in sd, f"state_dict: missing key {key!r} for spec {self.name}")
            t = torch.as_tensor(sd[key])
            check(tuple(t.shape) == shape, f"state_dict: {key} has shape {tuple(t.shape)}, spec {self.name} expects {shape}")
            parts.append(t.detach().reshape(-1).float())
        return torch.cat(parts)


@functools.lru_cache(maxsize=16)  # bounded: a stream of blobs with ever-new spec texts keeps 16 of them
def _spec_from_json(cls, s) -> PolicySpec:
    from .files import loads_json

    return cls.from_dict(loads_json(s, "policy spec"), "policy spec")


@functools.lru_cache(maxsize=16)
def _template(spec: PolicySpec) -> "Actor":
    # eval mode, as every caller of unflatten deploys its actor (the training paths load into their own module)
    return Actor(spec, init=False).eval()


def _clone_module(module: nn.Module, tensors) -> nn.Module:
    """A structural copy of `module` whose parameters (in `parameters()` order) wrap `tensors`.
    Per-module dicts (hooks, children, parameters) are copied so clones never share them."""
    clone = object.__new__(type(module))
    state = {k: (v.copy() if isinstance(v, dict) else v) for k, v in module.__dict__.items()}
    state["_parameters"] = {k: None if v is None else nn.Parameter(next(tensors), requires_grad=v.requires_grad)
                            for k, v in module._parameters.items()}
    state["_modules"] = {k: None if c is None else _clone_module(c, tensors) for k, c in module._modules.items()}
    clone.__dict__ = state
    return clone


class Actor(nn.Module):
    """The deployable network a spec names. forward(obs) -> deterministic action."""

    def __init__(self, spec: PolicySpec, init: bool = True):
        super().__init__()
        self.spec = spec
        # init=False leaves the weights uninitialised (for loading): random init costs more than the rest of generation
        linear = nn.Linear if init else (lambda i, o: torch.nn.utils.skip_init(nn.Linear, i, o))
        mods: list[nn.Module] = []
        for l in spec.trunk:
            mods += [linear(l.in_dim, l.out_dim), ACTIVATIONS[l.activation]()]
        self.trunk = nn.Sequential(*mods)
        self.heads = nn.ModuleDict({n: linear(l.in_dim, l.out_dim) for n, l in spec.heads})
        self._squash = spec.squash == "tanh"
        self._action_head = spec.action_head

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        a = self.heads[self._action_head](self.trunk(obs))
        return torch.tanh(a) if self._squash else a

    def head_outputs(self, obs: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.trunk(obs)
        return {n: m(h) for n, m in self.heads.items()}

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        return self(torch.as_tensor(obs, dtype=torch.float32)).numpy()


# -- built-in specs ------------------------------------------------------------------------
def _gaussian_actor(name: str, obs_dim: int, act_dim: int, hidden=(128, 128), acts=("elu", "relu")) -> PolicySpec:
    trunk, d = [], obs_dim
    for h, a in zip(hidden, acts):
        trunk.append(Layer(d, h, a))
        d = h
    return PolicySpec(name, obs_dim, act_dim, tuple(trunk),
                      (("mean", Layer(d, act_dim)), ("log_std", Layer(d, act_dim))))


def locomotion_spec(obs_dim: int = 70, history: int = 30, latent_dim: int = 2,
                    hidden: tuple[int, ...] = (512, 256, 128), act_dim: int = 12,
                    activation: str = "elu", max_group_params: int | None = 65536,
                    name: str | None = None) -> PolicySpec:
    """Walk-these-ways style actor body: input = observation history (oldest first) ‖ adaptation latent."""
    in_dim = obs_dim * history + latent_dim
    trunk, d = [], in_dim
    for h in hidden:
        trunk.append(Layer(d, h, activation))
        d = h
    name = name or f"locomotion-{in_dim}-{'x'.join(map(str, hidden))}-{act_dim}"
    return PolicySpec(name, in_dim, act_dim, tuple(trunk), (("actions", Layer(d, act_dim)),),
                      action_head="actions", squash="none", max_group_params=max_group_params)


BUILTIN_SPECS: dict[str, PolicySpec] = {
    # SAC Gaussian actor of the paper: 39 -> 128 (ELU) -> 128 (ReLU) -> mean 4, log-std 4
    "metaworld-sac": _gaussian_actor("metaworld-sac", 39, 4),
    # 41 -> 128 -> 128 -> mean 8, log-std 8
    "robosuite-sac": _gaussian_actor("robosuite-sac", 41, 8),
    "go2-wtw": locomotion_spec(name="go2-wtw"),
    # the small student of the MuJoCo locomotion data path (maa_core/collect/go2_walk.py)
    "go2-walk": locomotion_spec(hidden=(64, 64), name="go2-walk"),
}


def get_spec(name_or_spec) -> PolicySpec:
    if isinstance(name_or_spec, PolicySpec):
        return name_or_spec
    if name_or_spec not in BUILTIN_SPECS:
        raise MaaError(f"unknown policy spec {name_or_spec!r} (built-in: {', '.join(BUILTIN_SPECS)})")
    return BUILTIN_SPECS[name_or_spec]
