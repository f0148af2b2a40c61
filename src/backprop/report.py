"""The result files of a training run, written by the library for every front end.

`write_results` writes one run's directory: ``model.safetensors``, ``metrics.json``,
``history.csv``, then the plots (``loss.png``; for classification ``confusion.png``; for
image data ``weights.png`` and ``mistakes.png``). ``backprop train`` and ``train(...,
out=DIR)`` both call it, so a Python user gets the same directory as the command line.
`summary_lines` is the short summary ``backprop train`` prints, read back from that
directory.

One meaning of "best": the best epoch is the one the run monitored (``result.best_epoch``,
chosen by the training loop on ``result.monitor``, e.g. the lowest validation loss). This
module never recomputes it: ``metrics.json`` (``best_epoch``, ``monitor``, ``kept``),
``history.csv`` (the ``best`` column), the star in ``loss.png`` and the summary all name
that epoch, and ``kept`` says whether the model holds the best or the last epoch's weights.

The order protects what matters: the model and ``metrics.json`` are written before any
plot, and a plot that fails is a `ResultWarning` and a missing PNG, never a lost run.

This module imports matplotlib only when it draws, so the command line starts fast.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from backprop import __version__
from backprop._fileutil import atomic_path, atomic_write_bytes

if TYPE_CHECKING:  # pragma: no cover - imports for annotations only
    from backprop.data import Dataset
    from backprop.io import Model
    from backprop.training import History, TrainConfig, TrainResult

__all__ = [
    "METRICS_FILE",
    "RESULT_FILES",
    "ResultWarning",
    "best_epoch_record",
    "monitor_column",
    "monitor_words",
    "run_metrics",
    "summary_lines",
    "write_history_csv",
    "write_results",
]

_PathLike = str | os.PathLike[str]

METRICS_FILE = "metrics.json"
# Every file `write_results` may write, in the order it writes them: the model and the
# metrics first (what a run is for), the optional plots after.
RESULT_FILES = (
    "model.safetensors",
    METRICS_FILE,
    "history.csv",
    "loss.png",
    "confusion.png",
    "weights.png",
    "mistakes.png",
)

# How the best epoch was chosen, in words, keyed by the history.csv column monitored
# (None: nothing was monitored, so the best epoch is the last one).
_MONITOR_WORDS: dict[str | None, str] = {
    "val_loss": "lowest validation loss",
    "train_loss": "lowest training loss",
    "val_accuracy": "highest validation accuracy",
    "val_rmse": "lowest validation RMSE",
    "val_r2": "highest validation R^2",
    None: "the last epoch: nothing monitored",
}


class ResultWarning(UserWarning):
    """An optional result file (a plot) could not be written; the run's results stand."""


def monitor_column(monitor: str | None, metric_name: str) -> str | None:
    """The ``history.csv`` column a run monitored: ``"val_metric"`` becomes
    ``"val_<metric_name>"`` (e.g. ``"val_accuracy"``); other names stay as they are."""
    return f"val_{metric_name}" if monitor == "val_metric" else monitor


def monitor_words(column: str | None) -> str:
    """How the best epoch was chosen, in words: ``"val_loss"`` -> "lowest validation loss".

    Parameters
    ----------
    column : str or None
        A `monitor_column` result; None when nothing was monitored.
    """
    return _MONITOR_WORDS.get(column, f"best {column}")


def best_epoch_record(result: TrainResult) -> dict[str, Any]:
    """Which epoch is best, what chose it, and which weights the model holds.

    Parameters
    ----------
    result : TrainResult
        ``best_epoch``, ``monitor`` and ``kept`` are read as the training run set them;
        nothing is recomputed.

    Returns
    -------
    record : dict
        ``{"best_epoch": int, "monitor": str or None, "kept": "best" or "last"}``, where
        ``monitor`` is the ``history.csv`` column that chose the epoch (`monitor_column`).
    """
    monitor, kept = result.monitor, result.kept
    if kept not in ("best", "last"):
        raise ValueError(f"result.kept must be 'best' or 'last', got {kept!r}")
    return {
        "best_epoch": int(result.best_epoch),
        "monitor": monitor_column(monitor, result.history.metric_name),
        "kept": kept,
    }


