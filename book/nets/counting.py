"""Counting a network's size: trainable parameters, and multiply-adds of one forward pass.

Every chapter counts with these two functions (the course's parameter tables, He et al.'s Table 1 FLOPs).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["count_parameters", "count_macs"]


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters (BN's γ and β included, running statistics not)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-adds of one forward pass on one input of ``input_shape`` (e.g. ``(3, 224, 224)``).

    Counts convolutions and the fully connected layer, as the paper's Table 1
    "FLOPs" do; BN, ReLU, pooling and the additions are left out. The pass runs
    on PyTorch's ``meta`` device: only shapes are computed, so even ResNet-152
    counts in milliseconds.
    """
    import copy

    meta = copy.deepcopy(model).to("meta")
    total = 0

    def conv_hook(m: nn.Conv2d, inputs, out):
        nonlocal total
        k = m.weight.shape[1] * m.weight.shape[2] * m.weight.shape[3]  # (in / groups) × kh × kw
        total += out.numel() * k

    def linear_hook(m: nn.Linear, inputs, out):
        nonlocal total
        total += out.numel() * m.in_features

    handles = []
    for m in meta.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    meta.eval()
    with torch.no_grad():
        meta(torch.empty((1, *input_shape), device="meta"))
    for h in handles:
        h.remove()
    return total
