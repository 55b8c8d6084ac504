"""The self-checks of Exercise 6, the transformer's residual stream: what the notebook's check cells run, and the grader's probe and judge for each."""

from __future__ import annotations

import math
from typing import Callable

from .core import (
    _Fail, _Replay, _Unreadable, _checker, _close, _is_tensor,
    _load_state, _plain, _record, _replay_judge, _replay_probe, _rng,
    _run, _seeded,
)

__all__ = ['check_pre_norm_block', 'check_post_norm_block', 'check_deepnorm_constants']


def _stream_case(cls, d_model: int, seed: int):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    sublayer = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))
    block = _run(f"{cls.__name__}({d_model}, sublayer)", cls, d_model, sublayer)
    if not isinstance(block, nn.Module):
        raise _Fail(f"{cls.__name__}(d_model, sublayer) should create an nn.Module.")
    norm = getattr(block, "norm", None)
    if not isinstance(norm, nn.LayerNorm):
        raise _Fail("store the block's nn.LayerNorm(d_model) as self.norm (and the sublayer as self.sublayer).")
    with torch.no_grad():  # a learned γ, β that are not 1 and 0, so a missing norm shows
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.5, 0.5)
    x = 3 * torch.randn(2, 5, d_model) + 1
    x_before = x.clone()
    y = _run(f"{cls.__name__}'s forward", block, x)
    if not _is_tensor(y):
        raise _Fail(f"forward returned {type(y).__name__}; it should return a tensor.")
    if not torch.equal(x, x_before):
        raise _Fail("forward changed its input in place (x += ...); write x = x + ... so the stream's earlier values stay intact.")
    with torch.no_grad():
        f = block.sublayer if isinstance(getattr(block, "sublayer", None), nn.Module) else sublayer
        variants = {
            "pre": x + f(norm(x)),
            "post": norm(x + f(x)),
            "pre+final": norm(x + f(norm(x))),
            "no-residual-pre": f(norm(x)),
            "no-residual-post": norm(f(x)),
            "no-norm": x + f(x),
        }
    found = next((k for k, v in variants.items() if _close(y.detach(), v, 1e-4)), None)
    return found, (y.detach() - variants["pre"]).abs().max().item()


_PRE_NORM_PASSED = "x + F(norm(x)): the stream x passes from block to block untouched, and each block adds its update."
_POST_NORM_PASSED = "norm(x + F(x)): every block rescales the stream, which is why deep post-norm stacks need care."


def _pre_norm_hint(found, gap: float) -> str:
    return {
        "post": "your PreNormBlock computes norm(x + F(x)): that is post-norm. Pre-norm normalizes only the "
                "branch's input and leaves the stream untouched: x = x + self.sublayer(self.norm(x)).",
        "pre+final": "your block normalizes the sum as well: norm(x + F(norm(x))). In a pre-norm block the "
                     "residual stream is never normalized; return x + F(norm(x)).",
        "no-residual-pre": "your block returns F(norm(x)): the residual connection is missing. Add x back.",
        "no-residual-post": "your block returns norm(F(x)): the residual connection is missing, and the norm "
                            "belongs before the sublayer.",
        "no-norm": "your block returns x + F(x): the LayerNorm is missing. Apply self.norm to the sublayer's input.",
        None: f"your PreNormBlock's output differs from x + F(norm(x)) by up to {gap:.3g}.",
    }[found]


def _post_norm_hint(found, gap: float) -> str:
    return {
        "pre": "your PostNormBlock computes x + F(norm(x)): that is pre-norm. The original Transformer "
               "normalizes after the sum: x = self.norm(x + self.sublayer(x)).",
        "pre+final": "your block normalizes both the sublayer's input and the sum. Post-norm applies the norm "
                     "once, after the sum: norm(x + F(x)).",
        "no-residual-pre": "your block returns F(norm(x)): the residual connection is missing and the norm is "
                           "in the wrong place. Return norm(x + F(x)).",
        "no-residual-post": "your block returns norm(F(x)): the residual connection is missing. Add x before the norm.",
        "no-norm": "your block returns x + F(x): the LayerNorm after the sum is missing.",
        None: "your PostNormBlock's output differs from norm(x + F(x)).",
    }[found]


