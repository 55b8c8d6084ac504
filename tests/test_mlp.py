"""book.nets.mlp: every initialization does what its docstring says; bad settings raise ConfigError."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from book.nets.mlp import GENERIC_INITS, INITS, RESIDUAL_INITS, SMALL_INIT_STD, MLPConfig, MLPStack, ResidualLayer
from book.errors import ConfigError

ZERO_START = {"zero_branch": {}, "zero_gamma": dict(norm="batch", norm_position="post"), "skipinit": {},
              "fixup": dict(branch_layers=2)}


def _stack(**kwargs) -> MLPStack:
    torch.manual_seed(0)
    return MLPStack(MLPConfig(**kwargs))


@pytest.mark.parametrize("init", INITS)
def test_every_init_builds_a_residual_stack_whose_parameters_all_get_a_gradient_or_are_zero_started(init):
    model = _stack(depth=4, width=16, residual=True, init=init, **ZERO_START.get(init, {}))
    out = model(torch.randn(8, 40))
    assert out.shape == (8, 10) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("init", GENERIC_INITS)
def test_generic_inits_build_plain_stacks(init):
    model = _stack(depth=3, width=16, residual=False, init=init)
    assert model(torch.randn(2, 40)).shape == (2, 10)


@pytest.mark.parametrize("init", RESIDUAL_INITS)
def test_residual_inits_on_a_plain_stack_raise_a_clear_error(init):
    with pytest.raises(ConfigError, match="plain stack"):
        MLPStack(MLPConfig(residual=False, init=init))


@pytest.mark.parametrize("init", sorted(ZERO_START))
def test_zero_started_blocks_are_exact_identities(init):
    model = _stack(depth=5, width=16, residual=True, init=init, **ZERO_START[init])
    x = torch.randn(32, 16)
    for layer in model.layers:
        assert torch.equal(layer(x), x)


def test_zero_gamma_and_fixup_say_what_they_need():
    with pytest.raises(ConfigError, match="norm_position='post'"):
        MLPStack(MLPConfig(init="zero_gamma", norm="batch"))
    with pytest.raises(ConfigError, match="norm_position='post'"):
        MLPStack(MLPConfig(init="zero_gamma", norm_position="post"))
    with pytest.raises(ConfigError, match="branch_layers"):
        MLPStack(MLPConfig(init="fixup"))


def test_weight_scales_match_their_definitions():
    width, depth = 256, 16
    kaiming = _stack(depth=depth, width=width, init="kaiming").layers[0].last.linear.weight
    assert float(kaiming.std()) == pytest.approx(math.sqrt(2 / width), rel=0.05)
    xavier = _stack(depth=depth, width=width, init="xavier", activation="tanh").layers[0].last.linear.weight
    assert float(xavier.std()) == pytest.approx(5 / 3 * math.sqrt(2 / (2 * width)), rel=0.05)
    small = _stack(depth=depth, width=width, init="small").layers[0].last.linear.weight
    assert float(small.std()) == pytest.approx(SMALL_INIT_STD, rel=0.05)
    default = _stack(depth=depth, width=width, init="default").layers[0].last.linear.weight
    assert float(default.abs().max()) <= 1 / math.sqrt(width)
    assert float(default.std()) == pytest.approx(1 / math.sqrt(3 * width), rel=0.05)
    scaled = _stack(depth=depth, width=width, init="inv_sqrt_depth").layers[0].last.linear.weight
    assert float(scaled.std()) == pytest.approx(math.sqrt(2 / width) / math.sqrt(depth), rel=0.05)
    ortho = _stack(depth=depth, width=width, init="orthogonal", activation="linear").layers[0].last.linear.weight
    torch.testing.assert_close(ortho @ ortho.T, torch.eye(width), atol=1e-4, rtol=0)


def test_fixup_scales_the_first_branch_layer_by_depth_to_the_minus_half():
    depth, width = 16, 256
    model = _stack(depth=depth, width=width, init="fixup", branch_layers=2)
    first = model.layers[0].branch[0].linear.weight
    assert float(first.std()) == pytest.approx(math.sqrt(2 / width) * depth ** -0.5, rel=0.05)
    assert float(model.layers[0].branch[1].linear.weight.abs().max()) == 0.0


def test_skipinit_gain_is_learnable_and_starts_at_zero():
    model = _stack(depth=3, width=8, init="skipinit")
    assert all(float(layer.gain) == 0.0 and layer.gain.requires_grad for layer in model.layers)


def test_residual_forward_keeps_its_input_and_uses_the_branch_scale():
    torch.manual_seed(0)
    layer = ResidualLayer(8, branch_scale=0.5)
    x = torch.randn(4, 8)
    before = x.clone()
    y = layer(x)
    assert torch.equal(x, before)  # the residual sum is out of place
    torch.testing.assert_close(y, x + 0.5 * layer.branch(x))
    assert isinstance(layer.shortcut, nn.Identity)


@pytest.mark.parametrize("bad,match", [
    (dict(depth=0), "depth"), (dict(width=-1), "width"), (dict(activation="sigmoid"), "activation"),
    (dict(norm="group"), "norm"), (dict(init="he"), "init"), (dict(branch_scale=float("nan")), "branch_scale"),
    (dict(norm_position="middle"), "norm_position"), (dict(branch_layers=0), "branch_layers"),
])
def test_bad_settings_raise_config_error(bad, match):
    with pytest.raises(ConfigError, match=match):
        MLPStack(MLPConfig(**bad))
