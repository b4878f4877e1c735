"""Contrastive behavior embedding (paper eq. 6-7).

h = phi(first n state-action pairs), v = psi(m states after the first success); trained with
InfoNCE through a learned bilinear W. The generator's condition is h || v. Without success
signals (locomotion, `mode="segment"`) a trajectory is cut into segments; each segment gives
(h from its first n pairs, v from its last m states) and the condition concatenates all segments.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..config import EmbeddingConfig
from ..errors import check
from ..trajectory import Trajectory
from .normalizer import Normalizer


def _mlp3(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    # paper: "two three-layer MLP embeddings"
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.LayerNorm(d_hidden), nn.ELU(),
                         nn.Linear(d_hidden, d_hidden), nn.ELU(), nn.Linear(d_hidden, d_out))


def min_prompt_length(cfg: EmbeddingConfig) -> int:
    if cfg.mode == "segment":
        return cfg.num_segments * max(cfg.n_steps, cfg.m_states)
    return max(cfg.n_steps, cfg.m_states)


def prompt_windows(traj: Trajectory, cfg: EmbeddingConfig) -> tuple[np.ndarray, np.ndarray]:
    """Raw inputs of the two embeddings: h_in (S, n, obs+act) and v_in (S, m, obs); S = segments (1 in success mode)."""
    T, n, m = len(traj), cfg.n_steps, cfg.m_states
    check(T >= min_prompt_length(cfg), f"prompt: trajectory has {T} steps, the generator needs at least {min_prompt_length(cfg)}")
    sa = np.concatenate([traj.states, traj.actions], 1)
    if cfg.mode == "segment":
        seg = T // cfg.num_segments
        starts = np.arange(cfg.num_segments) * seg
        h = np.stack([sa[s:s + n] for s in starts])
        v = np.stack([traj.states[s + seg - m:s + seg] for s in starts])
        return h, v
    k = traj.first_success
    # no success in the prompt (sub-optimal behavior): its last m states stand in for the outcome
    k = T - m if k < 0 or k + m > T else k
    return sa[None, :n], traj.states[None, k:k + m]


class BehaviorEmbedding(nn.Module):
    def __init__(self, obs_dim: int, act_dim: int, cfg: EmbeddingConfig):
        super().__init__()
        self.cfg, self.obs_dim, self.act_dim = cfg, obs_dim, act_dim
        self.state_norm = Normalizer(obs_dim)
        self.action_norm = Normalizer(act_dim)
        self.h_net = _mlp3(cfg.n_steps * (obs_dim + act_dim), cfg.hidden_dim, cfg.out_dim)
        self.v_net = _mlp3(cfg.m_states * obs_dim, cfg.hidden_dim, cfg.out_dim)
        self.W = nn.Parameter(torch.eye(cfg.out_dim))
        # InfoNCE temperature is folded into W; start it at a scale that gives usable gradients
        self.log_scale = nn.Parameter(torch.tensor(np.log(1.0 / cfg.out_dim ** 0.5), dtype=torch.float32))

    @torch.no_grad()
    def fit_normalizers(self, states: torch.Tensor, actions: torch.Tensor) -> None:
        self.state_norm.fit(states)
        self.action_norm.fit(actions)

    def embed_pair(self, h_in: torch.Tensor, v_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h_in (B, n, obs+act), v_in (B, m, obs) raw -> h (B, out), v (B, out)."""
        o = self.obs_dim
        hs = torch.cat([self.state_norm(h_in[..., :o]), self.action_norm(h_in[..., o:])], -1)
        return self.h_net(hs.flatten(1)), self.v_net(self.state_norm(v_in).flatten(1))

    def info_nce(self, h: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Paper eq. 6: -log softmax_j(h_i^T W v_j)[i]. Returns (loss, accuracy of picking v_i)."""
        logits = (h @ self.W @ v.T) * self.log_scale.exp()
        target = torch.arange(len(h), device=h.device)
        return nn.functional.cross_entropy(logits, target), (logits.argmax(1) == target).float().mean()

    def condition(self, h_in: torch.Tensor, v_in: torch.Tensor) -> torch.Tensor:
        """h_in (B, S, n, obs+act), v_in (B, S, m, obs) -> condition (B, S * 2 * out)."""
        B, S = h_in.shape[:2]
        h, v = self.embed_pair(h_in.flatten(0, 1), v_in.flatten(0, 1))
        return torch.cat([h, v], -1).reshape(B, S * 2 * self.cfg.out_dim)

    def condition_from_trajectories(self, trajs: list[Trajectory]) -> torch.Tensor:
        dev = self.W.device
        wins = [prompt_windows(t, self.cfg) for t in trajs]
        h_in = torch.as_tensor(np.stack([w[0] for w in wins]), device=dev)
        v_in = torch.as_tensor(np.stack([w[1] for w in wins]), device=dev)
        return self.condition(h_in, v_in)
