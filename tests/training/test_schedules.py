"""Named learning-rate schedules (the TaylorGLO papers, arXiv 2002.00059 and 2010.00788) and
optimizer construction."""

import keras
import pytest

from metaloss.training import PAPER_SCHEDULES, learning_rate_schedule, make_optimizer


@pytest.mark.parametrize(
    ("name", "epoch_rates"),
    [
        # Values from the papers' training set-ups: (epoch, learning rate).
        ("alexnet", [(0, 0.1), (80, 0.1), (81, 0.01), (122, 0.001)]),
        ("resnet", [(99, 0.1), (100, 0.01), (150, 0.001)]),
        ("wrn", [(59, 0.1), (60, 0.02), (120, 0.004), (160, 0.0008)]),
        ("allcnn_c", [(0, 0.01), (200, 0.001), (250, 0.0001), (300, 0.00001)]),
    ],
)
def test_paper_schedules(name, epoch_rates):
    schedule = learning_rate_schedule(name, steps_per_epoch=7)
    for epoch, rate in epoch_rates:
        assert float(schedule(epoch * 7)) == pytest.approx(rate, rel=1e-5)
        assert PAPER_SCHEDULES[name].rate_at_epoch(epoch) == pytest.approx(rate, rel=1e-9)


def test_constant_and_base_override():
    assert learning_rate_schedule("constant", steps_per_epoch=3, base_learning_rate=0.02) == 0.02
    schedule = learning_rate_schedule("resnet", steps_per_epoch=1, base_learning_rate=0.5)
    assert float(schedule(150)) == pytest.approx(0.005)


def test_optimizers():
    sgd = make_optimizer("sgd", 0.1, momentum=0.9, weight_decay=5e-4)
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.weight_decay == 5e-4
    assert isinstance(make_optimizer("adam", 1e-3), keras.optimizers.Adam)


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: learning_rate_schedule("cosine", steps_per_epoch=1), "schedule"),
        (lambda: learning_rate_schedule("resnet", steps_per_epoch=0), "steps_per_epoch"),
        (lambda: make_optimizer("sgd", -1.0), "learning_rate"),
        (lambda: make_optimizer("sgd", 0.1, momentum=1.5), "momentum"),
        (lambda: make_optimizer("lion"), "optimizer"),
    ],
)
def test_bad_arguments(call, argument):
    with pytest.raises(ValueError, match=f"argument `{argument}`"):
        call()
