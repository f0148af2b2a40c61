"""Tests of the result files (`backprop.report`): one best epoch named by every file, the
model and metrics kept when a plot fails, class labels drawn as plain text.

The runs are built by hand (a History whose lowest validation loss, highest validation
accuracy and last epoch are three different epochs), so each check has one right answer
that the training code cannot move.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from matplotlib import cbook
from matplotlib.figure import Figure

from backprop import plots, report
from backprop.callbacks import EpochLog, History, monitor_words
from backprop.config import TrainConfig
from backprop.data import Dataset
from backprop.io import Model, load
from backprop.network import MLP

# Validation loss is lowest at epoch 3, validation accuracy highest at epoch 6, and the
# run lasts 8 epochs: "best" by the monitored loss is 3 and nothing else.
VAL_LOSS = [0.9, 0.6, 0.40, 0.45, 0.50, 0.55, 0.70, 0.80]
VAL_ACC = [0.50, 0.60, 0.70, 0.72, 0.74, 0.90, 0.80, 0.78]
BEST_BY_LOSS = 3
BEST_BY_ACCURACY = 6


def make_history(metric: str = "accuracy", val_metric: list[float] = VAL_ACC) -> History:
    return History(
        [
            EpochLog(e, 1.0 / e, VAL_LOSS[e - 1], val_metric[e - 1], 1e-3, 0.25)
            for e in range(1, len(VAL_LOSS) + 1)
        ],
        metric_name=metric,
    )


def make_result(
    history: History, best_epoch: int, monitor: str | None = "val_loss", kept: str = "best"
) -> SimpleNamespace:
    """What `report` reads from a TrainResult, and nothing more."""
    return SimpleNamespace(
        history=history,
        best_epoch=best_epoch,
        epochs_run=len(history),
        train_seconds=2.0,
        monitor=monitor,
        kept=kept,
    )


def classification_run(
    classes: list[str] | None = None, image_shape: tuple[int, int] | None = (2, 2)
) -> tuple[Model, Dataset]:
    """A 3-class model on 4-pixel "images" and the dataset it pretends to come from."""
    rng = np.random.default_rng(0)
    labels = np.array(classes or ["a", "b", "c"])
    net = MLP([4, 5, 3], loss="softmax_cross_entropy", seed=0)
    ds = Dataset(
        name="toy",
        task="classification",
        X_train=rng.random((30, 4)).astype(np.float32),
        y_train=rng.integers(0, 3, 30),
        X_test=rng.random((12, 4)).astype(np.float32),
        y_test=np.arange(12) % 3,
        classes=labels,
        image_shape=image_shape,
    )
    return Model(net, classes=labels), ds


def regression_run() -> tuple[Model, Dataset]:
    rng = np.random.default_rng(1)
    ds = Dataset(
        name="toyreg",
        task="regression",
        X_train=rng.random((30, 3)).astype(np.float32),
        y_train=rng.random(30).astype(np.float32),
        X_test=rng.random((10, 3)).astype(np.float32),
        y_test=rng.random(10).astype(np.float32),
    )
    return Model(MLP([3, 4, 1], loss="squared_error", seed=0)), ds


CLASSIFICATION_SCORES = {"accuracy": 0.5, "loss": 1.0}
REGRESSION_SCORES = {"rmse": 0.3, "loss": 0.05, "baseline_rmse": 0.4}


def write_toy(out: Path, model: Model, ds: Dataset) -> list[Path]:
    """`write_results` for a classifier whose run's best epoch is the lowest val loss."""
    result = make_result(make_history(), BEST_BY_LOSS)
    return report.write_results(
        out, model, result, ds, config=TrainConfig(), test_metrics=CLASSIFICATION_SCORES
    )


def stars(fig: Figure) -> list[list[float]]:
    """x positions of the star markers, one list per axes."""
    return [
        [float(x) for line in ax.get_lines() if line.get_marker() == "*" for x in line.get_xdata()]
        for ax in fig.axes
    ]


def capture_figures(monkeypatch: pytest.MonkeyPatch) -> dict[str, Figure]:
    """Record each figure `plots` saves, by the file name it is finally given."""
    seen: dict[str, Figure] = {}
    real_save = plots._save

    def spy(fig: Figure, path: Path) -> Path:
        # Drawn here (write_results' default drawer) under its own name in a scratch
        # directory, then renamed into place.
        seen[Path(path).name] = fig
        return real_save(fig, path)

    monkeypatch.setattr(plots, "_save", spy)
    return seen


def best_rows(path: Path) -> list[int]:
    with open(path, newline="") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f) if row["best"] == "1"]


# ------------------------------------------------------------------ one best epoch


