r"""Chapter 2, learn the change: the experiments behind "fitting F(x) = H(x) − x is easier".

Each experiment is a frozen dataclass (its spec, whose defaults are the
chapter's settings) and a function that returns a JSON-able result through
:func:`book.cache.cached`, so the page and the claim tests that ask for the
same setting compute it once.

- :class:`IdentityFit`   plain vs residual MLP stacks trained to copy their input (or nearly)
- :class:`LearnTheChange` the small change of a near-identity map, residual against two plain controls
- :class:`InsertBlocks`  a trained ResNet grows zero-initialised or identity plain blocks and trains on; per-block ‖F(x)‖/‖x‖
- :func:`response_stds`  He et al.'s Fig. 7 quantity: the std of every conv layer's response after batch norm
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .cache import cached
from .data import load_mnist1d
from .errors import ConfigError, validate_choice, validate_whole_number
from .nets.conv1d import BasicBlock1d, ConvNet1d, ConvNetConfig, PlainBlock1d, make_identity_, validate_conv_config
from .nets.mlp import MLPConfig, MLPStack
from .training import TrainConfig, evaluate, one_thread, seeded, train, train_adam

__all__ = ["MAX_DEPTH", "IdentityFit", "identity_fit", "FIT_VARIANTS", "LearnTheChange", "learn_the_change",
           "change_stack", "CHANGE_STACKS", "CHANGE_LRS", "CHANGE_DEPTH", "InsertBlocks", "insert_blocks", "ONWARD_NETS",
           "response_stds"]

MAX_DEPTH = 200                       # deepest stack the identity-fitting experiment accepts

# The stacks of experiment (a): name -> IdentityFit overrides
FIT_VARIANTS: dict[str, dict] = {
    "plain, PyTorch default init": dict(residual=False, init="default"),
    "plain, orthogonal init": dict(residual=False, init="orthogonal"),
    "residual, PyTorch default init": dict(residual=True, init="default"),
    "residual, zero branches": dict(residual=True, init="zero_branch", identity_ends=True),
}


@dataclass(frozen=True)
class IdentityFit:
    """Train a plain or residual MLP stack to reproduce its input, ``y = x`` (or ``y = x + ε·sin(3x)``).

    Inputs are standard normal vectors of ``features`` numbers; the hidden layers
    are ``width`` wide (twice as wide, so that even a plain ReLU stack can carry
    ``x`` exactly, as the pair ``relu(x), relu(-x)``). Both stacks use ReLU, no
    normalization, the initialization ``init`` and Adam (no weight decay) with the
    same steps and learning rate. The error is the mean squared error divided by the
    target's variance on held-out inputs (0 is perfect, 1 is "predict the mean").
    """

    depth: int = 20                   # hidden layers (plain) or residual blocks
    residual: bool = False
    target: str = "identity"          # identity | near_identity
    init: str = "default"             # a book.nets.mlp init: "default" (PyTorch's), "kaiming", "orthogonal",
                                      # or for residual stacks "zero_branch" (every branch starts at exactly 0)
    identity_ends: bool = False       # input layer [I; 0] and head [I, 0]: with zero branches, y = x exactly at step 0
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


@torch.no_grad()
def _identity_ends(model: MLPStack, features: int) -> None:
    """Input layer x ↦ (x, 0) and head (h, ·) ↦ h: the stack's ends pass the input straight through."""
    for linear in (model.embed, model.head):
        linear.weight.zero_()
        linear.bias.zero_()
    model.embed.weight[:features].copy_(torch.eye(features))
    model.head.weight[:, :features].copy_(torch.eye(features))


@one_thread
def _identity_fit(spec: IdentityFit, progress: bool) -> dict:
    gen = torch.Generator().manual_seed(10_000 + spec.seed)
    x_test = torch.randn(1024, spec.features, generator=gen)
    y_test = _target(spec, x_test)
    with seeded(spec.seed):
        model = MLPStack(MLPConfig(depth=spec.depth, width=spec.width, in_features=spec.features,
                                   out_features=spec.features, residual=spec.residual, init=spec.init))
        if spec.identity_ends:
            _identity_ends(model, spec.features)
    variance = float(y_test.var())

    def test_error() -> float:
        with torch.no_grad():
            return float(F.mse_loss(model(x_test), y_test)) / variance

    def batches():  # fresh standard normal inputs at every step, from the same generator as the test set
        while True:
            x = torch.randn(spec.batch_size, spec.features, generator=gen)
            yield x, _target(spec, x)

    steps, errors = [0], [test_error()]

    def record(step: int, *_) -> None:
        if (step + 1) % spec.record_every == 0:
            steps.append(step + 1)
            errors.append(test_error())

    train_adam(model, batches(), F.mse_loss, spec.steps, lambda step: spec.lr, divergence_factor=math.inf,
               on_step=record, progress=progress,
               description=f"{'residual' if spec.residual else 'plain'}-{spec.depth} learns {spec.target} "
                           f"(seed {spec.seed})")
    return {"steps": steps, "error": errors}


