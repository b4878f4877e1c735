"""Conditional 1D-convolution U-Net (the paper's diffusion backbone).

Input: latent tokens (B, T, D) read as T channels of length D. Global condition = behavior
embedding || diffusion-step embedding, applied to every residual block by FiLM (scale, shift).
Latent positions carry no spatial meaning, and a convolution cannot tell one position from
another, so learned position channels are concatenated to the input (CoordConv-style); without
them the network cannot place a mode at a particular latent coordinate.
"""
from __future__ import annotations

import math

import torch
from torch import nn


class SinusoidalStep(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        half = dim // 2
        self.register_buffer("freqs", torch.exp(-math.log(10000.0) * torch.arange(half) / max(half - 1, 1)), persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        a = t.float()[:, None] * self.freqs[None]
        return torch.cat([a.sin(), a.cos()], -1)


def _groups(c: int) -> int:
    return 8 if c % 8 == 0 else 1


class ConvBlock(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, k: int):
        super().__init__(nn.Conv1d(c_in, c_out, k, padding=k // 2), nn.GroupNorm(_groups(c_out), c_out), nn.SiLU())


class FiLMResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, cond_dim: int, k: int):
        super().__init__()
        self.block1, self.block2 = ConvBlock(c_in, c_out, k), ConvBlock(c_out, c_out, k)
        self.film = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, 2 * c_out))
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(cond).unsqueeze(-1).chunk(2, 1)
        h = self.block1(x) * (1 + scale) + shift
        return self.block2(h) + self.skip(x)


class ConditionalUnet1D(nn.Module):
    def __init__(self, in_channels: int, length: int, cond_dim: int, channels=(32, 64), kernel_size: int = 3,
                 step_embed_dim: int = 64, pos_channels: int = 8):
        super().__init__()
        self.pos = nn.Parameter(torch.randn(1, pos_channels, length)) if pos_channels else None
        levels = len(channels)
        assert length % (2 ** (levels - 1)) == 0, f"latent length {length} must be divisible by {2 ** (levels - 1)}"
        self.step = nn.Sequential(SinusoidalStep(step_embed_dim), nn.Linear(step_embed_dim, 4 * step_embed_dim),
                                  nn.SiLU(), nn.Linear(4 * step_embed_dim, step_embed_dim))
        g = cond_dim + step_embed_dim
        dims = [in_channels + pos_channels, *channels]
        self.down = nn.ModuleList()
        for i in range(levels):
            last = i == levels - 1
            self.down.append(nn.ModuleList([FiLMResBlock(dims[i], dims[i + 1], g, kernel_size),
                                            FiLMResBlock(dims[i + 1], dims[i + 1], g, kernel_size),
                                            nn.Identity() if last else nn.Conv1d(dims[i + 1], dims[i + 1], 3, 2, 1)]))
        self.mid = nn.ModuleList([FiLMResBlock(channels[-1], channels[-1], g, kernel_size) for _ in range(2)])
        self.up = nn.ModuleList()
        for i in reversed(range(1, levels)):
            self.up.append(nn.ModuleList([FiLMResBlock(2 * dims[i + 1], dims[i], g, kernel_size),
                                          FiLMResBlock(dims[i], dims[i], g, kernel_size),
                                          nn.ConvTranspose1d(dims[i], dims[i], 4, 2, 1)]))
        self.out = nn.Sequential(ConvBlock(channels[0], channels[0], kernel_size), nn.Conv1d(channels[0], in_channels, 1))
        self.in_channels = in_channels

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """x (B, T, D), t (B,) or scalar, cond (B, cond_dim) -> (B, T, D)."""
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        g = torch.cat([cond, self.step(t)], -1)
        if self.pos is not None:
            x = torch.cat([x, self.pos.expand(x.shape[0], -1, -1)], 1)
        skips = []
        for r1, r2, down in self.down:
            x = r2(r1(x, g), g)
            skips.append(x)
            x = down(x)
        for r in self.mid:
            x = r(x, g)
        for r1, r2, up in self.up:
            x = r2(r1(torch.cat([x, skips.pop()], 1), g), g)
            x = up(x)
        return self.out(x)
