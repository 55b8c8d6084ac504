import math

import torch

from book.data import load_mnist1d
from book.nets.conv1d import resnet
from book.training import TrainConfig, TrainResult, train


def _small():
    d = load_mnist1d()
    from book.data import MNIST1D
    return MNIST1D(d.x_train[:512], d.y_train[:512], d.x_test[:256], d.y_test[:256])


def test_training_learns_and_is_reproducible_from_a_seed():
    data = _small()
    results = []
    for _ in range(2):
        torch.manual_seed(3)
        model = resnet(8, widths=(8, 16, 32))
        results.append(train(model, data, TrainConfig(epochs=4), seed=3, progress=False))
    a, b = results
    assert a.train_loss == b.train_loss and a.test_error == b.test_error
    assert len(a.train_error) == 4 and not a.diverged
    assert a.train_loss[-1] < a.train_loss[0]
    assert all(0 <= e <= 1 for e in a.train_error + a.test_error)


def test_a_diverging_run_is_reported_not_plotted():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(40, 10))
    result = train(model, _small(), TrainConfig(epochs=5, lr=1e4, momentum=0.9), progress=False)
    assert result.diverged and "diverged" in result.message and "learning rate" in result.message
    assert all(math.isfinite(v) for v in result.train_loss)


def test_learning_rate_schedule_follows_the_paper():
    cfg = TrainConfig(epochs=8, lr=0.1, warmup_epochs=1)
    lrs = [cfg.lr_at(e) for e in range(8)]
    assert lrs[0] < 0.1 and lrs[1:4] == [0.1] * 3
    assert math.isclose(lrs[4], 0.01) and math.isclose(lrs[6], 0.001)


def test_result_round_trips_through_a_dict():
    r = TrainResult([1.0], [0.5], [1.1], [0.6], False, "", 1.0)
    assert TrainResult.from_dict(r.to_dict()) == r


# --------------------------------------------------------------------------- the shared pieces and the Adam loop

def test_the_divergence_rule():
    from book.training import divergence

    assert divergence(2.0, 2.3, 10.0) is None                  # learning
    assert divergence(20.0, 2.3, 10.0) is None                 # a spike below the factor
    assert "reached 24" in divergence(24.0, 2.3, 10.0)          # above 10 × the first loss
    assert divergence(float("nan"), 2.3, math.inf) and divergence(float("inf"), 2.3, math.inf)
    assert divergence(5e-3, 1e-6, 10.0) is None                 # a first loss near 0 is floored at 1e-3


def test_seeded_draws_from_the_seed_and_leaves_the_caller_alone():
    from book.training import seeded

    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    with seeded(5):
        a = torch.randn(3)
    assert torch.equal(torch.random.get_rng_state(), before)
    with seeded(5):
        assert torch.equal(torch.randn(3), a)


def _adam_run(lr_at, steps=30, factor=10.0):
    from book.training import seeded, train_adam

    gen = torch.Generator().manual_seed(0)
    with seeded(1):
        model = torch.nn.Linear(4, 4)

    def batches():
        while True:
            x = torch.randn(16, 4, generator=gen)
            yield x, 2 * x

    seen = []
    fit = train_adam(model, batches(), torch.nn.functional.mse_loss, steps, lr_at, divergence_factor=factor,
                     on_step=lambda step, value, *_: seen.append(step))
    return fit, seen


def test_the_adam_loop_learns_reproducibly_and_reports_every_step():
    a, seen = _adam_run(lambda step: 0.05)
    b, _ = _adam_run(lambda step: 0.05)
    assert a.losses == b.losses and len(a.losses) == 30 and seen == list(range(30))
    assert a.losses[-1] < a.losses[0] and not a.diverged


def test_the_adam_loop_stops_a_diverging_run():
    fit, seen = _adam_run(lambda step: 50.0 * (step + 1), steps=40, factor=3.0)
    assert fit.diverged and "diverged at step" in fit.message and "learning rate" in fit.message
    assert len(fit.losses) == len(seen) < 40 and all(math.isfinite(v) for v in fit.losses)