def test_every_file_names_the_monitored_best_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    figures = capture_figures(monkeypatch)
    model, ds = classification_run()
    out = tmp_path / "run"
    write_toy(out, model, ds)  # lowest validation loss at epoch 3, best accuracy at 6

    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["best_epoch"], metrics["monitor"], metrics["kept"]) == (3, "val_loss", "best")
    assert best_rows(out / "history.csv") == [BEST_BY_LOSS]
    # Both panels of loss.png star epoch 3, not the most accurate epoch 6.
    assert stars(figures["loss.png"]) == [[BEST_BY_LOSS], [BEST_BY_LOSS]]
    lines = report.summary_lines(out)
    assert "best epoch 3 (lowest validation loss)" in lines[1]
    assert "best epoch's weights (epoch 3)" in lines[1]


def test_summary_gives_the_training_time_and_the_whole_runs(tmp_path: Path) -> None:
    model, ds = regression_run()
    result = make_result(make_history("rmse"), BEST_BY_LOSS)
    out = tmp_path / "run"
    report.write_results(
        out, model, result, ds, config=TrainConfig(), test_metrics=REGRESSION_SCORES,
        run_seconds=7.5,
    )  # fmt: skip
    assert json.loads((out / "metrics.json").read_text())["run_seconds"] == 7.5
    assert "trained 8 epochs in 2.00 s of a 7.50 s run; best epoch" in report.summary_lines(out)[1]
    # Results written without the run's time (`write_results` on its own) say none.
    report.write_results(
        out, model, result, ds, config=TrainConfig(), test_metrics=REGRESSION_SCORES
    )
    assert json.loads((out / "metrics.json").read_text())["run_seconds"] is None
    assert "trained 8 epochs in 2.00 s; best epoch" in report.summary_lines(out)[1]


def test_last_weights_kept_are_named_as_such(tmp_path: Path) -> None:
    model, ds = regression_run()
    result = make_result(make_history("rmse"), BEST_BY_LOSS, kept="last")
    out = tmp_path / "run"
    report.write_results(
        out, model, result, ds, config=TrainConfig(), test_metrics=REGRESSION_SCORES
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["best_epoch"], metrics["kept"]) == (BEST_BY_LOSS, "last")
    assert "last epoch's weights (epoch 8)" in report.summary_lines(out)[1]
    assert "RMSE" in report.summary_lines(out)[0]


def test_a_monitored_metric_is_named_by_its_history_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # scikit-learn's early stopping monitors the validation score: epoch 6 here.
    figures = capture_figures(monkeypatch)
    model, ds = classification_run(image_shape=None)
    result = make_result(make_history(), BEST_BY_ACCURACY, monitor="val_metric")
    out = tmp_path / "run"
    report.write_results(out, model, result, ds, config=TrainConfig())  # default scores
    metrics = json.loads((out / "metrics.json").read_text())
    assert ds.classes is not None
    accuracy = np.mean(model.predict(ds.X_test) == ds.classes[ds.y_test])
    assert metrics["test_accuracy"] == pytest.approx(accuracy, abs=1e-12)
    assert metrics["monitor"] == "val_accuracy"
    with open(out / "history.csv", newline="") as f:
        assert metrics["monitor"] in next(csv.reader(f))  # a column of history.csv
    assert best_rows(out / "history.csv") == [BEST_BY_ACCURACY]
    assert stars(figures["loss.png"]) == [[BEST_BY_ACCURACY], [BEST_BY_ACCURACY]]
    assert "highest validation accuracy" in report.summary_lines(out)[1]


def test_nothing_monitored_stars_the_last_epoch(tmp_path: Path) -> None:
    nan = float("nan")
    history = History([EpochLog(e, 1.0 / e, nan, nan, 1e-3, 0.1) for e in (1, 2, 3)])
    fig = plots.loss_figure(history, best_epoch=3, monitor=None)
    assert stars(fig) == [[3], []]  # on the training loss; no validation panel to mark
    assert monitor_words(None).startswith("the last epoch")


def test_plot_refuses_a_best_epoch_outside_the_history() -> None:
    with pytest.raises(ValueError, match="best_epoch 9 is not an epoch"):
        plots.loss_figure(make_history(), best_epoch=9)
    with pytest.raises(ValueError, match="best_epoch 0 is not an epoch"):
        make_history().to_csv("unused.csv", best_epoch=0)


def test_history_csv_reads_back_exactly(tmp_path: Path) -> None:
    h = make_history()
    path = h.to_csv(tmp_path / "h.csv", best_epoch=BEST_BY_LOSS)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == [
        "epoch",
        "train_loss",
        "val_loss",
        "val_accuracy",
        "lr",
        "seconds",
        "best",
    ]
    assert [float(r["val_loss"]) for r in rows] == VAL_LOSS
    assert [float(r["train_loss"]) for r in rows] == [1.0 / e for e in range(1, 9)]
    without = h.to_csv(tmp_path / "plain.csv", best_epoch=None)
    assert without.read_text().splitlines()[0].split(",")[-1] == "seconds"


