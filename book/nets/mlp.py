r"""Plain and residual MLP stacks, for probing gradients and activations through depth.

A residual block computes :math:`y = x + \alpha\,g\,\mathcal{F}(x)`: the
shortcut is the identity, :math:`\alpha` a fixed branch scale from the config
and :math:`g` a learnable scalar gain (1 unless the block starts from SkipInit /
ReZero's :math:`g = 0`). The branch :math:`\mathcal{F}` is ``branch_layers``
fully connected layers, each either pre-activation,
:math:`W\,\varphi(\mathrm{norm}(x)) + b` (He et al. 2016, arXiv 1603.05027), or
post-norm, :math:`\mathrm{norm}(W\,\varphi(x) + b)`. A plain layer is one such
layer alone, :math:`y = \mathcal{F}(x)`.

Initialization schemes (``MLPConfig.init``):

========================  ============================================================
``default``               PyTorch's ``nn.Linear`` init (uniform, std 1/√(3·fan_in))
``xavier``                Glorot & Bengio 2010 with the activation's gain (√2 for ReLU): normal, std gain·√(2/(fan_in+fan_out))
``xavier_gain1``          Glorot & Bengio 2010 as published (gain 1): normal, std √(2/(fan_in+fan_out))
``kaiming``               He et al. 2015: normal, std gain/√fan_in (fan-in mode)
``orthogonal``            Saxe et al. 2014: a random orthogonal matrix times the gain
``small``                 normal with std 0.01 (the "small random numbers" of early nets)
``zero_branch``           Kaiming, then each branch's last weight layer set to zero
``zero_gamma``            Kaiming, then each branch's last norm γ set to zero (Goyal et al. 2017)
``skipinit``              Kaiming, then each block's gain g set to zero (SkipInit / ReZero)
``fixup``                 Fixup (Zhang et al. 2019): branch layers scaled by L^(-1/(2m-2)), the last one zeroed
``inv_sqrt_depth``        Kaiming, then each branch's last weight layer scaled by 1/√L
========================  ============================================================

The last five are residual-specific: a plain stack has no branch to shrink,
and asking for one raises :class:`ConfigError`. Fixup also zeroes the
classifier; we keep the head's own init so that a gradient probe at
initialization sees a gradient (a zero head only delays the first update).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ConfigError, validate_choice, validate_whole_number

__all__ = ["MLPConfig", "MLPStack", "PlainLayer", "ResidualLayer", "INITS", "GENERIC_INITS",
           "RESIDUAL_INITS", "ACTIVATIONS", "NORMS", "validate_mlp_config"]


ACTIVATIONS = ("relu", "tanh", "gelu", "linear")
_ACTIVATION_MODULES = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "linear": nn.Identity}
NORMS = ("none", "batch", "layer")
GENERIC_INITS = ("default", "xavier", "xavier_gain1", "kaiming", "orthogonal", "small")
RESIDUAL_INITS = ("zero_branch", "zero_gamma", "skipinit", "fixup", "inv_sqrt_depth")
INITS = GENERIC_INITS + RESIDUAL_INITS
SMALL_INIT_STD = 0.01


@dataclass
class MLPConfig:
    """A stack of ``depth`` fully connected layers (plain) or blocks (residual)."""

    depth: int = 20                  # hidden layers (plain) or residual blocks
    width: int = 64                  # features of every hidden layer
    in_features: int = 40            # MNIST-1D sequence length
    out_features: int = 10           # classes
    residual: bool = True
    activation: str = "relu"         # relu | tanh | gelu | linear
    norm: str = "none"               # none | batch | layer
    norm_position: str = "pre"       # pre: W·φ(norm(x)) + b (He 2016) | post: norm(W·φ(x) + b)
    init: str = "default"            # one of INITS (see the module docstring)
    branch_scale: float = 1.0        # fixed α in y = x + α·g·F(x) (residual only)
    branch_layers: int = 1           # weight layers per residual branch (m)


def validate_mlp_config(cfg: MLPConfig) -> None:
    for name in ("depth", "width", "in_features", "out_features", "branch_layers"):
        validate_whole_number(name, getattr(cfg, name), minimum=1)
    validate_choice("activation", cfg.activation, ACTIVATIONS)
    validate_choice("norm", cfg.norm, NORMS)
    if cfg.norm_position not in ("pre", "post"):
        raise ConfigError(f"norm_position {cfg.norm_position!r} is not 'pre' or 'post'.")
    if isinstance(cfg.branch_scale, bool) or not isinstance(cfg.branch_scale, (int, float)) \
            or not math.isfinite(float(cfg.branch_scale)):
        raise ConfigError(f"branch_scale must be a finite number, got {cfg.branch_scale!r}.")
    validate_choice("init", cfg.init, INITS)
    if cfg.init in RESIDUAL_INITS and not cfg.residual:
        raise ConfigError(f"init {cfg.init!r} shrinks residual branches; a plain stack has none. "
                          f"Use one of {list(GENERIC_INITS)} or a residual stack.")
    if cfg.init == "zero_gamma" and (cfg.norm == "none" or cfg.norm_position != "post"):
        raise ConfigError("init 'zero_gamma' zeroes the γ of the norm that ends each branch: "
                          "it needs norm='batch' or 'layer' with norm_position='post'.")
    if cfg.init == "fixup" and cfg.branch_layers < 2:
        raise ConfigError("init 'fixup' scales all but the last layer of each branch by L^(-1/(2m-2)): "
                          "it needs branch_layers ≥ 2.")


def _norm(kind: str, width: int) -> nn.Module:
    return {"none": nn.Identity, "batch": nn.BatchNorm1d, "layer": nn.LayerNorm}[kind](width) \
        if kind != "none" else nn.Identity()


class PlainLayer(nn.Module):
    """One fully connected layer.

    ``pre`` (default): ``y = W·φ(norm(x)) + b``; ``post``: ``y = norm(W·φ(x) + b)``.
    In both, ``self.norm`` is the layer's only norm and ``self.linear`` its only weight.
    """

    def __init__(self, width: int, activation: str = "relu", norm: str = "none", norm_position: str = "pre"):
        super().__init__()
        self.norm_position = norm_position
        self.norm = _norm(norm, width)
        self.act = _ACTIVATION_MODULES[activation]()
        self.linear = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm_position == "pre":
            return self.linear(self.act(self.norm(x)))
        return self.norm(self.linear(self.act(x)))


class ResidualLayer(nn.Module):
    r"""``y = x + α·g·F(x)``: ``F`` is ``branch_layers`` :class:`PlainLayer` s, α fixed, g learnable."""

    def __init__(self, width: int, activation: str = "relu", norm: str = "none", branch_scale: float = 1.0,
                 norm_position: str = "pre", branch_layers: int = 1):
        super().__init__()
        self.branch = nn.Sequential(*[PlainLayer(width, activation, norm, norm_position)
                                      for _ in range(branch_layers)])
        self.shortcut = nn.Identity()
        self.branch_scale = float(branch_scale)       # α: fixed
        self.gain = nn.Parameter(torch.ones(()))      # g: learnable, 1 unless SkipInit / ReZero zeroes it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.shortcut(x) + self.branch_scale * self.gain * self.branch(x)
        return x

    @property
    def last(self) -> PlainLayer:
        return self.branch[-1]

    def zero_init_last(self) -> None:
        """Zero the branch's last weight layer: the block starts as the identity (Fixup / T-Fixup style)."""
        nn.init.zeros_(self.last.linear.weight)
        nn.init.zeros_(self.last.linear.bias)

    def zero_init_last_norm(self) -> None:
        """Zero the γ of the norm that ends the branch (Goyal et al. 2017, arXiv 1706.02677)."""
        norm = self.last.norm
        if self.last.norm_position != "post" or isinstance(norm, nn.Identity):
            raise ConfigError("this block's branch does not end in a norm (use norm_position='post').")
        nn.init.zeros_(norm.weight)

    def zero_init_gain(self) -> None:
        """Start the learnable branch gain at g = 0 (SkipInit, De & Smith 2020, arXiv 2002.10444;
        ReZero, Bachlechner et al. 2020, arXiv 2003.04887)."""
        nn.init.zeros_(self.gain)

    def fixup_init(self, num_blocks: int) -> None:
        """Fixup (Zhang et al. 2019, arXiv 1901.09321): scale the branch's first m−1 layers (He-initialised)
        by L^(-1/(2m-2)) and zero its last, so the block starts as the identity and its update stays O(1/L)."""
        m = len(self.branch)
        scale = num_blocks ** (-1.0 / (2 * m - 2))
        with torch.no_grad():
            for layer in list(self.branch)[:-1]:
                layer.linear.weight.mul_(scale)
        self.zero_init_last()

    def scale_last(self, factor: float) -> None:
        """Multiply the branch's last weight layer by ``factor`` (1/√L branch scaling)."""
        with torch.no_grad():
            self.last.linear.weight.mul_(factor)
            self.last.linear.bias.mul_(factor)


