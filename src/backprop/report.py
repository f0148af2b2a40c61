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

This module never imports matplotlib: `backprop.drawing` draws the plots, in worker
processes that warmed up while the run trained where it left a core free.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from backprop._fileutil import atomic_write_bytes
from backprop._version import __version__
from backprop.callbacks import TrainResult, monitor_column, monitor_words
from backprop.config import TrainConfig
from backprop.data import FASHION_MNIST_CLASS_NAMES, Dataset
from backprop.drawing import Drawer, Plot
from backprop.io import Model, save
from backprop.losses import LOSSES, PREDICTIONS
from backprop.network import MLP
from backprop.rundir import METRICS_FILE

__all__ = [
    "METRICS_FILE",
    "RESULT_FILES",
    "ResultWarning",
    "best_epoch_record",
    "evaluate",
    "output_metrics",
    "run_metrics",
    "score_line",
    "summary_lines",
    "test_scores",
    "write_results",
]

_PathLike = str | os.PathLike[str]

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

#: Misclassified test images shown in ``mistakes.png``.
MISTAKES_SHOWN = 25


class ResultWarning(UserWarning):
    """An optional result file (a plot) could not be written; the run's results stand."""


def evaluate(
    model: Model, X: ArrayLike, y: ArrayLike, *, baseline_mean: ArrayLike | None = None
) -> dict[str, float]:
    """Test-set metrics of a model on raw inputs (as `Dataset` holds them).

    Parameters
    ----------
    model : backprop.io.Model
    X : array-like of shape (n, d), or Rows
        Raw inputs; the model's preprocessor turns them into network inputs (a `Rows`,
        a memory-mapped test set, chunk by chunk).
    y : array-like of shape (n,) or (n, k)
        Class indices 0..c-1 (as in `Dataset`) for a classifier; targets for a regressor.
    baseline_mean : array-like of shape () or (k,), optional
        Regression only: the constant the mean predictor predicts. Pass the mean of the
        *training* targets for an honest baseline; by default the mean of ``y`` itself is
        used (the best constant in hindsight, slightly optimistic).

    Returns
    -------
    metrics : dict
        Classification: ``{"accuracy", "loss"}`` (mean cross-entropy). Regression:
        ``{"rmse", "loss", "baseline_rmse"}`` where loss is the training loss (half the mean
        squared error, or the Poisson deviance), rmse that of the predictions,
        and baseline_rmse the RMSE of always predicting ``baseline_mean``.
    """
    # Chunk by chunk for a `Rows` (a memory-mapped test set): outputs (n, c) only in memory.
    out = model.forward(X)  # finite, or ModelOutputError (NaN scores: a broken model)
    return output_metrics(model, out, y, baseline_mean=baseline_mean)


def output_metrics(
    model: Model, out: np.ndarray, y: ArrayLike, *, baseline_mean: ArrayLike | None = None
) -> dict[str, float]:
    """`evaluate` from outputs already computed: ``out = model.forward(X)``, shape (n, c).

    For a caller that needs the outputs for something else too (a run's confusion matrix),
    so that the test set goes forward once. Parameters and result as `evaluate`.
    """
    net = model.net
    if model.is_binary:  # class indices 0/1 -> the one-output indicator it was trained on
        y = np.asarray(y).reshape(-1, 1)
    yy = net.check_y(y, out.shape[0])
    if model.is_classifier:
        hit = model.class_indices(out) == (yy[:, 0] if model.is_binary else yy)
        loss, _ = LOSSES[net.loss](out, yy)
        return {"accuracy": float(np.mean(hit)), "loss": float(loss)}
    y64 = yy.astype(np.float64)
    out64 = out.astype(np.float64)
    # The RMSE of what the model predicts (the scores through the loss's inverse link:
    # themselves for squared error, e^s for Poisson); the loss is the training loss's.
    resid = PREDICTIONS[net.loss](out64) - y64
    mse = float(np.mean(resid**2))
    constant = y64.mean(axis=0) if baseline_mean is None else np.asarray(baseline_mean, float)
    base = float(np.sqrt(np.mean((y64 - constant) ** 2)))
    loss, _ = LOSSES[net.loss](out64, y64)
    return {"rmse": math.sqrt(mse), "loss": float(loss), "baseline_rmse": base}


