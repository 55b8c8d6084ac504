"""The trained 1-D conv nets that Chapters 1 to 5 share: one spec, one store, one on-disk format.

- :class:`DepthRun` is one training run with Chapter 1's settings: He et al.'s CIFAR recipe (SGD, momentum 0.9,
  weight decay 1e-4, batch 128, lr 0.1 divided by 10 at 50 % and 75 % of training, one warm-up epoch) scaled
  down to MNIST-1D and a CPU.
- :class:`TrainedNet` is a :class:`DepthRun` plus what Chapter 4 varies: a scaled shortcut (He et al. 2016's
  constant scaling), zero-initialised residual branches (Goyal et al. 2017) and stochastic depth (Huang et
  al. 2016). Without a variant it *is* its run, and shares its stored result.
- :func:`trained_net` trains a spec once and stores its curves (JSON) and its weights (a ``state_dict`` read
  back with ``torch.load(weights_only=True)``) in the result cache (:mod:`book.cache`), keyed by the spec and
  by the code this module imports; :func:`run_depth` returns the curves alone, :func:`trained_model` the net.
  With ``disk=False`` the store writes nothing and keeps the result in memory.
- :func:`train_prefix` and :func:`prefix_mismatches` re-run the first epochs of a spec, to check a recorded
  run (:mod:`book.records`) against the code.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .cache import atomic_write, cached, forget, is_cached, result_key, result_path
from .data import load_mnist1d
from .errors import ConfigError, validate_whole_number
from .nets.conv1d import ConvNet1d, ConvNetConfig, validate_conv_config
from .nets.shortcuts import ScaledShortcut
from .training import TrainConfig, TrainResult, seeded, train

__all__ = ["STUDY_DEPTH", "DepthRun", "TrainedNet", "trained_net", "run_depth", "trained_model", "is_trained",
           "forget_trained", "train_net", "train_prefix", "prefix_mismatches"]

STUDY_DEPTH = 20                 # Chapter 4's shortcut study and Chapter 5's lesions and path gradients use 20 layers


# --------------------------------------------------------------------------- the specs

@dataclass(frozen=True)
class DepthRun:
    """One training run of a plain or residual :class:`~book.nets.conv1d.ConvNet1d` on MNIST-1D.

    The defaults are Chapter 1's settings: He et al.'s CIFAR recipe (SGD, momentum 0.9, weight decay 1e-4,
    batch 128, lr 0.1 divided by 10 at 50 % and 75 % of training, one warm-up epoch) scaled down to MNIST-1D
    and a CPU.
    """

    depth: int = 20                      # weighted layers, 6n+2
    residual: bool = False
    seed: int = 0                        # the initial weights and the batch order
    width: int = 8                       # channels of the first stage; the stages have width·(1, 2, 4)
                                         # (the paper: 16/32/64; halved to fit a CPU budget)
    epochs: int = 10
    warmup_epochs: int = 1
    lr: float = 0.1
    batch_size: int = 128

    @property
    def label(self) -> str:
        return f"{'ResNet' if self.residual else 'plain'}-{self.depth}"

    @property
    def widths(self) -> tuple[int, int, int]:
        return (self.width, 2 * self.width, 4 * self.width)

    def model_config(self) -> ConvNetConfig:
        return ConvNetConfig(depth=self.depth, residual=self.residual, widths=self.widths)

    def train_config(self) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, warmup_epochs=self.warmup_epochs, lr=self.lr,
                           batch_size=self.batch_size)

    def validate(self) -> None:
        """Raise :class:`~book.errors.ConfigError` with a clear message if the run cannot be built."""
        _validate(self.model_config(), self.seed)

    def build(self) -> ConvNet1d:
        """The untrained net (draws from the global generator: build it under :func:`book.training.seeded`)."""
        return ConvNet1d(self.model_config())


@dataclass(frozen=True, init=False)
class TrainedNet:
    """A :class:`DepthRun` (residual by default) plus the variants Chapter 4 tries.

    ``TrainedNet(depth=20, seed=0, shortcut_scale=0.5)`` builds its run from the :class:`DepthRun` fields given
    (``TrainedNet(DepthRun(...), shortcut_scale=0.5)`` takes one). Without a variant it is exactly its run:
    same seed → same initial weights, same batches, same curves, one stored result.
    """

    run: DepthRun                        # the run: depth, seed and Chapter 1's recipe
    shortcut_scale: float = 1.0          # 1: the clean identity; 0.5: He et al. 2016's constant scaling
    zero_init_residual: bool = False     # Goyal et al.: the last BN γ of every branch = 0
    final_survival: float = 1.0          # < 1: stochastic depth (Huang et al. 2016), the last block's survival
    preactivation: bool = False          # He et al. 2016's pre-activation blocks instead of the original ones
    final_norm: bool = False             # the original blocks with the pre-activation net's final BN → ReLU

    def __init__(self, run: DepthRun | None = None, shortcut_scale: float = 1.0, zero_init_residual: bool = False,
                 final_survival: float = 1.0, preactivation: bool = False, final_norm: bool = False,
                 **run_fields):
        if run is not None and run_fields:
            raise TypeError(f"give a DepthRun or its fields, not both (got {sorted(run_fields)} too).")
        object.__setattr__(self, "run", run if run is not None else DepthRun(**{"residual": True, **run_fields}))
        object.__setattr__(self, "shortcut_scale", shortcut_scale)
        object.__setattr__(self, "zero_init_residual", zero_init_residual)
        object.__setattr__(self, "final_survival", final_survival)
        object.__setattr__(self, "preactivation", preactivation)
        object.__setattr__(self, "final_norm", final_norm)

    @property
    def seed(self) -> int:
        return self.run.seed

    @property
    def is_plain_run(self) -> bool:
        """No variant: the net is its :class:`DepthRun`'s."""
        return (self.shortcut_scale == 1.0 and not self.zero_init_residual and self.final_survival == 1.0
                and not self.preactivation and not self.final_norm)

    @property
    def label(self) -> str:
        name = self.run.label
        if self.preactivation:
            name = f"pre-activation {name}"
        if self.final_norm:
            name += " (final BN)"
        if self.shortcut_scale != 1.0:
            name += f" (shortcut × {self.shortcut_scale:g})"
        if self.run.lr != DepthRun.lr:
            name += f" (lr {self.run.lr:g})"
        return name

    def model_config(self) -> ConvNetConfig:
        run = self.run
        return ConvNetConfig(depth=run.depth, residual=run.residual, widths=run.widths,
                             zero_init_residual=self.zero_init_residual, final_survival=self.final_survival,
                             preactivation=self.preactivation, final_norm=self.final_norm)

    def train_config(self) -> TrainConfig:
        return self.run.train_config()

    def validate(self) -> None:
        """Raise :class:`~book.errors.ConfigError` with a clear message if the net cannot be built."""
        _validate(self.model_config(), self.seed)
        if self.shortcut_scale != 1.0 and not self.run.residual:
            raise ConfigError("a plain net has no shortcut to scale.")

    def build(self) -> ConvNet1d:
        """The untrained net (draws from the global generator: build it under :func:`book.training.seeded`)."""
        model = ConvNet1d(self.model_config())
        if self.shortcut_scale != 1.0:
            for block in model.blocks:
                if isinstance(block.shortcut, nn.Identity):  # only the identity shortcuts, as in the paper
                    block.shortcut = ScaledShortcut(self.shortcut_scale)
        return model


