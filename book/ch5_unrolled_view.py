r"""Chapter 5, the unrolled view: why residual nets work, measured on the nets of Chapters 1 and 4.

Veit, Wilber & Belongie (2016, arXiv 1605.06431) expand a stack of n residual
blocks, :math:`x_{i+1} = x_i + f_i(x_i)`, into a sum over :math:`2^n` paths: each
block is either passed through its branch or skipped. A path that takes k
branches has length k, and k follows Binomial(n, ½). This module

- takes the trained MNIST-1D nets of Chapters 1 and 4 from their store, :mod:`book.trained_nets`;
- deletes blocks from trained nets (the lesion study): a residual block loses its
  branch and keeps its shortcut, identity or option A;
- measures the gradient each path length carries: one sampled path at a time, as
  Veit et al. do, and exactly, all paths of a length added as vectors;
- slices the loss landscape along filter-normalized random directions
  (Li et al. 2018, arXiv 1712.09913);
- records ResNet-20 trained with and without stochastic depth (Huang et al. 2016, arXiv 1603.09382), for ten
  epochs and four times as long, and lesioned (``python -m book.ch5_unrolled_view record-sd``, :data:`RECORDED_SD`);
- records the lesion and path study at 110 layers, Veit et al.'s depth
  (``python -m book.ch5_unrolled_view record-deep``, :data:`RECORDED_DEEP`).

Parts before the whole: path counting → lesions → path gradients → landscapes →
stochastic depth → the recorded deep study.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .cache import cached
from .data import load_mnist1d
from .errors import ConfigError
from .nets.conv1d import BasicBlock1d, ConvNet1d
from .records import RECORDED_DIR, main, provenance, read_record, setting_problems, write_record
from .trained_nets import STUDY_DEPTH, DepthRun, TrainedNet, prefix_mismatches, trained_net
from .training import evaluate

__all__ = [
    "LANDSCAPE_DEPTH", "PATH_SAMPLES",
    "path_length_distribution", "deletable_blocks", "downsampling_blocks", "delete_blocks", "lesion_single",
    "lesion_multiple", "path_gradient_by_length", "gradient_by_length", "gradient_weighted_length",
    "filter_normalized_direction", "loss_surface", "slice_summary", "LandscapeSpec", "landscape",
    "STOCHASTIC_SURVIVAL", "SD_EPOCHS", "SD_SEEDS", "SD_LESION_SAMPLES", "RECORDED_SD", "sd_run",
    "record_stochastic_depth", "recorded_stochastic_depth", "stochastic_depth_problems",
    "DEEP_DEPTH", "DEEP_EPOCHS", "DEEP_RESIDUAL_SEEDS", "DEEP_PLAIN_SEEDS", "DEEP_LESION_KS", "DEEP_LESION_SAMPLES",
    "DEEP_PATH_SAMPLES", "SHALLOW_PATH_SEEDS", "RECORDED_DEEP", "deep_run", "record_deep", "recorded_deep",
    "deep_run_problems",
]


# --------------------------------------------------------------------------- the chapters' settings

LANDSCAPE_DEPTH = 56            # the loss-landscape slices: plain-56 and ResNet-56, as in Li et al.'s Fig. 5
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
        first, last = block.branch.conv1, block.branch.conv2
        if first.stride[0] == 1 and first.in_channels == last.out_channels:
            out.append(i)
    return out


def delete_blocks(model: ConvNet1d, indices) -> ConvNet1d:
    """A copy of ``model`` with the *branches* of the given blocks removed.

    A residual block ``relu(F(x) + shortcut(x))`` becomes its shortcut: ``nn.Identity()`` for a block that keeps
    the shape (its input is already ≥ 0, so ``relu(x) = x``), the option A shortcut (subsample, pad zero
    channels) for a block that downsamples. A plain block has nothing else: it can be removed only where it
    keeps the shape, and then both of its weight layers go.

    Raises:
        ConfigError: a plain block that changes the shape.
    """
    lesioned = copy.deepcopy(model)
    for i in indices:
        block = lesioned.blocks[i]
        if isinstance(block, BasicBlock1d):
            lesioned.blocks[i] = block.shortcut
        elif i in deletable_blocks(model):
            lesioned.blocks[i] = nn.Identity()
        else:
            raise ConfigError(f"plain block {i} changes the shape: without a shortcut nothing can replace it.")
    return lesioned.eval()


def downsampling_blocks(model: ConvNet1d) -> list[int]:
    """Indices of the blocks that halve the length and widen the channels (the first of stages 2 and 3)."""
    return [i for i in range(len(model.blocks)) if i not in deletable_blocks(model)]


def lesion_single(model: ConvNet1d) -> dict:
    """Test error with nothing deleted, and after deleting each deletable block in turn."""
    data = load_mnist1d()
    _, base = evaluate(model, data.x_test, data.y_test)
    errors = {i: evaluate(delete_blocks(model, [i]), data.x_test, data.y_test)[1] for i in deletable_blocks(model)}
    return {"base": base, "deleted": errors, "mean_increase": sum(errors.values()) / len(errors) - base}


def lesion_multiple(model: ConvNet1d, samples: int = 10, seed: int = 0, ks=None) -> dict:
    """Test error after deleting k deletable blocks chosen at random, ``samples`` choices per k.

    ``ks`` defaults to every k from 0 to all the deletable blocks. Returns ``{"k", "errors", "mean_error"}``:
    every sample's error and their mean, for each k (one sample where there is one choice: nothing or all).
    """
    data = load_mnist1d()
    blocks = deletable_blocks(model)
    ks = list(range(len(blocks) + 1)) if ks is None else list(ks)
    gen = torch.Generator().manual_seed(seed)
    errors = []
    for k in ks:
        errs = []
        for _ in range(samples if 0 < k < len(blocks) else 1):
            chosen = [blocks[j] for j in torch.randperm(len(blocks), generator=gen)[:k].tolist()]
            errs.append(evaluate(delete_blocks(model, chosen), data.x_test, data.y_test)[1])
        errors.append(errs)
    return {"k": ks, "errors": errors, "mean_error": [sum(e) / len(e) for e in errors]}


# --------------------------------------------------------------------------- which paths carry the gradient

def _residual_blocks(model: ConvNet1d) -> list[BasicBlock1d]:
    blocks = list(model.blocks)
    if not all(isinstance(b, BasicBlock1d) for b in blocks):
        raise ConfigError("path gradients need a residual net: a plain net has only one path.")
    return blocks


def _in_float64(model: ConvNet1d, batch: int):
    # Long paths carry gradients of 1e-20 and less: their squares underflow float32 (a norm would read 0).
    data = load_mnist1d()
    return copy.deepcopy(model).double().eval(), data.x_train[:batch].double(), data.y_train[:batch]


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
    """Gradient norm carried by single paths of each length (Veit et al. 2016, §6 and Fig. 6).

    For each length k, choose k of the n blocks at random; in the backward pass
    the gradient may flow only through those blocks' branches and through the
    other blocks' shortcuts — exactly one of the 2^n paths. The norm of the
    loss's gradient with respect to the first block's input then measures what
    one path of length k carries. Multiplying by the number of such paths,
    C(n, k), gives Veit et al.'s "total gradient magnitude" of length k: a sum of
    *norms*, which counts paths pointing opposite ways as if they added up
    (:func:`gradient_by_length` sums the vectors instead).

    Returns ``{"k", "per_path", "total", "share"}`` (``share`` = total normalised to sum 1).
    """
    model, x, y = _in_float64(model, batch)
    blocks = _residual_blocks(model)
    n = len(blocks)
    gen = torch.Generator().manual_seed(seed)
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


def gradient_by_length(model: ConvNet1d, batch: int = 200) -> dict:
    """The gradient at the first block's input, split *exactly* into the sums of all paths of each length.

    At a fixed input the backward pass is linear. Block i's Jacobian is ``D_i (I + J_i)`` (``D_i`` the 0/1 mask
    of the ReLU after its sum, ``J_i`` the branch's Jacobian, ``I`` the shortcut's), so the product of all n of
    them expands into 2^n terms, one per path, the ReLU masks included. Carrying one gradient per path length
    backwards, ``c_k ← D_i c_k`` through the shortcut plus ``J_iᵀ D_i c_{k−1}`` through the branch, gives
    ``c_k``: the sum of the gradients of all C(n, k) paths of length k, added as vectors, so that paths
    pointing opposite ways cancel. The c_k add up to the ordinary gradient.

    Returns ``{"k", "norm", "share"}`` (‖c_k‖ for k = 0 … n, and normalised to sum 1), the ordinary gradient's
    norm ``total`` and ``check``, the relative difference between Σ c_k and autograd's gradient (≈ 1e-15 in
    float64: the split is exact).
    """
    model, x, y = _in_float64(model, batch)
    blocks = _residual_blocks(model)
    n = len(blocks)
    with torch.no_grad():
        inputs = [model.stem(x)]                         # inputs[i]: block i's input; inputs[n]: the last output
        for block in blocks:
            inputs.append(block(inputs[-1]))
    h = inputs[0].clone().requires_grad_(True)
    (reference,) = torch.autograd.grad(F.cross_entropy(model.head(model.blocks(h).mean(dim=-1)), y), h)
    out = inputs[-1].clone().requires_grad_(True)
    (g,) = torch.autograd.grad(F.cross_entropy(model.head(out.mean(dim=-1)), y), out)
    c = torch.zeros((n + 1, *g.shape), dtype=g.dtype)    # c[k]: (batch, channels, length), one per path length
    c[0] = g
    for i in reversed(range(n)):
        block, x_in = blocks[i], inputs[i]
        with torch.no_grad():
            mask = (block.branch(x_in) + block.shortcut(x_in) > 0).to(c.dtype)
        v = (c * mask).flatten(0, 1)                     # through the ReLU after the sum, for every k at once
        xr = x_in.repeat(n + 1, 1, 1).requires_grad_(True)
        (through_branch,) = torch.autograd.grad(block.branch(xr), xr, v)          # J_iᵀ v
        if isinstance(block.shortcut, nn.Identity):
            through_shortcut = v
        else:                                                                      # option A: subsample, pad
            (through_shortcut,) = torch.autograd.grad(block.shortcut(xr), xr, v)
        c = through_shortcut.view(n + 1, *x_in.shape).clone()
        c[1:] += through_branch.view(n + 1, *x_in.shape)[:-1]   # one more branch on the path: length k−1 → k
    norms = [c[k].norm().item() for k in range(n + 1)]
    return {"k": list(range(n + 1)), "norm": norms, "share": [v / sum(norms) for v in norms],
            "total": reference.norm().item(),
            "check": ((c.sum(dim=0) - reference).norm() / reference.norm()).item()}


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
    moved = copy.deepcopy(model).train()
    theta = [p.detach().clone() for p in moved.parameters()]
    d1 = filter_normalized_direction(moved, gen)
    d2 = filter_normalized_direction(moved, gen)
    coords = torch.linspace(-span, span, resolution).tolist()
    grid = []
    for b in coords:
        row = []
        for a in coords:
            for p, t, u, v in zip(moved.parameters(), theta, d1, d2):
                p.copy_(t + a * u + b * v)
            loss = F.cross_entropy(moved(x), y).item()
            row.append(loss if math.isfinite(loss) else 1e3)
        grid.append(row)
    return {"coords": coords, "loss": grid}


def slice_summary(surface: dict) -> dict:
    """The numbers a slice is read by: the loss at the trained weights (``centre``), the slice's ``min`` and
    ``max``, and ``rise``: the mean loss on the slice's border minus the centre's (how deep the basin is)."""
    z = torch.tensor(surface["loss"], dtype=torch.float64)
    c = len(surface["coords"]) // 2
    border = torch.cat([z[0], z[-1], z[1:-1, 0], z[1:-1, -1]])
    return {"centre": z[c, c].item(), "min": z.min().item(), "max": z.max().item(),
            "rise": (border.mean() - z[c, c]).item()}


@dataclass(frozen=True)
class LandscapeSpec:
    """One 2-D loss slice around a trained net (Li et al. 2018, Fig. 5: ResNet-56 with and without shortcuts)."""

    net: TrainedNet = TrainedNet(depth=LANDSCAPE_DEPTH)
    resolution: int = 21                 # grid points per axis (Li et al. use 51; 21 keeps the page fast)
    span: float = 1.0                    # α, β ∈ [−span, span] in filter-normalized units, as in Li et al.
    samples: int = 500                   # training sequences the loss is averaged over
    direction_seed: int = 0


def landscape(spec: LandscapeSpec, progress: bool = True) -> dict:
    """The slice (cached), its :func:`slice_summary` and the trained net's errors."""
    def compute() -> dict:
        model, result = trained_net(spec.net, progress=progress)
        data = load_mnist1d()
        surface = loss_surface(model, data.x_train[: spec.samples], data.y_train[: spec.samples],
                               spec.resolution, spec.span, spec.direction_seed)
        return {**surface, **slice_summary(surface),
                "train_error": result.final_train_error, "test_error": result.final_test_error}
    return cached("landscape", spec, compute)


