r"""A small, readable transformer whose normalization placement is a choice.

In the style of nanoGPT (Karpathy): the file reads top to bottom, parts before
the whole — LayerNorm → attention → MLP → blocks → the model. Every block
wraps its two sublayers, causal self-attention :math:`\mathrm{Attn}` and the
feed-forward network :math:`\mathrm{MLP}`, in a residual connection; stacked,
the shortcuts form one *residual stream* :math:`x_0, x_1, \dots, x_L` that
every block reads from and adds to. The blocks differ only in where the
normalization sits:

- ``post-ln``:     :math:`x \leftarrow \mathrm{LN}(x + F(x))` (Vaswani et al. 2017, the original)
- ``pre-ln``:      :math:`x \leftarrow x + F(\mathrm{LN}(x))` (Xiong et al. 2020; GPT-2, nanoGPT)
- ``deepnorm``:    :math:`x \leftarrow \mathrm{LN}(\alpha x + F(x))` (Wang et al. 2022, DeepNet)
- ``pre-ln-scaled``: :math:`x \leftarrow x + F(\mathrm{LN}(x)/\sqrt{l})` in block :math:`l` (Sun et al. 2025, LayerNorm Scaling)
- ``rezero``:      :math:`x \leftarrow x + \alpha_l F(x)`, :math:`\alpha_l = 0` at init (Bachlechner et al. 2020)
- ``none``:        :math:`x \leftarrow x + F(x)`, no normalization (an ablation)
- ``no-residual``: :math:`x \leftarrow \mathrm{LN}(F(x))`, the control without shortcuts

Each block owns its initialization rule as a method (``init_weights``), as its
paper states it. The base rule, shared by all, is Xavier/Glorot
initialization of every linear map with zero biases — the setting of Xiong et
al.'s analysis of post-LN and pre-LN gradients at initialization.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, validate_choice, validate_whole_number
from .shortcuts import ScaledShortcut

__all__ = [
    "NORM_PLACEMENTS", "NormPlacement", "TransformerConfig", "LayerNorm", "CausalSelfAttention", "MLP",
    "PostLNBlock", "PreLNBlock", "ScaledPreLNBlock", "DeepNormBlock", "ReZeroBlock", "NoNormBlock", "NoResidualBlock",
    "ScaledShortcut", "Transformer", "BLOCKS", "validate_transformer_config",
]

NormPlacement = Literal["post-ln", "pre-ln", "pre-ln-scaled", "deepnorm", "rezero", "none", "no-residual"]
NORM_PLACEMENTS: tuple[str, ...] = ("post-ln", "pre-ln", "pre-ln-scaled", "deepnorm", "rezero", "none", "no-residual")


@dataclass(frozen=True)
class TransformerConfig:
    """A decoder-only (GPT-style) transformer small enough to train on a CPU in seconds."""

    vocab_size: int = 18             # tokens of the task (see book.sequence_task)
    block_size: int = 24             # longest sequence the model reads
    n_layer: int = 6                 # transformer blocks (each: attention + MLP)
    n_head: int = 4                  # attention heads
    n_embd: int = 64                 # width d of the residual stream
    norm: NormPlacement = "post-ln"  # where the LayerNorms sit (see the table above)
    mlp_ratio: int = 4               # MLP hidden width = mlp_ratio · n_embd (Vaswani et al.)

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head


def validate_transformer_config(cfg: TransformerConfig) -> None:
    """Raise :class:`ConfigError` with a clear message if ``cfg`` cannot be built."""
    for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd", "mlp_ratio"):
        validate_whole_number(name, getattr(cfg, name), minimum=1)
    if cfg.n_embd % cfg.n_head:
        raise ConfigError(f"n_embd ({cfg.n_embd}) must be divisible by n_head ({cfg.n_head}).")
    validate_choice("norm", cfg.norm, NORM_PLACEMENTS)


def xavier_(linear: nn.Linear, gain: float = 1.0) -> None:
    """Xavier/Glorot normal init (std = gain·sqrt(2 / (fan_in + fan_out))) and a zero bias."""
    nn.init.xavier_normal_(linear.weight, gain=gain)
    if linear.bias is not None:
        nn.init.zeros_(linear.bias)


# --------------------------------------------------------------------------- parts

class LayerNorm(nn.LayerNorm):
    r"""LayerNorm over the feature axis: :math:`\gamma \odot (x - \mu) / \sigma + \beta` (Ba et al. 2016).

    ``(B, T, d) -> (B, T, d)``; γ = 1 and β = 0 at initialization.
    """

    def __init__(self, n_embd: int):
        super().__init__(n_embd)


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position t attends to positions ≤ t.

    Separate query, key and value maps (rather than nanoGPT's fused one) so that
    DeepNorm can scale the value map's initialization alone.
    """

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.query = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.key = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.value = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd)  # the output projection, back into the stream

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, d = x.shape
        # (B, T, d) -> (B, n_head, T, head_dim)
        q, k, v = (m(x).view(B, T, self.n_head, d // self.n_head).transpose(1, 2)
                   for m in (self.query, self.key, self.value))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # softmax(q kᵀ / sqrt(head_dim)) v
        y = y.transpose(1, 2).reshape(B, T, d)  # re-assemble the heads side by side
        return self.proj(y)


class MLP(nn.Module):
    """The position-wise feed-forward network: ``Linear(d, 4d) → GELU → Linear(4d, d)``."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.n_embd, cfg.mlp_ratio * cfg.n_embd)
        self.act = nn.GELU()
        self.proj = nn.Linear(cfg.mlp_ratio * cfg.n_embd, cfg.n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.act(self.fc(x)))


# --------------------------------------------------------------------------- blocks

class _Block(nn.Module):
    """What every block holds: attention, an MLP, two LayerNorms and a shortcut module."""

    def __init__(self, cfg: TransformerConfig, layer: int = 1):
        super().__init__()
        self.layer = layer  # 1-based position of the block in the stack
        self.ln_1 = LayerNorm(cfg.n_embd)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = LayerNorm(cfg.n_embd)
        self.mlp = MLP(cfg)
        # A module that every residual forward calls, so a probe can hook every shortcut alike.
        self.shortcut: nn.Module = nn.Identity()

    def init_weights(self, n_layer: int) -> None:
        """Xavier init of every linear map, zero biases (Vaswani et al.; Xiong et al.'s analysis)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                xavier_(m)


class PostLNBlock(_Block):
    """The original transformer block (Vaswani et al. 2017): normalize *after* the residual sum."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.shortcut(x) + self.attn(x)
        x = self.ln_1(x)
        x = self.shortcut(x) + self.mlp(x)
        x = self.ln_2(x)
        return x


class PreLNBlock(_Block):
    """Normalize each sublayer's *input*; the stream itself is never normalized (Xiong et al. 2020)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.shortcut(x) + self.attn(self.ln_1(x))
        x = self.shortcut(x) + self.mlp(self.ln_2(x))
        return x


class ScaledPreLNBlock(_Block):
    r"""Pre-LN with LayerNorm Scaling (Sun et al. 2025): block :math:`l` multiplies each LayerNorm's output by :math:`1/\sqrt{l}`.

    :math:`x \leftarrow x + F(\mathrm{LN}(x)/\sqrt{l})`. Sun et al. trace the "curse of depth" (deep
    pre-LN blocks that barely change the stream) to the stream's variance growing with depth, and damp
    each block's branch input by its depth so the growth stays polynomial.
    """

    def __init__(self, cfg: TransformerConfig, layer: int = 1):
        super().__init__(cfg, layer)
        self.scale = 1.0 / math.sqrt(layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.shortcut(x) + self.attn(self.scale * self.ln_1(x))
        x = self.shortcut(x) + self.mlp(self.scale * self.ln_2(x))
        return x


class DeepNormBlock(PostLNBlock):
    r"""Post-LN with the stream up-scaled by α and the branches down-scaled by β at init (Wang et al. 2022).

    :math:`x \leftarrow \mathrm{LN}(\alpha x + F(x))` with, for an N-layer
    encoder or decoder-only stack, :math:`\alpha = (2N)^{1/4}` and
    :math:`\beta = (8N)^{-1/4}`. The forward is post-LN's, inherited: only the shortcut's
    scale and the init differ.
    """

    def __init__(self, cfg: TransformerConfig, layer: int = 1):
        super().__init__(cfg, layer)
        self.shortcut = ScaledShortcut((2 * cfg.n_layer) ** 0.25)

    def init_weights(self, n_layer: int) -> None:
        """DeepNet's init: Xavier with gain β = (8N)^(-1/4) for the value, output and MLP maps, gain 1 for query and key."""
        super().init_weights(n_layer)
        beta = (8 * n_layer) ** -0.25
        for linear in (self.attn.value, self.attn.proj, self.mlp.fc, self.mlp.proj):
            xavier_(linear, gain=beta)


class ReZeroBlock(_Block):
    r"""No LayerNorm; each branch is gated by a learnable scalar that starts at 0 (Bachlechner et al. 2020).

    :math:`x \leftarrow x + \alpha_l F(x)`. As in the paper's code, one
    :math:`\alpha_l` per block gates both of its sublayers. At init every block
    is the identity.
    """

    def __init__(self, cfg: TransformerConfig, layer: int = 1):
        super().__init__(cfg, layer)
        self.ln_1, self.ln_2 = nn.Identity(), nn.Identity()  # ReZero drops normalization
        self.alpha = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.shortcut(x) + self.alpha * self.attn(x)
        x = self.shortcut(x) + self.alpha * self.mlp(x)
        return x

    def init_weights(self, n_layer: int) -> None:
        """Xavier for the linear maps and α = 0, so the block starts as the identity (ReZero, §3)."""
        super().init_weights(n_layer)
        nn.init.zeros_(self.alpha)


class NoNormBlock(_Block):
    """Residual connections and no normalization at all: ``x ← x + F(x)`` (an ablation)."""

    def __init__(self, cfg: TransformerConfig, layer: int = 1):
        super().__init__(cfg, layer)
        self.ln_1, self.ln_2 = nn.Identity(), nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.shortcut(x) + self.attn(x)
        x = self.shortcut(x) + self.mlp(x)
        return x


class NoResidualBlock(_Block):
    """The control: post-LN without the shortcut, ``x ← LN(F(x))``; no residual stream at all.

    It keeps the inherited ``self.shortcut`` module, unused, so that code which
    walks every block's shortcut works on the control too.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.ln_1(self.attn(x))
        x = self.ln_2(self.mlp(x))
        return x


BLOCKS: dict[str, type[_Block]] = {
    "post-ln": PostLNBlock, "pre-ln": PreLNBlock, "pre-ln-scaled": ScaledPreLNBlock, "deepnorm": DeepNormBlock,
    "rezero": ReZeroBlock, "none": NoNormBlock, "no-residual": NoResidualBlock,
}


# --------------------------------------------------------------------------- the model

def sinusoidal_positions(block_size: int, n_embd: int) -> torch.Tensor:
    """Vaswani et al.'s fixed position code: sin/cos of position at geometric frequencies. ``(T, d)``."""
    position = torch.arange(block_size, dtype=torch.float32)[:, None]
    frequency = torch.exp(-math.log(10000.0) * torch.arange(0, n_embd, 2, dtype=torch.float32) / n_embd)
    table = torch.zeros(block_size, n_embd)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: n_embd // 2])
    return table


class Transformer(nn.Module):
    """Token embedding + positions → ``n_layer`` blocks → (final LayerNorm for pre-LN) → logits.

    ``forward(idx)`` maps token ids ``(B, T)`` to logits ``(B, T, vocab_size)``.
    ``forward(idx, return_stream=True)`` also returns the residual stream
    ``[x_0, x_1, ..., x_L]`` (each ``(B, T, d)``), the input and output of every block.
    """

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        validate_transformer_config(cfg)
        self.config = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.register_buffer("pos_emb", sinusoidal_positions(cfg.block_size, cfg.n_embd), persistent=False)
        self.blocks = nn.ModuleList([BLOCKS[cfg.norm](cfg, layer=l + 1) for l in range(cfg.n_layer)])
        # Only pre-LN (with or without LayerNorm Scaling) leaves the stream un-normalized at the top, so only it
        # needs a final LayerNorm (Xiong et al. 2020; GPT-2's ln_f). ReZero and no-norm have none by design.
        self.ln_f: nn.Module = LayerNorm(cfg.n_embd) if cfg.norm in ("pre-ln", "pre-ln-scaled") else nn.Identity()
        self.head = nn.Linear(cfg.n_embd, cfg.vocab_size)
        self.init_weights()

    def init_weights(self) -> None:
        """Unit-variance token embeddings (Vaswani et al.'s N(0, 1/d) scaled by sqrt(d)), Xavier head, then each block's own rule."""
        nn.init.normal_(self.tok_emb.weight, std=1.0)
        xavier_(self.head)
        for block in self.blocks:
            block.init_weights(self.config.n_layer)

    def forward(self, idx: torch.Tensor, return_stream: bool = False):
        B, T = idx.shape
        if T > self.config.block_size:
            raise ConfigError(f"sequence of length {T} is longer than block_size={self.config.block_size}.")
        x = self.tok_emb(idx) + self.pos_emb[:T]  # (B, T, d): x_0, the start of the stream
        stream = [x]
        for block in self.blocks:
            x = block(x)
            stream.append(x)
        logits = self.head(self.ln_f(x))  # (B, T, vocab_size)
        return (logits, stream) if return_stream else logits
