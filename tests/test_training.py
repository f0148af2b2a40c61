"""Tests of the training loop: loss goes down, determinism, early stopping, divergence,
history, callbacks, config validation, checkpoint/resume, and a real digits run."""

from __future__ import annotations

import csv
import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from backprop.callbacks import Callback, EpochLog
from backprop.checkpoint import Checkpoint, CheckpointError, load_checkpoint
from backprop.config import TrainConfig
from backprop.data import load_dataset
from backprop.network import MLP
from backprop.report import evaluate
from backprop.run import train
from backprop.trainer import Trainer, TrainingDiverged
from backprop.training import fit


def blobs(n: int = 300, d: int = 5, c: int = 3, seed: int = 0, noise: float = 1.0):
    """Gaussian blobs: class k centred at 2 e_k, so a small net separates them."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    X = rng.normal(0.0, noise, (n, d)).astype(np.float32)
    X[np.arange(n), y % d] += 2.0
    return X, y


def cfg(**kw) -> TrainConfig:
    base = {"hidden": (16,), "epochs": 5, "batch_size": 32, "lr": 0.01}
    return TrainConfig(**{**base, **kw})


def without_seconds(history):
    return [(log.epoch, log.train_loss, log.val_loss, log.val_metric, log.lr) for log in history]


class Recorder(Callback):
    """Counts hook calls and snapshots the weights after every epoch."""

    def __init__(self, stop_at: int | None = None, interrupt_at: int | None = None):
        self.begin = 0
        self.epochs: list[int] = []
        self.batches = 0
        self.snapshots: dict[int, dict[str, np.ndarray]] = {}
        self.stop_at = stop_at
        self.interrupt_at = interrupt_at
        self.ended = 0

    def on_train_begin(self, state: Trainer) -> None:
        self.begin += 1

    def on_epoch_end(self, epoch: int, log: EpochLog, state: Trainer) -> bool | None:
        self.epochs.append(epoch)
        self.snapshots[epoch] = {k: p.copy() for k, p in state.net.params.items()}
        if self.interrupt_at == epoch:
            raise KeyboardInterrupt
        return self.stop_at == epoch

    def on_batch_end(self, step: int, loss: float, state: Trainer) -> None:
        self.batches += 1

    def on_train_end(self, state, result) -> None:
        self.ended += 1


# ------------------------------------------------------------------ basics


def test_fit_decreases_the_loss():
    X, y = blobs()
    Xv, yv = blobs(100, seed=1)
    net = MLP([5, 16, 3], seed=0)
    before = net.compute_loss(Xv, yv)
    result = fit(net, X, y, Xv, yv, config=cfg(epochs=10), progress=False)
    after = net.compute_loss(Xv, yv)
    assert after < 0.5 * before
    train_loss = result.history.column("train_loss")
    assert train_loss[-1] < 0.5 * train_loss[0]
    # The logged validation loss is the loss of the final weights, computed independently.
    assert result.history[-1].val_loss == pytest.approx(after, rel=1e-5)
    acc = np.mean(net.predict(Xv) == yv)
    assert result.history[-1].val_metric == pytest.approx(acc)


def test_one_epoch_matches_a_hand_written_sgd_loop():
    """Seeded permutation, batches of 32 with the last partial one (300 = 9*32 + 12)."""
    X, y = blobs()
    config = cfg(optimizer="sgd", schedule="constant", epochs=2, lr=0.05, weight_decay=0.0)
    net = MLP([5, 16, 3], seed=0)
    ref = MLP([5, 16, 3], seed=0)
    result = fit(net, X, y, config=config, progress=False)
    rng = np.random.default_rng(config.seed)
    losses = []
    for _ in range(2):
        order = rng.permutation(len(X))
        total = 0.0
        for start in range(0, len(X), 32):
            idx = order[start : start + 32]
            J, g = ref.loss_and_grads(X[idx], y[idx])
            total += J * len(idx)
            for k in ref.params:
                ref.params[k] -= np.float32(0.05) * g[k]
        losses.append(total / len(X))
    for k in ref.params:
        np.testing.assert_allclose(net.params[k], ref.params[k], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.history.column("train_loss"), losses, rtol=1e-5)
    assert math.isnan(result.history[0].val_loss)  # no validation data given


def test_seeded_runs_are_bit_identical_and_seeds_matter():
    X, y = blobs()
    Xv, yv = blobs(100, seed=1)
    runs = []
    for seed in (3, 3, 4):
        net = MLP([5, 16, 3], seed=0)
        r = fit(net, X, y, Xv, yv, config=cfg(seed=seed), progress=False)
        runs.append((net.params, without_seconds(r.history)))
    for k in runs[0][0]:
        np.testing.assert_array_equal(runs[0][0][k], runs[1][0][k])
    assert runs[0][1] == runs[1][1]
    assert not np.array_equal(runs[0][0]["W1"], runs[2][0]["W1"])  # other shuffling


def test_last_partial_batch_and_batch_larger_than_data():
    X, y = blobs(50)
    rec = Recorder()
    fit(MLP([5, 8, 3]), X, y, config=cfg(batch_size=16, epochs=3), callbacks=[rec])
    assert rec.batches == 3 * 4  # ceil(50 / 16) = 4 steps per epoch
    rec = Recorder()
    fit(MLP([5, 8, 3]), X, y, config=cfg(batch_size=1000, epochs=2), callbacks=[rec])
    assert rec.batches == 2


# ------------------------------------------------------------------ early stopping


def test_early_stopping_stops_and_restores_the_best_weights():
    # Few noisy examples, a wide net and a large rate: the validation loss soon rises.
    X, y = blobs(40, noise=2.0, seed=2)
    Xv, yv = blobs(200, noise=2.0, seed=3)
    net = MLP([5, 256, 3], seed=0)
    rec = Recorder()
    config = cfg(epochs=60, batch_size=8, lr=0.01, patience=3, schedule="constant")
    result = fit(net, X, y, Xv, yv, config=config, callbacks=[rec], progress=False)
    val = result.history.column("val_loss")
    assert result.stopped_early and result.epochs_run < 60
    assert len(result.history) == result.epochs_run == rec.epochs[-1]
    best = int(np.argmin(val)) + 1
    assert result.best_epoch == best
    assert result.epochs_run == best + 3  # exactly `patience` epochs without improvement
    for k, p in net.params.items():
        np.testing.assert_array_equal(p, rec.snapshots[best][k])
    assert net.compute_loss(Xv, yv) == pytest.approx(val[best - 1], rel=1e-5)


def test_without_patience_every_epoch_runs_and_the_best_weights_are_kept():
    # lr 0.05 on few noisy examples: the validation loss bottoms out before epoch 12.
    X, y = blobs(40, noise=2.0, seed=2)
    Xv, yv = blobs(200, noise=2.0, seed=3)
    rec = Recorder()
    config = cfg(epochs=12, lr=0.05, schedule="constant")
    net = MLP([5, 64, 3], seed=0)
    result = fit(net, X, y, Xv, yv, config=config, callbacks=[rec], progress=False)
    assert not result.stopped_early and result.epochs_run == 12
    best = int(np.argmin(result.history.column("val_loss"))) + 1
    assert best < 12, "the setting must make the last epoch not the best"
    assert (result.best_epoch, result.monitor, result.kept) == (best, "val_loss", "best")
    for k, p in net.params.items():
        np.testing.assert_array_equal(p, rec.snapshots[best][k])


def test_keep_last_keeps_the_final_weights():
    X, y = blobs(40, noise=2.0, seed=2)
    Xv, yv = blobs(200, noise=2.0, seed=3)
    rec = Recorder()
    config = cfg(epochs=12, lr=0.05, schedule="constant", keep="last")
    net = MLP([5, 64, 3], seed=0)
    result = fit(net, X, y, Xv, yv, config=config, callbacks=[rec], progress=False)
    assert result.kept == "last" and result.best_epoch < 12
    for k, p in net.params.items():
        np.testing.assert_array_equal(p, rec.snapshots[12][k])


# ------------------------------------------------------------------ divergence


def test_divergence_raises_a_clear_message_and_keeps_finite_weights():
    X, y = blobs()
    X = X * 100
    net = MLP([5, 64, 3], seed=0)
    config = cfg(optimizer="sgd", lr=1e6, schedule="constant", epochs=5)
    with pytest.raises(TrainingDiverged) as info:
        fit(net, X, y, config=config, progress=False)
    msg = str(info.value)
    assert "learning rate 1e+06" in msg and "smaller" in msg and "lr=100000" in msg
    assert info.value.lr == 1e6
    assert info.value.result.diverged
    for p in net.params.values():
        assert np.isfinite(p).all()
    # Epoch-1 divergence resets to the initial weights.
    if info.value.epoch == 1:
        fresh = MLP([5, 64, 3], seed=0)
        for k in fresh.params:
            np.testing.assert_array_equal(net.params[k], fresh.params[k])


def test_divergence_later_keeps_the_last_epoch_weights():
    X, y = blobs()

    class Explode(Callback):
        def __init__(self):
            self.snap: dict[str, np.ndarray] = {}

        def on_epoch_end(self, epoch, log, state):
            if epoch == 2:
                self.snap = {k: p.copy() for k, p in state.net.params.items()}
                state.net.params["W2"][:] = np.inf  # the next batch loss is NaN

    cb = Explode()
    net = MLP([5, 16, 3], seed=0)
    with pytest.raises(TrainingDiverged, match="epoch 3") as info:
        fit(net, X, y, config=cfg(epochs=5), callbacks=[cb], progress=False)
    assert len(info.value.result.history) == 2
    for k, p in net.params.items():  # the weights logged at the end of epoch 2
        np.testing.assert_array_equal(p, cb.snap[k])


# ------------------------------------------------------------------ history, callbacks


def test_history_rows_and_csv(tmp_path):
    X, y = blobs()
    Xv, yv = blobs(60, seed=1)
    result = fit(MLP([5, 8, 3]), X, y, Xv, yv, config=cfg(epochs=4), progress=False)
    h = result.history
    assert len(h) == 4 and [log.epoch for log in h] == [1, 2, 3, 4]
    path = h.to_csv(tmp_path / "history.csv")
    with path.open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["epoch", "train_loss", "val_loss", "val_accuracy", "lr", "seconds"]
    assert len(rows) == 4
    for row, log in zip(rows, h, strict=True):
        assert int(row["epoch"]) == log.epoch
        assert float(row["train_loss"]) == log.train_loss  # repr round-trips exactly
        assert float(row["val_accuracy"]) == log.val_metric
        assert float(row["seconds"]) > 0
    cols = h.as_columns()
    assert cols["lr"].shape == (4,)
    # Cosine schedule over 4 * 10 steps: the last step of epoch e is step 10 e - 1.
    expected = [0.01 * (1 + math.cos(math.pi * (10 * e - 1) / 40)) / 2 for e in (1, 2, 3, 4)]
    np.testing.assert_allclose(cols["lr"], expected, rtol=1e-12)


def test_callbacks_are_called_and_can_stop():
    X, y = blobs(64)
    rec = Recorder(stop_at=2)
    result = fit(MLP([5, 8, 3]), X, y, config=cfg(epochs=5), callbacks=[rec], progress=False)
    assert rec.begin == 1 and rec.ended == 1
    assert rec.epochs == [1, 2]
    assert rec.batches == 2 * 2
    assert result.epochs_run == 2 and result.stopped_early


def test_progress_bar_only_when_asked(capsys):
    X, y = blobs(64)
    fit(MLP([5, 8, 3]), X, y, config=cfg(epochs=2), progress=True)
    assert "epochs" in capsys.readouterr().err
    fit(MLP([5, 8, 3]), X, y, config=cfg(epochs=2), progress=None)  # stderr is not a TTY
    fit(MLP([5, 8, 3]), X, y, config=cfg(epochs=2), progress=False)
    assert capsys.readouterr().err == ""


# ------------------------------------------------------------------ config


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("hidden", (0,)),
        ("hidden", (16, -1)),
        ("activation", "swish"),
        ("epochs", 0),
        ("epochs", 2.5),
        ("batch_size", 0),
        ("optimizer", "lbfgs"),
        ("lr", 0.0),
        ("lr", -1.0),
        ("lr", float("nan")),
        ("momentum", 1.0),
        ("weight_decay", -0.1),
        ("schedule", "linear"),
        ("val_fraction", 1.0),
        ("val_fraction", -0.1),
        ("patience", 0),
        ("seed", -1),
        ("dtype", "float16"),
        ("standardize", "yes"),
    ],
)
def test_config_validation_names_the_bad_field(field, value):
    config = TrainConfig(**{field: value})
    with pytest.raises(ValueError, match=field):
        config.validate()
    X, y = blobs(20)
    with pytest.raises(ValueError, match=field):
        fit(MLP([5, 4, 3]), X, y, config=config)


def test_default_config_is_valid_and_round_trips_through_json():
    config = TrainConfig()
    config.validate()
    again = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config
    with pytest.raises(ValueError, match="unknown training config key"):
        TrainConfig.from_dict({"epochz": 3})


def test_bad_data_is_refused_before_training():
    X, y = blobs(20)
    with pytest.raises(ValueError, match="features per row"):
        fit(MLP([4, 4, 3]), X, y, config=cfg())
    with pytest.raises(ValueError, match="out of range"):
        fit(MLP([5, 4, 3]), X, y + 5, config=cfg())
    with pytest.raises(ValueError, match="X_val and y_val"):
        fit(MLP([5, 4, 3]), X, y, X, None, config=cfg())


# ------------------------------------------------------------------ checkpoint / resume


def save_interval(monkeypatch, seconds: float) -> None:
    """The `Checkpoint` callbacks made from now on save at most every ``seconds``."""
    from backprop import checkpoint

    monkeypatch.setattr(checkpoint, "CHECKPOINT_INTERVAL", seconds)


@pytest.mark.parametrize(("patience", "interval", "saved"), [
    (None, 0.0, 3), (2, 0.0, 3),  # a save every epoch: the interrupt's epoch is saved
    (None, 1e9, 1), (2, 1e9, 1),  # the interval not over: only the first epoch's save
])  # fmt: skip
def test_interrupted_and_resumed_run_is_bit_identical(
    tmp_path, monkeypatch, patience, interval, saved
):
    X, y = blobs(200, noise=1.5)
    Xv, yv = blobs(80, noise=1.5, seed=1)
    config = cfg(epochs=7, patience=patience, optimizer="adam", schedule="onecycle")

    full = MLP([5, 32, 3], seed=0)
    r_full = fit(full, X, y, Xv, yv, config=config, progress=False)

    ck = tmp_path / "checkpoint.safetensors"
    net = MLP([5, 32, 3], seed=0)
    save_interval(monkeypatch, interval)
    with pytest.raises(KeyboardInterrupt):
        fit(net, X, y, Xv, yv, config=config, callbacks=[Recorder(interrupt_at=3)], checkpoint=ck)
    assert load_checkpoint(ck).meta["epoch"] == saved

    resumed = MLP([5, 32, 3], seed=99)  # different init: everything comes from the file
    rec = Recorder()
    r_res = fit(resumed, X, y, Xv, yv, config=config, checkpoint=ck, resume=True, callbacks=[rec])
    assert rec.epochs[0] == saved + 1
    for k in full.params:
        np.testing.assert_array_equal(resumed.params[k], full.params[k])
    assert without_seconds(r_res.history) == without_seconds(r_full.history)
    assert (r_res.best_epoch, r_res.epochs_run, r_res.stopped_early) == (
        r_full.best_epoch,
        r_full.epochs_run,
        r_full.stopped_early,
    )


def saved_epochs(monkeypatch) -> list[int]:
    """The epochs `Checkpoint` saves from now on, in order (the saves still happen)."""
    from backprop import checkpoint

    real, epochs = checkpoint.save_checkpoint, []

    def save(path, trainer, meta=None):
        epochs.append(trainer.epoch)
        return real(path, trainer, meta)

    monkeypatch.setattr(checkpoint, "save_checkpoint", save)
    return epochs


def test_checkpoint_saves_the_first_and_last_epochs_and_every_interval_between(
    tmp_path, monkeypatch
):
    from backprop import checkpoint

    X, y = blobs(64)
    epochs = saved_epochs(monkeypatch)
    clock = iter(np.arange(0.0, 100.0, 2.0))  # each epoch ends 2 s after the one before
    fake_time = SimpleNamespace(monotonic=lambda: float(next(clock)))
    monkeypatch.setattr(checkpoint, "time", fake_time)  # the checkpoint's clock alone
    save_interval(monkeypatch, 5.0)
    fit(MLP([5, 8, 3]), X, y, config=cfg(epochs=9), checkpoint=tmp_path / "ck")
    # at 0 s (the first), 6 s, 12 s; then the last epoch's 16 s, though 4 s after 12 s
    assert epochs == [1, 4, 7, 9]
    assert load_checkpoint(tmp_path / "ck").meta["epoch"] == 9

    epochs.clear()
    save_interval(monkeypatch, 0.0)
    fit(MLP([5, 8, 3]), X, y, config=cfg(epochs=4), checkpoint=tmp_path / "ck")
    assert epochs == [1, 2, 3, 4]


def test_checkpoint_saves_the_epoch_at_which_early_stopping_ends_the_run(tmp_path, monkeypatch):
    X, y = blobs(200, noise=1.5)
    Xv, yv = blobs(80, noise=1.5, seed=1)
    epochs = saved_epochs(monkeypatch)
    save_interval(monkeypatch, 1e9)
    config = cfg(epochs=200, patience=1, lr=0.5)
    result = fit(MLP([5, 16, 3]), X, y, Xv, yv, config=config, checkpoint=tmp_path / "ck")
    assert result.stopped_early and result.epochs_run > 1
    assert epochs == [1, result.epochs_run]


def test_checkpoint_refuses_a_negative_interval(tmp_path):
    with pytest.raises(ValueError, match="min_interval must be >= 0 seconds"):
        Checkpoint(tmp_path / "ck", min_interval=-1)


class Stateful(Callback):
    """A callback with checkpointed state: how many epochs it has seen."""

    def __init__(self) -> None:
        self.seen = 0

    def on_epoch_end(self, epoch, log, trainer):
        self.seen += 1

    def get_state(self):
        return {"seen": self.seen}, {"trace": np.arange(self.seen, dtype=np.float64)}

    def set_state(self, meta, tensors):
        assert tensors["trace"].tolist() == list(range(meta["seen"]))
        self.seen = meta["seen"]


def test_callback_state_follows_the_callback_not_its_place_in_the_list(tmp_path, monkeypatch):
    """Checkpoint state is keyed by `state_name`: a resumed run whose callbacks come in
    another order, with a stateless one added in front (a progress bar on one rank
    only), still gives each callback its own state and the uninterrupted run's result."""
    X, y = blobs(200, noise=1.5)
    Xv, yv = blobs(80, noise=1.5, seed=1)
    config = cfg(epochs=5, patience=3, optimizer="adam")
    full = MLP([5, 16, 3], seed=0)
    r_full = fit(full, X, y, Xv, yv, config=config, progress=False)

    ck = tmp_path / "ck.safetensors"
    first = Stateful()
    save_interval(monkeypatch, 0.0)  # the interrupted epoch is saved
    with pytest.raises(KeyboardInterrupt):
        fit(MLP([5, 16, 3]), X, y, Xv, yv, config=config, checkpoint=ck,
            callbacks=[first, Recorder(interrupt_at=2)])  # fmt: skip
    states = load_checkpoint(ck).meta["callbacks"]
    assert set(states) == {"EarlyStopping", "Stateful"}
    # `fit` puts the Checkpoint before the user's callbacks: it saved epoch 2 before
    # Stateful saw it.
    assert states["Stateful"] == {"seen": 1}

    again = Stateful()
    resumed = MLP([5, 16, 3], seed=7)
    r_res = fit(resumed, X, y, Xv, yv, config=config, checkpoint=ck, resume=True,
                callbacks=[Recorder(), again])  # fmt: skip
    assert again.seen == 4  # 1 from the checkpoint, then epochs 3-5
    for k in full.params:
        np.testing.assert_array_equal(resumed.params[k], full.params[k])
    assert without_seconds(r_res.history) == without_seconds(r_full.history)
    assert r_res.best_epoch == r_full.best_epoch