# --------------------------------------------------------------------------- stochastic depth: training on the paths

STOCHASTIC_SURVIVAL = 0.5        # Huang et al.'s survival probability at the last block (linear decay from 1)
SD_EPOCHS = (DepthRun.epochs, 4 * DepthRun.epochs)   # Chapter 1's ten epochs, and the same recipe four times as long
SD_SEEDS = (0, 1, 2, 3, 4)
SD_LESION_SAMPLES = 10           # random block subsets per number of deleted blocks
RECORDED_SD = RECORDED_DIR / "ch5_stochastic_depth.json"


def sd_run(epochs: int, stochastic: bool, seed: int) -> TrainedNet:
    """ResNet-20 on Chapter 1's recipe stretched to ``epochs``, with or without stochastic depth."""
    return TrainedNet(depth=STUDY_DEPTH, seed=seed, epochs=epochs,
                      final_survival=STOCHASTIC_SURVIVAL if stochastic else 1.0)


def record_stochastic_depth(path=RECORDED_SD, seeds=SD_SEEDS, progress: bool = True) -> dict:
    """Train ResNet-20 with and without stochastic depth for each of :data:`SD_EPOCHS` over ``seeds``; record the
    curves and what deleting one block, and several, does to each trained net.

    ``python -m book.ch5_unrolled_view record-sd`` (about five minutes on one core; run it with
    ``RESIDUAL_COURSE_CACHE`` set to an empty folder so that the wall time includes the training).
    """
    import time

    start = time.perf_counter()
    runs = []
    for seed in seeds:
        for epochs in SD_EPOCHS:
            for stochastic in (False, True):
                model, result = trained_net(sd_run(epochs, stochastic, seed), progress=progress)
                single = lesion_single(model)
                runs.append({"epochs": epochs, "stochastic": stochastic, "seed": seed, **result.to_dict(),
                             "base": single["base"], "mean_increase": single["mean_increase"],
                             "single": [single["deleted"][i] for i in deletable_blocks(model)],
                             "multiple": lesion_multiple(model, samples=SD_LESION_SAMPLES, seed=seed)})
    about = provenance("python -m book.ch5_unrolled_view record-sd", time.perf_counter() - start,
                       spec=asdict(DepthRun(depth=STUDY_DEPTH, residual=True)), final_survival=STOCHASTIC_SURVIVAL,
                       epochs=list(SD_EPOCHS), seeds=list(seeds), lesion_samples=SD_LESION_SAMPLES)
    write_record(path, about, runs)
    return {"provenance": about, "runs": runs}


