r"""Every shortcut of the course, in one place: the ``shortcut(x)`` of :math:`y = \mathcal{F}(x) + \mathrm{shortcut}(x)`.

The shortcut is always a module (``nn.Identity()`` when shapes match), never
``None``, so a probe can hook every shortcut the same way. The modules here
work on 1-D maps ``(N, C, L)`` and 2-D maps ``(N, C, H, W)`` alike.

- He et al. 2015 (arXiv 1512.03385, §3.3): option A (:class:`PadChannelsShortcut`)
  and options B/C (:class:`ProjectionShortcut`) for blocks that change the shape.
- He et al. 2016 (arXiv 1603.05027, Fig. 2): constant scaling, :class:`ScaledShortcut`,
  the variant Chapter 4 trains (its gated, 1×1-conv and dropout shortcuts are quoted there, not built).
- Wang et al. 2022 (DeepNet, arXiv 2203.00555): the up-scaled shortcut ``α·x``
  is :class:`ScaledShortcut` with α > 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PadChannelsShortcut", "ProjectionShortcut", "ScaledShortcut"]


def _conv(dims: int):
    return {1: nn.Conv1d, 2: nn.Conv2d}[dims]


class PadChannelsShortcut(nn.Module):
    """Option A: keep every ``stride``-th position and zero-pad the extra channels.

    ``(N, C, *S) -> (N, C + extra, *S / stride)``, no parameters. The padded
    channels carry no signal: the branch alone must fill them.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.extra, self.stride = out_channels - in_channels, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spatial = (slice(None, None, self.stride),) * (x.dim() - 2)
        x = x[(slice(None), slice(None)) + spatial]
        # F.pad pads the last axes first: leave every spatial axis alone, pad the channel axis at its end.
        return F.pad(x, (0, 0) * (x.dim() - 2) + (0, self.extra))

    def extra_repr(self) -> str:
        return f"extra_channels={self.extra}, stride={self.stride}"


class ProjectionShortcut(nn.Sequential):
    """Options B and C: ``W_s x`` as a 1×1 conv (with the block's stride) followed by batch norm."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, dims: int = 2):
        norm = nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d
        super().__init__(_conv(dims)(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                         norm(out_channels))


class ScaledShortcut(nn.Module):
    """Constant scaling: ``scale · x``.

    He et al. 2016 try ``scale = 0.5`` (it hurts); DeepNet up-scales the
    stream with ``scale = α = (2N)^¼ > 1`` before each post-LN sum.
    """

    def __init__(self, scale: float = 0.5):
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * x

    def extra_repr(self) -> str:
        return f"scale={self.scale:.4g}"
