"""book.probes: every statistic a probe reports equals the value computed directly with torch.autograd."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from book.nets.mlp import MLPConfig, MLPStack
from book.nets.conv1d import ConvNet1d, ConvNetConfig
from book.probes import ActivationGradientProbe, input_gradients, probe, stack_points


def _reference_mlp(model: MLPStack, x, y):
    """Run the stack by hand, keeping every intermediate tensor, and differentiate with autograd."""
    hs = [model.embed(x)]
    for layer in model.layers:
        hs.append(layer(hs[-1]))
    loss = F.cross_entropy(model.head(hs[-1]), y)
    return hs, loss


def _reference_conv(model: ConvNet1d, x, y):
    hs = [model.stem(x)]
    for block in model.blocks:
        hs.append(block(hs[-1]))
    loss = F.cross_entropy(model.head(hs[-1].mean(-1)), y)
    return hs, loss


def _check_parity(model, reference, x, y):
    points = stack_points(model)
    stats = probe(model, points, x, lambda out: F.cross_entropy(out, y))
    hs, loss = reference(model, x, y)
    detached = [h.detach() for h in hs]
    params = [list(m.parameters()) for _, m in points]
    flat = [p for group in params for p in group]
    grads = torch.autograd.grad(loss, hs + flat)
    h_grads, p_grads = grads[: len(hs)], grads[len(hs):]
    assert stats.loss == pytest.approx(float(loss.detach()), rel=1e-6)
    assert len(stats.names) == len(hs)
    for i in range(len(hs)):
        assert stats.activation_std[i] == pytest.approx(float(detached[i].double().std()), rel=1e-5, abs=1e-12)
        assert stats.activation_mean[i] == pytest.approx(float(detached[i].double().mean()), rel=1e-5, abs=1e-9)
        assert stats.grad_norm[i] == pytest.approx(float(h_grads[i].double().norm()), rel=1e-5, abs=1e-30)
    k = 0
    for i, group in enumerate(params):
        expected = sum(float(g.double().pow(2).sum()) for g in p_grads[k : k + len(group)]) ** 0.5
        k += len(group)
        assert stats.weight_grad_norm[i] == pytest.approx(expected, rel=1e-5, abs=1e-30)


@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("init,norm,activation", [("default", "none", "relu"), ("kaiming", "layer", "tanh"),
                                                   ("orthogonal", "none", "gelu")])
def test_probe_matches_autograd_on_mlp_stacks(residual, init, norm, activation):
    torch.manual_seed(0)
    model = MLPStack(MLPConfig(depth=6, width=16, residual=residual, init=init, norm=norm, activation=activation))
    x, y = torch.randn(32, 40), torch.randint(0, 10, (32,))
    _check_parity(model, _reference_mlp, x, y)


@pytest.mark.parametrize("residual", [False, True])
def test_probe_matches_autograd_on_conv_nets(residual):
    torch.manual_seed(1)
    model = ConvNet1d(ConvNetConfig(depth=8, residual=residual, widths=(4, 8, 8)))
    model.eval()  # batch norm with fixed statistics: the manual pass sees the same function
    x, y = torch.randn(16, 1, 40), torch.randint(0, 10, (16,))
    _check_parity(model, _reference_conv, x, y)


def test_probe_leaves_no_hooks_and_no_grads():
    model = MLPStack(MLPConfig(depth=3, width=8))
    probe(model, stack_points(model), torch.randn(4, 40), lambda out: out.sum())
    for module in model.modules():
        assert not module._forward_hooks
    assert all(p.grad is None for p in model.parameters())


def test_probe_on_any_module_uses_its_children():
    model = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 1))
    stats = probe(model, stack_points(model), torch.randn(9, 5), lambda out: out.pow(2).mean())
    assert stats.names == ["0", "1", "2"]
    assert stats.weight_grad_norm[1] == 0.0 and stats.weight_grad_norm[0] > 0


def test_probe_rejects_modules_that_do_not_return_a_tensor():
    class Pair(nn.Module):
        def forward(self, x):
            return x, x

    pair = Pair()
    model = nn.Sequential(pair)
    with pytest.raises(TypeError, match="not a tensor"):
        with ActivationGradientProbe([("pair", pair)]):
            model(torch.randn(2, 3))


def test_input_gradients_match_autograd_and_finite_differences():
    torch.manual_seed(0)
    model = MLPStack(MLPConfig(depth=4, width=16, in_features=1, out_features=1, activation="tanh")).double()
    xs = torch.linspace(-2, 2, 11, dtype=torch.float64).unsqueeze(1)
    g = input_gradients(model, xs)
    eps = 1e-6
    with torch.no_grad():
        fd = (model(xs + eps) - model(xs - eps)) / (2 * eps)
    torch.testing.assert_close(g, fd, rtol=1e-5, atol=1e-8)
