"""Chapter 7, the family of skip connections: highway gates, dense concatenation, reversible blocks (RevNet), the
ODE view, U-Net long skips and hyper-connections, each trained briefly (or measured at initialization) on MNIST-1D
and cached.

Every experiment is a frozen spec plus a function of it, computed through :func:`book.cache.cached`, so the
page and the claim tests share results. The networks live in :mod:`book.nets.skips`; the chapter's settings are
the module constants below, which the claim tests import.

All training goes through :func:`fit`: the course's Adam loop (:func:`book.training.train_adam`) with a learning
rate that decays linearly to zero, over shuffled batches of 128 drawn from a seeded generator, on one CPU thread.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .cache import cached
from .data import load_mnist1d
from .nets.counting import count_parameters
from .nets.skips import (DenseNet1d, HyperNet, ODENet, PreActResNet1d, RevNet1d, ReversibleBlock1d, SkipMLP,
                         SkipMLPConfig, UNet1d, sinkhorn)
from .training import one_thread, seeded, train_adam

__all__ = [
    "CHEAP_SEEDS", "fit",
    "HIGHWAY_KINDS", "HighwaySpec", "highway_run",
    "DenseSpec", "dense_run", "matched_width", "MemorySpec", "saved_activation_bytes", "MEMORY_DEPTHS",
    "RevNetSpec", "revnet_run", "matched_rev_width",
    "ODESpec", "ode_run", "ODE_EVAL_STEPS", "euler_growth", "euler_spiral", "block_updates",
    "UNetSpec", "unet_run",
    "HyperSpec", "hyper_run", "random_mixing_gains", "MIXING_DEPTHS",
]

CHEAP_SEEDS = (0, 1, 2, 3, 4)  # measurements at initialization: five seeds
HIGHWAY_KINDS = ("highway", "residual", "plain")
MEMORY_DEPTHS = (4, 8, 16, 32)
ODE_EVAL_STEPS = (1, 2, 4, 8, 16, 32, 64, 128)
MIXING_DEPTHS = (1, 2, 4, 8, 16, 32, 64)


def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, lr: float, seed: int,
        loss: str = "cross-entropy", batch_size: int = 128) -> dict:
    """Adam, learning rate decaying linearly to 0; returns per-epoch ``train_loss`` (and ``train_error``)."""
    per_epoch = math.ceil(len(x) / batch_size)
    steps = epochs * per_epoch
    order = torch.Generator().manual_seed(1_000 + seed)

    def batches():
        for _ in range(epochs):
            for idx in torch.randperm(len(x), generator=order).split(batch_size):
                yield x[idx], y[idx]

    out = {"train_loss": [], "train_error": []}
    total, wrong = 0.0, 0

    def record(step: int, value: float, pred: torch.Tensor, target: torch.Tensor) -> None:
        nonlocal total, wrong
        total += value * len(target)
        if loss == "cross-entropy":
            wrong += (pred.detach().argmax(1) != target).sum().item()
        if (step + 1) % per_epoch == 0:   # the epoch's mean loss and error, over its mini-batches
            out["train_loss"].append(total / len(x))
            out["train_error"].append(wrong / len(x))
            total, wrong = 0.0, 0

    model.train()
    train_adam(model, batches(), F.cross_entropy if loss == "cross-entropy" else F.mse_loss, steps,
               lambda step: lr * (1 - step / steps), divergence_factor=math.inf, on_step=record)
    model.eval()
    return out


@torch.no_grad()
def _test_error(model: nn.Module, data) -> float:
    return (model(data.x_test).argmax(1) != data.y_test).float().mean().item()


# --------------------------------------------------------------------------- highway networks

@dataclass(frozen=True)
class HighwaySpec:
    """A deep MLP of highway, residual or plain layers trained on flattened MNIST-1D."""

    kind: str = "highway"      # one of HIGHWAY_KINDS
    depth: int = 24            # layers, two weight matrices each: 48 weight layers between stem and head
    width: int = 32
    carry_bias: float = -2.0   # highway only (Srivastava et al.: −1 to −3)
    epochs: int = 8
    lr: float = 3e-3
    seed: int = 0


@one_thread
def _highway(spec: HighwaySpec) -> dict:
    data = load_mnist1d()
    with seeded(spec.seed):
        model = SkipMLP(SkipMLPConfig(kind=spec.kind, depth=spec.depth, width=spec.width, carry_bias=spec.carry_bias))
    gates_init = model.mean_gates(data.x_test) if spec.kind == "highway" else []
    start = time.perf_counter()
    out = fit(model, data.x_train, data.y_train, spec.epochs, spec.lr, spec.seed)
    out["test_error"] = _test_error(model, data)
    out["gates_init"] = gates_init
    out["gates_trained"] = model.mean_gates(data.x_test) if spec.kind == "highway" else []
    out["params"] = count_parameters(model)
    out["seconds"] = time.perf_counter() - start
    return out


def highway_run(spec: HighwaySpec) -> dict:
    """``train_loss``/``train_error`` per epoch, ``test_error``, mean gate per layer before and after (cached)."""
    return cached("ch7-highway", spec, lambda: _highway(spec))


# --------------------------------------------------------------------------- DenseNet: concatenate instead of add

def matched_width(depth: int, growth: int, stem: int) -> int:
    """The width of a :class:`PreActResNet1d` of ``depth`` layers whose parameter count is closest to the DenseNet's."""
    target = count_parameters(DenseNet1d(depth, growth, stem))
    width, count = 1, 0
    while count < target:                      # the count grows with the width: stop at the first one above
        width += 1
        below, count = count, count_parameters(PreActResNet1d(depth, width))
    return width if count - target < target - below else width - 1


