r"""Chapter 3, the gradient highway: gradients and activations through depth, at initialization.

Each experiment is a frozen dataclass (its spec, whose defaults are the
chapter's settings) and a function that returns a JSON-able result through
:func:`book.cache.cached`, so the page, its explorer (:mod:`book.ch3_widgets`)
and the claim tests that ask for the same setting compute it once.

- :class:`GradFlow`      per-layer gradient norm and activation std at initialization
- :class:`Shatter`       correlation of input gradients at neighbouring inputs (Balduzzi et al. 2017)
- :class:`BNGradFlow`    per-block gradients of Chapter 1's batch-normalized conv nets, at init and trained
- :class:`WeightGradients` every conv layer's relative gradient while plain-20/56 train, and the recorded
  intervention that equalizes it (``python -m book.ch3_gradient_highway record-equalized``)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .cache import cached
from .data import load_mnist1d
from .errors import validate_choice, validate_whole_number
from .nets.mlp import RESIDUAL_INITS, MLPConfig, MLPStack, validate_mlp_config
from .probes import LayerStats, input_gradients, probe, stack_points
from .records import RECORDED_DIR, main, provenance, read_record, setting_problems, write_record
from .trained_nets import DepthRun, trained_model
from .training import one_thread, seeded, train

__all__ = [
    "BNGradFlow", "bn_gradient_flow", "BN_NETS", "explosion_ratio", "BNShatter", "bn_shattering",
    "MAX_DEPTH", "CH3_DEPTHS", "CLAIM_DEPTH", "ACTIVATION_STD_INITS", "FORWARD_DEPTH",
    "FORWARD_VARIANTS", "SHATTER_CLAIM_DEPTH",
    "GradFlow", "gradient_flow", "first_to_last_ratio", "INIT_ZOO", "init_zoo_spec",
    "Shatter", "shattered_correlation", "SHATTER_VARIANTS", "SHATTER_DEPTHS", "SHATTER_SEEDS",
    "WeightGradients", "EQUALIZE_DEPTHS", "EQUALIZE_SEEDS", "RECORDED_EQUALIZE", "record_equalized",
    "recorded_equalized", "equalized_problems",
]

MAX_DEPTH = 200                       # deepest stack the chapter and its widget probe
CH3_DEPTHS = (10, 50, 100, 200)   # the depths of Chapter 3's sweeps
CLAIM_DEPTH = 50                      # "50+ layers": the depth of Chapter 3's headline comparison


@dataclass(frozen=True)
class GradFlow:
    """One probe at initialization: an :class:`book.nets.mlp.MLPStack` on a batch of MNIST-1D, cross-entropy loss."""

    depth: int = CLAIM_DEPTH          # layers (plain) or blocks (residual)
    residual: bool = False
    init: str = "default"             # one of book.nets.mlp.INITS
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


def _validate_depth(depth) -> None:
    validate_whole_number("depth", depth, minimum=1, maximum=MAX_DEPTH)


@one_thread
def _probe_gradient_flow(spec: GradFlow) -> dict:
    data = load_mnist1d().flat()
    x, y = data.x_train[: spec.batch_size], data.y_train[: spec.batch_size]
    with seeded(spec.seed):
        model = MLPStack(spec.mlp_config())
    stats = probe(model, stack_points(model), x, lambda out: F.cross_entropy(out, y))
    return stats.to_dict()


def gradient_flow(spec: GradFlow) -> LayerStats:
    """Probe ``spec`` at initialization (or fetch it): entry 0 is the input layer, entry l the l-th layer/block."""
    _validate_depth(spec.depth)
    validate_mlp_config(spec.mlp_config())
    return LayerStats.from_dict(cached("gradflow", spec, lambda: _probe_gradient_flow(spec)))


def first_to_last_ratio(stats: LayerStats) -> float:
    """‖∂L/∂h‖ after the first layer over ‖∂L/∂h‖ after the last: ≪ 1 means the gradient vanished on the way down."""
    first, last = stats.grad_norm[1], stats.grad_norm[-1]
    return first / last if last > 0 else float("nan")


# (label, overrides of GradFlow) for Chapter 3's table of initializations.
INIT_ZOO: tuple[tuple[str, dict], ...] = (
    ("PyTorch default", dict(init="default")),
    ("Xavier, gain 1 (as published)", dict(init="xavier_gain1")),
    ("Xavier, ReLU gain √2", dict(init="xavier")),
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
ACTIVATION_STD_INITS = ("default", "xavier_gain1", "kaiming", "small")

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
SHATTER_SEEDS = (0, 1, 2, 3, 4)     # one network per seed is noisy: the chapter averages five
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


@one_thread
def _shatter(spec: Shatter) -> dict:
    cfg = MLPConfig(depth=spec.depth, width=spec.width, in_features=1, out_features=1,
                    **SHATTER_VARIANTS[spec.variant])
    with seeded(spec.seed):
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
    _validate_depth(spec.depth)
    validate_choice("variant", spec.variant, SHATTER_VARIANTS)
    return cached("shatter", spec, lambda: _shatter(spec))


# --------------------------------------------------------------------------- Chapter 1's own nets: batch norm, He init

BN_NETS = ((20, False), (56, False), (20, True), (56, True))   # (depth, residual): Chapter 1's comparison


@dataclass(frozen=True)
class BNGradFlow:
    """Per-block gradient norms of one of Chapter 1's conv nets (batch norm, He init), on a training batch.

    ``trained=False`` probes the net at initialization; ``trained=True`` probes the net Chapter 1 trained
    (:func:`book.trained_nets.trained_model`, same seed). Batch norm uses the batch's statistics, as in
    training.
    """

    depth: int = 56
    residual: bool = False
    seed: int = 0
    trained: bool = False
    batch_size: int = 128             # the first training sequences, as in Chapter 1's mini-batches

    def run(self) -> DepthRun:
        return DepthRun(depth=self.depth, residual=self.residual, seed=self.seed)


@one_thread
def _bn_gradient_flow(spec: BNGradFlow, progress: bool) -> dict:
    import copy

    data = load_mnist1d()
    x, y = data.x_train[: spec.batch_size], data.y_train[: spec.batch_size]
    if spec.trained:
        model = copy.deepcopy(trained_model(spec.run(), progress=progress))  # a copy: train mode updates BN buffers
    else:
        with seeded(spec.seed):  # the same initial weights as Chapter 1's run of this seed
            model = spec.run().build()
    model.train()
    return probe(model, stack_points(model), x, lambda out: F.cross_entropy(out, y)).to_dict()


def bn_gradient_flow(spec: BNGradFlow, progress: bool = True) -> LayerStats:
    """Probe ``spec`` (cached): entry 0 is the stem, entry l the output of block l."""
    spec.run().validate()
    return LayerStats.from_dict(cached("bn-gradflow", spec, lambda: _bn_gradient_flow(spec, progress)))


def explosion_ratio(stats: LayerStats) -> float:
    """‖∂L/∂h‖ after the first block over ‖∂L/∂h‖ after the last: ≫ 1 means the gradient grows toward the input."""
    return stats.grad_norm[1] / stats.grad_norm[-1]


@dataclass(frozen=True)
class BNShatter:
    """Shattered gradients on one of Chapter 1's conv nets at initialization (Balduzzi et al. 2017's measure).

    Walk in ``points`` steps along the straight line between two test sequences, and take at each point the
    gradient of the true class's logit with respect to the input (a vector of 40 numbers). The measure is the
    cosine similarity of the gradients at neighbouring points, averaged along the line and over ``pairs`` lines:
    near 1 the gradient changes smoothly with the input; near 0 it is as if it were redrawn at random at every
    step. Batch norm is frozen at the statistics of 512 training sequences, so the net is a fixed function of
    each input (no mixing across the points of the line).
    """

    depth: int = 56
    residual: bool = False
    seed: int = 0
    points: int = 128
    pairs: int = 4

    def run(self) -> DepthRun:
        return DepthRun(depth=self.depth, residual=self.residual, seed=self.seed)


@one_thread
def _bn_shatter(spec: BNShatter) -> dict:
    data = load_mnist1d()
    with seeded(spec.seed):
        model = spec.run().build()
    for m in model.modules():                 # running statistics := the statistics of one training batch
        if isinstance(m, nn.BatchNorm1d):
            m.momentum = 1.0
    model.train()
    with torch.no_grad():
        model(data.x_train[:512])
    model.eval()
    similarity = []
    for p in range(spec.pairs):
        start, end, label = data.x_test[2 * p], data.x_test[2 * p + 1], int(data.y_test[2 * p])
        t = torch.linspace(0, 1, spec.points).view(-1, 1, 1)
        x = (start + t * (end - start)).requires_grad_(True)       # (points, 1, 40)
        (grad,) = torch.autograd.grad(model(x)[:, label].sum(), x)
        grad = grad.flatten(1)
        similarity.append(F.cosine_similarity(grad[:-1], grad[1:], dim=1).mean().item())
    return {"similarity": sum(similarity) / len(similarity), "per_pair": similarity}


def bn_shattering(spec: BNShatter) -> dict:
    """``{"similarity": mean cosine of neighbouring input gradients, "per_pair": [...]}`` (cached)."""
    spec.run().validate()
    return cached("bn-shatter", spec, lambda: _bn_shatter(spec))


# --------------------------------------------------------------------------- during training: cause or symptom?

EQUALIZE_DEPTHS = (20, 56)            # plain-20 trains, plain-56 degrades (Chapter 1)
EQUALIZE_SEEDS = (0, 1, 2, 3, 4)
EQUALIZE_PREFIX_EPOCHS = 2            # epochs a test re-runs to check the recording
RECORDED_EQUALIZE = RECORDED_DIR / "ch3_equalized_updates.json"


@dataclass(frozen=True)
class WeightGradients:
    """One of Chapter 1's plain runs, with every conv layer's ``‖∂L/∂W‖ / ‖W‖`` measured at every step.

    Under batch norm a conv layer's output does not change when its weights are scaled, so the size of a step
    that matters is the *relative* one, ``‖ΔW‖ / ‖W‖``, which SGD makes proportional to ``‖∂L/∂W‖ / ‖W‖``.
    With ``equalize=False`` this is exactly Chapter 1's run (same initial weights, batches and curves). With
    ``equalize=True`` every conv layer's gradient is rescaled before each step so that its relative size is the
    median layer's (an intervention in the spirit of LARS, You et al. 2017): no layer gets a larger or smaller
    relative step than the others, so an explosion across depth can no longer shape training.
    """

    depth: int = 56
    seed: int = 0
    equalize: bool = False
    residual: bool = False

    def run(self) -> DepthRun:
        return DepthRun(depth=self.depth, residual=self.residual, seed=self.seed)

    @property
    def label(self) -> str:
        return f"{self.run().label}{', equalized' if self.equalize else ''}"


def _weight_gradients(spec: WeightGradients, progress: bool = False, stop_after: int | None = None) -> dict:
    data = load_mnist1d()
    with seeded(spec.seed):                   # Chapter 1's initial weights for this seed
        model = spec.run().build()
    convs = [m.weight for m in model.modules() if isinstance(m, nn.Conv1d)]
    steps, ratios, norms = [], [], []

    def before_step():
        ratio = torch.stack([w.grad.norm() / w.norm() for w in convs])   # (layers,)
        steps.append(ratio)
        if spec.equalize:
            target = ratio.median()
            for w, r in zip(convs, ratio):
                w.grad.mul_(target / r.clamp_min(1e-30))

    def on_epoch(epoch, result):
        ratios.append(torch.stack(steps).mean(0).tolist())   # the epoch's mean, per layer (before any rescaling)
        norms.append([w.norm().item() for w in convs])
        steps.clear()

    result = train(model, data, spec.run().train_config(), seed=spec.seed, progress=progress,
                   description=spec.label, on_epoch=on_epoch, stop_after=stop_after, before_step=before_step)
    return {**result.to_dict(), "ratios": ratios, "weight_norms": norms}


def record_equalized(path=RECORDED_EQUALIZE, seeds=EQUALIZE_SEEDS, progress: bool = True) -> dict:
    """Train plain-20 and plain-56, with and without equalized relative steps, and record their curves.

    ``python -m book.ch3_gradient_highway record-equalized`` (about ten minutes on one core).
    """
    import time
    from dataclasses import asdict

    start = time.perf_counter()
    runs = []
    for seed in seeds:
        for depth in EQUALIZE_DEPTHS:
            for equalize in (False, True):
                spec = WeightGradients(depth=depth, seed=seed, equalize=equalize)
                runs.append({**asdict(spec), **_weight_gradients(spec, progress)})
    about = provenance("python -m book.ch3_gradient_highway record-equalized", time.perf_counter() - start,
                       spec=asdict(DepthRun()), depths=list(EQUALIZE_DEPTHS), seeds=list(seeds))
    write_record(path, about, runs)
    return {"provenance": about, "runs": runs}


def recorded_equalized(path=RECORDED_EQUALIZE) -> dict:
    """``{"provenance": {...}, "runs": {(depth, equalize, seed): run}}``; each run has the curves of a
    :class:`~book.training.TrainResult` plus ``ratios[epoch][layer]`` and ``weight_norms[epoch][layer]``."""
    record = read_record(path)
    return {"provenance": record["provenance"],
            "runs": {(r["depth"], r["equalize"], r["seed"]): r for r in record["runs"]}}


def equalized_problems(path=RECORDED_EQUALIZE, cases=((56, True, 0), (20, False, 1))) -> list[str]:
    """Re-run the first epochs of some recorded runs; describe every number that differs (none, on the pinned path)."""
    record = recorded_equalized(path)
    problems = setting_problems(record, DepthRun())
    runs = record["runs"]
    for depth, equalize, seed in cases:
        then = runs[(depth, equalize, seed)]
        now = _weight_gradients(WeightGradients(depth=depth, seed=seed, equalize=equalize),
                                stop_after=EQUALIZE_PREFIX_EPOCHS)
        for key in ("train_error", "train_loss", "ratios"):
            if now[key] != then[key][:EQUALIZE_PREFIX_EPOCHS]:
                problems.append(f"plain-{depth}{' equalized' if equalize else ''} seed {seed}: the first "
                                f"{EQUALIZE_PREFIX_EPOCHS} epochs' {key} differ from the recording")
    return problems


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:], "book.ch3_gradient_highway",
                  {"record-equalized": (record_equalized, RECORDED_EQUALIZE)}))