def test_two_callbacks_with_state_under_one_name_are_refused(tmp_path):
    X, y = blobs(64)
    with pytest.raises(ValueError, match="state under 'Stateful'"):
        fit(MLP([5, 8, 3]), X, y, config=cfg(epochs=1), checkpoint=tmp_path / "ck",
            callbacks=[Stateful(), Stateful()])  # fmt: skip


def test_the_best_epoch_comes_from_the_callback_that_chooses_one():
    """The trainer asks each callback for a best epoch (`best_choice`), whatever its type."""
    from backprop.callbacks import Best

    class Third(Callback):
        def best_choice(self):
            return Best(3, "train_loss", False)

    X, y = blobs(64)
    result = fit(MLP([5, 8, 3]), X, y, config=cfg(epochs=5), callbacks=[Third()])
    assert (result.best_epoch, result.monitor, result.kept) == (3, "train_loss", "last")
    plain = fit(MLP([5, 8, 3]), X, y, config=cfg(epochs=5))
    assert (plain.best_epoch, plain.monitor, plain.kept) == (5, None, "last")


def test_resume_refuses_a_missing_broken_or_foreign_checkpoint(tmp_path):
    X, y = blobs(64)
    ck = tmp_path / "ck.safetensors"
    with pytest.raises(CheckpointError, match="no checkpoint"):
        fit(MLP([5, 8, 3]), X, y, config=cfg(), checkpoint=ck, resume=True)
    ck.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        fit(MLP([5, 8, 3]), X, y, config=cfg(), checkpoint=ck, resume=True)
    fit(MLP([5, 8, 3]), X, y, config=cfg(epochs=2), checkpoint=ck)
    with pytest.raises(CheckpointError, match="lr"):
        fit(MLP([5, 8, 3]), X, y, config=cfg(epochs=2, lr=0.5), checkpoint=ck, resume=True)
    with pytest.raises(CheckpointError, match="layer sizes"):
        fit(MLP([5, 9, 3]), X, y, config=cfg(epochs=2), checkpoint=ck, resume=True)
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files


