r"""The cached experiments behind Chapters 2 (learn the change) and 3 (the gradient highway).

Each experiment is a frozen dataclass (its spec, whose defaults are the
chapter's settings) and a function that returns a JSON-able result through
:func:`book.experiments.cached`, so a page, a widget and a claim test that ask
for the same setting compute it once.

Chapter 2
    :class:`IdentityFit`   plain vs residual MLP stacks trained to copy their input (or nearly)
    :class:`InsertBlocks`  a trained ResNet grows zero-initialised blocks; per-block ‖F(x)‖/‖x‖

Chapter 3
    :class:`GradFlow`      per-layer gradient norm and activation std at initialization
    :class:`Shatter`       correlation of input gradients at neighbouring inputs (Balduzzi et al. 2017)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .data import load_mnist1d
from .experiments import cached, single_thread
from .mlp import RESIDUAL_INITS, MLPConfig, MLPStack, _check_mlp_config
from .models import BasicBlock1d, ConfigError, ConvNet1d, ConvNetConfig, PlainBlock1d
from .probes import LayerStats, input_gradients, probe, stack_points
from .training import TrainConfig, evaluate, train

__all__ = [
    "MAX_DEPTH", "CH3_DEPTHS", "CLAIM_DEPTH", "CLAIM_SEEDS", "ACTIVATION_STD_INITS", "FORWARD_DEPTH",
    "FORWARD_VARIANTS", "SHATTER_CLAIM_DEPTH",
    "GradFlow", "gradient_flow", "first_to_last_ratio", "INIT_ZOO", "init_zoo_spec",
    "Shatter", "shattered_correlation", "SHATTER_VARIANTS", "SHATTER_DEPTHS",
    "IdentityFit", "identity_fit", "InsertBlocks", "insert_blocks", "single_thread",
]

MAX_DEPTH = 200                       # deepest stack the chapter and its widget probe
CH3_DEPTHS = (10, 50, 100, 200)   # the depths of Chapter 3's sweeps
CLAIM_DEPTH = 50                      # "50+ layers": the depth of Chapter 3's headline comparison
CLAIM_SEEDS = (0, 1, 2)               # seeds of every claim (chapters average over them too)


# =========================================================================== Chapter 3

@dataclass(frozen=True)
class GradFlow:
    """One probe at initialization: an :class:`book.mlp.MLPStack` on a batch of MNIST-1D, cross-entropy loss."""

    depth: int = CLAIM_DEPTH          # layers (plain) or blocks (residual)
    residual: bool = False
    init: str = "default"             # one of book.mlp.INITS
    activation: str = "relu"
    norm: str = "none"                # none | batch | layer
    norm_position: str = "pre"        # pre | post (zero_gamma needs post)
    branch_scale: float = 1.0         # α in y = x + α·F(x)
    branch_layers: int = 1            # weight layers per residual branch (fixup needs 2)
    width: int = 128                  # wide enough that Kaiming's variance argument holds to depth 50
    batch_size: int = 128             # MNIST-1D training sequences, the first ones
    seed: int = 0

    def mlp_config(self) -> MLPConfig:
        return MLPConfig(depth=self.depth, width=self.width, residual=self.residual, init=self.init,
                         activation=self.activation, norm=self.norm, norm_position=self.norm_position,
                         branch_scale=self.branch_scale, branch_layers=self.branch_layers)

    @property
    def label(self) -> str:
        return f"{'residual' if self.residual else 'plain'}-{self.depth}, {self.init}, {self.activation}"


def _check_depth(depth) -> None:
    if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= MAX_DEPTH:
        raise ConfigError(f"depth {depth!r} is outside the supported range: use a whole number from 1 to {MAX_DEPTH}.")


def _probe_gradient_flow(spec: GradFlow) -> dict:
    data = load_mnist1d().flat()
    x, y = data.x_train[: spec.batch_size], data.y_train[: spec.batch_size]
    with torch.random.fork_rng():
        torch.manual_seed(spec.seed)
        model = MLPStack(spec.mlp_config())
    stats = probe(model, stack_points(model), x, lambda out: F.cross_entropy(out, y))
    return stats.to_dict()


def gradient_flow(spec: GradFlow) -> LayerStats:
    """Probe ``spec`` at initialization (or fetch it): entry 0 is the input layer, entry l the l-th layer/block."""
    _check_depth(spec.depth)
    _check_mlp_config(spec.mlp_config())
    def compute():
        with single_thread():
            return _probe_gradient_flow(spec)

    return LayerStats.from_dict(cached("gradflow", spec, compute))


def first_to_last_ratio(stats: LayerStats) -> float:
    """‖∂L/∂h‖ after the first layer over ‖∂L/∂h‖ after the last: ≪ 1 means the gradient vanished on the way down."""
    first, last = stats.grad_norm[1], stats.grad_norm[-1]
    return first / last if last > 0 else float("nan")


# (label, overrides of GradFlow) for Chapter 3's table of initializations.
INIT_ZOO: tuple[tuple[str, dict], ...] = (
    ("PyTorch default", dict(init="default")),
    ("Xavier", dict(init="xavier")),
    ("Kaiming (fan-in)", dict(init="kaiming")),
    ("orthogonal", dict(init="orthogonal")),
    ("small normal (σ=0.01)", dict(init="small")),
    ("zero last-norm γ (Goyal)", dict(init="zero_gamma", norm="batch", norm_position="post")),
    ("SkipInit / ReZero (g=0)", dict(init="skipinit")),
    ("Fixup (m=2)", dict(init="fixup", branch_layers=2)),
    ("1/√L branch scaling", dict(init="inv_sqrt_depth")),
)


def init_zoo_spec(label: str, residual: bool, depth: int, seed: int = 0, activation: str = "relu") -> GradFlow | None:
    """The :class:`GradFlow` for one row of :data:`INIT_ZOO`; ``None`` where it does not apply (plain + residual trick)."""
    overrides = dict(INIT_ZOO)[label]
    if not residual and overrides["init"] in RESIDUAL_INITS:
        return None
    return GradFlow(depth=depth, residual=residual, seed=seed, activation=activation, **overrides)


# Chapter 3's activation-std comparison in a plain ReLU stack at CLAIM_DEPTH.
ACTIVATION_STD_INITS = ("default", "kaiming", "small")

# Chapter 3's forward-variance comparison: residual stacks of FORWARD_DEPTH blocks.
FORWARD_DEPTH = 200
FORWARD_VARIANTS: dict[str, dict] = {
    "Kaiming, no normalization": dict(residual=True, init="kaiming"),
    "Kaiming + batch norm in the branch": dict(residual=True, init="kaiming", norm="batch"),
    "1/√L branch scaling": dict(residual=True, init="inv_sqrt_depth"),
}


# --------------------------------------------------------------------------- shattered gradients

SHATTER_DEPTHS = (1, 2, 5, 10, 20, 50, 100, 200)
SHATTER_CLAIM_DEPTH = 50
# name -> MLPConfig overrides. All use He (Kaiming) weights, like Balduzzi et al.
SHATTER_VARIANTS: dict[str, dict] = {
    "plain": dict(residual=False, init="kaiming"),
    "residual": dict(residual=True, init="kaiming"),
    "residual, 1/√L": dict(residual=True, init="inv_sqrt_depth"),
}


@dataclass(frozen=True)
class Shatter:
    """Gradients of a scalar-output MLP with respect to its 1-D input, at ``points`` inputs evenly spaced on [-2, 2].

    Balduzzi et al. (2017) look at how alike the gradients at neighbouring
    inputs are. We measure the correlation between the gradient at each input
    and at the next one (lag-1 autocorrelation of the gradient sequence).
    """

    depth: int = 50
    variant: str = "plain"            # a key of SHATTER_VARIANTS
    width: int = 128
    points: int = 256
    seed: int = 0


def _shatter(spec: Shatter) -> dict:
    cfg = MLPConfig(depth=spec.depth, width=spec.width, in_features=1, out_features=1,
                    **SHATTER_VARIANTS[spec.variant])
    with torch.random.fork_rng():
        torch.manual_seed(spec.seed)
        model = MLPStack(cfg)
        # Kaiming zeroes biases; a ReLU net without biases is positively homogeneous, so on a
        # 1-D input its gradient is constant on each side of 0. PyTorch's default biases break that.
        for m in model.modules():
            if isinstance(m, nn.Linear):
                bound = 1 / math.sqrt(m.in_features)
                nn.init.uniform_(m.bias, -bound, bound)
    xs = torch.linspace(-2, 2, spec.points).unsqueeze(1)   # (points, 1)
    g = input_gradients(model, xs).flatten().double()       # (points,)
    a, b = g[:-1] - g[:-1].mean(), g[1:] - g[1:].mean()
    corr = float((a * b).sum() / (a.norm() * b.norm()).clamp_min(1e-300))
    return {"correlation": corr, "gradients": g.tolist()}


def shattered_correlation(spec: Shatter) -> dict:
    """``{"correlation": float, "gradients": [...]}`` for ``spec`` (cached)."""
    _check_depth(spec.depth)
    if spec.variant not in SHATTER_VARIANTS:
        raise ConfigError(f"variant {spec.variant!r} is not one of {list(SHATTER_VARIANTS)}.")
    def compute():
        with single_thread():
            return _shatter(spec)

    return cached("shatter", spec, compute)


# =========================================================================== Chapter 2

@dataclass(frozen=True)
class IdentityFit:
    """Train a plain or residual MLP stack to reproduce its input, ``y = x`` (or ``y = x + ε·sin(3x)``).

    Inputs are standard normal vectors of ``features`` numbers; the hidden layers
    are ``width`` wide (twice as wide, so that even a plain ReLU stack can carry
    ``x`` exactly, as the pair ``relu(x), relu(-x)``). Both stacks use PyTorch's
    default init, ReLU and no normalization, and Adam with the same steps and
    learning rate. The error is the mean squared error divided by the
    target's variance on held-out inputs (0 is perfect, 1 is "predict the mean").
    """

    depth: int = 20                   # hidden layers (plain) or residual blocks
    residual: bool = False
    target: str = "identity"          # identity | near_identity
    epsilon: float = 0.1              # size of the change in near_identity
    features: int = 16                # input and output size
    width: int = 32                   # hidden width
    steps: int = 200
    lr: float = 1e-3
    batch_size: int = 128
    record_every: int = 20
    seed: int = 0


def _target(spec: IdentityFit, x: torch.Tensor) -> torch.Tensor:
    if spec.target == "identity":
        return x
    return x + spec.epsilon * torch.sin(3 * x)


def _identity_fit(spec: IdentityFit, progress: bool) -> dict:
    from tqdm.auto import tqdm

    gen = torch.Generator().manual_seed(10_000 + spec.seed)
    x_test = torch.randn(1024, spec.features, generator=gen)
    y_test = _target(spec, x_test)
    with torch.random.fork_rng():
        torch.manual_seed(spec.seed)
        model = MLPStack(MLPConfig(depth=spec.depth, width=spec.width, in_features=spec.features,
                                   out_features=spec.features, residual=spec.residual, init="default"))
    opt = torch.optim.Adam(model.parameters(), lr=spec.lr)
    variance = float(y_test.var())

    def test_error() -> float:
        with torch.no_grad():
            return float(F.mse_loss(model(x_test), y_test)) / variance

    steps, errors = [0], [test_error()]
    name = f"{'residual' if spec.residual else 'plain'}-{spec.depth} learns {spec.target} (seed {spec.seed})"
    for step in tqdm(range(1, spec.steps + 1), desc=name, disable=not progress, leave=False):
        x = torch.randn(spec.batch_size, spec.features, generator=gen)
        loss = F.mse_loss(model(x), _target(spec, x))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % spec.record_every == 0:
            steps.append(step)
            errors.append(test_error())
    return {"steps": steps, "error": errors}


def identity_fit(spec: IdentityFit, progress: bool = True) -> dict:
    """``{"steps": [...], "error": [...]}``: relative held-out error through training (cached)."""
    if spec.target not in ("identity", "near_identity"):
        raise ConfigError(f"target {spec.target!r} is not 'identity' or 'near_identity'.")
    _check_depth(spec.depth)
    def compute():
        with single_thread():
            return _identity_fit(spec, progress)

    return cached("identity-fit", spec, compute)


@dataclass(frozen=True)
class InsertBlocks:
    """Train a residual :class:`book.models.ConvNet1d` on MNIST-1D, then grow it.

    After training, one extra block is inserted at the end of each stage:

    - a :class:`~book.models.BasicBlock1d` with ``zero_init_last()`` (its last BN γ = 0), and, for contrast,
    - a :class:`~book.models.PlainBlock1d` with the usual init.

    Also measured on the test set: each original block's ‖F(x)‖ / ‖x‖ (branch
    output over shortcut output, per sequence, averaged), trained and at init.
    """

    depth: int = 20                   # weighted layers, 6n+2
    widths: tuple[int, int, int] = (8, 16, 32)
    epochs: int = 6
    lr: float = 0.1
    seed: int = 0


def _grow(model: ConvNet1d, block) -> ConvNet1d:
    """A deep copy of ``model`` with ``block(width)`` inserted after the last block of every stage."""
    import copy

    grown = copy.deepcopy(model)
    per_stage = model.config.blocks_per_stage
    layers = []
    for i, existing in enumerate(grown.blocks):
        layers.append(existing)
        if (i + 1) % per_stage == 0:
            width = model.config.widths[i // per_stage]
            layers.append(block(width))
    grown.blocks = nn.Sequential(*layers)
    return grown


def _zero_block(width: int) -> BasicBlock1d:
    block = BasicBlock1d(width, width)
    block.zero_init_last()
    return block


@torch.no_grad()
def _branch_ratios(model: ConvNet1d, x: torch.Tensor) -> list[float]:
    """Mean over sequences of ‖F(h)‖ / ‖shortcut(h)‖ for every block, in eval mode."""
    model.eval()
    h = model.stem(x)
    ratios = []
    for block in model.blocks:
        branch, skip = block.branch(h), block.shortcut(h)
        ratios.append(float((branch.flatten(1).norm(dim=1) / skip.flatten(1).norm(dim=1).clamp_min(1e-12)).mean()))
        h = block(h)
    return ratios


def _insert_blocks(spec: InsertBlocks, progress: bool) -> dict:
    data = load_mnist1d()
    with torch.random.fork_rng():
        torch.manual_seed(spec.seed)
        model = ConvNet1d(ConvNetConfig(depth=spec.depth, residual=True, widths=spec.widths))
        ratios_at_init = _branch_ratios(model, data.x_test)
        result = train(model, data, TrainConfig(epochs=spec.epochs, lr=spec.lr, warmup_epochs=1), seed=spec.seed,
                       progress=progress, description=f"ResNet-{spec.depth} (seed {spec.seed})")
        zero_grown = _grow(model, _zero_block)
        plain_grown = _grow(model, lambda w: PlainBlock1d(w, w))
    model.eval(), zero_grown.eval(), plain_grown.eval()
    with torch.no_grad():
        base = model(data.x_test)
        zero_diff = float((zero_grown(data.x_test) - base).abs().max())
        model.train(), zero_grown.train()
        zero_diff_train_mode = float((zero_grown(data.x_test) - model(data.x_test)).abs().max())
        model.eval(), zero_grown.eval()
    return {
        "train_error": result.train_error, "test_error": result.test_error, "diverged": result.diverged,
        "test_error_base": evaluate(model, data.x_test, data.y_test)[1],
        "test_error_zero_grown": evaluate(zero_grown, data.x_test, data.y_test)[1],
        "test_error_plain_grown": evaluate(plain_grown, data.x_test, data.y_test)[1],
        "max_logit_change_zero": zero_diff,
        "max_logit_change_zero_train_mode": zero_diff_train_mode,
        "blocks_added": len(spec.widths),
        "ratios_trained": _branch_ratios(model, data.x_test),
        "ratios_at_init": ratios_at_init,
    }


def insert_blocks(spec: InsertBlocks, progress: bool = True) -> dict:
    """Run (or fetch) :class:`InsertBlocks`: errors before and after growing, and ‖F(x)‖/‖x‖ per block."""
    from .models import _check_conv_config

    _check_conv_config(ConvNetConfig(depth=spec.depth, widths=spec.widths))
    def compute():
        with single_thread():
            return _insert_blocks(spec, progress)

    return cached("insert-blocks", spec, compute)
