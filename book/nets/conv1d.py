r"""Plain and residual 1-D conv nets in the style of He et al. (2015). MLP stacks live in :mod:`book.nets.mlp`.

A residual block computes

.. math::  y = \mathcal{F}(x) + \mathrm{shortcut}(x),

where :math:`\mathcal{F}` (the *branch*) is a couple of weight layers and the
shortcut is the identity whenever shapes match. A plain block is the same
branch without the addition. Everything else (stem, widths, head, init) is
shared, so comparing the two isolates the effect of the ``+ x``.

The file reads top to bottom: helpers → blocks → networks → constructors.
"""

from __future__ import annotations

from collections import OrderedDict

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ConfigError, is_whole_number
from .shortcuts import PadChannelsShortcut

__all__ = [
    "ConvNetConfig", "ConvNet1d", "PlainBlock1d", "BasicBlock1d", "PreActBlock1d", "StochasticDepthBlock1d",
    "conv_net", "plain_net", "resnet", "he_init_", "validate_6n_plus_2_depth", "validate_conv_config",
    "deepen_with_identities", "make_identity_",
]


# --------------------------------------------------------------------------- helpers

def conv3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv1d:
    """3-tap convolution with padding 1 and no bias (a BatchNorm follows)."""
    return nn.Conv1d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


# --------------------------------------------------------------------------- conv blocks

def _branch(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    # Conv → BN → ReLU → Conv → BN: the two weight layers of a basic block.
    return nn.Sequential(OrderedDict(
        conv1=conv3(in_channels, out_channels, stride), bn1=nn.BatchNorm1d(out_channels), relu=nn.ReLU(inplace=True),
        conv2=conv3(out_channels, out_channels), bn2=nn.BatchNorm1d(out_channels),
    ))


class PlainBlock1d(nn.Module):
    """Two weight layers and no shortcut: ``y = relu(F(x))``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.branch = _branch(in_channels, out_channels, stride)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.branch(x))


class BasicBlock1d(nn.Module):
    """The residual basic block: ``y = relu(F(x) + shortcut(x))``.

    The shortcut is ``nn.Identity()`` when shapes match and the parameter-free
    option A shortcut when the block halves the length and widens the channels.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.branch = _branch(in_channels, out_channels, stride)
        if stride == 1 and in_channels == out_channels:
            self.shortcut: nn.Module = nn.Identity()
        else:
            self.shortcut = PadChannelsShortcut(in_channels, out_channels, stride)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.branch(x) + self.shortcut(x)  # the residual sum, out of place
        return self.relu(out)

    def zero_init_last(self) -> None:
        """Zero the last BN's γ so the branch starts at 0 (Goyal et al. 2017, arXiv 1706.02677)."""
        nn.init.zeros_(self.branch.bn2.weight)


class PreActBlock1d(nn.Module):
    """He et al. 2016's full pre-activation block: ``y = F(x) + shortcut(x)``, nothing after the sum.

    The branch is BN → ReLU → conv → BN → ReLU → conv, so BatchNorm and ReLU act *before* each weight layer and
    the shortcut path from block to block holds no layer at all (arXiv 1603.05027, Fig. 4e). A net of these
    blocks ends with one BN → ReLU before its pooling, as the paper's does.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.branch = nn.Sequential(OrderedDict(
            bn1=nn.BatchNorm1d(in_channels), relu1=nn.ReLU(), conv1=conv3(in_channels, out_channels, stride),
            bn2=nn.BatchNorm1d(out_channels), relu2=nn.ReLU(), conv2=conv3(out_channels, out_channels),
        ))
        if stride == 1 and in_channels == out_channels:
            self.shortcut: nn.Module = nn.Identity()
        else:
            self.shortcut = PadChannelsShortcut(in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.branch(x) + self.shortcut(x)  # the residual sum, and nothing after it


class StochasticDepthBlock1d(BasicBlock1d):
    """A basic block whose branch is dropped at random while training (Huang et al. 2016, arXiv 1603.09382).

    In training, each mini-batch keeps the branch with probability ``survival``
    and otherwise passes only the shortcut: ``y = relu(shortcut(x))``. At test
    time every branch is kept, scaled by its survival probability, so its
    expected contribution is what training saw: ``y = relu(survival·F(x) + shortcut(x))``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, survival: float = 1.0):
        super().__init__(in_channels, out_channels, stride)
        self.survival = survival

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            if torch.rand(()) >= self.survival:       # drop the whole branch for this mini-batch
                return self.relu(self.shortcut(x))
            return self.relu(self.branch(x) + self.shortcut(x))
        return self.relu(self.survival * self.branch(x) + self.shortcut(x))

    def extra_repr(self) -> str:
        return f"survival={self.survival:.3g}"


