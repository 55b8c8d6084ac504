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