def recorded_stochastic_depth(path=RECORDED_SD) -> dict:
    """``{"provenance": …, "runs": {(epochs, stochastic, seed): run dict}}`` from the recording."""
    record = read_record(path)
    return {"provenance": record["provenance"],
            "runs": {(r["epochs"], r["stochastic"], r["seed"]): r for r in record["runs"]}}


def stochastic_depth_problems(record: dict, epochs: int = 1, tolerance: float = 0.0) -> list[str]:
    """Re-run the first ``epochs`` epochs of the first long standard and stochastic-depth runs; describe every
    mismatch with the recording, and recordings made with other settings."""
    problems = setting_problems(record, DepthRun(depth=STUDY_DEPTH, residual=True))
    about = record.get("provenance", {})
    if (about.get("epochs"), about.get("seeds"), about.get("final_survival")) != (
            list(SD_EPOCHS), list(SD_SEEDS), STOCHASTIC_SURVIVAL):
        problems.append("the recording's epochs, seeds or survival are not the chapter's: record it again")
    firsts = {}
    for r in record.get("runs", []):
        if r["epochs"] == SD_EPOCHS[-1]:
            firsts.setdefault(r["stochastic"], r)
    for r in firsts.values():
        problems += prefix_mismatches(sd_run(r["epochs"], r["stochastic"], r["seed"]), r, epochs, tolerance)
    return problems


