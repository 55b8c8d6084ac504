r"""The wider family of skip connections, each as small as it can be and still teach.

One file, read top to bottom, one family per section:

- **highway layers** (Srivastava et al. 2015): a learned gate mixes the branch and the input,
  :math:`y = T(x)\,H(x) + (1 - T(x))\,x`, with :math:`T = \sigma(W_T x + b_T)` and a negative
  carry bias :math:`b_T` so that every layer starts by carrying its input; the residual and plain
  layers beside it have the same two weight matrices;
- **dense connectivity** (Huang et al. 2017): each layer reads the *concatenation* of all earlier
  feature maps instead of their sum; a pre-activation residual net of equal parameters beside it;
- **the ODE view** (E 2017; Haber & Ruthotto 2017; Chen et al. 2018): one weight-shared branch applied
  as forward-Euler steps :math:`x \leftarrow x + h\,f(x)` with :math:`h = T/L`;
- **U-Net long skips** (Ronneberger et al. 2015): an encoder-decoder whose decoder concatenates the
  encoder's features of the same resolution; the skip is a module, ``nn.Identity()`` or :class:`ZeroSkip`;
- **hyper-connections** (Zhu et al. 2024) and **mHC** (Xie et al. 2025): ``n`` parallel residual streams,
  mixed before and after every block by learned weights; mHC projects the stream-mixing matrix onto the
  doubly stochastic matrices with Sinkhorn–Knopp;
- **reversible residual blocks** (Gomez et al. 2017): the channels split in halves coupled by two residual
  sums, :math:`y_1 = x_1 + F(x_2)`, :math:`y_2 = x_2 + G(y_1)`, so that a block's input can be computed from its
  output and the backward pass need not store activations.

Every network maps MNIST-1D (``(N, 1, 40)``) to logits, except the U-Net, which maps a sequence to a sequence.
"""

from __future__ import annotations

from collections import OrderedDict

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ConfigError, validate_choice, validate_whole_number

__all__ = [
    "HighwayLayer", "ResidualSkipLayer", "PlainSkipLayer", "SkipMLPConfig", "SkipMLP", "LAYER_KINDS",
    "DenseLayer1d", "PreActLayer1d", "DenseNet1d", "PreActResNet1d",
    "EulerStack", "ODENet",
    "ZeroSkip", "UNet1d",
    "sinkhorn", "HyperConnection", "HyperNet",
    "ReversibleBlock1d", "ReversibleStack", "RevNet1d",
]


# --------------------------------------------------------------------------- highway, residual and plain layers

class HighwayLayer(nn.Module):
    r"""``y = T(x)·H(x) + (1 − T(x))·x``: the transform gate T decides, per unit, how much to change.

    ``H = relu(W_H x + b_H)``, ``T = sigmoid(W_T x + b_T)``. Two weight matrices, like
    :class:`ResidualSkipLayer`.
    """

    def __init__(self, width: int, carry_bias: float = -2.0):
        super().__init__()
        self.transform = nn.Linear(width, width)   # H
        self.gate = nn.Linear(width, width)        # T
        self.shortcut = nn.Identity()
        self.carry_bias = carry_bias
        self.init_carry()

    def init_carry(self) -> None:
        """He init for H; the gate's bias starts negative (Srivastava et al. 2015 use −1 to −3),
        so T ≈ sigmoid(b_T) is small and the layer starts by carrying its input."""
        nn.init.kaiming_normal_(self.transform.weight, nonlinearity="relu")
        nn.init.zeros_(self.transform.bias)
        nn.init.constant_(self.gate.bias, self.carry_bias)

    def gates(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.gate(x))          # (N, width), each in (0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.gates(x)
        return t * torch.relu(self.transform(x)) + (1 - t) * self.shortcut(x)


