"""Chapter 4, building ResNets: the MNIST-1D nets that Chapters 4 and 5 train, with their variants.

:class:`TrainedNet` is Chapter 1's :class:`~book.ch1_degradation.DepthRun`
plus what Chapter 4 varies: a scaled shortcut (He et al. 2016's constant
scaling), zero-initialised residual branches (Goyal et al. 2017) and the
learning rate. With the defaults it *is* Chapter 1's run and shares its cache.
Weights are cached too, so the lesion and path studies of Chapter 5 reuse them.

The image ResNets of the chapter (CIFAR 6n+2, ImageNet 18–152) live in
:mod:`book.nets.resnets`; the paper's CIFAR-10 figure is ``python -m book.reproduce``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .cache import atomic_write, result_key, result_path
from .ch1_degradation import DepthRun, run_depth, trained_model
from .data import load_mnist1d
from .errors import ConfigError
from .nets.conv1d import ConvNet1d, ConvNetConfig, check_conv_config
from .nets.resnets import PAPER_TEST_ERROR
from .nets.shortcuts import ScaledShortcut
from .training import TrainResult, train

__all__ = ["CLAIM_SEEDS", "STUDY_DEPTH", "SCALED_SHORTCUT", "BAD_LR", "PAPER_TEST_ERROR", "TrainedNet", "trained_net"]

CLAIM_SEEDS = (0, 1, 2)          # every claim is checked on these seeds
STUDY_DEPTH = 20                 # the shortcut study (and Chapter 5's lesions and path gradients) use 20-layer nets
SCALED_SHORTCUT = 0.5            # He et al. 2016's constant scaling
BAD_LR = 3.0                     # a learning rate 30× Chapter 1's


@dataclass(frozen=True)
class TrainedNet:
    """A ConvNet1d trained on MNIST-1D with Chapter 1's recipe, plus the variants Chapter 4 tries.

    With the defaults it is exactly Chapter 1's :class:`book.ch1_degradation.DepthRun`
    (same seed → same initial weights, same batches, same curves).
    """

    depth: int = 20                      # weighted layers, 6n+2
    residual: bool = True
    seed: int = 0
    shortcut_scale: float = 1.0          # 1: the clean identity; 0.5: He et al. 2016's constant scaling
    zero_init_residual: bool = False     # Goyal et al.: last BN γ = 0
    final_survival: float = 1.0          # < 1: stochastic depth (Huang et al. 2016), the last block's survival
    lr: float = DepthRun.lr              # Chapter 1's settings below
    width: int = DepthRun.width          # channels of the first stage; stages have width·(1, 2, 4)
    epochs: int = DepthRun.epochs
    warmup_epochs: int = DepthRun.warmup_epochs
    batch_size: int = DepthRun.batch_size

    @property
    def widths(self) -> tuple[int, int, int]:
        return (self.width, 2 * self.width, 4 * self.width)

    @property
    def is_chapter_one_run(self) -> bool:
        return self.shortcut_scale == 1.0 and not self.zero_init_residual and self.final_survival == 1.0

    @property
    def label(self) -> str:
        name = f"{'ResNet' if self.residual else 'plain'}-{self.depth}"
        if self.shortcut_scale != 1.0:
            name += f" (shortcut × {self.shortcut_scale:g})"
        if self.lr != DepthRun.lr:
            name += f" (lr {self.lr:g})"
        return name

    def build(self) -> ConvNet1d:
        """The untrained net (uses the global RNG: seed it first)."""
        cfg = ConvNetConfig(depth=self.depth, residual=self.residual, widths=self.widths,
                            zero_init_residual=self.zero_init_residual, final_survival=self.final_survival)
        model = ConvNet1d(cfg)
        if self.shortcut_scale != 1.0:
            if not self.residual:
                raise ConfigError("a plain net has no shortcut to scale.")
            for block in model.blocks:
                if isinstance(block.shortcut, nn.Identity):  # only the identity shortcuts, as in the paper
                    block.shortcut = ScaledShortcut(self.shortcut_scale)
        return model

    def run(self) -> DepthRun:
        return DepthRun(depth=self.depth, residual=self.residual, seed=self.seed, width=self.width,
                        epochs=self.epochs, warmup_epochs=self.warmup_epochs, lr=self.lr,
                        batch_size=self.batch_size)


_NETS: dict[str, tuple[ConvNet1d, TrainResult]] = {}


def trained_net(spec: TrainedNet, progress: bool = True) -> tuple[ConvNet1d, TrainResult]:
    """Train ``spec`` (or load its weights from the cache); returns ``(model in eval mode, curves)``.

    Weights are stored in the cache (:func:`book.cache.result_path`) keyed by the spec and the
    code its module imports, and read back with ``torch.load(weights_only=True)``.
    The returned model is shared: deep-copy it before changing it.
    """
    check_conv_config(ConvNetConfig(depth=spec.depth, residual=spec.residual, widths=spec.widths))
    key = result_key("net", spec)
    if key in _NETS:
        return _NETS[key]
    if spec.is_chapter_one_run:  # Chapter 1 trains (and caches) exactly this net: share it
        curves = run_depth(spec.run(), progress=progress)
        _NETS[key] = (trained_model(spec.run(), progress=progress), curves)
        return _NETS[key]
    path = result_path("net", spec, ".pt")
    with torch.random.fork_rng():
        torch.manual_seed(spec.seed)  # same seed → same initial weights as Chapter 1's run
        model = spec.build()
        state = None
        if path.exists():
            try:
                state = torch.load(path, weights_only=True)
            except Exception:  # a corrupt file is retrained
                state = None
        if state is None:
            result = train(model, load_mnist1d(), spec.run().train_config(), seed=spec.seed,
                           progress=progress, description=f"{spec.label} (seed {spec.seed})")
            state = {"model": model.state_dict(), "result": result.to_dict()}
            atomic_write(path, lambda f: torch.save(state, f))
        else:
            model.load_state_dict(state["model"])
    model.eval()
    _NETS[key] = (model, TrainResult.from_dict(state["result"]))
    return _NETS[key]