# ------------------------------------------------------------------ train / evaluate


def test_train_reaches_095_on_digits_and_evaluate_agrees_with_sklearn():
    from sklearn.metrics import accuracy_score, log_loss

    ds = load_dataset("digits")
    config = TrainConfig(hidden=(256,), batch_size=64, epochs=12, lr=3e-3)
    model, result = train(ds, config, progress=False)
    metrics = evaluate(model, ds.X_test, ds.y_test)
    assert metrics["accuracy"] >= 0.95
    proba = model.predict_proba(ds.X_test)
    assert metrics["accuracy"] == pytest.approx(accuracy_score(ds.y_test, proba.argmax(1)))
    assert metrics["loss"] == pytest.approx(log_loss(ds.y_test, proba, labels=range(10)), 1e-4)
    assert model.image_shape == (8, 8) and model.config["hidden"] == [256]
    assert result.epochs_run == 12
    # The standardisation (after /16: a mean per pixel, one scale) was fitted on the
    # training part only (not on the test set).
    assert model.pre.standardization == "per-feature mean, global scale"
    assert model.pre.input_scale == 16.0
    assert not np.allclose(model.pre.mean, np.mean(ds.X_test, axis=0) / 16, rtol=1e-6)


def test_train_regression_beats_the_mean_predictor_in_original_units():
    ds = load_dataset("diabetes")
    model, result = train(ds, TrainConfig(hidden=(32,), epochs=30, lr=3e-3), progress=False)
    metrics = evaluate(model, ds.X_test, ds.y_test)
    pred = model.predict(ds.X_test)
    rmse = float(np.sqrt(np.mean((pred - ds.y_test) ** 2)))
    base = float(np.sqrt(np.mean((ds.y_test - ds.y_test.mean()) ** 2)))
    assert metrics["rmse"] == pytest.approx(rmse, rel=1e-5)
    assert metrics["baseline_rmse"] == pytest.approx(base)
    assert rmse < 0.9 * base
    # Validation RMSE is logged in target units (tens), not standardised units (~1).
    assert result.history[-1].val_metric > 10