class MLPStack(nn.Module):
    """Input layer → ``depth`` plain layers or residual blocks → head.

    Input ``(N, in_features)`` (anything that flattens to it), output ``(N, out_features)``.
    """

    def __init__(self, config: MLPConfig):
        super().__init__()
        validate_mlp_config(config)
        self.config = config
        c = config
        self.embed = nn.Linear(c.in_features, c.width)
        if c.residual:
            layers = [ResidualLayer(c.width, c.activation, c.norm, c.branch_scale, c.norm_position, c.branch_layers)
                      for _ in range(c.depth)]
        else:
            layers = [PlainLayer(c.width, c.activation, c.norm, c.norm_position) for _ in range(c.depth)]
        self.layers = nn.Sequential(*layers)
        self.head = nn.Linear(c.width, c.out_features)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise every weight by ``config.init`` (norms start at γ = 1, β = 0)."""
        c = self.config
        base = "kaiming" if c.init in RESIDUAL_INITS else c.init
        gain_name = c.activation if c.activation in ("relu", "tanh") else "linear"
        gain = nn.init.calculate_gain(gain_name)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                m.reset_parameters()  # PyTorch's default
                if base == "default":
                    continue
                if base == "kaiming":
                    nn.init.kaiming_normal_(m.weight, nonlinearity=gain_name)
                elif base == "xavier":
                    nn.init.xavier_normal_(m.weight, gain=gain)
                elif base == "xavier_gain1":
                    nn.init.xavier_normal_(m.weight, gain=1.0)
                elif base == "orthogonal":
                    nn.init.orthogonal_(m.weight, gain=gain)
                elif base == "small":
                    nn.init.normal_(m.weight, std=SMALL_INIT_STD)
                nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm1d, nn.LayerNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, ResidualLayer):
                nn.init.ones_(m.gain)
        if not c.residual:
            return
        for layer in self.layers:
            if c.init == "zero_branch":
                layer.zero_init_last()
            elif c.init == "zero_gamma":
                layer.zero_init_last_norm()
            elif c.init == "skipinit":
                layer.zero_init_gain()
            elif c.init == "fixup":
                layer.fixup_init(c.depth)
            elif c.init == "inv_sqrt_depth":
                layer.scale_last(1.0 / math.sqrt(c.depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x.flatten(1))  # (N, width)
        x = self.layers(x)            # (N, width)
        return self.head(x)           # (N, out_features)