@dataclass(frozen=True)
class DenseSpec:
    """A 1-D DenseNet or a pre-activation ResNet of the same depth and (nearly) the same parameter count."""

    kind: str = "dense"        # "dense" or "residual"
    depth: int = 8             # conv layers after the stem
    growth: int = 8            # channels each dense layer adds (k)
    stem: int = 16             # channels of the stem conv
    epochs: int = 5
    lr: float = 1e-2
    seed: int = 0


def _dense_or_matched(spec) -> nn.Module:
    """The DenseNet of ``spec``, or for ``kind="residual"`` the ResNet with (nearly) its parameter count."""
    width = None if spec.kind == "dense" else matched_width(spec.depth, spec.growth, spec.stem)
    with seeded(spec.seed):
        return DenseNet1d(spec.depth, spec.growth, spec.stem) if width is None else PreActResNet1d(spec.depth, width)


@one_thread
def _dense(spec: DenseSpec) -> dict:
    data = load_mnist1d()
    model = _dense_or_matched(spec)
    start = time.perf_counter()
    out = fit(model, data.x_train, data.y_train, spec.epochs, spec.lr, spec.seed)
    out["seconds"] = time.perf_counter() - start
    out["test_error"] = _test_error(model, data)
    out["params"] = count_parameters(model)
    return out


def dense_run(spec: DenseSpec) -> dict:
    """``train_error`` per epoch, ``test_error``, ``params``, ``seconds`` (cached)."""
    return cached("ch7-dense", spec, lambda: _dense(spec))


@dataclass(frozen=True)
class MemorySpec:
    """Bytes that autograd keeps for the backward pass of one batch, for a DenseNet and its parameter-matched ResNet."""

    kind: str = "dense"
    depth: int = 8
    growth: int = 8
    stem: int = 16
    batch_size: int = 128
    seed: int = 0