@_checker("Task 1 · a pre-norm block")
def check_pre_norm_block(PreNormBlock, thorough: bool = False) -> str:
    """``PreNormBlock(d_model, sublayer)`` computes ``x + sublayer(norm(x))``."""
    for d, seed in ([(16, 0), (24, 1)] if thorough else [(16, 0)]):
        found, gap = _stream_case(PreNormBlock, d, seed)
        if found == "pre":
            continue
        raise _Fail(_pre_norm_hint(found, gap))
    return _PRE_NORM_PASSED


@_checker("Task 2 · a post-norm block")
def check_post_norm_block(PostNormBlock, thorough: bool = False) -> str:
    """``PostNormBlock(d_model, sublayer)`` computes ``norm(x + sublayer(x))``."""
    for d, seed in ([(16, 2), (24, 3)] if thorough else [(16, 2)]):
        found, gap = _stream_case(PostNormBlock, d, seed)
        if found == "post":
            continue
        raise _Fail(_post_norm_hint(found, gap))
    return _POST_NORM_PASSED


@_checker("Task 3 · DeepNorm's constants")
def check_deepnorm_constants(deepnorm_constants: Callable, thorough: bool = False, seed: int | None = None) -> str:
    """``deepnorm_constants(n_layers)`` → ``(alpha, beta)`` for an encoder-only DeepNet: ((2N)^¼, (8N)^-¼)."""
    layers = [6, 12, 100] if not thorough else [1, 6, 12, 100, 1000]
    if seed is not None:
        rng = _rng(seed)
        layers = [rng.randint(1, 20), rng.randint(21, 200), rng.randint(201, 5000)]
    for n in layers:
        got = _run(f"deepnorm_constants({n})", deepnorm_constants, n)
        try:
            alpha, beta = (float(v) for v in got)
        except Exception:
            raise _Fail(f"deepnorm_constants({n}) returned {got!r}; return a pair of numbers (alpha, beta).") from None
        want = ((2 * n) ** 0.25, (8 * n) ** -0.25)

        def same(a, b):
            return math.isclose(a, b, rel_tol=1e-6)

        if same(alpha, want[0]) and same(beta, want[1]):
            continue
        if same(alpha, want[1]) and same(beta, want[0]):
            hint = "you swapped them: alpha (> 1) scales the shortcut x, beta (< 1) scales the initial weights."
        elif same(alpha, (3 * n) ** 0.25) and same(beta, (12 * n) ** -0.25):
            hint = "those are the decoder-only constants, (3M)^¼ and (12M)^-¼; the encoder-only ones are (2N)^¼ and (8N)^-¼."
        elif same(alpha, (2 * n) ** 0.5) or same(beta, (8 * n) ** -0.5):
            hint = "you used a square root; DeepNorm uses the fourth root."
        elif same(alpha, want[0]):
            hint = f"alpha is right; beta should be (8N)^(-1/4) = {want[1]:.4g}, got {beta:.4g}."
        elif same(beta, want[1]):
            hint = f"beta is right; alpha should be (2N)^(1/4) = {want[0]:.4g}, got {alpha:.4g}."
        else:
            hint = f"expected alpha = (2N)^(1/4) = {want[0]:.4g} and beta = (8N)^(-1/4) = {want[1]:.4g}."
        raise _Fail(f"for N = {n} layers your function returns ({alpha:.4g}, {beta:.4g}): {hint}")
    a, b = (2 * 100) ** 0.25, (8 * 100) ** -0.25
    return f"for a 100-layer encoder, alpha = {a:.3f} and beta = {b:.3f}: up-weight the shortcut, shrink the branch."


def _stream_cases(seed, thorough):
    rng = _rng(seed)
    return [(rng.choice([8, 12, 16, 24]), _seeded(seed, i)) for i in range(2 if thorough else 1)]


def _stream_inputs(d_model, s):
    import torch
    from torch import nn

    torch.manual_seed(s)
    sublayer = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))
    g = torch.Generator().manual_seed(s)
    gamma = torch.rand(d_model, generator=g) + 0.5
    beta = torch.rand(d_model, generator=g) - 0.5
    x = 3 * torch.randn(2, 5, d_model, generator=g) + 1
    return sublayer, gamma, beta, x


