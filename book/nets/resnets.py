r"""ResNets for images, built as He et al. built them (arXiv 1512.03385, 1603.05027).

Every residual block computes

.. math::  y = \mathcal{F}(x) + \mathrm{shortcut}(x),

where the *branch* :math:`\mathcal{F}` is two or three weight layers and the
*shortcut* is a module: ``nn.Identity()`` when the shapes match, otherwise one
of the paper's options:

- **A** — subsample by the stride and zero-pad the new channels (no parameters;
  the paper's CIFAR networks);
- **B** — a 1×1 conv + BN projection only where the shape changes (the paper's
  ImageNet networks and torchvision's);
- **C** — a projection in every block, even where the identity would do.

The file reads top to bottom like torchvision's ``resnet.py``: conv helpers →
shortcuts → BasicBlock → Bottleneck → pre-activation blocks → plain block →
networks (CIFAR family, ImageNet family) → constructors → counting helpers.
"""

from __future__ import annotations

from collections import OrderedDict

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ..errors import ConfigError
from .conv1d import he_init_, validate_6n_plus_2_depth
from .shortcuts import PadChannelsShortcut, ProjectionShortcut

__all__ = [
    "conv3x3", "conv1x1", "make_shortcut",
    "BasicBlock", "Bottleneck", "PreActBasicBlock", "PlainBlock",
    "CifarResNetConfig", "CifarResNet", "ResNetConfig", "ResNet",
    "cifar_resnet",
    "IMAGENET_LAYERS", "PAPER_TEST_ERROR", "PAPER_IMAGENET_TOP1", "PAPER_ILSVRC2015_TOP5", "markdown_table",
]

SHORTCUT_OPTIONS = ("A", "B", "C")

# He et al. 2015, Table 6: CIFAR-10 test error (%) of the 6n+2 ResNets (ResNet-110: the best of 5 runs).
PAPER_TEST_ERROR = {20: 8.75, 32: 7.51, 44: 7.17, 56: 6.97, 110: 6.43, 1202: 7.93}
# He et al. 2015, Table 2: ImageNet validation top-1 error (%, 10-crop testing) of the 18- and 34-layer nets.
PAPER_IMAGENET_TOP1 = {"plain-18": 27.94, "plain-34": 28.54, "ResNet-18": 27.88, "ResNet-34": 25.03}
# He et al. 2015, Table 5: the ILSVRC 2015 classification winner, an ensemble of ResNets (top-5 test error, %).
PAPER_ILSVRC2015_TOP5 = 3.57


# --------------------------------------------------------------------------- conv helpers

def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """3×3 convolution, padding 1, no bias (a BatchNorm follows and has its own shift)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """1×1 convolution, no bias."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)


# --------------------------------------------------------------------------- shortcuts

def make_shortcut(in_channels: int, out_channels: int, stride: int, option: str) -> nn.Module:
    """The shortcut He et al. use for a block mapping ``in_channels`` to ``out_channels``.

    Args:
        option: ``"A"`` (identity, zero-padded where the shape changes), ``"B"``
            (projection where the shape changes) or ``"C"`` (projection everywhere).
    """
    if option not in SHORTCUT_OPTIONS:
        raise ConfigError(f"shortcut option {option!r} is not one of the paper's: choose 'A', 'B' or 'C'.")
    same_shape = stride == 1 and in_channels == out_channels
    if option == "C" or (option == "B" and not same_shape):
        return ProjectionShortcut(in_channels, out_channels, stride)
    if same_shape:
        return nn.Identity()
    return PadChannelsShortcut(in_channels, out_channels, stride)


# --------------------------------------------------------------------------- blocks (post-activation)

class BasicBlock(nn.Module):
    """Two 3×3 convs, Conv → BN → ReLU → Conv → BN, then ``relu(F(x) + shortcut(x))``.

    ``(N, in_channels, H, W) -> (N, channels, H / stride, W / stride)``.
    """

    expansion = 1  # output channels = channels × expansion

    def __init__(self, in_channels: int, channels: int, stride: int = 1, shortcut: str = "B", **branch_options):
        super().__init__()
        out_channels = channels * self.expansion
        self.branch = self.make_branch(in_channels, channels, out_channels, stride, **branch_options)
        self.shortcut = make_shortcut(in_channels, out_channels, stride, shortcut)
        self.relu = nn.ReLU()  # not in place: probes may hold the sum

    @staticmethod
    def make_branch(in_channels: int, channels: int, out_channels: int, stride: int) -> nn.Sequential:
        return nn.Sequential(OrderedDict(
            conv1=conv3x3(in_channels, channels, stride), bn1=nn.BatchNorm2d(channels), relu=nn.ReLU(inplace=True),
            conv2=conv3x3(channels, out_channels), bn2=nn.BatchNorm2d(out_channels),
        ))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.shortcut(x)
        out = out + self.branch(x)  # the residual sum, out of place
        return self.relu(out)

    def zero_init_last(self) -> None:
        """γ = 0 in the last BN: the branch starts at zero, the block as an identity.

        Goyal et al. 2017 (arXiv 1706.02677, §5.1); torchvision's ``zero_init_residual``.
        """
        nn.init.zeros_(self.branch.bn2.weight)