# --------------------------------------------------------------------------- the deep nets: a recorded lesion and path study

DEEP_DEPTH = 110                  # 18 blocks per stage, 54 in all: the 1-D analogue of ResNet-110, Veit et al.'s net
DEEP_EPOCHS = 35                  # Chapter 1's recipe, run 3.5 times as long: at 25 epochs one seed of ResNet-110
                                  # was still at 9 % training error when the learning rate dropped
DEEP_RESIDUAL_SEEDS = (0, 1, 2, 3, 4)
DEEP_PLAIN_SEEDS = (0, 1, 2)      # plain-110 does not train on any of them: three are enough to show it
DEEP_LESION_KS = tuple(range(21)) + tuple(range(24, 53, 4))   # blocks deleted at random (52 are deletable)
DEEP_LESION_SAMPLES = 6           # random choices of blocks per k
DEEP_PATH_SAMPLES = 4             # sampled single paths per length (Veit et al.'s estimate)
SHALLOW_PATH_SEEDS = (0, 1, 2, 3, 4)   # ResNet-20's path split, for comparison
PREFIX_EPOCHS = 2                 # epochs a test re-runs to check the recording
RECORDED_DEEP = RECORDED_DIR / "ch5_deep_nets.json"


def deep_run(residual: bool, seed: int) -> DepthRun:
    """Chapter 1's recipe at :data:`DEEP_DEPTH` layers and :data:`DEEP_EPOCHS` epochs."""
    return DepthRun(depth=DEEP_DEPTH, residual=residual, seed=seed, epochs=DEEP_EPOCHS)