def identity_fit(spec: IdentityFit, progress: bool = True) -> dict:
    """``{"steps": [...], "error": [...]}``: relative held-out error through training (cached)."""
    validate_choice("target", spec.target, ("identity", "near_identity"))
    validate_choice("init", spec.init, ("default", "kaiming", "orthogonal", "zero_branch"))
    if spec.identity_ends and spec.width < spec.features:
        raise ConfigError(f"identity ends need width ≥ features, got width {spec.width} and {spec.features} features.")
    validate_whole_number("depth", spec.depth, minimum=1, maximum=MAX_DEPTH)
    return cached("identity-fit", spec, lambda: _identity_fit(spec, progress))


# --------------------------------------------------------------------------- (a') the change, against two plain controls

CHANGE_STACKS = ("residual, zero branches", "plain, identity init", "plain, He init")
CHANGE_LRS = (3e-4, 1e-3, 3e-3)       # Adam's learning rate: each stack is compared at each, and at its best
CHANGE_DEPTH = 50                     # deep enough that a plain stack's fragility shows


@dataclass(frozen=True)
class LearnTheChange:
    r"""Learn the small change in :math:`y = x + 0.1\sin(3x)` with a 50-layer MLP stack, from three starts.

    - ``"residual, zero branches"``: every branch's last layer is zero, so the stack computes :math:`y = x` at
      step 0 (He et al.'s reparametrization :math:`H(x) = x + F(x)`, with :math:`F = 0`);
    - ``"plain, identity init"``: the control He et al.'s hypothesis needs: a plain ReLU stack *also* computing
      :math:`y = x` at step 0 (every weight matrix the identity, carrying :math:`x` as the pair
      :math:`\mathrm{relu}(x), \mathrm{relu}(-x)`), so the two differ only in the parametrization;
    - ``"plain, He init"``: a plain stack with the sensible random init of Chapter 1's nets.

    All three use ReLU, no normalization, Adam at ``lr`` and fresh standard normal inputs at every step. Both
    identity-started stacks read the input as :math:`(x, -x)`. The measure is the share of the change not yet
    learned, :math:`\|f(x) - y\|^2 / \|y - x\|^2` on held-out inputs: 1 for a stack that computes exactly
    :math:`x`, 0 when the change is learned, above 1 when the stack is further from :math:`y` than :math:`x` is.
    """

    stack: str = CHANGE_STACKS[0]
    depth: int = CHANGE_DEPTH
    lr: float = 1e-3
    seed: int = 0
    epsilon: float = 0.1              # the size of the change
    features: int = 16
    width: int = 32                   # twice the features: room for relu(x) and relu(-x)
    steps: int = 300
    batch_size: int = 128
    record_every: int = 25


def change_stack(spec: LearnTheChange) -> MLPStack:
    """The untrained stack of ``spec`` (draws from the global generator: build it under ``seeded``)."""
    residual = spec.stack.startswith("residual")
    model = MLPStack(MLPConfig(depth=spec.depth, width=spec.width, in_features=spec.features,
                               out_features=spec.features, residual=residual,
                               init="zero_branch" if residual else "kaiming"))
    if spec.stack == "plain, He init":
        return model
    eye = torch.eye(spec.features)
    with torch.no_grad():
        model.embed.weight.copy_(torch.cat([eye, -eye]))           # x ↦ (x, −x)
        model.embed.bias.zero_()
        model.head.bias.zero_()
        if residual:                                               # (x, −x) ↦ (x + x) / 2
            model.head.weight.copy_(torch.cat([eye, -eye], 1) / 2)
        else:                                                      # relu(x) − relu(−x) = x
            model.head.weight.copy_(torch.cat([eye, -eye], 1))
            for layer in model.layers:                             # relu(h) = h for h ≥ 0: every layer passes it on
                layer.linear.weight.copy_(torch.eye(spec.width))
                layer.linear.bias.zero_()
    return model


