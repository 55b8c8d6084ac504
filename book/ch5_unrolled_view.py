r"""Chapter 5, the unrolled view: why residual nets work, measured on the nets of Chapter 4.

Veit, Wilber & Belongie (2016, arXiv 1605.06431) expand a stack of n residual
blocks, :math:`x_{i+1} = x_i + f_i(x_i)`, into a sum over :math:`2^n` paths: each
block is either passed through its branch or skipped. A path that takes k
branches has length k, and k follows Binomial(n, ½). This module

- takes the trained MNIST-1D nets of :mod:`book.ch4_building_resnets` (``STUDY_DEPTH``,
  ``TrainedNet`` and ``trained_net`` are re-exported here for the chapter);
- deletes blocks from trained nets (the lesion study);
- measures the gradient each path length carries, by sampling which branches a
  backward pass may use;
- slices the loss landscape along filter-normalized random directions
  (Li et al. 2018, arXiv 1712.09913).

Parts before the whole: path counting → lesions → path gradients → landscapes.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .cache import cached
from .ch4_building_resnets import STUDY_DEPTH, TrainedNet, trained_net
from .data import load_mnist1d
from .errors import ConfigError
from .nets.conv1d import BasicBlock1d, ConvNet1d
from .training import evaluate

__all__ = [
    "CLAIM_SEEDS", "STUDY_DEPTH", "LANDSCAPE_DEPTHS", "PATH_SAMPLES",
    "gradient_weighted_length", "TrainedNet", "trained_net", "path_length_distribution", "deletable_blocks", "delete_blocks",
    "lesion_single", "lesion_multiple", "path_gradient_by_length", "filter_normalized_direction",
    "loss_surface", "landscape_roughness", "LandscapeSpec", "landscape",
]


# --------------------------------------------------------------------------- the chapters' settings

CLAIM_SEEDS = (0, 1, 2)          # every claim is checked on these seeds
LANDSCAPE_DEPTHS = (8, 20)       # two depths for the loss-landscape slices
PATH_SAMPLES = 8                 # sampled paths per length in the path-gradient measurement


# --------------------------------------------------------------------------- counting paths

def path_length_distribution(n_blocks: int) -> list[float]:
    """P(a path through ``n_blocks`` residual blocks has length k), k = 0 … n: Binomial(n, ½).

    There are C(n, k) of the 2^n paths with exactly k branches on them.
    """
    return [math.comb(n_blocks, k) / 2**n_blocks for k in range(n_blocks + 1)]


# --------------------------------------------------------------------------- lesions

def deletable_blocks(model: ConvNet1d) -> list[int]:
    """Indices of the blocks whose input and output shapes match (no downsampling).

    Only these can be deleted from a plain net without breaking its shapes; the
    lesion study deletes the same positions in both kinds of net.
    """
    out = []
    for i, block in enumerate(model.blocks):
        conv = block.branch[0]
        if conv.stride[0] == 1 and conv.in_channels == block.branch[3].out_channels:
            out.append(i)
    return out


def delete_blocks(model: ConvNet1d, indices) -> ConvNet1d:
    """A copy of ``model`` with the given blocks replaced by ``nn.Identity()``.

    For a residual block this removes the branch and keeps the shortcut: the
    block's output becomes ``relu(x) = x`` (its input is already ≥ 0). For a plain
    block it removes both of its weight layers.
    """
    lesioned = copy.deepcopy(model)
    for i in indices:
        lesioned.blocks[i] = nn.Identity()
    return lesioned.eval()


def lesion_single(model: ConvNet1d) -> dict:
    """Test error with nothing deleted, and after deleting each deletable block in turn."""
    data = load_mnist1d()
    _, base = evaluate(model, data.x_test, data.y_test)
    errors = {i: evaluate(delete_blocks(model, [i]), data.x_test, data.y_test)[1] for i in deletable_blocks(model)}
    return {"base": base, "deleted": errors, "mean_increase": sum(errors.values()) / len(errors) - base}


def lesion_multiple(model: ConvNet1d, samples: int = 10, seed: int = 0) -> dict:
    """Mean test error after deleting k random deletable blocks, for k = 0 … all."""
    data = load_mnist1d()
    blocks = deletable_blocks(model)
    gen = torch.Generator().manual_seed(seed)
    means = []
    for k in range(len(blocks) + 1):
        errs = []
        for _ in range(samples if 0 < k < len(blocks) else 1):
            chosen = [blocks[j] for j in torch.randperm(len(blocks), generator=gen)[:k].tolist()]
            errs.append(evaluate(delete_blocks(model, chosen), data.x_test, data.y_test)[1])
        means.append(sum(errs) / len(errs))
    return {"k": list(range(len(blocks) + 1)), "mean_error": means}


# --------------------------------------------------------------------------- which paths carry the gradient

def _gated_block(block: BasicBlock1d, x: torch.Tensor, through_branch: bool) -> torch.Tensor:
    # The forward value is the block's own: relu(F(x) + shortcut(x)). The backward
    # pass is allowed through one of the two: the branch (path takes this block) or the shortcut.
    if through_branch:
        out = block.branch(x) + block.shortcut(x.detach())
    else:
        out = block.branch(x.detach()) + block.shortcut(x)
    return block.relu(out)


def path_gradient_by_length(model: ConvNet1d, samples_per_length: int = 4, batch: int = 200,
                            seed: int = 0) -> dict:
    """Gradient norm carried by single paths of each length (Veit et al. 2016, §6).

    For each length k, choose k of the n blocks at random; in the backward pass
    the gradient may flow only through those blocks' branches and through the
    other blocks' shortcuts — exactly one of the 2^n paths. The norm of the
    loss's gradient with respect to the first block's input then measures what
    one path of length k carries. Multiplying by the number of such paths,
    C(n, k), gives the total gradient that paths of length k carry.

    Returns ``{"k", "per_path", "total", "share"}`` (``share`` = total normalised to sum 1).
    """
    data = load_mnist1d()
    blocks = list(model.blocks)
    if not all(isinstance(b, BasicBlock1d) for b in blocks):
        raise ConfigError("path gradients need a residual net: a plain net has only one path.")
    n = len(blocks)
    gen = torch.Generator().manual_seed(seed)
    x, y = data.x_train[:batch], data.y_train[:batch]
    model.eval()
    with torch.no_grad():
        h0 = model.stem(x)
    per_path = []
    for k in range(n + 1):
        norms = []
        for _ in range(samples_per_length):
            on = set(torch.randperm(n, generator=gen)[:k].tolist())
            h = h0.clone().requires_grad_(True)
            out = h
            for i, block in enumerate(blocks):
                out = _gated_block(block, out, i in on)
            loss = F.cross_entropy(model.head(out.mean(dim=-1)), y)
            (grad,) = torch.autograd.grad(loss, h)
            norms.append(grad.norm().item())
        per_path.append(sum(norms) / len(norms))
    total = [g * math.comb(n, k) for k, g in enumerate(per_path)]
    s = sum(total)
    return {"k": list(range(n + 1)), "per_path": per_path, "total": total, "share": [t / s for t in total]}


def gradient_weighted_length(measured: dict) -> float:
    """The mean path length, each length weighted by the share of the gradient it carries."""
    return sum(k * s for k, s in zip(measured["k"], measured["share"]))


# --------------------------------------------------------------------------- loss landscapes

def filter_normalized_direction(model: nn.Module, gen: torch.Generator) -> list[torch.Tensor]:
    """A random direction in weight space, filter-normalized (Li et al. 2018, §4).

    Each filter (a conv's output channel, a linear layer's row) of a Gaussian
    direction is rescaled to the norm of the matching filter of the weights, so
    that the direction respects each filter's scale. BN parameters and biases
    (1-D tensors) get zero: the slice leaves them alone.
    """
    direction = []
    for p in model.parameters():
        if p.dim() <= 1:
            direction.append(torch.zeros_like(p))
            continue
        d = torch.randn(p.shape, generator=gen)
        d_norm = d.flatten(1).norm(dim=1).view(-1, *[1] * (p.dim() - 1))
        w_norm = p.detach().flatten(1).norm(dim=1).view(-1, *[1] * (p.dim() - 1))
        direction.append(d * w_norm / (d_norm + 1e-10))
    return direction


@torch.no_grad()
def loss_surface(model: nn.Module, x: torch.Tensor, y: torch.Tensor, resolution: int = 15,
                 span: float = 1.0, seed: int = 0) -> dict:
    """Training loss on the plane ``θ + α·δ + β·η``, α, β ∈ [−span, span].

    BN uses the statistics of the evaluation batch (train mode, on a copy), so a
    rescaled filter does not change the loss — the reason for filter normalization.
    """
    gen = torch.Generator().manual_seed(seed)
    probe = copy.deepcopy(model).train()
    theta = [p.detach().clone() for p in probe.parameters()]
    d1 = filter_normalized_direction(probe, gen)
    d2 = filter_normalized_direction(probe, gen)
    coords = torch.linspace(-span, span, resolution).tolist()
    grid = []
    for b in coords:
        row = []
        for a in coords:
            for p, t, u, v in zip(probe.parameters(), theta, d1, d2):
                p.copy_(t + a * u + b * v)
            loss = F.cross_entropy(probe(x), y).item()
            row.append(loss if math.isfinite(loss) else 1e3)
        grid.append(row)
    return {"coords": coords, "loss": grid}


def landscape_roughness(surface: dict) -> float:
    """How far a slice is from a convex bowl: the share of its points that curve downward.

    At each interior grid point the discrete Hessian of the slice (second
    differences along α, β and the diagonal) is formed; a point counts as
    non-convex if that 2×2 matrix has a negative eigenvalue whose size is at
    least 10 % of the positive one's (the test Li et al. apply to the full
    Hessian, |λ_min / λ_max|, on the 2-D slice instead). 0 = a convex bowl.
    """
    z = torch.tensor(surface["loss"], dtype=torch.float64)
    h = surface["coords"][1] - surface["coords"][0]
    zc = z[1:-1, 1:-1]
    faa = (z[1:-1, 2:] - 2 * zc + z[1:-1, :-2]) / h**2
    fbb = (z[2:, 1:-1] - 2 * zc + z[:-2, 1:-1]) / h**2
    fab = (z[2:, 2:] - z[2:, :-2] - z[:-2, 2:] + z[:-2, :-2]) / (4 * h**2)
    hess = torch.stack([torch.stack([faa, fab], -1), torch.stack([fab, fbb], -1)], -2)
    eig = torch.linalg.eigvalsh(hess)                     # (..., 2), ascending
    lo, hi = eig[..., 0], eig[..., 1]
    non_convex = (lo < 0) & (lo.abs() >= 0.1 * hi.abs())
    return non_convex.double().mean().item()


@dataclass(frozen=True)
class LandscapeSpec:
    """One 2-D loss slice around a trained net."""

    net: TrainedNet = TrainedNet()
    resolution: int = 13                 # grid points per axis (Li et al. use 51; 13 keeps the page fast)
    span: float = 0.5                    # α, β ∈ [−span, span], in filter-normalized units
    samples: int = 500                   # training sequences the loss is averaged over
    direction_seed: int = 0


def landscape(spec: LandscapeSpec, progress: bool = True) -> dict:
    """The slice (cached), with its roughness and the trained net's errors."""
    def compute() -> dict:
        model, result = trained_net(spec.net, progress=progress)
        data = load_mnist1d()
        surface = loss_surface(model, data.x_train[: spec.samples], data.y_train[: spec.samples],
                               spec.resolution, spec.span, spec.direction_seed)
        return {**surface, "roughness": landscape_roughness(surface),
                "train_error": result.final_train_error, "test_error": result.final_test_error}
    return cached("landscape", spec, compute)