class ResidualSkipLayer(nn.Module):
    """``y = x + W₂ relu(W₁ x)``: an ungated identity shortcut with two weight matrices."""

    def __init__(self, width: int):
        super().__init__()
        self.branch = nn.Sequential(OrderedDict(fc1=nn.Linear(width, width), relu=nn.ReLU(), fc2=nn.Linear(width, width)))
        self.shortcut = nn.Identity()
        self.zero_init_last()

    def zero_init_last(self) -> None:
        """He init inside the branch, its last layer at zero: every block starts as the identity
        (Goyal et al. 2017; Fixup, Zhang et al. 2019), as the highway layer starts by carrying."""
        nn.init.kaiming_normal_(self.branch.fc1.weight, nonlinearity="relu")
        nn.init.zeros_(self.branch.fc1.bias)
        nn.init.zeros_(self.branch.fc2.weight)
        nn.init.zeros_(self.branch.fc2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.branch(x)


class PlainSkipLayer(nn.Module):
    """``y = relu(W₂ relu(W₁ x))``: the same two weight matrices and no shortcut (He init)."""

    def __init__(self, width: int):
        super().__init__()
        self.branch = nn.Sequential(OrderedDict(fc1=nn.Linear(width, width), relu1=nn.ReLU(),
                                                fc2=nn.Linear(width, width), relu2=nn.ReLU()))
        for layer in (self.branch.fc1, self.branch.fc2):
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.branch(x)


LAYER_KINDS = ("highway", "residual", "plain")


@dataclass(frozen=True)
class SkipMLPConfig:
    """A deep MLP on flattened MNIST-1D: stem → ``depth`` layers of one kind → linear head."""

    kind: str = "highway"        # one of LAYER_KINDS
    depth: int = 32              # layers (each with two weight matrices)
    width: int = 32              # units per layer
    carry_bias: float = -2.0     # highway only: the gate's initial bias
    in_features: int = 40
    num_classes: int = 10


class SkipMLP(nn.Module):
    """Input ``(N, 1, 40)`` or ``(N, 40)`` → logits ``(N, num_classes)``."""

    def __init__(self, config: SkipMLPConfig):
        super().__init__()
        validate_choice("kind", config.kind, LAYER_KINDS)
        validate_whole_number("depth", config.depth, minimum=1)
        validate_whole_number("width", config.width, minimum=1)
        self.config = config
        self.stem = nn.Sequential(nn.Linear(config.in_features, config.width), nn.ReLU())
        make = {"highway": lambda: HighwayLayer(config.width, config.carry_bias),
                "residual": lambda: ResidualSkipLayer(config.width), "plain": lambda: PlainSkipLayer(config.width)}
        self.layers = nn.Sequential(*[make[config.kind]() for _ in range(config.depth)])
        self.head = nn.Linear(config.width, config.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layers(self.stem(x.flatten(1))))

    @torch.no_grad()
    def mean_gates(self, x: torch.Tensor) -> list[float]:
        """Highway only: the mean transform gate T of every layer on the inputs ``x``."""
        h, means = self.stem(x.flatten(1)), []
        for layer in self.layers:
            means.append(layer.gates(h).mean().item())
            h = layer(h)
        return means


# --------------------------------------------------------------------------- dense connectivity

def _conv3(in_channels: int, out_channels: int) -> nn.Conv1d:
    return nn.Conv1d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)


class DenseLayer1d(nn.Module):
    """BN → ReLU → 3-tap conv on the concatenation of every earlier feature map; adds ``growth`` channels."""

    def __init__(self, in_channels: int, growth: int):
        super().__init__()
        self.branch = nn.Sequential(nn.BatchNorm1d(in_channels), nn.ReLU(), _conv3(in_channels, growth))

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.branch(torch.cat(features, dim=1))   # (N, c0 + l·k, 40) → (N, k, 40)


class PreActLayer1d(nn.Module):
    """``x + conv(relu(BN(x)))``: one pre-activation residual layer (He et al. 2016), same conv as a dense layer."""

    def __init__(self, channels: int):
        super().__init__()
        self.branch = nn.Sequential(nn.BatchNorm1d(channels), nn.ReLU(), _conv3(channels, channels))
        self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.branch(x)


class _Head(nn.Sequential):
    def __init__(self, channels: int, num_classes: int):
        super().__init__(nn.BatchNorm1d(channels), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(),
                         nn.Linear(channels, num_classes))