# ------------------------------------------------------------ results before plots


def test_a_failing_plot_is_a_warning_and_the_model_stays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("renderer\nexploded")

    monkeypatch.setattr(plots, "plot_confusion", broken)
    model, ds = classification_run()
    out = tmp_path / "run"
    with pytest.warns(report.ResultWarning, match="confusion.png not written: renderer exploded"):
        paths = write_toy(out, model, ds)
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(p.name for p in paths)  # no temporary file left behind
    assert "confusion.png" not in names
    assert {"model.safetensors", "metrics.json", "history.csv", "loss.png", "mistakes.png"} <= set(
        names
    )
    np.testing.assert_array_equal(
        load(out / "model.safetensors").net.params["W1"], model.net.params["W1"]
    )
    assert json.loads((out / "metrics.json").read_text())["test_accuracy"] == 0.5


def test_a_model_of_other_classes_is_refused_before_writing(tmp_path: Path) -> None:
    model, ds = classification_run()
    other = Model(model.net, classes=np.array(["a", "c", "b"]))
    with pytest.raises(ValueError, match="classes differ"):
        write_toy(tmp_path / "run", other, ds)
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- labels as text

DOLLAR_LABELS = ["$a$b$", "$x$", r"$\foo$"]


def test_dollar_labels_are_drawn_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    figures = capture_figures(monkeypatch)
    model, ds = classification_run(DOLLAR_LABELS)
    ds.y_test = np.zeros(12, dtype=np.int64)  # every prediction that is not "$a$b$" is wrong
    out = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("error", report.ResultWarning)  # no plot may be skipped
        write_toy(out, model, ds)
    assert {"confusion.png", "mistakes.png"} <= {p.name for p in out.iterdir()}
    ticks = [t.get_text() for t in figures["confusion.png"].axes[0].get_xticklabels()]
    assert ticks == [plots.plain_text(s) for s in DOLLAR_LABELS]
    titles = [t.get_text() for t in figures["mistakes.png"].axes[0].texts]
    assert titles, "the test needs at least one mistake"
    for text in ticks + titles:
        assert not cbook.is_math_text(text), text
    assert plots.plain_text("$x$") == r"\$x\$"