@one_thread
def _learn_the_change(spec: LearnTheChange, progress: bool) -> dict:
    gen = torch.Generator().manual_seed(10_000 + spec.seed)
    x_test = torch.randn(1024, spec.features, generator=gen)
    change = spec.epsilon * torch.sin(3 * x_test)
    with seeded(spec.seed):
        model = change_stack(spec)

    def unlearned() -> float:
        with torch.no_grad():
            return float(((model(x_test) - x_test - change) ** 2).mean() / (change ** 2).mean())

    def batches():
        while True:
            x = torch.randn(spec.batch_size, spec.features, generator=gen)
            yield x, x + spec.epsilon * torch.sin(3 * x)

    steps, shares = [0], [unlearned()]

    def record(step: int, *_) -> None:
        if (step + 1) % spec.record_every == 0:
            steps.append(step + 1)
            shares.append(unlearned())

    train_adam(model, batches(), F.mse_loss, spec.steps, lambda step: spec.lr, divergence_factor=math.inf,
               on_step=record, progress=progress, description=f"{spec.stack}, lr {spec.lr:g} (seed {spec.seed})")
    return {"steps": steps, "unlearned": shares}


def learn_the_change(spec: LearnTheChange, progress: bool = False) -> dict:
    """``{"steps": [...], "unlearned": [...]}``: the share of the change not yet learned through training (cached)."""
    validate_choice("stack", spec.stack, CHANGE_STACKS)
    validate_whole_number("depth", spec.depth, minimum=1, maximum=MAX_DEPTH)
    if spec.width < 2 * spec.features:
        raise ConfigError(f"the identity-started stacks need width ≥ 2 × features, got {spec.width} and "
                          f"{spec.features}.")
    return cached("learn-the-change", spec, lambda: _learn_the_change(spec, progress))


@dataclass(frozen=True)
class InsertBlocks:
    """Train a residual :class:`book.nets.conv1d.ConvNet1d` on MNIST-1D, then grow it.

    After training, one extra block is inserted at the end of each stage:

    - a :class:`~book.nets.conv1d.BasicBlock1d` with ``zero_init_last()`` (its last BN γ = 0), and, for contrast,
    - a :class:`~book.nets.conv1d.PlainBlock1d` with the usual init, and
    - a :class:`~book.nets.conv1d.PlainBlock1d` set to the identity by :func:`~book.nets.conv1d.make_identity_`
      (exact in eval mode; in train mode its batch norms normalize with the batch's statistics).

    Each grown net, and the trained net itself as the control, then trains onward for ``onward_epochs`` at the
    constant rate ``onward_lr`` with the same batch order. Also measured on the test set: each original block's
    ‖F(x)‖ / ‖x‖ (branch output over shortcut output, per sequence, averaged), trained and at init.
    """

    depth: int = 20                   # weighted layers, 6n+2
    widths: tuple[int, int, int] = (8, 16, 32)
    epochs: int = 6
    lr: float = 0.1
    seed: int = 0
    onward_epochs: int = 1            # training after the insertion, every grown net and the control alike
    onward_lr: float = 0.01           # ten times the rate the recipe ended at: training goes on, it does not restart


ONWARD_NETS = ("trained, not grown", "zero-γ residual blocks", "identity plain blocks", "random plain blocks")


def _grow(model: ConvNet1d, block) -> ConvNet1d:
    """A deep copy of ``model`` with ``block(width)`` inserted after the last block of every stage."""
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
def _branch_ratios(model: ConvNet1d, x: torch.Tensor, batch_statistics: bool = False) -> list[float]:
    """Mean over sequences of ‖F(h)‖ / ‖shortcut(h)‖ for every block: in eval mode (running statistics), or with
    ``batch_statistics`` in train mode (batch norm normalizes with the statistics of ``x``, as during training)."""
    model.train(batch_statistics)
    h = model.stem(x)
    ratios = []
    for block in model.blocks:
        branch, skip = block.branch(h), block.shortcut(h)
        ratios.append(float((branch.flatten(1).norm(dim=1) / skip.flatten(1).norm(dim=1).clamp_min(1e-12)).mean()))
        h = block(h)
    return ratios