class Bottleneck(BasicBlock):
    """A basic block with another branch: 1×1 (reduce) → 3×3 → 1×1 (expand ×4), each followed by BN.

    The sum, the ReLU after it and the shortcut are the basic block's. ``stride_in_3x3=True`` strides the 3×3
    conv (torchvision's "ResNet v1.5", 4.1 G multiply-adds for ResNet-50); ``False`` strides the first 1×1 conv
    as the paper did (3.8 G). The parameter count is the same.
    """

    expansion = 4

    @staticmethod
    def make_branch(in_channels: int, channels: int, out_channels: int, stride: int,
                    stride_in_3x3: bool = True) -> nn.Sequential:
        s1, s3 = (1, stride) if stride_in_3x3 else (stride, 1)
        return nn.Sequential(OrderedDict(
            conv1=conv1x1(in_channels, channels, s1), bn1=nn.BatchNorm2d(channels), relu1=nn.ReLU(inplace=True),
            conv2=conv3x3(channels, channels, s3), bn2=nn.BatchNorm2d(channels), relu2=nn.ReLU(inplace=True),
            conv3=conv1x1(channels, out_channels), bn3=nn.BatchNorm2d(out_channels),
        ))

    def zero_init_last(self) -> None:
        """γ = 0 in the last BN (Goyal et al. 2017, arXiv 1706.02677)."""
        nn.init.zeros_(self.branch.bn3.weight)


# --------------------------------------------------------------------------- blocks (pre-activation)

class PreActBasicBlock(nn.Module):
    """He et al. 2016's full pre-activation block: BN → ReLU → Conv → BN → ReLU → Conv.

    ``y = x + F(x)`` with nothing after the sum, so the identity path from any
    block to any later one is untouched: :math:`x_L = x_l + \\sum_i F(x_i)`.
    The network adds one BN → ReLU after the last block.
    """

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1, shortcut: str = "A"):
        super().__init__()
        self.branch = nn.Sequential(OrderedDict(
            bn1=nn.BatchNorm2d(in_channels), relu1=nn.ReLU(inplace=False),
            conv1=conv3x3(in_channels, channels, stride),
            bn2=nn.BatchNorm2d(channels), relu2=nn.ReLU(inplace=True),
            conv2=conv3x3(channels, channels),
        ))
        self.shortcut = make_shortcut(in_channels, channels, stride, shortcut)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.shortcut(x) + self.branch(x)  # the residual sum, out of place; no ReLU after it
        return x

    def zero_init_last(self) -> None:
        """Zero the last conv: a pre-activation branch has no BN at its end to zero."""
        nn.init.zeros_(self.branch.conv2.weight)


class PlainBlock(nn.Module):
    """The same two layers as :class:`BasicBlock` without the shortcut: ``relu(F(x))``."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1, shortcut: str = "A"):
        super().__init__()
        del shortcut  # a plain block has none; the argument keeps the block signatures alike
        self.branch = nn.Sequential(OrderedDict(
            conv1=conv3x3(in_channels, channels, stride), bn1=nn.BatchNorm2d(channels), relu=nn.ReLU(inplace=True),
            conv2=conv3x3(channels, channels), bn2=nn.BatchNorm2d(channels),
        ))
        self.relu = nn.ReLU()  # not in place: probes may hold the sum

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.branch(x))


# --------------------------------------------------------------------------- CIFAR family

CIFAR_BLOCKS = {"basic": BasicBlock, "preact": PreActBasicBlock, "plain": PlainBlock}


@dataclass
class CifarResNetConfig:
    """He et al.'s CIFAR-10 networks: 6n+2 weighted layers (§4.2)."""

    depth: int = 20                       # 6n + 2: stem conv + 3 stages × n blocks × 2 convs + FC
    block: str = "basic"                  # "basic" (2015), "preact" (2016) or "plain" (no shortcuts)
    shortcut: str = "A"                   # the paper used option A on CIFAR-10
    widths: tuple[int, int, int] = (16, 32, 64)  # filters of the three stages, on 32/16/8 maps
    in_channels: int = 3
    num_classes: int = 10
    zero_init_residual: bool = False      # Goyal et al.: start each branch at zero

    @property
    def blocks_per_stage(self) -> int:
        return (self.depth - 2) // 6


