"""Parameter autoencoder (paper eq. 5): each token group of the flat parameter vector is encoded
to one latent token of a fixed size, and decoded back.

Groups of the same kind (equal-size chunks of one large layer) share their encoder and decoder;
the decoder tells chunks apart by a learned per-token offset.

Groups named in `cfg.constant_groups` are identical in every training checkpoint (a frozen layer
all runs share): they get no token, no encoder and no decoder, and decode as the dataset's value,
which the parameter normalizer's mean holds exactly. Coding them would cost most of the model
(a 2102-input layer) to reproduce a constant, and add reconstruction error to it.
"""
from __future__ import annotations

import torch
from torch import nn

from ..config import AutoencoderConfig
from ..errors import check
from ..specs import PolicySpec
from .normalizer import Normalizer


def _mlp(d_in: int, d_hidden: int, d_out: int, depth: int) -> nn.Sequential:
    layers, d = [], d_in
    for _ in range(depth):
        layers += [nn.Linear(d, d_hidden), nn.LayerNorm(d_hidden), nn.ELU()]
        d = d_hidden
    layers.append(nn.Linear(d, d_out))
    return nn.Sequential(*layers)


class ParameterAutoencoder(nn.Module):
    def __init__(self, spec: PolicySpec, cfg: AutoencoderConfig):
        super().__init__()
        self.cfg = cfg
        all_groups = spec.token_groups()
        names = {g.name for g in all_groups}
        unknown = set(cfg.constant_groups) - names
        check(not unknown, f"autoencoder: constant_groups {sorted(unknown)} are not token groups of spec {spec.name} "
                           f"({', '.join(sorted(names))})")
        self.spec_groups = all_groups
        self.groups = [g for g in all_groups if g.name not in cfg.constant_groups]  # the coded ones
        check(self.groups, f"autoencoder: every token group of spec {spec.name} is constant: nothing to generate")
        self.num_params = spec.num_params
        self.num_tokens = len(self.groups)
        kinds: dict[str, list[int]] = {}
        for i, g in enumerate(self.groups):
            kinds.setdefault(g.kind, []).append(i)
        self.kinds = kinds
        self.kind_size = {k: max(self.groups[i].size for i in idx) for k, idx in kinds.items()}
        self.encoders = nn.ModuleDict({k: _mlp(s, cfg.hidden_dim, cfg.token_dim, cfg.depth) for k, s in self.kind_size.items()})
        self.decoders = nn.ModuleDict({k: _mlp(cfg.token_dim, cfg.hidden_dim, s, cfg.depth) for k, s in self.kind_size.items()})
        self.token_offset = nn.Parameter(torch.zeros(self.num_tokens, cfg.token_dim))
        # parameters are standardized per element (mean) and per group (one std each) before encoding
        self.param_norm = Normalizer(spec.num_params, min_std=1e-6)
        # latents are standardized for the diffusion model (fitted after training)
        self.latent_norm = Normalizer((self.num_tokens, cfg.token_dim), min_std=1e-3)

    @torch.no_grad()
    def fit_param_norm(self, params: torch.Tensor) -> None:
        mean = params.mean(0)
        std = torch.ones(self.num_params)
        for name in self.cfg.constant_groups:  # bit-exact: a float mean of equal values can be off by an ulp
            g = next(g for g in self.spec_groups if g.name == name)
            mean[g.start:g.stop] = params[0, g.start:g.stop]
        for g in self.groups:
            std[g.start:g.stop] = (params[:, g.start:g.stop] - mean[g.start:g.stop]).std().clamp_min(1e-6)
        self.param_norm.mean.copy_(mean)
        self.param_norm.std.copy_(std)

    def _chunks(self, x: torch.Tensor, kind: str, raw: bool = False, noise: float = 0.0) -> torch.Tensor:
        """(B, n_kind, size) zero-padded group slices of `x` (raw=True: raw parameters, standardized
        here slice by slice; noise: Gaussian std added before padding)."""
        idx, size = self.kinds[kind], self.kind_size[kind]
        parts = []
        for i in idx:
            g = self.groups[i]
            c = x[:, g.start:g.stop]
            if raw:
                c = (c - self.param_norm.mean[g.start:g.stop]) / self.param_norm.std[g.start:g.stop]
            if noise:
                c = c + noise * torch.randn_like(c)
            if g.size < size:
                c = nn.functional.pad(c, (0, size - g.size))
            parts.append(c)
        return torch.stack(parts, 1)  # (B, n_kind, size)

    def _tokens(self, x: torch.Tensor, raw: bool = False, noise: float = 0.0) -> torch.Tensor:
        """(B, P) parameters (standardized, or raw=True) -> (B, T, D) unit-scale tokens, so latent noise
        and clamp have a fixed meaning whatever the policy."""
        z = x.new_empty(x.shape[0], self.num_tokens, self.cfg.token_dim)
        for k, idx in self.kinds.items():
            z[:, idx] = self.encoders[k](self._chunks(x, k, raw, noise))
        return nn.functional.layer_norm(z, (self.cfg.token_dim,))

    def _decoded(self, z: torch.Tensor):
        """(B, T, D) tokens -> per kind (B, n_kind, size) standardized, padded group values."""
        z = z.clamp(-self.cfg.latent_clamp, self.cfg.latent_clamp) + self.token_offset
        return {k: self.decoders[k](z[:, idx]) for k, idx in self.kinds.items()}

    def encode(self, params_norm: torch.Tensor) -> torch.Tensor:
        """(B, P) standardized parameters -> (B, T, D) latent tokens."""
        return self._tokens(params_norm)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, T, D) latent tokens -> (B, P) standardized parameters (constant groups: 0, i.e. the mean)."""
        out = z.new_zeros(z.shape[0], self.num_params) if self.cfg.constant_groups else z.new_empty(z.shape[0], self.num_params)
        for k, dec in self._decoded(z).items():
            for j, i in enumerate(self.kinds[k]):
                g = self.groups[i]
                out[:, g.start:g.stop] = dec[:, j, : g.size]
        return out

    def forward(self, params: torch.Tensor, augment: bool = True) -> torch.Tensor:
        """Training pass on raw flat parameters: returns the reconstruction loss (mean squared error in
        standardized space over the coded groups). Only coded groups are touched: a frozen layer that
        holds most of the parameters (go2-walk: 96 %) would otherwise dominate the cost of every step."""
        z = self._tokens(params, raw=True, noise=self.cfg.input_noise if augment else 0.0)
        if augment:
            z = z + self.cfg.latent_noise * torch.randn_like(z)
        se, n = z.new_zeros(()), 0
        for k, dec in self._decoded(z).items():
            target = self._chunks(params, k, raw=True)
            for j, i in enumerate(self.kinds[k]):
                size = self.groups[i].size
                se = se + (dec[:, j, :size] - target[:, j, :size]).pow(2).sum()
                n += size
        return se / (n * params.shape[0])

    # raw-space helpers used by the pipeline
    def params_to_latents(self, params: torch.Tensor) -> torch.Tensor:
        return self.latent_norm(self.encode(self.param_norm(params)))

    def latents_to_params(self, latents: torch.Tensor) -> torch.Tensor:
        return self.param_norm.inverse(self.decode(self.latent_norm.inverse(latents)))