@one_thread
def _insert_blocks(spec: InsertBlocks, progress: bool) -> dict:
    data = load_mnist1d()
    with seeded(spec.seed):
        model = ConvNet1d(ConvNetConfig(depth=spec.depth, residual=True, widths=spec.widths))
        # at initialization batch norm has no running statistics yet: measure as in training, with the
        # batch's statistics, on a copy (a forward pass in train mode updates the running averages)
        ratios_at_init = _branch_ratios(copy.deepcopy(model), data.x_test, batch_statistics=True)
        result = train(model, data, TrainConfig(epochs=spec.epochs, lr=spec.lr, warmup_epochs=1), seed=spec.seed,
                       progress=progress, description=f"ResNet-{spec.depth} (seed {spec.seed})")
        zero_grown = _grow(model, _zero_block)
        plain_grown = _grow(model, lambda w: PlainBlock1d(w, w))
        identity_grown = _grow(model, lambda w: make_identity_(PlainBlock1d(w, w)))
    model.eval(), zero_grown.eval(), plain_grown.eval(), identity_grown.eval()
    with torch.no_grad():
        base = model(data.x_test)
        zero_diff = float((zero_grown(data.x_test) - base).abs().max())
        identity_diff = float((identity_grown(data.x_test) - base).abs().max())
        # in train mode on copies: a forward pass in train mode moves batch norm's running statistics
        in_train_mode = [copy.deepcopy(net).train() for net in (model, zero_grown, identity_grown)]
        base_train_mode = in_train_mode[0](data.x_test)
        zero_diff_train_mode = float((in_train_mode[1](data.x_test) - base_train_mode).abs().max())
        identity_diff_train_mode = float((in_train_mode[2](data.x_test) - base_train_mode).abs().max())
    errors_after_insertion = {name: evaluate(net, data.x_test, data.y_test)[1] for name, net in
                              zip(ONWARD_NETS, (model, zero_grown, identity_grown, plain_grown))}
    onward = {}
    for name, net in zip(ONWARD_NETS, (model, zero_grown, identity_grown, plain_grown)):
        more = train(copy.deepcopy(net), data, TrainConfig(epochs=spec.onward_epochs, lr=spec.onward_lr, milestones=()),
                     seed=spec.seed, progress=progress, description=f"onward: {name}")
        onward[name] = {"train_error": more.train_error, "test_error": more.test_error,
                        "after_insertion": errors_after_insertion[name], "diverged": more.diverged}
    return {
        "train_error": result.train_error, "test_error": result.test_error, "diverged": result.diverged,
        "test_error_base": evaluate(model, data.x_test, data.y_test)[1],
        "test_error_zero_grown": evaluate(zero_grown, data.x_test, data.y_test)[1],
        "test_error_plain_grown": evaluate(plain_grown, data.x_test, data.y_test)[1],
        "max_logit_change_zero": zero_diff,
        "max_logit_change_zero_train_mode": zero_diff_train_mode,
        "max_logit_change_identity_plain": identity_diff,
        "max_logit_change_identity_plain_train_mode": identity_diff_train_mode,
        "max_logit": float(base.abs().max()),
        "onward": onward,
        "blocks_added": len(spec.widths),
        "ratios_trained": _branch_ratios(model, data.x_test),
        "ratios_at_init": ratios_at_init,
    }


def insert_blocks(spec: InsertBlocks, progress: bool = True) -> dict:
    """Run (or fetch) :class:`InsertBlocks`: errors before and after growing, and ‖F(x)‖/‖x‖ per block."""
    validate_conv_config(ConvNetConfig(depth=spec.depth, widths=spec.widths))
    return cached("insert-blocks", spec, lambda: _insert_blocks(spec, progress))


@torch.no_grad()
def response_stds(model: ConvNet1d, x: torch.Tensor) -> list[float]:
    """He et al.'s Fig. 7 quantity: for every conv layer, in the order the data meets them, the std of its response
    after batch norm and before the ReLU or the sum (eval mode: running statistics), over every channel, position
    and sequence of ``x``. The model is left in eval mode."""
    model.eval()
    stds: list[float] = []
    hooks = [m.register_forward_hook(lambda _module, _inputs, out: stds.append(float(out.std())))
             for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    try:
        model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return stds