def _validate_cifar_config(cfg: CifarResNetConfig) -> None:
    validate_6n_plus_2_depth(cfg.depth)
    if cfg.block not in CIFAR_BLOCKS:
        raise ConfigError(f"block {cfg.block!r} is not one of {sorted(CIFAR_BLOCKS)}.")
    if cfg.shortcut not in SHORTCUT_OPTIONS:
        raise ConfigError(f"shortcut option {cfg.shortcut!r} is not one of the paper's: choose 'A', 'B' or 'C'.")


class CifarResNet(nn.Module):
    """3×3 stem → three stages of n blocks (32×32, 16×16, 8×8) → global average pool → FC.

    Input ``(N, 3, 32, 32)``, output logits ``(N, num_classes)``.
    """

    def __init__(self, config: CifarResNetConfig | None = None):
        super().__init__()
        config = config or CifarResNetConfig()
        _validate_cifar_config(config)
        self.config = config
        block = CIFAR_BLOCKS[config.block]
        preact = config.block == "preact"
        w = config.widths
        stem: list[nn.Module] = [conv3x3(config.in_channels, w[0])]
        if not preact:  # a pre-activation net normalizes at the start of each branch instead
            stem += [nn.BatchNorm2d(w[0]), nn.ReLU(inplace=True)]
        self.stem = nn.Sequential(*stem)
        blocks, in_ch = [], w[0]
        for stage, width in enumerate(w):
            for i in range(config.blocks_per_stage):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(block(in_ch, width, stride, config.shortcut))
                in_ch = width
        self.blocks = nn.Sequential(*blocks)
        # The pre-activation net ends with the BN → ReLU its last block leaves out.
        self.final = nn.Sequential(nn.BatchNorm2d(in_ch), nn.ReLU(inplace=True)) if preact else nn.Identity()
        self.head = nn.Linear(in_ch, config.num_classes)
        he_init_(self, config.zero_init_residual)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)                 # (N, 16, 32, 32)
        x = self.blocks(x)               # (N, 64, 8, 8)
        x = self.final(x)
        x = x.mean(dim=(2, 3))           # global average pool → (N, 64)
        return self.head(x)              # (N, num_classes)


# --------------------------------------------------------------------------- ImageNet family

IMAGENET_LAYERS = {  # He et al. 2015, Table 1: blocks per stage
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}


@dataclass
class ResNetConfig:
    """He et al.'s ImageNet networks (Table 1), laid out as torchvision lays them out."""

    depth: int = 50                       # 18, 34, 50, 101 or 152
    shortcut: str = "B"                   # projections only where the shape changes (paper and torchvision)
    stride_in_3x3: bool = True            # torchvision's v1.5 bottleneck; False = the paper's original
    num_classes: int = 1000
    zero_init_residual: bool = False      # Goyal et al.: start each branch at zero


class ResNet(nn.Module):
    """7×7/2 stem conv → 3×3/2 max pool → four stages (56, 28, 14, 7 pixels) → pool → FC.

    Input ``(N, 3, 224, 224)``, output logits ``(N, num_classes)``.
    """

    def __init__(self, config: ResNetConfig | None = None):
        super().__init__()
        config = config or ResNetConfig()
        if config.depth not in IMAGENET_LAYERS:
            raise ConfigError(f"depth {config.depth!r} is not in the paper's Table 1: choose one of "
                              f"{sorted(IMAGENET_LAYERS)}.")
        self.config = config
        kind, layers = IMAGENET_LAYERS[config.depth]
        if kind == "basic":
            block: Callable[..., nn.Module] = BasicBlock
            expansion = BasicBlock.expansion
        else:
            def block(i, c, s, sc):
                return Bottleneck(i, c, s, sc, stride_in_3x3=config.stride_in_3x3)
            expansion = Bottleneck.expansion
        self.stem = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False), nn.BatchNorm2d(64),
            nn.ReLU(inplace=True), nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        )
        stages, in_ch = [], 64
        for stage, (n, channels) in enumerate(zip(layers, (64, 128, 256, 512))):
            blocks = []
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(block(in_ch, channels, stride, config.shortcut))
                in_ch = channels * expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(in_ch, config.num_classes)
        he_init_(self, config.zero_init_residual)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)                 # (N, 64, 56, 56)
        x = self.stages(x)               # (N, 512 × expansion, 7, 7)
        x = x.mean(dim=(2, 3))           # global average pool
        return self.head(x)              # (N, num_classes)


# --------------------------------------------------------------------------- constructors

def cifar_resnet(depth: int = 20, **kwargs) -> CifarResNet:
    """ResNet-``depth`` for CIFAR-10 (6n+2 layers, option A shortcuts unless told otherwise)."""
    return CifarResNet(CifarResNetConfig(depth=depth, **kwargs))


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A Markdown table (for ``IPython.display.Markdown``) from a header and rows of values."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
