r"""Per-layer activation and gradient statistics for any ``nn.Module``, via hooks.

A forward hook on each probed module records its output :math:`h_l` (mean and
standard deviation) and registers a tensor hook on it, so the backward pass
records :math:`\lVert \partial \mathcal{L} / \partial h_l \rVert`, the gradient
signal that reaches that point of the network. After the backward pass the
gradient norm of each module's own parameters is read off ``.grad``.

Nothing about the network is assumed beyond "these modules are called once per
forward pass": the same probe works on the MLP stacks of :mod:`book.nets.mlp`, the
conv nets of :mod:`book.nets.conv1d`, or any model a reader brings.
``tests/test_probes.py`` checks every number against ``torch.autograd.grad``.

Usage::

    stats = probe(model, stack_points(model), x, lambda out: F.cross_entropy(out, y))
    stats.grad_norm        # one value per probed module, input side first
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

import torch
from torch import nn

__all__ = ["LayerStats", "ActivationGradientProbe", "probe", "stack_points", "input_gradients"]


@dataclass
class LayerStats:
    """What a probe measured, one entry per probed module (in the order given).

    Attributes:
        names: the probed modules' names.
        activation_mean: mean of each module's output over batch and features.
        activation_std: standard deviation of each module's output (over batch and features).
        grad_norm: Frobenius norm of ∂loss/∂output for each module (the backward signal there).
        weight_grad_norm: norm of the gradient of each module's own parameters (0 if it has none).
        loss: the loss value.
    """

    names: list[str] = field(default_factory=list)
    activation_mean: list[float] = field(default_factory=list)
    activation_std: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    weight_grad_norm: list[float] = field(default_factory=list)
    loss: float = float("nan")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "LayerStats":
        return cls(**d)


class ActivationGradientProbe:
    """Context manager: hooks ``modules`` and records their outputs and output gradients.

    Args:
        modules: ``(name, module)`` pairs to watch.

    After a forward and a backward pass inside the ``with`` block,
    ``outputs[name]`` holds each output (detached) and ``grads[name]`` the
    gradient of the loss with respect to it. If a module runs more than once in
    a forward pass, its last call is kept.
    """

    def __init__(self, modules: Sequence[tuple[str, nn.Module]]):
        self.modules = list(modules)
        self.outputs: dict[str, torch.Tensor] = {}
        self.grads: dict[str, torch.Tensor] = {}
        self._handles: list = []

    def _hook(self, name: str):
        def forward_hook(module, inputs, output):
            if not isinstance(output, torch.Tensor):
                raise TypeError(f"probe: module {name!r} returned {type(output).__name__}, not a tensor.")
            self.outputs[name] = output.detach()
            if output.requires_grad:
                def save_grad(grad, name=name):
                    self.grads[name] = grad.detach()
                output.register_hook(save_grad)
        return forward_hook

    def __enter__(self) -> "ActivationGradientProbe":
        for name, module in self.modules:
            self._handles.append(module.register_forward_hook(self._hook(name)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


def stack_points(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The natural probe points of a stack: its input layer, then every layer or block in order.

    Works for :class:`book.nets.mlp.MLPStack` (``embed`` + ``layers``) and
    :class:`book.nets.conv1d.ConvNet1d` (``stem`` + ``blocks``); for any other
    module, every direct child.
    """
    if hasattr(model, "embed") and hasattr(model, "layers"):
        first, body = ("embed", model.embed), ("layers", model.layers)
    elif hasattr(model, "stem") and hasattr(model, "blocks"):
        first, body = ("stem", model.stem), ("blocks", model.blocks)
    else:
        return list(model.named_children())
    return [first] + [(f"{body[0]}.{i}", m) for i, m in enumerate(body[1])]


def probe(model: nn.Module, modules: Sequence[tuple[str, nn.Module]], inputs: torch.Tensor,
          loss_fn: Callable[[torch.Tensor], torch.Tensor]) -> LayerStats:
    """One forward and backward pass of ``model`` with the given modules probed.

    Args:
        model: the network (its ``.grad`` fields are overwritten).
        modules: ``(name, module)`` pairs inside ``model``, e.g. :func:`stack_points`.
        inputs: a batch for ``model``.
        loss_fn: maps the model's output to a scalar loss.
    """
    model.zero_grad(set_to_none=True)
    with ActivationGradientProbe(modules) as hooks:
        loss = loss_fn(model(inputs))
        loss.backward()
    stats = LayerStats(loss=float(loss.detach()))
    for name, module in modules:
        out = hooks.outputs[name].double()
        grad = hooks.grads.get(name)
        stats.names.append(name)
        stats.activation_mean.append(float(out.mean()))
        stats.activation_std.append(float(out.std()))
        stats.grad_norm.append(float(grad.double().norm()) if grad is not None else 0.0)
        squares = sum(float(p.grad.double().pow(2).sum()) for p in module.parameters() if p.grad is not None)
        stats.weight_grad_norm.append(squares ** 0.5)
    model.zero_grad(set_to_none=True)
    return stats


def input_gradients(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """∂(sum of outputs)/∂inputs, one gradient per input row: the gradients whose shattering Balduzzi et al. measure."""
    x = inputs.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(x).sum(), x)
    return grad