def run_metrics(
    dataset: Dataset,
    result: TrainResult,
    *,
    config: TrainConfig,
    test_metrics: Mapping[str, float],
) -> dict[str, Any]:
    """The contents of ``metrics.json``.

    Parameters
    ----------
    dataset : Dataset
        The data the run trained on (its test part was evaluated).
    result : TrainResult
    config : TrainConfig
    test_metrics : mapping
        `backprop.training.evaluate` on the test part: ``accuracy`` and ``loss``
        (classification) or ``rmse``, ``loss`` and ``baseline_rmse`` (regression).

    Returns
    -------
    metrics : dict
        JSON-serialisable: ``task``, the test scores, ``train_seconds``, ``epochs_run``,
        ``best_epoch``, ``monitor``, ``kept``, ``dataset``, ``config``,
        ``backprop_version``.
    """
    metrics: dict[str, Any] = {"task": dataset.task}
    if dataset.task == "classification":
        metrics["test_accuracy"] = float(test_metrics["accuracy"])
    else:
        metrics["test_rmse"] = float(test_metrics["rmse"])
        metrics["baseline_rmse"] = float(test_metrics["baseline_rmse"])
    metrics["test_loss"] = float(test_metrics["loss"])
    metrics["train_seconds"] = float(result.train_seconds)
    metrics["epochs_run"] = int(result.epochs_run)
    metrics.update(best_epoch_record(result))
    metrics["dataset"] = {
        "name": dataset.name,
        "n_train": len(dataset.X_train),
        "n_test": len(dataset.X_test),
        "n_features": dataset.n_features,
        "n_classes": dataset.n_classes,
        "image_shape": None if dataset.image_shape is None else list(dataset.image_shape),
    }
    metrics["config"] = config.to_dict()
    metrics["backprop_version"] = __version__
    return metrics


def write_history_csv(history: History, path: _PathLike, *, best_epoch: int | None) -> Path:
    """Write ``history.csv``: one row per epoch, plus a ``best`` column when given.

    Columns ``epoch,train_loss,val_loss,val_<metric>,lr,seconds`` and, with
    ``best_epoch``, ``best`` (1 on that epoch's row, 0 elsewhere). Floats are written
    with ``repr`` so they read back exactly. The file is replaced atomically.

    Parameters
    ----------
    history : backprop.training.History
    path : str or path-like
    best_epoch : int or None
        The run's best epoch (``TrainResult.best_epoch``); None writes no ``best`` column.

    Returns
    -------
    path : Path

    Raises
    ------
    ValueError
        If ``best_epoch`` is not an epoch of the history.
    """
    epochs = [log.epoch for log in history]
    if best_epoch is not None and epochs.count(best_epoch) != 1:
        raise ValueError(f"best_epoch {best_epoch} is not an epoch of the history")
    columns = history.COLUMNS
    header = [c if c != "val_metric" else f"val_{history.metric_name}" for c in columns]
    if best_epoch is not None:
        header.append("best")
    lines = [",".join(header)]
    for log in history:
        row = [repr(getattr(log, c)) for c in columns]
        if best_epoch is not None:
            row.append("1" if log.epoch == best_epoch else "0")
        lines.append(",".join(row))
    return atomic_write_bytes(path, ("\n".join(lines) + "\n").encode("utf-8"))


def _class_names(dataset: Dataset) -> list[str]:
    """Display names of the dataset's classes (Fashion-MNIST's indices become words)."""
    from backprop.data import FASHION_MNIST_CLASS_NAMES

    assert dataset.classes is not None  # classification sets always have classes
    names = [str(c) for c in dataset.classes]
    if dataset.name == "fashion-mnist" and len(names) == len(FASHION_MNIST_CLASS_NAMES):
        names = [FASHION_MNIST_CLASS_NAMES[int(c)] for c in dataset.classes]
    return names