def _validate(config: ConvNetConfig, seed: int) -> None:
    validate_conv_config(config)
    validate_whole_number("seed", seed, minimum=0)


# --------------------------------------------------------------------------- training one

def train_net(spec: DepthRun | TrainedNet, data=None, progress: bool = False,
              stop_after: int | None = None, description: str | None = None) -> tuple[ConvNet1d, TrainResult]:
    """Build and train ``spec`` now (nothing is stored): ``(model, curves)``.

    Args:
        spec: the run.
        data: the training and test sets (MNIST-1D if ``None``; Chapter 4 passes one with noisy labels).
        progress: show a progress bar; ``description`` is its label (the spec's by default).
        stop_after: train only the first epochs, with the full schedule (see :func:`book.training.train`).
    """
    with seeded(spec.seed):   # same seed → same initial weights, same batch order, same stochastic-depth draws
        model = spec.build()
        result = train(model, load_mnist1d() if data is None else data, spec.train_config(), seed=spec.seed,
                       progress=progress, stop_after=stop_after,
                       description=description or f"{spec.label} (seed {spec.seed})")
    return model, result


# --------------------------------------------------------------------------- the store

KIND = "conv-net"
_NETS: dict[str, ConvNet1d] = {}      # trained nets in memory, by result key


def _stored_as(spec: DepthRun | TrainedNet) -> DepthRun | TrainedNet:
    # a TrainedNet without a variant is its run: one result, whichever spec asks for it
    return spec.run if isinstance(spec, TrainedNet) and spec.is_plain_run else spec


