"""Tests of the callbacks around the training loop: EarlyStopping's rule, worked by hand."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from backprop.callbacks import EarlyStopping, EpochLog


def fake_trainer(metric: str = "accuracy") -> SimpleNamespace:
    """What EarlyStopping reads: the network's params and the history's metric name."""
    net = SimpleNamespace(params={"W1": np.zeros(2)})
    return SimpleNamespace(net=net, history=SimpleNamespace(metric_name=metric))


def run(cb: EarlyStopping, values: list[float], field: str = "val_loss", metric: str = "accuracy"):
    """Feed one value per epoch; the weights hold the epoch number. Returns (stops, trainer)."""
    trainer = fake_trainer(metric)
    cb.on_train_begin(trainer)
    stops = []
    for epoch, v in enumerate(values, start=1):
        trainer.net.params["W1"][:] = epoch
        log = EpochLog(epoch, math.nan, math.nan, math.nan, 0.1, 0.0)
        setattr(log, field, v)
        stops.append(bool(cb.on_epoch_end(epoch, log, trainer)))
    return stops, trainer


def test_patience_counts_epochs_without_a_lower_loss_and_restores_the_best():
    cb = EarlyStopping("val_loss", patience=2)
    stops, trainer = run(cb, [1.0, 0.5, 0.7, 0.6])
    # Epoch 2 is best; epochs 3 and 4 do not beat 0.5, so the run stops after epoch 4.
    assert stops == [False, False, False, True]
    assert (cb.best, cb.best_epoch) == (0.5, 2)
    cb.restore(trainer)
    assert np.all(trainer.net.params["W1"] == 2)


def test_min_delta_is_scikit_learns_tol_rule():
    # scikit-learn: an epoch counts as no improvement unless loss < best - tol, but the
    # best loss follows any decrease. tol = 0.1, n_iter_no_change = 1 -> patience 2.
    cb = EarlyStopping("train_loss", patience=2, min_delta=0.1, restore_best=False)
    stops, _ = run(cb, [1.0, 0.95, 0.9], field="train_loss")
    # 0.95 and 0.9 improve by < 0.1 each: two bad epochs in a row, stop after epoch 3;
    # the best still moved to 0.9.
    assert stops == [False, False, True]
    assert (cb.best, cb.best_epoch) == (0.9, 3)


def test_progress_by_exactly_min_delta_counts_and_a_plateau_does_not():
    # scikit-learn counts loss == best - tol as progress; with no min_delta an equal loss
    # is not progress (a plateau must not keep a run alive).
    with_tol = EarlyStopping("train_loss", patience=1, min_delta=0.5, restore_best=False)
    assert run(with_tol, [1.0, 0.5], field="train_loss")[0] == [False, False]
    plateau = EarlyStopping("val_loss", patience=1)
    assert run(plateau, [1.0, 1.0])[0] == [False, True]


def test_val_metric_direction_follows_the_metric():
    acc = EarlyStopping("val_metric", patience=10)
    run(acc, [0.5, 0.9, 0.7], field="val_metric", metric="accuracy")
    assert acc.best_epoch == 2  # higher accuracy is better
    rmse = EarlyStopping("val_metric", patience=10)
    run(rmse, [5.0, 9.0, 7.0], field="val_metric", metric="rmse")
    assert rmse.best_epoch == 1  # lower RMSE is better


def test_nan_is_not_monitored_and_no_best_means_nothing_restored():
    cb = EarlyStopping("val_loss", patience=1)
    stops, trainer = run(cb, [math.nan, math.nan])
    assert stops == [False, False] and cb.best_epoch == 0
    assert cb.restore(trainer) is False
    assert np.all(trainer.net.params["W1"] == 2)


def test_state_round_trips_for_a_resumed_run():
    cb = EarlyStopping("val_loss", patience=3)
    _, trainer = run(cb, [1.0, 0.5, 0.8])
    meta, tensors = cb.get_state()
    again = EarlyStopping("val_loss", patience=3)
    again.set_state(meta, tensors)
    again.on_train_begin(trainer)
    assert (again.best, again.best_epoch, again.wait) == (0.5, 2, 1)
    again.restore(trainer)
    assert np.all(trainer.net.params["W1"] == 2)


@pytest.mark.parametrize(
    ("kw", "word"), [({"monitor": "val_acc"}, "monitor"), ({"mode": "up"}, "mode")]
)
def test_bad_options_are_one_line_errors(kw, word):
    with pytest.raises(ValueError, match=f"unknown {word}"):
        EarlyStopping(**kw)