class DenseNet1d(nn.Module):
    """Stem conv → ``depth`` dense layers at full length (40) → BN-ReLU, average pool, linear."""

    def __init__(self, depth: int = 12, growth: int = 8, stem: int = 16, num_classes: int = 10):
        super().__init__()
        self.stem = _conv3(1, stem)
        self.layers = nn.ModuleList(DenseLayer1d(stem + l * growth, growth) for l in range(depth))
        self.head = _Head(stem + depth * growth, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [self.stem(x)]
        for layer in self.layers:
            features.append(layer(features))            # the list grows; nothing is ever added
        return self.head(torch.cat(features, dim=1))


class PreActResNet1d(nn.Module):
    """Stem conv → ``depth`` pre-activation residual layers of constant ``width`` → the same head."""

    def __init__(self, depth: int = 12, width: int = 22, num_classes: int = 10):
        super().__init__()
        self.stem = _conv3(1, width)
        self.layers = nn.Sequential(*[PreActLayer1d(width) for _ in range(depth)])
        self.head = _Head(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layers(self.stem(x)))


# --------------------------------------------------------------------------- the ODE view

class EulerStack(nn.Module):
    r"""``steps`` forward-Euler steps of :math:`dx/dt = f(x)` over a time ``horizon``, one shared ``f``.

    Each step is a residual block with step size :math:`h = T/L`: ``x = x + h * f(x)``. The number of
    steps can change after training (``forward(x, steps=...)``); the weights stay the same.
    """

    def __init__(self, width: int = 32, hidden: int = 64, steps: int = 8, horizon: float = 1.0):
        super().__init__()
        self.f = nn.Sequential(nn.Linear(width, hidden), nn.Tanh(), nn.Linear(hidden, width))
        self.steps, self.horizon = steps, horizon

    def forward(self, x: torch.Tensor, steps: int | None = None, trajectory: bool = False):
        steps = steps or self.steps
        h = self.horizon / steps
        states = [x]
        for _ in range(steps):
            x = x + h * self.f(x)                 # one residual block = one Euler step
            states.append(x)
        return states if trajectory else x


class ODENet(nn.Module):
    """Linear stem (40 → width) → :class:`EulerStack` → linear head."""

    def __init__(self, width: int = 32, hidden: int = 64, steps: int = 8, horizon: float = 1.0, num_classes: int = 10):
        super().__init__()
        self.stem = nn.Linear(40, width)
        self.flow = EulerStack(width, hidden, steps, horizon)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        return self.head(self.flow(self.stem(x.flatten(1)), steps=steps))

    def final_state(self, x: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        return self.flow(self.stem(x.flatten(1)), steps=steps)


# --------------------------------------------------------------------------- U-Net long skips

class ZeroSkip(nn.Module):
    """A long skip that carries nothing: zeros of the encoder features' shape (the parameter count stays equal)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


def _double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(in_channels, out_channels, 3, padding=1), nn.ReLU(),
                         nn.Conv1d(out_channels, out_channels, 3, padding=1), nn.ReLU())


class UNet1d(nn.Module):
    """A two-level 1-D U-Net: lengths 40 → 20 → 10 → 20 → 40, ``(N, 1, 40) → (N, 1, 40)``.

    The decoder concatenates ``skip(encoder features)`` of the same length (Ronneberger et al. 2015);
    with ``skips=False`` every skip is a :class:`ZeroSkip`, so only the bottleneck's path carries information.
    """

    def __init__(self, width: int = 16, skips: bool = True):
        super().__init__()
        w = width
        self.enc1, self.enc2, self.bottom = _double_conv(1, w), _double_conv(w, 2 * w), _double_conv(2 * w, 4 * w)
        self.down = nn.MaxPool1d(2)
        self.up2, self.up1 = nn.ConvTranspose1d(4 * w, 2 * w, 2, stride=2), nn.ConvTranspose1d(2 * w, w, 2, stride=2)
        self.dec2, self.dec1 = _double_conv(4 * w, 2 * w), _double_conv(2 * w, w)
        self.skip2 = nn.Identity() if skips else ZeroSkip()
        self.skip1 = nn.Identity() if skips else ZeroSkip()
        self.out = nn.Conv1d(w, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)                                  # (N, w, 40)
        e2 = self.enc2(self.down(e1))                      # (N, 2w, 20)
        b = self.bottom(self.down(e2))                     # (N, 4w, 10)
        d2 = self.dec2(torch.cat([self.up2(b), self.skip2(e2)], dim=1))   # (N, 2w, 20)
        d1 = self.dec1(torch.cat([self.up1(d2), self.skip1(e1)], dim=1))  # (N, w, 40)
        return self.out(d1)


# --------------------------------------------------------------------------- hyper-connections and mHC

def sinkhorn(logits: torch.Tensor, iterations: int = 20) -> torch.Tensor:
    """Sinkhorn–Knopp: alternately normalize the rows and columns of ``exp(logits)`` (n × n).

    The limit is doubly stochastic (non-negative, every row and column summing to 1); after a finite number
    of iterations the columns sum to 1 exactly and the rows to within a small tolerance.
    """
    m = torch.exp(logits - logits.max())
    for _ in range(iterations):
        m = m / m.sum(dim=1, keepdim=True)   # rows
        m = m / m.sum(dim=0, keepdim=True)   # columns
    return m


class HyperConnection(nn.Module):
    r"""One block with ``n`` residual streams ``H`` (n × d per example), static mixing weights.

    ``x = a·H`` (the block reads a weighted sum of the streams), ``H ← B H + b ⊗ F(x)`` (the streams are mixed
    by the n × n matrix ``B`` and the block's output is written into each with weight ``b_i``). Unconstrained
    (hyper-connections, Zhu et al. 2024) ``B`` is any matrix; constrained (mHC, Xie et al. 2025) ``B`` is
    :func:`sinkhorn` of its parameters, a doubly stochastic matrix, and ``a``, ``b`` are kept non-negative.
    """

    def __init__(self, n: int, branch: nn.Module, index: int, constrained: bool):
        super().__init__()
        self.branch, self.constrained = branch, constrained
        eye = torch.eye(n)
        if constrained:
            # logits of B: the identity dominates, so B ≈ I at initialization, yet it is doubly stochastic
            self.mix_params = nn.Parameter(4.0 * eye)
            self.read_params = nn.Parameter(torch.full((n,), -2.0).index_fill(0, torch.tensor([index % n]), 2.0))
            self.write_params = nn.Parameter(torch.zeros(n))          # 2·sigmoid(0) = 1
        else:
            # Zhu et al.'s initialization: B = I, read stream (index mod n), write into every stream
            self.mix_params = nn.Parameter(eye.clone())
            self.read_params = nn.Parameter(eye[index % n].clone())
            self.write_params = nn.Parameter(torch.ones(n))

    def mixing(self) -> torch.Tensor:
        """The stream-mixing matrix B (n × n)."""
        return sinkhorn(self.mix_params) if self.constrained else self.mix_params

    def read_write(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.constrained:
            return torch.sigmoid(self.read_params), 2 * torch.sigmoid(self.write_params)
        return self.read_params, self.write_params

    def forward(self, streams: torch.Tensor) -> torch.Tensor:
        a, b = self.read_write()
        x = torch.einsum("i,nid->nd", a, streams)                  # (N, d): what the block reads
        y = self.branch(x)                                          # (N, d)
        mixed = torch.einsum("ij,njd->nid", self.mixing(), streams)  # (N, n, d): the streams, mixed
        return mixed + b[None, :, None] * y[:, None, :]             # the residual sum, out of place


class HyperNet(nn.Module):
    """Linear stem, copied into ``n`` streams → ``depth`` hyper-connected pre-norm MLP blocks → sum, LN, linear head."""

    def __init__(self, depth: int = 16, width: int = 32, n: int = 4, constrained: bool = False, num_classes: int = 10):
        super().__init__()
        if n < 1:
            raise ConfigError(f"the number of streams must be at least 1, got {n!r}.")
        self.n = n
        self.stem = nn.Linear(40, width)
        self.blocks = nn.ModuleList(
            HyperConnection(n, nn.Sequential(nn.LayerNorm(width), nn.Linear(width, 2 * width), nn.ReLU(),
                                             nn.Linear(2 * width, width)), index=l, constrained=constrained)
            for l in range(depth))
        self.head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x.flatten(1))                                 # (N, d)
        streams = h[:, None, :].expand(-1, self.n, -1) / self.n      # (N, n, d): the streams sum to h
        for block in self.blocks:
            streams = block(streams)
        return self.head(streams.sum(dim=1))

    @torch.no_grad()
    def composite_gains(self) -> list[float]:
        """``‖B_l ⋯ B_1‖_∞`` for l = 1 … depth: the largest absolute row sum of the product of the mixing matrices."""
        product, gains = torch.eye(self.n), []
        for block in self.blocks:
            product = block.mixing() @ product
            gains.append(product.abs().sum(dim=1).max().item())
        return gains


# --------------------------------------------------------------------------- reversible residual networks

class ReversibleBlock1d(nn.Module):
    r"""A reversible residual block (Gomez et al. 2017): split the channels in halves ``x1, x2`` and couple them,

    :math:`y_1 = x_1 + F(x_2)`, :math:`y_2 = x_2 + G(y_1)`, so the input can be computed from the output,
    :math:`x_2 = y_2 - G(y_1)`, :math:`x_1 = y_1 - F(x_2)`. ``F`` and ``G`` are GroupNorm → ReLU → 3-tap conv on
    ``channels // 2`` channels (a norm without running statistics, so recomputing a branch changes nothing).
    """

    def __init__(self, channels: int):
        super().__init__()
        if channels % 2:
            raise ConfigError(f"a reversible block splits its channels in two halves: got an odd number, {channels!r}.")
        half = channels // 2
        self.f = self._branch(half)   # F
        self.g = self._branch(half)   # G

    @staticmethod
    def _branch(channels: int) -> nn.Sequential:
        return nn.Sequential(OrderedDict(norm=nn.GroupNorm(1, channels), relu=nn.ReLU(), conv=_conv3(channels, channels)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x.chunk(2, dim=1)                 # (N, c/2, 40) each
        y1 = x1 + self.f(x2)
        y2 = x2 + self.g(y1)
        return torch.cat([y1, y2], dim=1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        y1, y2 = y.chunk(2, dim=1)
        x2 = y2 - self.g(y1)
        x1 = y1 - self.f(x2)
        return torch.cat([x1, x2], dim=1)


class _ReversibleStackFunction(torch.autograd.Function):
    """Backpropagate through a stack of :class:`ReversibleBlock1d` keeping only the stack's output.

    Forward runs without building a graph. Backward walks the blocks from the last: it evaluates ``G(y1)`` and
    ``F(x2)`` once more with a graph (one extra forward pass in all), takes the block's input from them,
    ``x2 = y2 − G(y1)``, ``x1 = y1 − F(x2)``, and backpropagates through just that block (Gomez et al. 2017, Alg. 1).
    """

    @staticmethod
    def forward(ctx, x, blocks, *params):
        ctx.blocks = blocks
        with torch.no_grad():
            for block in blocks:
                x = block(x)
        ctx.save_for_backward(x)                   # the only activation kept for the backward pass
        return x

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        grads = {}
        for block in reversed(ctx.blocks):
            y1, y2 = (t.detach() for t in y.chunk(2, dim=1))
            gy1, gy2 = grad.chunk(2, dim=1)
            with torch.enable_grad():
                y1.requires_grad_()
                g = block.g(y1)
            x2 = (y2 - g).detach().requires_grad_()
            with torch.enable_grad():
                f = block.f(x2)
            x1 = (y1 - f).detach()
            # y2 = x2 + G(y1): dL/dy1 gains G's vector-Jacobian product; then y1 = x1 + F(x2)
            g_params = tuple(block.g.parameters())
            dy1, *dg = torch.autograd.grad(g, (y1, *g_params), gy2)
            gy1 = gy1 + dy1
            f_params = tuple(block.f.parameters())
            dx2, *df = torch.autograd.grad(f, (x2, *f_params), gy1)
            grads.update(zip(g_params, dg))
            grads.update(zip(f_params, df))
            grad, y = torch.cat([gy1, gy2 + dx2], dim=1), torch.cat([x1, x2.detach()], dim=1)
        params = [p for block in ctx.blocks for p in block.parameters()]
        return (grad, None, *(grads[p] for p in params))


class ReversibleStack(nn.Module):
    """``depth`` reversible blocks. With ``recompute=True`` the backward pass keeps only the stack's output and
    reconstructs every block's input from its output (:class:`_ReversibleStackFunction`); with ``False`` autograd
    stores every block's activations, as for any residual stack."""

    def __init__(self, channels: int, depth: int, recompute: bool = True):
        super().__init__()
        self.blocks = nn.ModuleList(ReversibleBlock1d(channels) for _ in range(depth))
        self.recompute = recompute

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.recompute and torch.is_grad_enabled():
            return _ReversibleStackFunction.apply(x, self.blocks, *self.parameters())
        for block in self.blocks:
            x = block(x)
        return x

    @torch.no_grad()
    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """The stack's input, computed from its output block by block."""
        for block in reversed(self.blocks):
            y = block.inverse(y)
        return y


class RevNet1d(nn.Module):
    """Stem conv → ``depth`` reversible blocks of ``width`` channels → the DenseNet's head (BN-ReLU, pool, linear)."""

    def __init__(self, depth: int = 12, width: int = 32, recompute: bool = True, num_classes: int = 10):
        super().__init__()
        self.stem = _conv3(1, width)
        self.stack = ReversibleStack(width, depth, recompute)
        self.head = _Head(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stack(self.stem(x)))