@one_thread
def _memory(spec: MemorySpec) -> dict:
    data = load_mnist1d()
    model = _dense_or_matched(spec)
    weights = {p.data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(t):
        if t.data_ptr() not in weights:   # count activations, not the weights themselves; each storage once
            saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(data.x_train[:spec.batch_size]).sum().backward()
    return {"saved_bytes": sum(saved.values()), "params": count_parameters(model)}


def saved_activation_bytes(spec: MemorySpec) -> dict:
    """``{"saved_bytes", "params"}``: what one forward pass stores for its backward pass (cached)."""
    return cached("ch7-memory", spec, lambda: _memory(spec))


# --------------------------------------------------------------------------- RevNet: a residual stack that stores nothing

def matched_rev_width(depth: int, growth: int, stem: int) -> int:
    """The (even) width of a :class:`RevNet1d` of ``depth`` blocks whose parameter count is closest to the DenseNet's."""
    target = count_parameters(DenseNet1d(depth, growth, stem))
    width, count = 0, 0
    while count < target:                      # the count grows with the width: stop at the first one above
        width += 2                             # a one-block net plus depth − 1 more blocks, without building them all
        below = count
        count = count_parameters(RevNet1d(1, width)) + (depth - 1) * count_parameters(ReversibleBlock1d(width))
    return width if count - target < target - below else width - 2


@dataclass(frozen=True)
class RevNetSpec:
    """A RevNet parameter-matched to :class:`MemorySpec`'s DenseNet of the same depth, measured at initialization."""

    depth: int = 8
    growth: int = 8            # of the DenseNet it is matched to
    stem: int = 16
    batch_size: int = 128
    seed: int = 0


def _saved_bytes_and_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[int, list[torch.Tensor]]:
    """Bytes of the activations that the forward pass leaves for the backward pass (each storage once, no weights),
    and the gradients of the cross-entropy loss."""
    weights = {p.data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(t):
        if t.data_ptr() not in weights:
            saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    model.zero_grad()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        logits = model(x)
    F.cross_entropy(logits, y).backward()
    return sum(saved.values()), [p.grad.clone() for p in model.parameters()]


def _block_bytes(block: nn.Module, x: torch.Tensor) -> int:
    """Bytes that autograd saves for one block's backward: what the reconstruction holds, one block at a time."""
    saved: dict[int, int] = {}
    weights = {p.data_ptr() for p in block.parameters()}

    def pack(t):
        if t.data_ptr() not in weights:
            saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        block(x.requires_grad_())
    return sum(saved.values())


@torch.no_grad()
def _reconstruct(stack, x: torch.Tensor) -> dict:
    """Run ``stack`` forward from ``x``, then back from its output block by block. Returns the relative float32 error
    of the reconstructed input and how many ReLU inputs of the branches the reconstruction puts on the other side of
    zero."""
    inputs = [x]
    for block in stack.blocks:
        inputs.append(block(inputs[-1]))
    y, switches = inputs[-1], 0
    for block, x_true, out_true in zip(reversed(stack.blocks), reversed(inputs[:-1]), reversed(inputs[1:])):
        x_back = block.inverse(y)
        (_, x2_true), (_, x2_back) = x_true.chunk(2, 1), x_back.chunk(2, 1)
        y1_true, y1_back = out_true.chunk(2, 1)[0], y.chunk(2, 1)[0]     # G reads y1, F reads x2
        switches += ((block.g.norm(y1_true) > 0) != (block.g.norm(y1_back) > 0)).sum().item()
        switches += ((block.f.norm(x2_true) > 0) != (block.f.norm(x2_back) > 0)).sum().item()
        y = x_back
    return {"reconstruction_error": ((y - x).norm() / x.norm()).item(), "relu_switches": switches}


@one_thread
def _revnet(spec: RevNetSpec) -> dict:
    data = load_mnist1d()
    x, y = data.x_train[:spec.batch_size], data.y_train[:spec.batch_size]
    width = matched_rev_width(spec.depth, spec.growth, spec.stem)
    with seeded(spec.seed):
        model = RevNet1d(spec.depth, width, recompute=True)
    out = {"width": width, "params": count_parameters(model)}
    calls = [0]   # how often the branches F and G run in one forward and backward pass
    hooks = [m.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
             for block in model.stack.blocks for m in (block.f, block.g)]
    grads = {}
    for recompute, name in ((True, ""), (False, "_autograd")):
        model.stack.recompute, calls[0] = recompute, 0
        out["saved_bytes" + name], grads[recompute] = _saved_bytes_and_gradients(model, x, y)
        out["branch_calls" + name] = calls[0]
    for hook in hooks:
        hook.remove()
    diff = torch.cat([(a - b).flatten() for a, b in zip(grads[True], grads[False])])
    out["gradient_error"] = (diff.norm() / torch.cat([b.flatten() for b in grads[False]]).norm()).item()
    h0 = model.stem(x).detach()
    out["block_bytes"] = _block_bytes(model.stack.blocks[0], h0)
    out.update(_reconstruct(model.stack, h0))   # float32: the stack's input from its output
    return out


def revnet_run(spec: RevNetSpec) -> dict:
    """At initialization: bytes a forward pass keeps for backward with the reconstruction (``saved_bytes``) and with
    plain autograd (``saved_bytes_autograd``), one block's graph (``block_bytes``, held during backward), the relative
    difference ‖g_rev − g‖ / ‖g‖ between the two gradients of every parameter (``gradient_error``), branch evaluations each way, and the relative float32
    reconstruction error of the stack's input, and ``relu_switches``: branch ReLU inputs whose sign the reconstruction
    flips (cached)."""
    return cached("ch7-revnet", spec, lambda: _revnet(spec))


# --------------------------------------------------------------------------- the ODE view

@dataclass(frozen=True)
class ODESpec:
    """A weight-shared residual stack, x ← x + (T/L)·f(x), trained at L steps and evaluated at others."""

    width: int = 32
    hidden: int = 64
    train_steps: int = 8       # L during training
    horizon: float = 1.0       # T
    epochs: int = 10
    lr: float = 1e-2
    seed: int = 0
    eval_steps: tuple[int, ...] = ODE_EVAL_STEPS
    reference_steps: int = 1024  # "the continuous flow": many more steps than any evaluated


@one_thread
def _ode(spec: ODESpec) -> dict:
    data = load_mnist1d()
    with seeded(spec.seed):
        model = ODENet(spec.width, spec.hidden, spec.train_steps, spec.horizon)
    out = fit(model, data.x_train, data.y_train, spec.epochs, spec.lr, spec.seed)
    with torch.no_grad():
        reference = model.final_state(data.x_test, steps=spec.reference_steps)
        size = reference.norm(dim=1).mean().item()
        out["distance"], out["test_error_at"] = [], []
        for steps in spec.eval_steps:
            state = model.final_state(data.x_test, steps=steps)
            out["distance"].append((state - reference).norm(dim=1).mean().item() / size)
            out["test_error_at"].append((model.head(state).argmax(1) != data.y_test).float().mean().item())
        # one example's path through the stack, projected on the two main directions of its fine path
        x0 = model.stem(data.x_test[:1].flatten(1))
        fine = torch.cat(model.flow(x0, steps=256, trajectory=True))               # (257, width)
        centre = fine.mean(0)
        _, _, v = torch.linalg.svd(fine - centre, full_matrices=False)
        project = lambda states: ((torch.cat(states) - centre) @ v[:2].T).tolist()  # noqa: E731
        out["path_fine"] = project(list(fine.split(1)))
        out["paths"] = {str(s): project(model.flow(x0, steps=s, trajectory=True)) for s in spec.eval_steps if s <= 64}
        # the largest real part of −λ over the eigenvalues λ of f's Jacobian on test points: the stiffness
        jac = torch.func.vmap(torch.func.jacrev(model.flow.f))(reference[:64])
        out["jacobian_max_abs_eig"] = torch.linalg.eigvals(jac).abs().max().item()
    out["test_error"] = out["test_error_at"][list(spec.eval_steps).index(spec.train_steps)]
    return out


def ode_run(spec: ODESpec) -> dict:
    """Training curve; per evaluated L, the final state's distance from the fine-step reference and the test error;
    one example's projected path at each L (cached)."""
    return cached("ch7-ode", spec, lambda: _ode(spec))


def euler_growth(h: float, eigenvalue: float, horizon: float = 1.0) -> float:
    """|x(T)| / |x(0)| for forward Euler on dx/dt = λx with step h over a time T: |1 + hλ|^(T/h)."""
    return abs(1 + h * eigenvalue) ** (horizon / h)


def euler_spiral(decay: float, steps: int, rotation: float = 3.0, horizon: float = 1.0) -> dict:
    """Forward Euler on the 2-D linear flow dx/dt = A x, A = [[−a, −ω], [ω, −a]], from x(0) = (1, 0).

    The eigenvalues of A are −a ± iω, so the exact path spirals inwards; each Euler step multiplies the distance
    from the origin by ``step_factor`` = |1 + hλ| = √((1 − ha)² + (hω)²), h = T/L. Returns the Euler path
    (``steps + 1`` points), the exact path (200 points), ``step_factor``, ``growth`` (|x_L| / |x(0)|, Euler) and
    ``error`` (|x_L − x(T)|).
    """
    a, w, h = float(decay), float(rotation), horizon / steps
    step = np.array([[1 - h * a, -h * w], [h * w, 1 - h * a]])     # I + hA
    path = [np.array([1.0, 0.0])]
    for _ in range(steps):
        path.append(step @ path[-1])
    t = np.linspace(0, horizon, 200)
    exact = np.stack([np.exp(-a * t) * np.cos(w * t), np.exp(-a * t) * np.sin(w * t)], axis=1)
    factor = math.hypot(1 - h * a, h * w)
    return {"euler": np.array(path), "exact": exact, "step_factor": factor, "growth": factor ** steps,
            "error": float(np.linalg.norm(path[-1] - exact[-1])), "h": h}


@torch.no_grad()
def block_updates(model: nn.Module, x: torch.Tensor) -> dict:
    """Read a trained conv ResNet (``model.stem``, ``model.blocks``) as a sequence of steps x_{l+1} = x_l + Δ_l.

    For every block that keeps the shape, ``relative`` is ‖Δ_l‖ / ‖x_l‖ and, for every two consecutive such blocks,
    ``cosine`` is cos(Δ_l, Δ_{l+1}); both are per sequence, averaged over the batch ``x``. Euler steps of one smooth
    flow with a small step make small updates that point nearly the same way from one step to the next (cosine near
    1); Sander et al. 2022 (arXiv 2205.14612) ask when a trained ResNet does. Blocks that change the shape (stride 2)
    are skipped, and a pair across them is not counted. Returns ``{"relative", "cosine"}`` with ``nan`` where a
    block, or a pair, is skipped.
    """
    h = model.stem(x)
    deltas, relative = [], []
    for block in model.blocks:
        out = block(h)
        if out.shape == h.shape:
            d = (out - h).flatten(1)
            deltas.append(d)
            relative.append((d.norm(dim=1) / h.flatten(1).norm(dim=1)).mean().item())
        else:
            deltas.append(None)
            relative.append(float("nan"))
        h = out
    cosine = [F.cosine_similarity(a, b, dim=1).mean().item() if a is not None and b is not None else float("nan")
              for a, b in zip(deltas, deltas[1:])]
    return {"relative": relative, "cosine": cosine}


# --------------------------------------------------------------------------- U-Net long skips

@dataclass(frozen=True)
class UNetSpec:
    """Denoise MNIST-1D: input the sequence plus Gaussian noise, target the sequence; with or without long skips."""

    skips: bool = True
    width: int = 16
    noise: float = 0.5         # standard deviation of the added noise (the data are standardized)
    epochs: int = 6
    lr: float = 3e-3
    seed: int = 0


def _noisy(data, noise: float, seed: int):
    gen = torch.Generator().manual_seed(20_000 + seed)
    return (data.x_train + noise * torch.randn(data.x_train.shape, generator=gen),
            data.x_test + noise * torch.randn(data.x_test.shape, generator=gen))


def _high_pass(x: torch.Tensor) -> torch.Tensor:
    return x[..., 1:] - x[..., :-1]   # differences of neighbours: the sequence's fine detail


@one_thread
def _unet(spec: UNetSpec) -> dict:
    data = load_mnist1d()
    noisy_train, noisy_test = _noisy(data, spec.noise, spec.seed)
    with seeded(spec.seed):
        model = UNet1d(spec.width, spec.skips)
    out = fit(model, noisy_train, data.x_train, spec.epochs, spec.lr, spec.seed, loss="mse")
    with torch.no_grad():
        pred = model(noisy_test)
        out["test_mse"] = F.mse_loss(pred, data.x_test).item()
        out["noisy_mse"] = F.mse_loss(noisy_test, data.x_test).item()
        out["detail_mse"] = F.mse_loss(_high_pass(pred), _high_pass(data.x_test)).item()
        out["example"] = {"clean": data.x_test[0, 0].tolist(), "noisy": noisy_test[0, 0].tolist(),
                          "denoised": pred[0, 0].tolist()}
    out["params"] = count_parameters(model)
    return out


def unet_run(spec: UNetSpec) -> dict:
    """``train_loss`` per epoch, ``test_mse``, ``noisy_mse`` (doing nothing), ``detail_mse``, one example (cached)."""
    return cached("ch7-unet", spec, lambda: _unet(spec))


# --------------------------------------------------------------------------- hyper-connections and mHC

@dataclass(frozen=True)
class HyperSpec:
    """A hyper-connected MLP (n streams), mixing unconstrained or Sinkhorn-projected (mHC), on MNIST-1D."""

    constrained: bool = False
    depth: int = 16
    width: int = 32
    n: int = 4
    epochs: int = 6
    lr: float = 3e-3
    seed: int = 0


@one_thread
def _hyper(spec: HyperSpec) -> dict:
    data = load_mnist1d()
    with seeded(spec.seed):
        model = HyperNet(spec.depth, spec.width, spec.n, spec.constrained)
    gains_init = model.composite_gains()
    start = time.perf_counter()
    out = fit(model, data.x_train, data.y_train, spec.epochs, spec.lr, spec.seed)
    out["seconds"] = time.perf_counter() - start
    out["gains_init"], out["gains_trained"] = gains_init, model.composite_gains()
    with torch.no_grad():
        product = torch.eye(spec.n)
        for block in model.blocks:
            product = block.mixing() @ product
        out["product"] = product.tolist()
    out["test_error"] = _test_error(model, data)
    return out


def hyper_run(spec: HyperSpec) -> dict:
    """``gains_init``/``gains_trained``: the composite gain after each block; the product matrix; errors (cached)."""
    return cached("ch7-hyper", spec, lambda: _hyper(spec))


@torch.no_grad()
def random_mixing_gains(seed: int, n: int = 4, sigma: float = 0.1, depths=MIXING_DEPTHS) -> dict:
    """Composite gain ``‖B_L ⋯ B_1‖_∞`` of random near-identity mixing matrices, raw and Sinkhorn-projected.

    Raw: ``B = I + σG`` with G standard normal. Projected: the same matrices made positive
    (``|B| + 10⁻⁶``) and projected with :func:`sinkhorn`. Also returns the worst deviation of the projected
    product's row and column sums from 1.
    """
    gen = torch.Generator().manual_seed(seed)
    raw_product, ds_product = torch.eye(n), torch.eye(n)
    raw, projected, worst = [], [], 0.0
    for depth in range(1, max(depths) + 1):
        b = torch.eye(n) + sigma * torch.randn(n, n, generator=gen)
        raw_product = b @ raw_product
        ds_product = sinkhorn(torch.log(b.abs() + 1e-6)) @ ds_product
        if depth in depths:
            raw.append(raw_product.abs().sum(1).max().item())
            projected.append(ds_product.abs().sum(1).max().item())
            worst = max(worst, (ds_product.sum(0) - 1).abs().max().item(), (ds_product.sum(1) - 1).abs().max().item())
    return {"depths": list(depths), "raw": raw, "projected": projected, "worst_sum_error": worst}