def test_a_real_run_names_one_best_epoch_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backprop.data import load_dataset
    from backprop.run import train

    figures = capture_figures(monkeypatch)
    ds = load_dataset("diabetes", seed=0)
    config = TrainConfig(hidden=(32,), epochs=40, lr=0.02, seed=0)
    model, result = train(ds, config, progress=False)
    out = tmp_path / "run"
    report.write_results(out, model, result, ds, config=config)  # scores computed inside

    metrics = json.loads((out / "metrics.json").read_text())
    with open(out / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert metrics["monitor"] == "val_loss"
    # The monitored column, read back from the file, is lowest on the row marked best.
    val_loss = [float(r["val_loss"]) for r in rows]
    best = int(rows[int(np.argmin(val_loss))]["epoch"])
    assert metrics["best_epoch"] == best
    assert best_rows(out / "history.csv") == [best]
    assert stars(figures["loss.png"]) == [[best], [best]]
    assert f"best epoch {best} " in report.summary_lines(out)[1]
    # The default test scores: RMSE against the targets, and the training mean baseline.
    y_test = np.asarray(ds.y_test, dtype=np.float64)
    rmse = np.sqrt(np.mean((model.predict(ds.X_test).astype(np.float64) - y_test) ** 2))
    assert metrics["test_rmse"] == pytest.approx(rmse, rel=1e-5)
    baseline = np.sqrt(np.mean((y_test - np.mean(ds.y_train, dtype=np.float64)) ** 2))
    assert metrics["baseline_rmse"] == pytest.approx(baseline, rel=1e-9)


def test_train_out_writes_the_same_directory_as_the_cli(tmp_path: Path) -> None:
    from backprop import cli
    from backprop.config import TrainConfig
    from backprop.data import load_dataset
    from backprop.run import train

    config = TrainConfig(hidden=(16,), epochs=3)
    train(load_dataset("digits"), config, progress=False, out=tmp_path / "py")
    code = cli.main(
        [
            "train",
            "--data",
            "digits",
            "--hidden",
            "16",
            "--epochs",
            "3",
            "--quiet",
            "--out",
            str(tmp_path / "cli"),
        ]
    )
    assert code == 0
    names = {p.name for p in (tmp_path / "py").iterdir()}
    assert names == {p.name for p in (tmp_path / "cli").iterdir()}
    assert {"model.safetensors", "metrics.json", "history.csv", "loss.png"} <= names
    py = json.loads((tmp_path / "py" / "metrics.json").read_text())
    cl = json.loads((tmp_path / "cli" / "metrics.json").read_text())
    for key in ("test_accuracy", "test_loss", "best_epoch", "monitor", "kept", "config"):
        assert py[key] == cl[key], key


def test_weights_plot_shows_what_training_changed_in_the_first_layer() -> None:
    # The start is rebuilt from the run's seed: an untouched network learned nothing, and
    # a change to one weight is exactly what is drawn.
    config = TrainConfig(hidden=(6,), seed=3)
    net = MLP([16, 6, 3], seed=3)
    model = Model(net)
    np.testing.assert_array_equal(report.learned_first_layer(model, config), 0.0)
    net.params["W1"][5, 2] += 0.25
    learned = report.learned_first_layer(model, config)
    assert learned[5, 2] == pytest.approx(0.25) and np.count_nonzero(learned) == 1


# ------------------------------------------------------------------ start-up imports


def test_the_command_line_starts_without_the_heavy_packages() -> None:
    # `backprop train` imports these only where a run uses them (issue 24): scikit-learn
    # for its bundled datasets and the estimators, matplotlib to draw, numba to fuse, tqdm
    # on a terminal, scipy.sparse for sparse input. A fresh process sees what import costs.
    code = (
        "import sys, backprop.cli, backprop.run\n"
        "heavy = ('scipy', 'sklearn', 'matplotlib', 'numba', 'tqdm', 'pandas', 'torch')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_printed_loss_is_named_by_the_models_loss() -> None:
    # A Poisson regressor's test loss is half the Poisson deviance, not a squared error.
    from backprop.losses import LOSSES

    assert set(report._LOSS_WORDS) == set(LOSSES)  # every loss has its words
    scores = {"rmse": 2.0, "baseline_rmse": 3.0, "loss": 0.5}
    line = report.score_line("counts", "regression", 10, scores, loss="poisson")
    assert line.endswith("test loss (half the Poisson deviance) 0.5")
    line = report.score_line("y", "regression", 10, scores, loss="squared_error")
    assert line.endswith("test loss (half the mean squared error) 0.5")


def test_metrics_json_records_the_loss(tmp_path: Path) -> None:
    model, ds = classification_run()
    write_toy(tmp_path, model, ds)
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["loss"] == model.net.loss == "softmax_cross_entropy"
    assert "(cross-entropy)" in report.summary_lines(tmp_path)[0]


@pytest.mark.parametrize("make_run", [classification_run, regression_run])
def test_the_test_set_goes_forward_once_and_scores_as_evaluate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_run: object
) -> None:
    model, ds = make_run()  # type: ignore[operator]
    expected = report.test_scores(model, ds, ds.y_test)  # forward on its own
    real_forward = Model.forward
    calls: list[int] = []

    def counting(self: Model, X: object) -> np.ndarray:
        calls.append(len(X))  # type: ignore[arg-type]
        return real_forward(self, X)  # type: ignore[arg-type]

    monkeypatch.setattr(Model, "forward", counting)
    result = make_result(make_history(), BEST_BY_LOSS)
    report.write_results(tmp_path, model, result, ds, config=TrainConfig())
    assert calls == [len(ds.y_test)]  # scores and confusion matrix from one forward
    written = json.loads((tmp_path / "metrics.json").read_text())
    for key, value in expected.items():
        name = key if key == "baseline_rmse" else f"test_{key}"
        assert written[name] == pytest.approx(value, rel=1e-12), key


def test_a_binary_models_confusion_matrix_is_its_predictions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # scikit-learn's binary layout (one sigmoid output, as the estimators save it): the
    # class is s > 0, not the argmax of one column (always class 0: a silently wrong plot).
    rng = np.random.default_rng(2)
    X = rng.random((40, 4)).astype(np.float32)
    y = (X[:, 0] > 0.5).astype(np.int64)
    net = MLP([4, 5, 1], loss="sigmoid_binary_cross_entropy", seed=0)
    labels = np.array(["no", "yes"])
    model = Model(net, classes=labels)
    net.params["b2"][:] -= np.median(model.forward(X))  # both classes predicted
    ds = Dataset(name="bin", task="classification", X_train=X, y_train=y, X_test=X,
                 y_test=y, classes=labels)  # fmt: skip
    drawn: list[np.ndarray] = []
    real = plots.plot_confusion

    def spy(y_true: np.ndarray, y_pred: np.ndarray, *args: object, **kw: object) -> Path:
        drawn.append(y_pred)
        return real(y_true, y_pred, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(plots, "plot_confusion", spy)
    report.write_results(
        tmp_path, model, make_result(make_history(), BEST_BY_LOSS), ds, config=TrainConfig()
    )
    expected = np.searchsorted(labels, model.predict(X))
    assert set(expected) == {0, 1}
    np.testing.assert_array_equal(drawn[0], expected)
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["test_accuracy"] == pytest.approx(np.mean(expected == y))