def test_scores(
    model: Model, dataset: Dataset, y_test: ArrayLike, *, outputs: np.ndarray | None = None
) -> dict[str, float]:
    """`evaluate` on the dataset's test part, a regressor's baseline being the mean of the
    *training* targets (the honest constant: the test targets are not known in advance).

    Parameters
    ----------
    model : backprop.io.Model
    dataset : Dataset
    y_test : array-like of shape (n_test,) or (n_test, k)
        The test targets in the model's encoding (class indices of ``model.classes``).
    outputs : ndarray of shape (n_test, c), optional
        ``model.forward(dataset.X_test)`` when the caller has it already.
    """
    baseline = None if model.is_classifier else np.mean(dataset.y_train, 0, dtype=np.float64)
    if outputs is None:
        outputs = model.forward(dataset.X_test)
    return output_metrics(model, outputs, y_test, baseline_mean=baseline)


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
    loss: str,
    run_seconds: float | None = None,
) -> dict[str, Any]:
    """The contents of ``metrics.json``.

    Parameters
    ----------
    dataset : Dataset
        The data the run trained on (its test part was evaluated).
    result : TrainResult
    config : TrainConfig
    test_metrics : mapping
        `evaluate` on the test part: ``accuracy`` and ``loss``
        (classification) or ``rmse``, ``loss`` and ``baseline_rmse`` (regression).
    loss : str
        The model's loss (a `backprop.losses.LOSSES` key): what ``test_loss`` is.
    run_seconds : float, optional
        The run's wall time up to its results (data, training, checkpoints); None: unknown.

    Returns
    -------
    metrics : dict
        JSON-serialisable: ``task``, the test scores, ``loss``, ``train_seconds`` (the epochs'
        times), ``run_seconds`` (or None), ``epochs_run``,
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
    metrics["loss"] = loss
    metrics["train_seconds"] = float(result.train_seconds)
    metrics["run_seconds"] = None if run_seconds is None else float(run_seconds)
    metrics["epochs_run"] = int(result.epochs_run)
    metrics.update(best_epoch_record(result))
    metrics["dataset"] = {
        "name": dataset.name,
        "path": dataset.path,
        "target": dataset.target,
        "n_train": len(dataset.X_train),
        "n_test": len(dataset.X_test),
        "n_features": dataset.n_features,
        "n_classes": dataset.n_classes,
        "image_shape": None if dataset.image_shape is None else list(dataset.image_shape),
    }
    metrics["config"] = config.to_dict()
    metrics["backprop_version"] = __version__
    return metrics


def _class_names(dataset: Dataset) -> list[str]:
    """Display names of the dataset's classes (Fashion-MNIST's indices become words)."""
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
    net = model.net
    start = MLP(net.layer_sizes, net.activation, net.loss, dtype=net.dtype, seed=config.seed)
    return np.asarray(net.params["W1"], np.float64) - start.params["W1"]


def _plots(
    model: Model,
    result: TrainResult,
    dataset: Dataset,
    best: Mapping[str, Any],
    config: TrainConfig,
    outputs: np.ndarray | None,
) -> list[Plot]:
    """The plots of a run, each with the arrays it draws (pickled to a drawing worker).

    ``outputs`` is ``model.forward(dataset.X_test)`` (a classifier's; None for a regressor).
    """
    todo = [
        Plot(
            "loss.png",
            "plot_loss",
            (result.history,),
            {"best_epoch": best["best_epoch"], "monitor": best["monitor"]},
        )
    ]
    if dataset.task != "classification":
        return todo
    names = _class_names(dataset)
    assert outputs is not None
    y_pred = model.class_indices(outputs)  # class i is the dataset's class i (checked)
    y_test = np.asarray(dataset.y_test)
    todo.append(Plot("confusion.png", "plot_confusion", (y_test, y_pred, names)))
    shape = dataset.image_shape
    if shape is not None:
        todo.append(
            Plot(
                "weights.png",
                "plot_first_layer_weights",
                (learned_first_layer(model, config), shape),
                {"what": "First-layer weights learned (W1 minus its initial value)"},
            )
        )
        # Only the images the plot shows (the first mistakes), not the whole test set.
        rows = np.flatnonzero(y_test != y_pred)[:MISTAKES_SHOWN]
        images = np.asarray(dataset.X_test[rows])  # a `Rows` reads just these
        todo.append(
            Plot(
                "mistakes.png",
                "plot_mistakes",
                (images, y_test, y_pred, names, shape),
                {"max_images": MISTAKES_SHOWN, "rows": rows},
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
    run_seconds: float | None = None,
    drawer: Drawer | None = None,
) -> list[Path]:
    """Write a training run's result files into ``out_dir``.

    In this order: ``model.safetensors``, ``metrics.json`` (see `run_metrics`),
    ``history.csv`` (`backprop.callbacks.History.to_csv`), then the plots: ``loss.png``
    with the best epoch starred; for classification ``confusion.png`` (test split); for
    image data also ``weights.png`` (first-layer weights) and ``mistakes.png``. Each file
    is written to a temporary name and renamed into place. A plot that fails is skipped with a
    `ResultWarning` naming it; the files before it stand.

    Parameters
    ----------
    out_dir : str or path-like
        Created if missing. Files of these names in it are replaced.
    model : backprop.io.Model
        The trained model (as `backprop.run.train` returns it).
    result : TrainResult
        Its history, best epoch and timings.
    dataset : Dataset
        The data the model was trained on; the plots use its test part.
    config : TrainConfig
        The run's configuration (recorded in ``metrics.json``).
    test_metrics : mapping, optional
        The model's scores on the test part; by default `evaluate` on
        ``dataset.X_test``, with the training targets' mean as the regression baseline.
    run_seconds : float, optional
        The run's wall time up to its results (recorded in ``metrics.json``).
    drawer : backprop.drawing.Drawer, optional
        Draws the plots (and is closed after): workers warmed up while the run trained
        (``Drawer(workers=n)``). By default they are drawn in this process.

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
    out = Path(out_dir)
    if dataset.task == "classification":
        _check_same_classes(model, dataset)
    best = best_epoch_record(result)
    # The test set goes forward once, for the scores and the confusion matrix both (a
    # `Rows`, a memory-mapped test set, by chunks).
    classifier = dataset.task == "classification"
    outputs = model.forward(dataset.X_test) if classifier or test_metrics is None else None
    if test_metrics is None:
        # The model's outputs are the dataset's classes (checked above), so the dataset's
        # class indices are the model's targets as they stand.
        test_metrics = test_scores(model, dataset, dataset.y_test, outputs=outputs)
    metrics = run_metrics(
        dataset,
        result,
        config=config,
        test_metrics=test_metrics,
        loss=model.net.loss,
        run_seconds=run_seconds,
    )
    if best["best_epoch"] not in [log.epoch for log in result.history]:
        raise ValueError(f"best_epoch {best['best_epoch']} is not an epoch of the history")
    out.mkdir(parents=True, exist_ok=True)
    written = [save(out / "model.safetensors", model)]
    text = json.dumps(metrics, indent=2) + "\n"
    written.append(atomic_write_bytes(out / METRICS_FILE, text.encode("utf-8")))
    written.append(result.history.to_csv(out / "history.csv", best_epoch=best["best_epoch"]))
    todo = _plots(model, result, dataset, best, config, outputs if classifier else None)
    with drawer if drawer is not None else Drawer() as draw:
        outcomes = draw.draw(todo, out)
    for outcome in outcomes:  # a plot is optional: the model and metrics stand
        for caught in outcome.warnings:
            warnings.warn(f"{outcome.name}: {caught}", ResultWarning, stacklevel=2)
        if outcome.path is None:
            problem = outcome.error
            warnings.warn(f"{outcome.name} not written: {problem}", ResultWarning, stacklevel=2)
        else:
            written.append(outcome.path)
    return written


# metrics.json's test scores; `score_line` reads them without the "test_" prefix.
_TEST_SCORES = ("test_accuracy", "test_rmse", "baseline_rmse", "test_loss")
# What each loss (a `LOSSES` key) is, so that a printed loss is never a bare number.
_LOSS_WORDS = {
    "softmax_cross_entropy": "cross-entropy",
    "sigmoid_binary_cross_entropy": "binary cross-entropy",
    "squared_error": "half the mean squared error",
    "poisson": "half the Poisson deviance",
}
# The loss of a run recorded before metrics.json named it: `backprop train`'s, by task.
_TASK_LOSS = {"classification": "softmax_cross_entropy", "regression": "squared_error"}


def score_line(
    dataset: str, task: str, n_test: int, scores: Mapping[str, float], *, loss: str
) -> str:
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
    loss : str
        The model's loss (a `backprop.losses.LOSSES` key), named beside its value.

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
        f"test loss ({_LOSS_WORDS.get(loss, loss)}) {scores['loss']:.4g}"
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
        Test score and loss; epochs, the training time and the whole run's, the best
        epoch and which weights the model holds; the result files present.
    """
    out = Path(out_dir)
    m = json.loads((out / METRICS_FILE).read_text(encoding="utf-8"))
    scores = {k.removeprefix("test_"): v for k, v in m.items() if k in _TEST_SCORES}
    kept_epoch = m["best_epoch"] if m["kept"] == "best" else m["epochs_run"]
    files = ", ".join(sorted(p.name for p in out.iterdir() if p.name in RESULT_FILES))
    target = m["dataset"].get("target")
    name = m["dataset"]["name"] + ("" if target is None else f" (target column {target!r})")
    # The epochs' time alone hides what the run spent around them (data, checkpoints).
    run = m.get("run_seconds")
    of_run = "" if run is None else f" of a {run:.2f} s run"
    return [
        score_line(
            name,
            m["task"],
            m["dataset"]["n_test"],
            scores,
            loss=m.get("loss") or _TASK_LOSS[m["task"]],
        ),
        f"trained {m['epochs_run']} epochs in {m['train_seconds']:.2f} s{of_run}; best epoch "
        f"{m['best_epoch']} ({monitor_words(m['monitor'])}); the model holds the "
        f"{m['kept']} epoch's weights (epoch {kept_epoch})",
        f"results in {out}/: {files}",
    ]