# --------------------------------------------------------------------------- stochastic depth: training on the paths

STOCHASTIC_SURVIVAL = 0.5        # Huang et al.'s survival probability at the last block (linear decay from 1)


@dataclass(frozen=True)
class StochasticDepthStudy:
    """ResNet-20 trained with and without stochastic depth (same seed, same recipe), then lesioned."""

    depth: int = STUDY_DEPTH
    seed: int = 0
    final_survival: float = STOCHASTIC_SURVIVAL
    lesion_samples: int = 10      # random block subsets per number of deleted blocks


def stochastic_depth_study(spec: StochasticDepthStudy, progress: bool = True) -> dict:
    """``{"standard": {...}, "stochastic": {...}}``: final errors, single and multiple lesions of each (cached)."""
    def compute() -> dict:
        out = {}
        for name, survival in (("standard", 1.0), ("stochastic", spec.final_survival)):
            model, result = trained_net(TrainedNet(depth=spec.depth, residual=True, seed=spec.seed,
                                                   final_survival=survival), progress=progress)
            single = lesion_single(model)
            out[name] = {"train_error": result.final_train_error, "test_error": result.final_test_error,
                         "base": single["base"], "mean_increase": single["mean_increase"],
                         "multiple": lesion_multiple(model, samples=spec.lesion_samples, seed=spec.seed)}
        return out

    return cached("stochastic-depth", spec, compute)