# --------------------------------------------------------------------------- conv network

@dataclass
class ConvNetConfig:
    """A 1-D version of He et al.'s CIFAR networks: 6n+2 weighted layers."""

    depth: int = 20                      # weighted layers: stem + 6n convs + classifier
    residual: bool = True                # BasicBlock1d (True) or PlainBlock1d (False)
    widths: tuple[int, int, int] = (16, 32, 64)  # channels of the three stages (paper: 16/32/64)
    in_channels: int = 1                 # MNIST-1D has one channel
    num_classes: int = 10
    zero_init_residual: bool = False     # start every residual branch at zero (Goyal et al.)
    preactivation: bool = False          # PreActBlock1d (He et al. 2016) instead of BasicBlock1d
    final_norm: bool = False             # original blocks, then the pre-activation net's BN → ReLU before the pool
                                         # (Chapter 4's control: the ending without the blocks)
    final_survival: float = 1.0          # < 1: stochastic depth, survival decaying linearly from 1 to this
                                         # value at the last block (Huang et al. use 0.5)

    @property
    def blocks_per_stage(self) -> int:
        return (self.depth - 2) // 6


def validate_6n_plus_2_depth(depth) -> int:
    """Return ``depth`` if He et al.'s CIFAR family has it (6n+2 weighted layers, n ≥ 1: 8, 14, 20, …); else raise
    :class:`~book.errors.ConfigError` naming the nearest depths it has. The 1-D nets here and the image nets of
    :mod:`book.nets.resnets` share it."""
    if is_whole_number(depth) and depth >= 8 and (depth - 2) % 6 == 0:
        return depth
    hint = ""
    if is_whole_number(depth) and depth >= 8:
        lower = depth - (depth - 2) % 6
        hint = f" The nearest allowed depths are {lower} and {lower + 6}."
    raise ConfigError(
        f"depth {depth!r} is not a depth this network family has: it needs 6n+2 weighted layers "
        f"(n ≥ 1), e.g. 8, 14, 20, 32, 44, 56.{hint}"
    )


def validate_conv_config(cfg: ConvNetConfig) -> None:
    validate_6n_plus_2_depth(cfg.depth)
    if any(isinstance(w, bool) or not isinstance(w, int) or w <= 0 for w in cfg.widths):
        raise ConfigError(f"widths {cfg.widths!r} must be positive whole numbers of channels, e.g. (16, 32, 64).")
    if list(cfg.widths) != sorted(cfg.widths):
        raise ConfigError(f"widths {cfg.widths!r} must not shrink from one stage to the next.")
    if not 0 < cfg.final_survival <= 1:
        raise ConfigError(f"final_survival {cfg.final_survival!r} must be a probability in (0, 1].")
    if cfg.final_survival < 1 and not cfg.residual:
        raise ConfigError("stochastic depth drops residual branches: a plain net has none to drop.")
    if cfg.preactivation and not cfg.residual:
        raise ConfigError("pre-activation is a residual block's layout: a plain net has no sum to move it around.")
    if cfg.preactivation and (cfg.final_survival < 1 or cfg.zero_init_residual):
        raise ConfigError("the pre-activation net here has neither stochastic depth nor a zero-initialised branch.")
    if cfg.final_norm and (cfg.preactivation or not cfg.residual):
        raise ConfigError("final_norm adds the pre-activation net's last BatchNorm to a net of original residual "
                          "blocks: the pre-activation net has it already, and a plain net is not the comparison.")


class ConvNet1d(nn.Module):
    """Stem conv → three stages of blocks (length 40 → 20 → 10) → global average pool → linear.

    Input ``(N, 1, 40)``, output logits ``(N, num_classes)``.
    """

    def __init__(self, config: ConvNetConfig):
        super().__init__()
        validate_conv_config(config)
        self.config = config
        block = (PreActBlock1d if config.preactivation else BasicBlock1d) if config.residual else PlainBlock1d
        w = config.widths
        self.stem = nn.Sequential(conv3(config.in_channels, w[0]), nn.BatchNorm1d(w[0]), nn.ReLU(inplace=True))
        layers, in_ch = [], w[0]
        n_blocks = 3 * config.blocks_per_stage
        for stage, out_ch in enumerate(w):
            for i in range(config.blocks_per_stage):
                stride = 2 if (stage > 0 and i == 0) else 1
                if config.residual and config.final_survival < 1:
                    # Huang et al.'s linear decay rule: block l of L survives with p_l = 1 − (l / L)(1 − p_L)
                    l = len(layers) + 1
                    survival = 1 - l / n_blocks * (1 - config.final_survival)
                    layers.append(StochasticDepthBlock1d(in_ch, out_ch, stride, survival=survival))
                else:
                    layers.append(block(in_ch, out_ch, stride))
                in_ch = out_ch
        self.blocks = nn.Sequential(*layers)
        if config.preactivation or config.final_norm:
            # a pre-activation net's last sum is not normalized yet: one BN → ReLU before the pool, as in the paper
            self.final = nn.Sequential(nn.BatchNorm1d(in_ch), nn.ReLU())
        self.head = nn.Linear(in_ch, config.num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        he_init_(self, self.config.zero_init_residual)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)              # (N, w0, 40)
        x = self.blocks(x)            # (N, w2, 10)
        if self.config.preactivation or self.config.final_norm:
            x = self.final(x)
        x = x.mean(dim=-1)            # global average pool → (N, w2)
        return self.head(x)           # (N, num_classes)