def _check_same_classes(model: Model, dataset: Dataset) -> None:
    """The plots read the model's output columns as the dataset's class indices: refuse
    a model whose classes are not the dataset's, in the same order."""
    if model.classes is None or dataset.classes is None:
        n_model, n_data = model.net.n_outputs, dataset.n_classes
        if n_model != n_data:
            raise ValueError(
                f"the model has {n_model} outputs but the dataset has {n_data} classes"
            )
        return
    if not np.array_equal(np.asarray(model.classes), np.asarray(dataset.classes)):
        raise ValueError(
            "the model's classes differ from the dataset's: write_results needs the model "
            "that was trained on this dataset"
        )


def learned_first_layer(model: Model, config: TrainConfig) -> np.ndarray:
    """W1 minus its initial value: what training changed in the first layer.

    The initial weights are He-normal noise that hides what the units learned (on
    Fashion-MNIST a few epochs move each weight by about half its initial size); `train`
    drew them from ``config.seed``, so they are rebuilt here exactly.

    Returns
    -------
    ndarray of shape (d, m)
    """
    from backprop.network import MLP

    net = model.net
    start = MLP(net.layer_sizes, net.activation, net.loss, dtype=net.dtype, seed=config.seed)
    return np.asarray(net.params["W1"], np.float64) - start.params["W1"]


def _plots(
    model: Model,
    result: TrainResult,
    dataset: Dataset,
    best: Mapping[str, Any],
    config: TrainConfig,
) -> list[tuple[str, Callable[[Path], Path]]]:
    """The optional plots of a run: (file name, function writing that file)."""
    from backprop import plots

    todo: list[tuple[str, Callable[[Path], Path]]] = [
        (
            "loss.png",
            lambda p: plots.plot_loss(
                result.history, p, best_epoch=best["best_epoch"], monitor=best["monitor"]
            ),
        )
    ]
    if dataset.task != "classification":
        return todo
    names = _class_names(dataset)
    X_test = dataset.X_test  # a `Rows` (memory-mapped file) stays one: forward by chunks
    y_pred = model.forward(X_test).argmax(axis=1)  # column i is dataset class i (checked)
    todo.append(("confusion.png", lambda p: plots.plot_confusion(dataset.y_test, y_pred, names, p)))
    shape = dataset.image_shape
    if shape is not None:
        todo.append(
            (
                "weights.png",
                lambda p: plots.plot_first_layer_weights(
                    learned_first_layer(model, config),
                    shape,
                    p,
                    what="First-layer weights learned (W1 minus its initial value)",
                ),
            )
        )
        todo.append(
            (
                "mistakes.png",
                lambda p: plots.plot_mistakes(X_test, dataset.y_test, y_pred, names, shape, p),
            )
        )
    return todo


