"""Affine normalization fitted on a dataset; stored as buffers so it saves with the model."""
from __future__ import annotations

import torch
from torch import nn


class Normalizer(nn.Module):
    def __init__(self, shape, min_std: float = 1e-2):
        super().__init__()
        shape = tuple(shape) if not isinstance(shape, int) else (shape,)
        self.register_buffer("mean", torch.zeros(shape))
        self.register_buffer("std", torch.ones(shape))
        self.min_std = min_std

    @torch.no_grad()
    def fit(self, x: torch.Tensor, std: torch.Tensor | None = None) -> "Normalizer":
        """x: (N, *shape). A std may be given (e.g. one scalar per parameter group)."""
        x = x.float()
        self.mean.copy_(x.mean(0))
        s = x.std(0, unbiased=False) if std is None else std.expand_as(self.std)
        self.std.copy_(s.clamp_min(self.min_std))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean
