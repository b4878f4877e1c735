"""Control-tick inference: plain MLPs (the actor, WTW's adaptation module) as numpy matrices with
preallocated buffers, and the first layer over the observation history split in two.

Why split: the first layer reads the whole 30-step history (2100 inputs), but 29 of those rows are
already known when the previous command goes out. `prepare()` computes their contribution then,
off the state-to-command path; the next tick only multiplies the newest observation (70 inputs)
and runs the small upper layers. Same arithmetic as the torch module up to float32 summation order.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..specs import Actor

SUPPORTED_ACTIVATIONS = ("elu", "relu", "tanh", "identity")
_TORCH_ACTIVATIONS = {"ELU": "elu", "ReLU": "relu", "Tanh": "tanh", "Identity": "identity"}


def pin_blas_to_one_thread():
    """numpy's BLAS (OpenBLAS) hands large products to worker threads of normal priority and waits
    for them; called from the SCHED_FIFO control loop or validator that can stall behind them (seen:
    no swap decision within 10 s). Single-vector products gain nothing from threads anyway.
    Process-wide; returns the limiter (its `restore_original_limits()` undoes it)."""
    from threadpoolctl import threadpool_limits
    return threadpool_limits(limits=1, user_api="blas")


@dataclass
class Dense:
    weight: np.ndarray  # (out, in) float32, C-contiguous
    bias: np.ndarray    # (out,)
    activation: str


def _type_name(m) -> str:
    # TorchScript modules report their Python class through `original_name`
    return getattr(m, "original_name", type(m).__name__)


def _dense(linear, activation: str) -> Dense:
    # Views of the module's own float32 parameters (no 5 MB copy on the swap path): the numpy path and
    # the torch module then hold the same numbers; the controller never writes parameters.
    w = linear.weight.detach().to(torch.float32).contiguous().numpy()
    b = linear.bias.detach().to(torch.float32).numpy() if linear.bias is not None else np.zeros(w.shape[0], np.float32)
    return Dense(w, b, activation)


def mlp_layers(module) -> list[Dense] | None:
    """The Linear/activation stack of an `Actor` or a (scripted) `Sequential`; None for anything else
    (the caller then keeps using the torch module)."""
    if isinstance(module, Actor):
        spec, layers = module.spec, []
        linears = [m for m in module.trunk if isinstance(m, torch.nn.Linear)]
        for lin, layer in zip(linears, spec.trunk):
            layers.append(_dense(lin, layer.activation))
        layers.append(_dense(module.heads[spec.action_head], "tanh" if spec.squash == "tanh" else "identity"))
        return layers
    if _type_name(module) != "Sequential":
        return None
    layers: list[Dense] = []
    for child in module.children():
        name = _type_name(child)
        if name == "Linear":
            layers.append(_dense(child, "identity"))
        elif name in _TORCH_ACTIVATIONS and layers and layers[-1].activation == "identity":
            if name == "ELU" and float(getattr(child, "alpha", 1.0)) != 1.0:
                return None
            layers[-1].activation = _TORCH_ACTIVATIONS[name]
        else:
            return None
    return layers or None


def _activate(z: np.ndarray, kind: str, tmp: np.ndarray) -> None:
    """In place, without allocating."""
    if kind == "elu":  # max(z, 0) + expm1(min(z, 0))
        np.minimum(z, 0.0, out=tmp)
        np.expm1(tmp, out=tmp)
        np.maximum(z, 0.0, out=z)
        z += tmp
    elif kind == "relu":
        np.maximum(z, 0.0, out=z)
    elif kind == "tanh":
        np.tanh(z, out=z)


class HistoryMlp:
    """MLP on `history (rows x row_dim, oldest first) ‖ extra`, with the split first layer."""

    def __init__(self, layers: list[Dense], rows: int, row_dim: int):
        first = layers[0]
        self.rows, self.row_dim = rows, row_dim
        self.in_dim = first.weight.shape[1]
        h = rows * row_dim
        assert self.in_dim >= h, "first layer narrower than the history"
        self.layers = layers
        # column blocks of the first layer, contiguous so each product streams its own rows
        self.w_old = np.ascontiguousarray(first.weight[:, : h - row_dim])   # rows 0..L-2 at the next tick
        self.w_new = np.ascontiguousarray(first.weight[:, h - row_dim: h])  # the newest row
        self.w_extra = np.ascontiguousarray(first.weight[:, h:])            # e.g. the adaptation latent
        self.partial = np.zeros(first.weight.shape[0], np.float32)
        self._z = [np.zeros(l.weight.shape[0], np.float32) for l in layers]
        self._tmp = [np.zeros(l.weight.shape[0], np.float32) for l in layers]
        self._extra_z = np.zeros(first.weight.shape[0], np.float32)
        self.out_dim = layers[-1].weight.shape[0]

    @classmethod
    def of(cls, module, rows: int, row_dim: int, in_dim: int) -> "HistoryMlp | None":
        layers = mlp_layers(module)
        if layers is None or layers[0].weight.shape[1] != in_dim or in_dim < rows * row_dim:
            return None
        if any(l.activation not in SUPPORTED_ACTIVATIONS for l in layers):
            return None
        return cls(layers, rows, row_dim)

    def prepare(self, x: np.ndarray) -> None:
        """Contribution of rows 1..L-1 of the current history, which are rows 0..L-2 after the next push."""
        h = self.rows * self.row_dim
        np.dot(self.w_old, x[self.row_dim: h], out=self.partial)

    def forward(self, x: np.ndarray, prepared: bool) -> np.ndarray:
        """x: the full input vector (history ‖ extra). prepared: `prepare` ran on the history before
        the latest push. Returns an internal buffer (copy it to keep it)."""
        first, z = self.layers[0], self._z[0]
        h = self.rows * self.row_dim
        if prepared:
            np.dot(self.w_new, x[h - self.row_dim: h], out=z)
            z += self.partial
        else:
            np.dot(self.w_old, x[: h - self.row_dim], out=z)
            np.dot(self.w_new, x[h - self.row_dim: h], out=self._tmp[0])
            z += self._tmp[0]
        if self.w_extra.shape[1]:
            np.dot(self.w_extra, x[h: self.in_dim], out=self._extra_z)
            z += self._extra_z
        z += first.bias
        _activate(z, first.activation, self._tmp[0])
        for layer, out, tmp in zip(self.layers[1:], self._z[1:], self._tmp[1:]):
            np.dot(layer.weight, z, out=out)
            out += layer.bias
            _activate(out, layer.activation, tmp)
            z = out
        return z


_TORCH_ACTIVATION_FNS = {"elu": torch.nn.functional.elu, "relu": torch.relu, "tanh": torch.tanh,
                         "identity": lambda z: z}


class StackedMlp:
    """K plain MLPs of one shape as one batched network: each layer's K weight matrices stacked into a
    (K, out, in) tensor, so one `torch.baddbmm` per layer evaluates all of them on their own inputs
    (the lock-step screening's one policy evaluation per tick). Same layers and activations as each
    module; float32 summation order may differ from a single-module call in the last bits."""

    def __init__(self, layers_per_module: list[list[Dense]]):
        first = layers_per_module[0]  # `of` checked that all share its shape
        self.activations = [l.activation for l in first]
        # weights (K, out, in) used transposed (a view): x (K, S, in) @ W^T -> (K, S, out)
        self.weights = [torch.from_numpy(np.stack([ls[i].weight for ls in layers_per_module]))
                        for i in range(len(first))]
        self.biases = [torch.from_numpy(np.stack([ls[i].bias for ls in layers_per_module]))[:, None, :]
                       for i in range(len(first))]

    @classmethod
    def of(cls, modules) -> "StackedMlp | None":
        """None when any module is not a plain MLP or the shapes differ (callers then run them one by one)."""
        layers = [mlp_layers(m) for m in modules]
        if not layers or any(ls is None for ls in layers):
            return None
        if any(l.activation not in _TORCH_ACTIVATION_FNS for ls in layers for l in ls):
            return None
        f = layers[0]
        if any(len(ls) != len(f) or any(a.weight.shape != b.weight.shape or a.activation != b.activation
                                        for a, b in zip(ls, f)) for ls in layers):
            return None
        return cls(layers)

    def __len__(self) -> int:
        return self.weights[0].shape[0]

    def keep(self, idx) -> None:
        """Only the modules at `idx` from now on (the others stopped): later calls cost nothing for them."""
        idx = torch.as_tensor(np.asarray(idx, dtype=np.int64))
        self.weights = [w.index_select(0, idx) for w in self.weights]
        self.biases = [b.index_select(0, idx) for b in self.biases]

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor, lo: int = 0, hi: int | None = None) -> torch.Tensor:
        """x (hi - lo, S, in) float32: S inputs for each of the modules lo..hi-1 -> (hi - lo, S, out)."""
        for w, b, act in zip(self.weights, self.biases, self.activations):
            x = _TORCH_ACTIVATION_FNS[act](torch.baddbmm(b[lo:hi], x, w[lo:hi].transpose(1, 2)))
        return x