def write_results(
    out_dir: _PathLike,
    model: Model,
    result: TrainResult,
    dataset: Dataset,
    *,
    config: TrainConfig,
    test_metrics: Mapping[str, float] | None = None,
) -> list[Path]:
    """Write a training run's result files into ``out_dir``.

    In this order: ``model.safetensors``, ``metrics.json`` (see `run_metrics`),
    ``history.csv`` (see `write_history_csv`), then the plots: ``loss.png`` with the best
    epoch starred; for classification ``confusion.png`` (test split); for image data also
    ``weights.png`` (first-layer weights) and ``mistakes.png``. Each file is written to a
    temporary name and renamed into place. A plot that fails is skipped with a
    `ResultWarning` naming it; the files before it stand.

    Parameters
    ----------
    out_dir : str or path-like
        Created if missing. Files of these names in it are replaced.
    model : backprop.io.Model
        The trained model (as `backprop.training.train` returns it).
    result : TrainResult
        Its history, best epoch and timings.
    dataset : Dataset
        The data the model was trained on; the plots use its test part.
    config : TrainConfig
        The run's configuration (recorded in ``metrics.json``).
    test_metrics : mapping, optional
        The model's scores on the test part; by default `backprop.training.evaluate` on
        ``dataset.X_test``, with the training targets' mean as the regression baseline.

    Returns
    -------
    paths : list of Path
        The files written, in the order above.

    Raises
    ------
    ValueError
        If a classifier's classes are not the dataset's, or the best epoch is not in the
        history (before anything is written).
    OSError
        If the model, ``metrics.json`` or ``history.csv`` cannot be written.
    """
    from backprop.io import save

    out = Path(out_dir)
    if dataset.task == "classification":
        _check_same_classes(model, dataset)
    best = best_epoch_record(result)
    if test_metrics is None:
        from backprop.training import evaluate

        # The model's outputs are the dataset's classes (checked above), so the dataset's
        # class indices are the model's targets as they stand.
        baseline = None if model.net.is_classifier else np.mean(dataset.y_train, 0, dtype=float)
        test_metrics = evaluate(model, dataset.X_test, dataset.y_test, baseline_mean=baseline)
    metrics = run_metrics(dataset, result, config=config, test_metrics=test_metrics)
    if best["best_epoch"] not in [log.epoch for log in result.history]:
        raise ValueError(f"best_epoch {best['best_epoch']} is not an epoch of the history")
    out.mkdir(parents=True, exist_ok=True)
    written = [save(out / "model.safetensors", model)]
    text = json.dumps(metrics, indent=2) + "\n"
    written.append(atomic_write_bytes(out / METRICS_FILE, text.encode("utf-8")))
    written.append(
        write_history_csv(result.history, out / "history.csv", best_epoch=best["best_epoch"])
    )
    for name, draw in _plots(model, result, dataset, best, config):
        try:
            with atomic_path(out / name) as tmp:
                draw(tmp)
        except Exception as exc:  # a plot is optional: the model and metrics stand
            problem = " ".join(str(exc).split()) or type(exc).__name__
            warnings.warn(f"{name} not written: {problem}", ResultWarning, stacklevel=2)
            continue
        written.append(out / name)
    return written


# metrics.json's test scores; `score_line` reads them without the "test_" prefix.
_TEST_SCORES = ("test_accuracy", "test_rmse", "baseline_rmse", "test_loss")
# What each task's loss is, so that a printed loss is never a bare number.
_LOSS_WORDS = {
    "classification": "cross-entropy",
    "regression": "half the mean squared error",
}


def score_line(dataset: str, task: str, n_test: int, scores: Mapping[str, float]) -> str:
    """The one line of test scores that ``train`` and ``evaluate`` both print.

    Parameters
    ----------
    dataset : str
        Its name.
    task : {"classification", "regression"}
    n_test : int
        Test examples.
    scores : mapping
        "loss" and "accuracy" for a classifier; "loss", "rmse" and "baseline_rmse" (RMSE
        of predicting the training targets' mean) for a regressor.

    Returns
    -------
    str
    """
    if task == "classification":
        score = f"test accuracy {scores['accuracy']:.4f}"
    else:
        score = (
            f"test RMSE {scores['rmse']:.4g} (predicting the mean: {scores['baseline_rmse']:.4g})"
        )
    return (
        f"{dataset}: {score} on {n_test} test examples, "
        f"test loss ({_LOSS_WORDS[task]}) {scores['loss']:.4g}"
    )


def summary_lines(out_dir: _PathLike) -> list[str]:
    """The summary ``backprop train`` prints, read from a finished run's directory.

    Parameters
    ----------
    out_dir : str or path-like
        A directory with ``metrics.json`` (as `write_results` leaves it).

    Returns
    -------
    lines : list of str
        Test score and loss; epochs, time, the best epoch and which weights the model
        holds; the result files present.
    """
    out = Path(out_dir)
    m = json.loads((out / METRICS_FILE).read_text(encoding="utf-8"))
    scores = {k.removeprefix("test_"): v for k, v in m.items() if k in _TEST_SCORES}
    kept_epoch = m["best_epoch"] if m["kept"] == "best" else m["epochs_run"]
    files = ", ".join(sorted(p.name for p in out.iterdir() if p.name in RESULT_FILES))
    return [
        score_line(m["dataset"]["name"], m["task"], m["dataset"]["n_test"], scores),
        f"trained {m['epochs_run']} epochs in {m['train_seconds']:.2f} s; best epoch "
        f"{m['best_epoch']} ({monitor_words(m['monitor'])}); the model holds the "
        f"{m['kept']} epoch's weights (epoch {kept_epoch})",
        f"results in {out}/: {files}",
    ]
