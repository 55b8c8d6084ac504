r"""Plain and residual MLP stacks, for probing gradients and activations through depth.

A residual layer computes :math:`y = x + \alpha\,\mathcal{F}(x)` with the
pre-activation branch :math:`\mathcal{F}(x) = W\,\varphi(\mathrm{norm}(x)) + b`
(He et al. 2016, arXiv 1603.05027); a plain layer is the branch alone,
:math:`y = \mathcal{F}(x)`. Zeroing the branch's last layer makes a residual
layer exactly the identity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .models import ConfigError

__all__ = ["MLPConfig", "MLPStack", "PlainLayer", "ResidualLayer"]


_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "linear": nn.Identity}
_NORMS = ("none", "batch", "layer")


@dataclass
class MLPConfig:
    """A stack of ``depth`` fully connected layers (plain) or blocks (residual)."""

    depth: int = 20                  # hidden layers (plain) or residual blocks
    width: int = 64                  # features of every hidden layer
    in_features: int = 40            # MNIST-1D sequence length
    out_features: int = 10           # classes
    residual: bool = True
    activation: str = "relu"         # relu | tanh | gelu | linear
    norm: str = "none"               # none | batch | layer, applied before the activation
    init: str = "default"            # default (PyTorch's) | kaiming | xavier | zero_branch
    branch_scale: float = 1.0        # α in y = x + α·F(x) (residual only)


def _check_mlp_config(cfg: MLPConfig) -> None:
    for name in ("depth", "width", "in_features", "out_features"):
        value = getattr(cfg, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{name} must be a whole number ≥ 1, got {value!r}.")
    if cfg.activation not in _ACTIVATIONS:
        raise ConfigError(f"activation {cfg.activation!r} is not one of {sorted(_ACTIVATIONS)}.")
    if cfg.norm not in _NORMS:
        raise ConfigError(f"norm {cfg.norm!r} is not one of {list(_NORMS)}.")
    if not math.isfinite(float(cfg.branch_scale)):
        raise ConfigError(f"branch_scale must be a finite number, got {cfg.branch_scale!r}.")


def _norm(kind: str, width: int) -> nn.Module:
    return {"none": nn.Identity, "batch": nn.BatchNorm1d, "layer": nn.LayerNorm}[kind](width) if kind != "none" else nn.Identity()


class PlainLayer(nn.Module):
    """One pre-activation layer: ``y = W·φ(norm(x)) + b``."""

    def __init__(self, width: int, activation: str = "relu", norm: str = "none"):
        super().__init__()
        self.norm = _norm(norm, width)
        self.act = _ACTIVATIONS[activation]()
        self.linear = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.act(self.norm(x)))


class ResidualLayer(nn.Module):
    r"""``y = x + α·F(x)`` with the pre-activation branch ``F(x) = W·φ(norm(x)) + b``."""

    def __init__(self, width: int, activation: str = "relu", norm: str = "none", branch_scale: float = 1.0):
        super().__init__()
        self.branch = PlainLayer(width, activation, norm)
        self.shortcut = nn.Identity()
        self.branch_scale = branch_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.branch_scale * self.branch(x)

    def zero_init_last(self) -> None:
        """Zero the branch's last layer: the block starts as the identity (Fixup / SkipInit)."""
        nn.init.zeros_(self.branch.linear.weight)
        nn.init.zeros_(self.branch.linear.bias)


class MLPStack(nn.Module):
    """Input layer → ``depth`` plain layers or residual blocks → head.

    Input ``(N, in_features)``, output ``(N, out_features)``.
    """

    def __init__(self, config: MLPConfig):
        super().__init__()
        _check_mlp_config(config)
        self.config = config
        c = config
        self.embed = nn.Linear(c.in_features, c.width)
        if c.residual:
            layers = [ResidualLayer(c.width, c.activation, c.norm, c.branch_scale) for _ in range(c.depth)]
        else:
            layers = [PlainLayer(c.width, c.activation, c.norm) for _ in range(c.depth)]
        self.layers = nn.Sequential(*layers)
        self.head = nn.Linear(c.width, c.out_features)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init = self.config.init
        if init not in ("default", "kaiming", "xavier", "zero_branch"):
            raise ConfigError(f"init {init!r} is not one of default, kaiming, xavier, zero_branch.")
        gain_name = self.config.activation if self.config.activation in ("relu", "tanh") else "linear"
        for m in self.modules():
            if isinstance(m, nn.Linear):
                if init == "kaiming":
                    nn.init.kaiming_normal_(m.weight, nonlinearity=gain_name)
                    nn.init.zeros_(m.bias)
                elif init == "xavier":
                    nn.init.xavier_normal_(m.weight, gain=nn.init.calculate_gain(gain_name))
                    nn.init.zeros_(m.bias)
        if init == "zero_branch" and self.config.residual:
            for layer in self.layers:
                layer.zero_init_last()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x.flatten(1))  # (N, width)
        x = self.layers(x)            # (N, width)
        return self.head(x)           # (N, out_features)