def _lesion_record(model: ConvNet1d, seed: int) -> dict:
    single = lesion_single(model)
    blocks = deletable_blocks(model)
    out = {"base": single["base"], "deletable": blocks, "single": [single["deleted"][i] for i in blocks]}
    if isinstance(model.blocks[0], BasicBlock1d):
        # several blocks at random (a plain net that never trained has nothing to lose: single deletions show it),
        # and the downsampling blocks' branches, their option A shortcut kept
        out["multiple"] = lesion_multiple(model, samples=DEEP_LESION_SAMPLES, seed=seed, ks=DEEP_LESION_KS)
        data = load_mnist1d()
        out["downsampling"] = downsampling_blocks(model)
        out["downsampling_single"] = [evaluate(delete_blocks(model, [i]), data.x_test, data.y_test)[1]
                                      for i in out["downsampling"]]
    return out


def _path_record(model: ConvNet1d, samples: int, seed: int) -> dict:
    exact = gradient_by_length(model)
    sampled = path_gradient_by_length(model, samples_per_length=samples, seed=seed)
    return {"exact": exact, "sampled": sampled}


def record_deep(path=RECORDED_DEEP, progress: bool = True) -> dict:
    """Train ResNet-110 and plain-110 (:func:`deep_run`), lesion them and split ResNet-110's gradient by path length.

    Also splits the gradient of Chapter 1's ResNet-20 over :data:`SHALLOW_PATH_SEEDS`, for comparison.
    ``python -m book.ch5_unrolled_view record-deep`` (about a quarter of an hour on one core; run it with
    ``RESIDUAL_COURSE_CACHE`` set to an empty folder so that the wall time includes the training).
    """
    import time

    start = time.perf_counter()
    runs = []
    for residual, seeds in ((True, DEEP_RESIDUAL_SEEDS), (False, DEEP_PLAIN_SEEDS)):
        for seed in seeds:
            spec = deep_run(residual, seed)
            model, result = trained_net(spec, progress=progress)
            run = {"depth": DEEP_DEPTH, "residual": residual, "seed": seed, **result.to_dict(),
                   **_lesion_record(model, seed)}
            if residual:
                run.update(_path_record(model, DEEP_PATH_SAMPLES, seed))
            runs.append(run)
            if progress:
                print(f"{spec.label} seed {seed}: {time.perf_counter() - start:.0f} s", flush=True)
    for seed in SHALLOW_PATH_SEEDS:
        model, result = trained_net(TrainedNet(depth=STUDY_DEPTH, residual=True, seed=seed), progress=progress)
        runs.append({"depth": STUDY_DEPTH, "residual": True, "seed": seed, **result.to_dict(),
                     **_path_record(model, PATH_SAMPLES, seed)})
    about = provenance("python -m book.ch5_unrolled_view record-deep", time.perf_counter() - start,
                       spec=asdict(deep_run(True, 0)), residual_seeds=list(DEEP_RESIDUAL_SEEDS),
                       plain_seeds=list(DEEP_PLAIN_SEEDS), lesion_ks=list(DEEP_LESION_KS),
                       lesion_samples=DEEP_LESION_SAMPLES, path_samples=DEEP_PATH_SAMPLES,
                       shallow_depth=STUDY_DEPTH, shallow_seeds=list(SHALLOW_PATH_SEEDS))
    write_record(path, about, runs)
    return {"provenance": about, "runs": runs}