def he_init_(model: nn.Module, zero_init_residual: bool = False) -> nn.Module:
    """He et al.'s init for a conv net, 1-D or 2-D: Kaiming normal (fan-out) for every conv, BN at γ = 1, β = 0
    ("Delving deep into rectifiers", 2015); then, if asked, every block's own ``zero_init_last`` (Goyal et al.)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    if zero_init_residual:
        for m in model.modules():
            if hasattr(m, "zero_init_last"):
                m.zero_init_last()
    return model


# --------------------------------------------------------------------------- the construction argument

@torch.no_grad()
def make_identity_(block: PlainBlock1d) -> PlainBlock1d:
    """Set a plain block (stride 1, equal channels) to compute the identity on its inputs.

    Each conv becomes the identity kernel (centre tap = I) and each BN, in eval
    mode, the identity map (running mean 0, variance 1 − ε, γ = 1, β = 0). Inputs
    of a block follow a ReLU, so they are ≥ 0 and ``relu(relu(x)) = x``.
    """
    for m in block.branch:
        if isinstance(m, nn.Conv1d):
            if m.stride != (1,) or m.in_channels != m.out_channels:
                raise ConfigError("only a stride-1 block with equal channels can be the identity")
            m.weight.zero_()
            m.weight[:, :, 1] = torch.eye(m.out_channels)
        elif isinstance(m, nn.BatchNorm1d):
            m.running_mean.zero_()
            m.running_var.fill_(1.0 - m.eps)
            m.weight.fill_(1.0)
            m.bias.zero_()
    return block


def deepen_with_identities(shallow: ConvNet1d, depth: int) -> ConvNet1d:
    """A deeper plain net that computes exactly what ``shallow`` computes (in eval mode).

    He et al.'s construction argument: copy the shallow net's layers and make
    every added layer an identity. The deeper net therefore *can* be at least as
    good as the shallower one; if training finds something worse, the optimizer
    is to blame, not the capacity.
    """
    cfg = ConvNetConfig(**{**shallow.config.__dict__, "depth": depth})
    deep = ConvNet1d(cfg)
    n_shallow, n_deep = shallow.config.blocks_per_stage, cfg.blocks_per_stage
    if n_deep < n_shallow:
        raise ConfigError(f"depth {depth} is shallower than the network's {shallow.config.depth}")
    deep.stem.load_state_dict(shallow.stem.state_dict())
    deep.head.load_state_dict(shallow.head.state_dict())
    for stage in range(3):
        for i in range(n_deep):
            target = deep.blocks[stage * n_deep + i]
            if i < n_shallow:
                target.load_state_dict(shallow.blocks[stage * n_shallow + i].state_dict())
            elif cfg.residual:
                target.zero_init_last()  # a residual block with a zero branch: relu(0 + x) = x
                for m in target.branch:
                    if isinstance(m, nn.BatchNorm1d):
                        m.bias.data.zero_()
            else:
                make_identity_(target)
    return deep.eval()


# --------------------------------------------------------------------------- constructors

def conv_net(depth: int, residual: bool, **kwargs) -> ConvNet1d:
    """A ConvNet1d with ``depth`` weighted layers (6n+2), plain or residual."""
    return ConvNet1d(ConvNetConfig(depth=depth, residual=residual, **kwargs))


def plain_net(depth: int, **kwargs) -> ConvNet1d:
    """The paper's "plain-{depth}" network at MNIST-1D scale."""
    return conv_net(depth, residual=False, **kwargs)


def resnet(depth: int, **kwargs) -> ConvNet1d:
    """The paper's "ResNet-{depth}" with option A shortcuts at MNIST-1D scale."""
    return conv_net(depth, residual=True, **kwargs)
