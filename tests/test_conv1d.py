import pytest
import torch
from torch import nn

from book.errors import ConfigError
from book.nets.conv1d import (BasicBlock1d, ConvNet1d, ConvNetConfig, PlainBlock1d, deepen_with_identities, plain_net,
                              resnet, validate_6n_plus_2_depth)
from book.nets.shortcuts import PadChannelsShortcut


def count(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("depth", [8, 20, 32, 56])
def test_depth_counts_weighted_layers_and_shortcuts_are_free(depth):
    plain, res = plain_net(depth), resnet(depth)
    weighted = sum(isinstance(m, (nn.Conv1d, nn.Linear)) for m in plain.modules())
    assert weighted == depth
    assert count(plain) == count(res), "the shortcut must not add parameters"
    x = torch.randn(4, 1, 40)
    assert plain(x).shape == res(x).shape == (4, 10)


def test_every_residual_block_has_a_module_shortcut():
    net = resnet(20)
    blocks = [m for m in net.modules() if isinstance(m, BasicBlock1d)]
    assert len(blocks) == 9
    kinds = [type(b.shortcut) for b in blocks]
    assert kinds.count(PadChannelsShortcut) == 2 and kinds.count(nn.Identity) == 7


def test_option_a_shortcut_subsamples_and_zero_pads():
    shortcut = PadChannelsShortcut(8, 16, 2)
    x = torch.randn(2, 8, 40)
    y = shortcut(x)
    assert y.shape == (2, 16, 20)
    assert torch.equal(y[:, :8], x[:, :, ::2]) and torch.count_nonzero(y[:, 8:]) == 0


def test_residual_sum_is_out_of_place_and_every_parameter_gets_a_gradient():
    net = resnet(14)
    saved = {}
    net.blocks[1].register_forward_hook(lambda m, i, o: saved.update(ref=i[0], copy=i[0].clone()))
    x = torch.randn(8, 1, 40)
    torch.nn.functional.cross_entropy(net(x), torch.arange(8) % 10).backward()
    assert torch.equal(saved["ref"], saved["copy"]), "a block modified its input in place"
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_zero_init_makes_each_block_the_identity_on_nonnegative_inputs():
    block = BasicBlock1d(8, 8)
    block.zero_init_last()
    nn.init.zeros_(block.branch[-1].bias)
    x = torch.relu(torch.randn(4, 8, 40))
    for mode in (block.train, block.eval):
        mode()
        assert torch.equal(block(x), x)


@pytest.mark.parametrize("residual", [False, True])
def test_a_deeper_net_can_compute_exactly_what_a_shallower_one_does(residual):
    torch.manual_seed(0)
    shallow = ConvNet1d(ConvNetConfig(depth=8, residual=residual, widths=(8, 16, 32))).eval()
    for m in shallow.modules():  # non-trivial running statistics
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
    deep = deepen_with_identities(shallow, 32)
    assert sum(isinstance(m, (nn.Conv1d, nn.Linear)) for m in deep.modules()) == 32
    x = torch.randn(16, 1, 40)
    with torch.no_grad():
        assert torch.allclose(shallow(x), deep(x), atol=1e-6)


@pytest.mark.parametrize("depth", [0, -4, 10, 21, 7, "20", True])
def test_bad_depth_is_a_clear_config_error(depth):
    with pytest.raises(ConfigError, match="6n\\+2"):
        ConvNet1d(ConvNetConfig(depth=depth))


@pytest.mark.parametrize("widths", [(0, 16, 32), (-8, 16, 32), (32, 16, 8)])
def test_bad_widths_are_a_clear_config_error(widths):
    with pytest.raises(ConfigError, match="widths"):
        ConvNet1d(ConvNetConfig(depth=8, widths=widths))


def _is_6n_plus_2(depth) -> bool:
    try:
        return validate_6n_plus_2_depth(depth) == depth
    except ConfigError:
        return False


def test_valid_depths():
    assert [d for d in range(57) if _is_6n_plus_2(d)] == [8, 14, 20, 26, 32, 38, 44, 50, 56]
    assert isinstance(PlainBlock1d(4, 4), nn.Module)


def test_stochastic_depth_blocks_drop_in_training_and_scale_at_test():
    from book.nets.conv1d import StochasticDepthBlock1d

    torch.manual_seed(0)
    block = StochasticDepthBlock1d(8, 8, survival=0.5)
    x = torch.relu(torch.randn(4, 8, 10))
    block.eval()
    with torch.no_grad():
        assert torch.allclose(block(x), torch.relu(0.5 * block.branch(x) + x))
    block.train()
    outputs = {bool(torch.equal(block(x), torch.relu(x))) for _ in range(40)}
    assert outputs == {True, False}                      # sometimes the branch is dropped, sometimes kept
    cfg = ConvNetConfig(depth=20, final_survival=0.5)
    net = ConvNet1d(cfg)
    survivals = [b.survival for b in net.blocks]
    assert survivals[-1] == pytest.approx(0.5) and survivals == sorted(survivals, reverse=True)
    with pytest.raises(ConfigError):
        ConvNet1d(ConvNetConfig(depth=20, residual=False, final_survival=0.5))
    # without stochastic depth the net is built exactly as before: the same weights for the same seed
    torch.manual_seed(1)
    a = ConvNet1d(ConvNetConfig(depth=20))
    torch.manual_seed(1)
    b = ConvNet1d(ConvNetConfig(depth=20, final_survival=0.5))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
