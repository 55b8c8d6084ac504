"""The image ResNets: exact published parameter counts, shapes, shortcuts, init tricks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from book.errors import ConfigError
from book.nets.counting import count_macs, count_parameters
from book.nets.resnets import (
    BasicBlock, Bottleneck, CifarResNet, CifarResNetConfig, PreActBasicBlock, ResNet, ResNetConfig,
    cifar_resnet, make_shortcut,
)
from book.nets.shortcuts import PadChannelsShortcut, ProjectionShortcut, ScaledShortcut

# He et al. 2015, option A, BN affine included (see the course's reference sheet).
CIFAR_PARAMS = {20: 269_722, 32: 464_154, 44: 658_586, 56: 853_018, 110: 1_727_962, 1202: 19_421_274}
# torchvision's published counts.
IMAGENET_PARAMS = {18: 11_689_512, 34: 21_797_672, 50: 25_557_032, 101: 44_549_160, 152: 60_192_808}
# The paper's Table 1, in G multiply-adds (one decimal).
PAPER_GMACS = {18: 1.8, 34: 3.6, 50: 3.8, 101: 7.6, 152: 11.3}


def meta_resnet(depth: int, **kwargs) -> ResNet:
    with torch.device("meta"):  # shapes only: building ResNet-152 this way takes milliseconds
        return ResNet(ResNetConfig(depth=depth, **kwargs))


@pytest.mark.parametrize("depth", sorted(CIFAR_PARAMS))
def test_cifar_parameter_counts_are_the_published_ones(depth):
    with torch.device("meta"):
        model = cifar_resnet(depth)
    assert count_parameters(model) == CIFAR_PARAMS[depth]


@pytest.mark.parametrize("depth", sorted(IMAGENET_PARAMS))
def test_imagenet_parameter_counts_are_torchvisions(depth):
    assert count_parameters(meta_resnet(depth)) == IMAGENET_PARAMS[depth]
    # the paper's original bottleneck (stride on the 1×1) has the same parameters
    assert count_parameters(meta_resnet(depth, stride_in_3x3=False)) == IMAGENET_PARAMS[depth]


@pytest.mark.parametrize("depth", sorted(PAPER_GMACS))
def test_multiply_adds_match_table_1(depth):
    macs = count_macs(meta_resnet(depth, stride_in_3x3=False), (3, 224, 224)) / 1e9
    assert abs(macs - PAPER_GMACS[depth]) < 0.1 * PAPER_GMACS[depth]
    assert count_macs(meta_resnet(50), (3, 224, 224)) / 1e9 == pytest.approx(4.09, abs=0.01)  # v1.5


@pytest.mark.parametrize("depth", sorted(IMAGENET_PARAMS))
def test_layer_shapes_match_torchvision(depth):
    models = pytest.importorskip("torchvision.models")
    with torch.device("meta"):
        theirs = getattr(models, f"resnet{depth}")()
    ours = meta_resnet(depth)
    assert [tuple(p.shape) for p in ours.parameters()] == [tuple(p.shape) for p in theirs.parameters()]
    assert [tuple(b.shape) for b in ours.buffers()] == [tuple(b.shape) for b in theirs.buffers()]


def test_output_shapes_and_every_parameter_gets_a_gradient():
    for model, x in [(cifar_resnet(8), torch.randn(2, 3, 32, 32)), (cifar_resnet(8, block="plain"), torch.randn(2, 3, 32, 32)),
                     (cifar_resnet(8, block="preact"), torch.randn(2, 3, 32, 32)),
                     (cifar_resnet(8, shortcut="B"), torch.randn(2, 3, 32, 32)),
                     (ResNet(ResNetConfig(depth=18, num_classes=5)), torch.randn(2, 3, 64, 64))]:
        out = model(x)
        assert out.shape == (2, model.config.num_classes)
        out.sum().backward()
        missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
        assert not missing, missing


def test_shortcut_options():
    assert isinstance(make_shortcut(16, 16, 1, "A"), nn.Identity)
    assert isinstance(make_shortcut(16, 32, 2, "A"), PadChannelsShortcut)
    assert isinstance(make_shortcut(16, 16, 1, "B"), nn.Identity)
    assert isinstance(make_shortcut(16, 32, 2, "B"), ProjectionShortcut)
    assert isinstance(make_shortcut(16, 16, 1, "C"), ProjectionShortcut)
    with pytest.raises(ConfigError, match="option"):
        make_shortcut(16, 16, 1, "D")
    x = torch.randn(2, 16, 8, 8)
    padded = PadChannelsShortcut(16, 32, 2)(x)
    assert padded.shape == (2, 32, 4, 4)
    assert torch.equal(padded[:, :16], x[:, :, ::2, ::2]) and not padded[:, 16:].any()
    # option B adds parameters only where the shape changes, option C everywhere
    a, b, c = (count_parameters(cifar_resnet(20, shortcut=s)) for s in "ABC")
    assert a < b < c


def test_scaled_shortcut_of_the_identity_mappings_paper():
    x = torch.randn(2, 8, 5, 5)
    assert torch.equal(ScaledShortcut(0.5)(x), 0.5 * x)


def test_zero_init_makes_every_block_an_identity_at_init():
    model = cifar_resnet(20, zero_init_residual=True).eval()
    x = torch.relu(torch.randn(2, 16, 32, 32))  # a block's input is a ReLU output
    block = model.blocks[1]
    assert isinstance(block, BasicBlock)
    assert torch.allclose(block(x), x)
    bottleneck = Bottleneck(64, 16)
    bottleneck.zero_init_last()
    bottleneck.eval()
    y = torch.relu(torch.randn(2, 64, 8, 8))
    assert torch.allclose(bottleneck(y), y)
    pre = PreActBasicBlock(16, 16)
    pre.zero_init_last()
    z = torch.randn(2, 16, 8, 8)
    assert torch.allclose(pre.eval()(z), z)


def test_bad_settings_give_clear_messages():
    with pytest.raises(ConfigError, match="6n\\+2"):
        CifarResNet(CifarResNetConfig(depth=21))
    with pytest.raises(ConfigError, match="block"):
        CifarResNet(CifarResNetConfig(block="dense"))
    with pytest.raises(ConfigError, match="Table 1"):
        ResNet(ResNetConfig(depth=42))
