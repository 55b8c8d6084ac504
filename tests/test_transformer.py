"""Units of book.nets.transformer, book.sequence_task and the chapter 6 training loop."""

from __future__ import annotations

import inspect
import math

import pytest
import torch
from torch import nn

from book.errors import ConfigError
from book.sequence_task import SortTask, masked_cross_entropy
from book.nets.transformer import (NORM_PLACEMENTS, DeepNormBlock, PreLNBlock, Transformer, TransformerConfig,
                              validate_transformer_config)
from book.ch6_residual_stream import (InitGradients, TrainSpec, gradients_at_init, run_training, validate_train_spec,
                                          unevenness)

SMALL = dict(vocab_size=17, block_size=16, n_layer=3, n_head=4, n_embd=32)


def model(norm: str, seed: int = 0, **overrides) -> Transformer:
    torch.manual_seed(seed)
    return Transformer(TransformerConfig(**{**SMALL, **overrides}, norm=norm))


def tokens(batch: int = 4, length: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 17, (batch, length), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("norm", NORM_PLACEMENTS)
def test_shapes_and_stream(norm):
    logits, stream = model(norm)(tokens(), return_stream=True)
    assert logits.shape == (4, 16, 17)
    assert len(stream) == SMALL["n_layer"] + 1
    assert all(x.shape == (4, 16, 32) for x in stream)


@pytest.mark.parametrize("norm", NORM_PLACEMENTS)
def test_every_parameter_receives_a_gradient(norm):
    m = model(norm)
    if norm == "rezero":  # at init α = 0 blocks every branch; open the gates to test the wiring
        for block in m.blocks:
            nn.init.constant_(block.alpha, 0.5)
    m(tokens()).sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("norm", NORM_PLACEMENTS)
def test_causal(norm):
    """Changing the last token changes no earlier prediction."""
    m = model(norm)
    a, b = tokens(), tokens()
    b[:, -1] = (a[:, -1] + 1) % 17
    with torch.no_grad():
        assert torch.allclose(m(a)[:, :-1], m(b)[:, :-1], atol=1e-5)


def test_pre_ln_forward_is_two_residual_lines():
    body = [line.strip() for line in inspect.getsource(PreLNBlock.forward).splitlines()]
    assert "x = self.shortcut(x) + self.attn(self.ln_1(x))" in body
    assert "x = self.shortcut(x) + self.mlp(self.ln_2(x))" in body


def test_every_block_has_a_shortcut_module():
    for norm in NORM_PLACEMENTS:
        assert all(isinstance(b.shortcut, nn.Module) for b in model(norm).blocks)


def test_rezero_starts_as_the_identity():
    _, stream = model("rezero")(tokens(), return_stream=True)
    for x in stream[1:]:
        assert torch.equal(x, stream[0])


def test_post_ln_normalizes_the_stream():
    _, stream = model("post-ln")(tokens(), return_stream=True)
    for x in stream[1:]:
        assert torch.allclose(x.mean(-1), torch.zeros(()), atol=1e-5)
        assert torch.allclose(x.var(-1, unbiased=False), torch.ones(()), atol=1e-3)


@pytest.mark.parametrize("n_layer", [3, 12])
def test_deepnorm_constants(n_layer):
    """α = (2N)^(1/4) on the shortcut; Xavier gain β = (8N)^(-1/4) on value, output and FFN maps (Wang et al.)."""
    torch.manual_seed(0)
    m = Transformer(TransformerConfig(**{**SMALL, "n_layer": n_layer, "n_embd": 128}, norm="deepnorm"))
    block = m.blocks[0]
    assert isinstance(block, DeepNormBlock)
    assert block.shortcut.scale == pytest.approx((2 * n_layer) ** 0.25)
    beta = (8 * n_layer) ** -0.25
    xavier_std = math.sqrt(2.0 / (128 + 128))
    assert block.attn.value.weight.std().item() == pytest.approx(beta * xavier_std, rel=0.05)
    assert block.attn.proj.weight.std().item() == pytest.approx(beta * xavier_std, rel=0.05)
    assert block.attn.query.weight.std().item() == pytest.approx(xavier_std, rel=0.05)
    assert block.mlp.fc.weight.std().item() == pytest.approx(beta * math.sqrt(2.0 / (128 + 512)), rel=0.05)


@pytest.mark.parametrize("norm_first", [False, True])
def test_parity_with_torch_transformer_encoder_layer(norm_first):
    """Our post-LN and pre-LN blocks compute what torch.nn.TransformerEncoderLayer computes."""
    torch.manual_seed(0)
    d, heads = 32, 4
    ours = model("pre-ln" if norm_first else "post-ln").blocks[0].eval()
    ref = nn.TransformerEncoderLayer(d, heads, dim_feedforward=4 * d, dropout=0.0, activation="gelu",
                                     batch_first=True, norm_first=norm_first).eval()
    with torch.no_grad():
        a = ours.attn
        ref.self_attn.in_proj_weight.copy_(torch.cat([a.query.weight, a.key.weight, a.value.weight]))
        ref.self_attn.in_proj_bias.copy_(torch.cat([a.query.bias, a.key.bias, a.value.bias]))
        ref.self_attn.out_proj.weight.copy_(a.proj.weight)
        ref.self_attn.out_proj.bias.copy_(a.proj.bias)
        ref.linear1.weight.copy_(ours.mlp.fc.weight)
        ref.linear1.bias.copy_(ours.mlp.fc.bias)
        ref.linear2.weight.copy_(ours.mlp.proj.weight)
        ref.linear2.bias.copy_(ours.mlp.proj.bias)
        for mine, theirs in ((ours.ln_1, ref.norm1), (ours.ln_2, ref.norm2)):
            mine.weight.normal_()
            mine.bias.normal_()
            theirs.weight.copy_(mine.weight)
            theirs.bias.copy_(mine.bias)
        x = torch.randn(2, 10, d)
        mask = nn.Transformer.generate_square_subsequent_mask(10)
        assert torch.allclose(ours(x), ref(x, src_mask=mask, is_causal=True), atol=1e-5)


@pytest.mark.parametrize("bad", [dict(n_layer=0), dict(n_head=5), dict(norm="middle-ln"), dict(n_embd=2.5),
                                 dict(vocab_size=True)])
def test_bad_config_raises_config_error(bad):
    with pytest.raises(ConfigError):
        validate_transformer_config(TransformerConfig(**{**SMALL, **bad}))


def test_too_long_sequence_raises():
    with pytest.raises(ConfigError, match="block_size"):
        model("pre-ln")(tokens(length=17))


# --------------------------------------------------------------------------- the sort task

def test_sort_task_batches():
    task = SortTask(length=5, n_symbols=7)
    batch = task.fixed_batch(64, seed=3)
    assert batch.inputs.shape == batch.targets.shape == batch.mask.shape == (64, 10)
    sorted_half = batch.targets[:, 5:]
    unsorted_half = batch.inputs[:, :5]
    assert torch.equal(sorted_half, unsorted_half.sort(dim=1).values)
    assert (batch.inputs[:, 5] == task.separator).all()
    assert batch.mask[:, 5:].all() and not batch.mask[:, :5].any()
    assert torch.equal(batch.inputs, task.fixed_batch(64, seed=3).inputs)  # reproducible
    assert task.chance_loss == pytest.approx(math.log(7))


def test_uniform_prediction_costs_the_chance_loss():
    task = SortTask()
    batch = task.fixed_batch(16, seed=0)
    logits = torch.zeros(16, task.block_size, task.vocab_size)
    logits[..., task.separator] = -1e9  # a uniform guess over the symbols
    assert masked_cross_entropy(logits, batch).item() == pytest.approx(task.chance_loss, rel=1e-6)


@pytest.mark.parametrize("bad", [dict(length=1), dict(n_symbols=0), dict(length=3.0)])
def test_bad_task_raises(bad):
    with pytest.raises(ConfigError):
        SortTask(**bad)


# --------------------------------------------------------------------------- probes and training

def test_probe_gradients_match_autograd_on_the_whole_model():
    spec = InitGradients(norm="pre-ln", n_layer=3, seed=1)
    result = gradients_at_init(spec, disk=False)
    from book.ch6_residual_stream import TASK

    torch.manual_seed(spec.seed)
    m = Transformer(spec.model_config())
    batch = TASK.fixed_batch(spec.batch_size, seed=10_000 + spec.seed)
    masked_cross_entropy(m(batch.inputs), batch).backward()
    for l, block in enumerate(m.blocks):
        expected = torch.cat([block.mlp.fc.weight.grad.flatten(), block.mlp.proj.weight.grad.flatten()]).norm()
        assert result["grad_norms"][l] == pytest.approx(expected.item(), rel=1e-5)
    assert len(result["stream_rms"]) == 4 and len(result["write_ratio"]) == 3
    assert unevenness([1.0, 2.0, 4.0]) == 4.0


def test_rezero_writes_nothing_at_init():
    result = gradients_at_init(InitGradients(norm="rezero", n_layer=4), disk=False)
    assert result["write_ratio"] == [0.0] * 4


def test_training_lowers_the_loss():
    run = run_training(TrainSpec(norm="pre-ln", n_layer=2, steps=60, lr=3e-3), progress=False, disk=False)
    assert not run.diverged and len(run.train_loss) == 60
    assert run.eval_loss < run.train_loss[0] - 0.5


def test_a_diverging_run_is_reported_not_returned_as_curves():
    run = run_training(TrainSpec(norm="none", n_layer=6, lr=10.0, steps=40), progress=False, disk=False)
    assert run.diverged
    assert math.isnan(run.eval_loss)
    assert "diverged" in run.message and "learning rate" in run.message
    assert not run.reached()


def test_warmup_schedule():
    spec = TrainSpec(lr=0.01, warmup_steps=4)
    assert [spec.lr_at(s) for s in range(6)] == pytest.approx([0.0025, 0.005, 0.0075, 0.01, 0.01, 0.01])
    assert TrainSpec(lr=0.01).lr_at(0) == 0.01


@pytest.mark.parametrize("bad", [dict(lr=0.0), dict(lr=float("nan")), dict(warmup_steps=-1), dict(steps=0),
                                 dict(warmup_steps=500), dict(norm="sideways"), dict(n_layer=0)])
def test_bad_train_spec_raises(bad):
    with pytest.raises(ConfigError):
        validate_train_spec(TrainSpec(**bad))