def test_train_diverged_carries_a_model_with_finite_weights():
    ds = load_dataset("digits")
    config = TrainConfig(hidden=(32,), epochs=3, optimizer="sgd", schedule="constant", lr=1e4)
    with pytest.raises(TrainingDiverged) as info:
        train(ds, config, progress=False)
    assert info.value.model is not None
    assert all(np.isfinite(p).all() for p in info.value.model.net.params.values())


def test_diabetes_default_recipe_keeps_its_best_validation_epoch():
    # The case: 500 epochs, best validation loss early; the last weights overfit.
    ds = load_dataset("diabetes")
    rec = Recorder()
    model, result = train(ds, TrainConfig(), callbacks=[rec], progress=False)
    val = result.history.column("val_loss")
    assert result.best_epoch == int(np.argmin(val)) + 1 < result.epochs_run
    assert (result.monitor, result.kept) == ("val_loss", "best")
    last, _ = train(ds, TrainConfig(keep="last"), progress=False)
    baseline = np.mean(ds.y_train)
    best_rmse = evaluate(model, ds.X_test, ds.y_test, baseline_mean=baseline)["rmse"]
    last_rmse = evaluate(last, ds.X_test, ds.y_test, baseline_mean=baseline)["rmse"]
    assert best_rmse < 0.95 * last_rmse


def test_train_out_publishes_the_run_directory_as_the_cli_does(tmp_path, monkeypatch):
    """`train(..., out=DIR)` follows the CLI's protocol (`backprop.run.publish_results`):
    results staged beside DIR and renamed in, metrics.json last; an earlier run's result
    files that this run does not write are gone; a failure while writing leaves DIR as
    it was, with no half-written result and no staging directory."""
    from backprop import report
    from backprop import run as runs

    ds = load_dataset("diabetes")
    out = tmp_path / "run"
    out.mkdir()
    (out / "confusion.png").write_bytes(b"an earlier classification run's plot")
    (out / "notes.txt").write_text("the user's own file")
    train(ds, cfg(epochs=2, hidden=(8,)), out=out)
    assert sorted(p.name for p in out.iterdir()) == [
        "history.csv", "loss.png", "metrics.json", "model.safetensors", "notes.txt"
    ]  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no staging left

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    before = {p.name: p.read_bytes() for p in out.iterdir()}
    monkeypatch.setattr(report, "save", broken)
    with pytest.raises(OSError, match="No space"):
        runs.train(ds, cfg(epochs=3, hidden=(8,)), out=out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