def recorded_deep(path=RECORDED_DEEP) -> dict:
    """``{"provenance": …, "runs": {(depth, residual, seed): run dict}}`` from the recording."""
    record = read_record(path)
    return {"provenance": record["provenance"],
            "runs": {(r["depth"], r["residual"], r["seed"]): r for r in record["runs"]}}


def deep_run_problems(record: dict, tolerance: float = 0.0) -> list[str]:
    """Re-run the first :data:`PREFIX_EPOCHS` epochs of the first residual and the first plain deep run.

    Describes every mismatch with the recording (training errors must agree within ``tolerance``, losses
    within a relative ``tolerance``: 0 by default, since the pinned path gives the same bits on every x86-64
    CPU), and recordings made with other settings.
    """
    problems = setting_problems(record, deep_run(True, 0))
    about = record.get("provenance", {})
    if (about.get("residual_seeds"), about.get("plain_seeds")) != (list(DEEP_RESIDUAL_SEEDS), list(DEEP_PLAIN_SEEDS)):
        problems.append("the recording's seeds are not the chapter's: record it again")
    firsts = {}
    for r in record.get("runs", []):
        if r["depth"] == DEEP_DEPTH:
            firsts.setdefault(r["residual"], r)
    for r in firsts.values():
        problems += prefix_mismatches(deep_run(r["residual"], r["seed"]), r, PREFIX_EPOCHS, tolerance)
    return problems


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:], "book.ch5_unrolled_view", {"record-deep": (record_deep, RECORDED_DEEP),
                                                               "record-sd": (record_stochastic_depth, RECORDED_SD)}))
