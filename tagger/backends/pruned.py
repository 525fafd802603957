"""A musicnn backbone without its dead filters: the same outputs for much less work.

Training left most of the published musicnn-msd's front-end filters dead: their weights
are zero to within 1e-6 of the block's largest (181 of 204 in its first timbral conv), so
their maps are constants. ``PrunedMusiCNN`` computes only the live filters and folds the
constants into what reads them: the first mid-end conv (with the zero padding at a run's
ends kept exact by convolving a map of ones) and the dense layer's bias. The exported graph
(``tagger.backends.graph``) runs it; torch's own path keeps the full model.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from tagger.models.musicnn import FrequencyPooledConv, MusiCNN, eval_norm

# A filter whose weights are all within this share of its block's largest weight is dead.
DEAD_WEIGHT = 1e-6


def live_filters(block: FrequencyPooledConv) -> torch.Tensor:
    """Which of ``block``'s filters are not dead (a boolean per filter)."""
    largest = block.conv.weight.detach().flatten(1).abs().amax(dim=1)
    return largest > DEAD_WEIGHT * largest.max()


def _kept_filters(block: FrequencyPooledConv, live: torch.Tensor) -> FrequencyPooledConv:
    """``block`` with only its ``live`` filters."""
    kept = FrequencyPooledConv(int(live.sum()), block.conv.kernel_size)
    kept.conv.weight.data = block.conv.weight.detach()[live].clone()
    kept.conv.bias.data = block.conv.bias.detach()[live].clone()
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(kept.norm, name).data = getattr(block.norm, name).detach()[live].clone()
    kept.norm.eps = block.norm.eps
    return kept.eval()


def _dead_values(block: FrequencyPooledConv, live: torch.Tensor) -> torch.Tensor:
    """The constant maps of ``block``'s dead filters: ReLU of the bias, then the BatchNorm."""
    scale, shift = eval_norm(block.norm)
    return (torch.relu(block.conv.bias) * scale + shift).detach()[~live]


class PrunedMusiCNN(nn.Module):
    """An eval-mode ``MusiCNN``'s embedding of pooled windows, its dead front-end filters
    left out: ``maps`` then ``embed_pooled`` give what the model's own give, to float32
    rounding (tested)."""

    def __init__(self, member: MusiCNN) -> None:
        super().__init__()
        member = copy.deepcopy(member).eval()
        self.head_pooled = member.head_pooled
        self.input_norm = member.input_norm
        self.halo = max(max(block.before, block.after) for block in member.frontend)
        lives = [live_filters(block) for block in member.frontend]
        self.frontend = nn.ModuleList(_kept_filters(block, live)
                                      for block, live in zip(member.frontend, lives, strict=True))
        live_front = torch.cat(lives)
        dead_values = torch.cat([_dead_values(block, live)
                                 for block, live in zip(member.frontend, lives, strict=True)])

        first = member.midend[0].conv
        weight = first.weight.detach()  # (out, front, 7)
        member.midend[0].conv = nn.Conv1d(int(live_front.sum()), weight.shape[0],
                                          weight.shape[2], padding=first.padding)
        member.midend[0].conv.weight.data = weight[:, live_front].clone()
        member.midend[0].conv.bias.data = first.bias.detach().clone()
        self.midend = member.midend
        self.any_dead = not bool(live_front.all())
        self.register_buffer("dead_kernel", (weight[:, ~live_front]
                                             * dead_values[None, :, None]).sum(1, keepdim=True))

        live_pooled = torch.cat([live_front, torch.ones(3 * weight.shape[0], dtype=torch.bool)]
                                ).repeat_interleave(2)  # max and mean of every channel
        dead_pooled = dead_values.repeat_interleave(2)
        scale, shift = eval_norm(member.pool_norm)
        scale, shift = scale.detach(), shift.detach()
        dense = member.dense.weight.detach()
        self.pool_norm = nn.BatchNorm1d(int(live_pooled.sum()), eps=member.pool_norm.eps).eval()
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(self.pool_norm, name).data = \
                getattr(member.pool_norm, name).detach()[live_pooled].clone()
        dead_normed = dead_pooled * scale[~live_pooled] + shift[~live_pooled]
        self.dense = nn.Linear(int(live_pooled.sum()), dense.shape[0])
        self.dense.weight.data = dense[:, live_pooled].clone()
        self.dense.bias.data = member.dense.bias.detach() + dense[:, ~live_pooled] @ dead_normed
        self.dense_norm = member.dense_norm
        # With ``head_pooled`` the head reads every pooled value, normed, in the model's order.
        self.register_buffer("dead_normed", dead_normed)
        order = torch.cat([torch.nonzero(live_pooled)[:, 0], torch.nonzero(~live_pooled)[:, 0]])
        self.register_buffer("pooled_order", torch.argsort(order))

    def maps(self, melgrams: torch.Tensor) -> torch.Tensor:
        """``MusiCNN.feature_maps`` in eval mode over a run ``(1, T, F)``, live front-end
        channels only (the mid-end's are all kept)."""
        image = self.input_norm(melgrams.unsqueeze(1))
        padded = nn.functional.pad(image, (0, 0, self.halo, self.halo))
        frames = melgrams.shape[1]
        front = torch.cat([block.pooled_frames(padded, self.halo, frames)
                           for block in self.frontend], dim=1)
        first = self.midend[0]
        summed = first.conv(front)
        if self.any_dead:  # their share of this conv: a constant, but at the run's ends
            summed = summed + nn.functional.conv1d(torch.ones_like(front[:, :1]),
                                                   self.dead_kernel,
                                                   padding=self.dead_kernel.shape[2] // 2)
        layers = [first.norm(torch.relu(summed))]
        for block in self.midend[1:]:
            layers.append(block(layers[-1]) + layers[-1])
        return torch.cat([front, *layers], dim=1)

    def embed_pooled(self, pooled: torch.Tensor) -> torch.Tensor:
        """``MusiCNN.embed_pooled`` in eval mode, from the live channels' pooled maps."""
        normed = self.pool_norm(pooled)
        embedding = self.dense_norm(torch.relu(self.dense(normed)))
        if not self.head_pooled:
            return embedding
        # (Broadcast, not expanded to len(normed): an exported graph keeps runs' length free.)
        every = torch.cat([normed, torch.zeros_like(normed[:, :1]) + self.dead_normed], dim=1)
        return torch.cat([embedding, every[:, self.pooled_order]], dim=1)