def _probe_stream(cls, seed, thorough, answers):
    import torch
    from torch import nn

    for d, s in _stream_cases(seed, thorough):
        sublayer, gamma, beta, x = _stream_inputs(d, s)
        block = _record(answers, cls, d, sublayer)
        norm = getattr(block, "norm", None)
        report = answers[-1]["report"] = {
            "is_module": isinstance(block, nn.Module), "norm": isinstance(norm, nn.LayerNorm),
            "sublayer": getattr(block, "sublayer", None) is sublayer}
        if not (report["is_module"] and report["norm"]):
            return
        report["eps"] = float(norm.eps)
        with torch.no_grad():
            norm.weight.copy_(gamma)
            norm.bias.copy_(beta)
        before = x.clone()
        _record(answers, block, x)
        answers[-1]["report"] = {"input_changed": not torch.equal(x, before),
                                 "sublayer_state": {k: _plain(v) for k, v in sublayer.state_dict().items()}}


def _judge_stream(answers, seed, thorough, cls_name):
    import torch
    import torch.nn.functional as F

    replay = _Replay(answers)
    for d, s in _stream_cases(seed, thorough):
        sublayer, gamma, beta, x = _stream_inputs(d, s)
        _run(f"{cls_name}({d}, sublayer)", replay.next)
        r = answers[replay.used - 1].get("report") or {}
        if r.get("is_module") is not True:
            raise _Fail(f"{cls_name}(d_model, sublayer) should create an nn.Module.")
        if r.get("norm") is not True:
            raise _Fail("store the block's nn.LayerNorm(d_model) as self.norm (and the sublayer as self.sublayer).")
        if r.get("sublayer") is not True:
            raise _Fail("store the sublayer the block is given as self.sublayer, and use it in forward.")
        eps = r.get("eps")
        y = _run(f"{cls_name}'s forward", replay.next)
        r2 = answers[replay.used - 1].get("report") or {}
        if not _is_tensor(y):
            raise _Fail(f"forward returned {type(y).__name__}; it should return a tensor.")
        if r2.get("input_changed") is not False:
            raise _Fail("forward changed its input in place (x += ...); write x = x + ... so the stream's earlier "
                        "values stay intact.")
        if type(eps) is not float or not _load_state(sublayer, r2.get("sublayer_state")):
            raise _Unreadable("a malformed answer")
        with torch.no_grad():
            def norm(t):
                return F.layer_norm(t, (d,), gamma, beta, eps)
            f = sublayer
            variants = {"pre": x + f(norm(x)), "post": norm(x + f(x)), "pre+final": norm(x + f(norm(x))),
                        "no-residual-pre": f(norm(x)), "no-residual-post": norm(f(x)), "no-norm": x + f(x)}
        found = next((k for k, v in variants.items() if _close(y, v, 1e-4)), None)
        yield found, (y - variants["pre"]).abs().max().item() if y.shape == x.shape else float("inf")


@_checker("Task 1 · a pre-norm block")
def _judge_pre_norm(answers, seed, thorough) -> str:
    for found, gap in _judge_stream(answers, seed, thorough, "PreNormBlock"):
        if found != "pre":
            raise _Fail(_pre_norm_hint(found, gap))
    return _PRE_NORM_PASSED


@_checker("Task 2 · a post-norm block")
def _judge_post_norm(answers, seed, thorough) -> str:
    for found, gap in _judge_stream(answers, seed, thorough, "PostNormBlock"):
        if found != "post":
            raise _Fail(_post_norm_hint(found, gap))
    return _POST_NORM_PASSED


# The grader's probe (inside the learner's sandbox) and judge (in the grader) for each check.
JUDGED = {
    "check_pre_norm_block": (_probe_stream, _judge_pre_norm),
    "check_post_norm_block": (_probe_stream, _judge_post_norm),
    "check_deepnorm_constants": (_replay_probe(check_deepnorm_constants), _replay_judge(check_deepnorm_constants)),
}