def _train_and_keep(spec: DepthRun | TrainedNet, progress: bool, disk: bool) -> dict:
    model, result = train_net(spec, progress=progress)
    _NETS[result_key(KIND, spec)] = model.eval()
    if disk:
        atomic_write(result_path(KIND, spec, ".pt"), lambda f: torch.save(model.state_dict(), f))
    return result.to_dict()


def run_depth(spec: DepthRun | TrainedNet, progress: bool = True, disk: bool = True) -> TrainResult:
    """The curves of ``spec``: trained now (and stored) or read from the store.

    Args:
        spec: the run.
        progress: show a progress bar if it trains.
        disk: read and write the on-disk store; ``False`` keeps the result in this process's memory only.
    """
    spec = _stored_as(spec)
    spec.validate()   # before touching the store, so that a bad setting raises ConfigError at once
    return TrainResult.from_dict(cached(KIND, spec, lambda: _train_and_keep(spec, progress, disk), disk=disk))


def trained_net(spec: DepthRun | TrainedNet, progress: bool = True,
                disk: bool = True) -> tuple[ConvNet1d, TrainResult]:
    """``(the trained net in eval mode, its curves)`` for ``spec``, trained once and then read from the store.

    The returned model is shared: deep-copy it before changing it (a forward pass in train mode changes its
    batch-norm statistics).
    """
    spec = _stored_as(spec)
    curves = run_depth(spec, progress=progress, disk=disk)
    key = result_key(KIND, spec)
    if key not in _NETS:
        try:
            state = torch.load(result_path(KIND, spec, ".pt"), weights_only=True)
        except Exception:   # curves without weights, or a corrupt file: train again
            forget(KIND, spec)
            curves = run_depth(spec, progress=progress, disk=disk)
        else:
            with seeded(spec.seed):   # building draws weights: keep the caller's generator as it was
                model = spec.build()
            model.load_state_dict(state)
            _NETS[key] = model.eval()
    return _NETS[key], curves


def trained_model(spec: DepthRun | TrainedNet, progress: bool = True) -> ConvNet1d:
    """The trained net of ``spec`` in eval mode (shared: deep-copy it before changing it)."""
    return trained_net(spec, progress=progress)[0]


def is_trained(spec: DepthRun | TrainedNet) -> bool:
    """Whether the store holds ``spec``'s result (in memory or on disk); nothing is trained."""
    return is_cached(KIND, _stored_as(spec))


def forget_trained(spec: DepthRun | TrainedNet) -> None:
    """Drop ``spec``'s curves and weights from the store (it trains again on the next request)."""
    spec = _stored_as(spec)
    _NETS.pop(result_key(KIND, spec), None)
    forget(KIND, spec)
    result_path(KIND, spec, ".pt").unlink(missing_ok=True)


# --------------------------------------------------------------------------- checking a recorded run

def train_prefix(spec: DepthRun | TrainedNet, epochs: int, data=None) -> TrainResult:
    """The first ``epochs`` epochs of ``spec``'s run, with its full schedule (to check a recording against the code)."""
    return train_net(spec, data=data, stop_after=epochs)[1]


def prefix_mismatches(spec: DepthRun | TrainedNet, recorded: dict, epochs: int, tolerance: float = 0.0,
                      data=None, name: str | None = None) -> list[str]:
    """Train ``spec``'s first ``epochs`` epochs now and describe each epoch that disagrees with ``recorded``.

    ``recorded`` holds the run's ``train_error`` and ``train_loss`` per epoch; errors must agree within
    ``tolerance`` (absolute), losses within a relative ``tolerance`` (0 by default: the pinned numerical path,
    :mod:`book.numerics`, gives the same bits on every x86-64 CPU). ``data`` replaces MNIST-1D (Chapter 4's
    noisy labels); ``name`` names the run in the messages (the spec's label and seed by default).
    """
    now = train_prefix(spec, epochs, data=data)
    name = name or f"{spec.label} seed {spec.seed}"
    problems = []
    for epoch in range(min(epochs, len(recorded["train_error"]))):
        then_error, now_error = recorded["train_error"][epoch], now.train_error[epoch]
        then_loss, now_loss = recorded["train_loss"][epoch], now.train_loss[epoch]
        if abs(now_error - then_error) > tolerance or abs(now_loss - then_loss) > tolerance * abs(then_loss):
            problems.append(f"{name}, epoch {epoch + 1}: training error {now_error!r} and loss {now_loss!r} now, "
                            f"{then_error!r} and {then_loss!r} recorded")
    return problems
