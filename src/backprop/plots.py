"""Plots of a training run: loss curves, confusion matrix, first-layer weights, mistakes.

Each function takes the data and a path, writes a PNG there and returns the path. Text that
comes from the data (class labels) is drawn as plain text: a ``$`` in a label is escaped, so
matplotlib never reads it as mathtext (a label such as ``$x$`` would otherwise be typeset as
an italic x, and ``$\\foo$`` would fail to draw). Figures are built with matplotlib's
object-oriented API (``matplotlib.figure.Figure``), never pyplot: no display is needed, no
global backend is switched (importing this module in a notebook leaves inline plots
working), and no figure is kept alive after saving.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from numpy.typing import ArrayLike

from backprop.callbacks import History, monitor_words
from backprop.data.formats import printable

__all__ = [
    "confusion_counts",
    "gradient_norm_figure",
    "loss_figure",
    "matrix_figure",
    "mosaic",
    "network_figure",
    "plain_text",
    "plot_confusion",
    "plot_first_layer_weights",
    "plot_loss",
    "plot_mistakes",
]

_PathLike = str | os.PathLike[str]
DPI = 100


#: zlib level of the PNGs: 1 instead of Pillow's 6, as the noisy weight images took a
#: third of their plot's time to compress at 6 (see benchmarks/plot_times.py).
PNG_COMPRESS_LEVEL = 1


def _save(fig: Figure, path: _PathLike) -> Path:
    path = Path(path)
    fig.savefig(path, dpi=DPI, format="png", pil_kwargs={"compress_level": PNG_COMPRESS_LEVEL})
    return path


#: Longest label drawn whole: text from data (class names) may be any length, and
#: matplotlib's layout time grows with it.
MAX_LABEL_CHARS = 40
#: Classes drawn in the confusion matrix: above this, the classes most confused.
MAX_CONFUSION_CLASSES = 30


def plain_text(label: object, max_chars: int = MAX_LABEL_CHARS) -> str:
    """``str(label)`` drawn literally: cut to ``max_chars``, ``$`` escaped.

    matplotlib treats a string with an even number of unescaped ``$`` as mathtext; with
    every ``$`` escaped it shows the text as written (and removes the backslashes). A
    longer label ends in an ellipsis; control characters are escaped.
    """
    text = printable(str(label))
    if len(text) > max_chars:
        text = text[: max_chars - 1] + "…"
    return text.replace("$", r"\$")


# The validation metric's axis label, by `History.metric_name`.
_METRIC_LABELS = {"accuracy": "accuracy", "rmse": "RMSE", "r2": "R^2"}


def _grid(n: int) -> tuple[int, int]:
    """Rows and columns of a near-square grid holding n panels."""
    cols = max(1, math.ceil(math.sqrt(n)))
    return max(1, math.ceil(n / cols)), cols


def loss_figure(
    history: History, *, best_epoch: int | None = None, monitor: str | None = "val_loss"
) -> Figure:
    """The figure `plot_loss` saves: loss per epoch, and the validation metric beside it.

    Parameters
    ----------
    history : backprop.callbacks.History
        One row per epoch; ``val_loss``/``val_metric`` may be NaN (no validation data).
    best_epoch : int, optional
        The run's best epoch, as the training run chose it (``TrainResult.best_epoch``); it
        is starred in both panels, never recomputed here, so the plot names the same epoch
        as ``metrics.json`` and ``history.csv``. None draws no star.
    monitor : str or None, default "val_loss"
        The ``history.csv`` column the run monitored to choose ``best_epoch`` (see
        `backprop.callbacks.monitor_column`), shown in the legend; None: nothing monitored.

    Returns
    -------
    fig : matplotlib.figure.Figure
        Two axes; each star is a ``Line2D`` with marker ``"*"`` and x = ``best_epoch``.

    Raises
    ------
    ValueError
        If the history is empty or ``best_epoch`` is not one of its epochs.
    """
    cols = history.as_columns()
    epochs = cols["epoch"]
    if len(epochs) == 0:
        raise ValueError("history is empty: nothing to plot")
    row = None
    if best_epoch is not None:
        rows = np.flatnonzero(epochs == best_epoch)
        if len(rows) != 1:
            raise ValueError(
                f"best_epoch {best_epoch} is not an epoch of the history "
                f"({int(epochs[0])}..{int(epochs[-1])})"
            )
        row = int(rows[0])
    metric = history.metric_name
    fig = Figure(figsize=(11, 4.2))
    # Fixed margins (the tick labels are numbers): a layout engine measured every text.
    fig.subplots_adjust(left=0.065, right=0.985, bottom=0.12, top=0.92, wspace=0.22)
    ax_loss, ax_metric = fig.subplots(1, 2)
    marker = "o" if len(epochs) <= 30 else None
    ax_loss.plot(epochs, cols["train_loss"], marker=marker, label="training (mean over epoch)")
    has_val = bool(np.isfinite(cols["val_loss"]).any())
    if has_val:
        ax_loss.plot(epochs, cols["val_loss"], marker=marker, label="validation (end of epoch)")
    star = {"marker": "*", "linestyle": "none", "color": "C3", "markersize": 14}
    if row is not None:
        # On the monitored loss where there is one, else on the training loss.
        y_col = monitor if monitor == "train_loss" else "val_loss"
        y = cols[y_col][row] if np.isfinite(cols[y_col][row]) else cols["train_loss"][row]
        words = monitor_words(monitor)
        ax_loss.plot([best_epoch], [y], **star, label=f"best: epoch {best_epoch} ({words})")
    ax_loss.set_title("Loss")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    if np.all(cols["train_loss"] > 0) and cols["train_loss"].max() / cols["train_loss"].min() > 20:
        ax_loss.set_yscale("log")  # a loss falling over decades reads better on a log axis
    ax_loss.grid(True, alpha=0.3)
    ax_loss.legend()

    label = _METRIC_LABELS.get(metric, metric)
    if has_val:
        ax_metric.plot(epochs, cols["val_metric"], marker=marker, color="C1", label="validation")
        if row is not None and np.isfinite(cols["val_metric"][row]):
            ax_metric.plot(
                [best_epoch],
                [cols["val_metric"][row]],
                **star,
                label=f"best epoch {best_epoch}: {cols['val_metric'][row]:.4g}",
            )
        ax_metric.legend()
    else:
        ax_metric.text(0.5, 0.5, "no validation data", ha="center", va="center")
    ax_metric.set_title(f"Validation {label}")
    ax_metric.set_xlabel("epoch")
    ax_metric.set_ylabel(label)
    ax_metric.grid(True, alpha=0.3)
    for ax in (ax_loss, ax_metric):
        ax.xaxis.get_major_locator().set_params(integer=True)
    return fig


def plot_loss(
    history: History,
    path: _PathLike,
    *,
    best_epoch: int | None = None,
    monitor: str | None = "val_loss",
) -> Path:
    """Training and validation loss per epoch, and the validation metric beside them.

    Parameters
    ----------
    history : backprop.callbacks.History
        One row per epoch; ``val_loss``/``val_metric`` may be NaN (no validation data).
    path : str or path-like
        Where to write the PNG (1100 x 420 pixels).
    best_epoch : int, optional
        The run's best epoch (``TrainResult.best_epoch``), starred; see `loss_figure`.
    monitor : str or None, default "val_loss"
        What the run monitored to choose ``best_epoch`` (see `loss_figure`).

    Returns
    -------
    path : Path
    """
    return _save(loss_figure(history, best_epoch=best_epoch, monitor=monitor), path)


def confusion_counts(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> np.ndarray:
    """Confusion matrix: entry (i, j) counts examples of class i predicted as j.

    Parameters
    ----------
    y_true, y_pred : array-like of int, shape (n,)
        Class indices in ``0 .. n_classes-1``.
    n_classes : int

    Returns
    -------
    counts : ndarray of int64, shape (n_classes, n_classes)
    """
    t = np.asarray(y_true).astype(np.int64, copy=False)
    p = np.asarray(y_pred).astype(np.int64, copy=False)
    if t.shape != p.shape or t.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D of equal length: {t.shape}, {p.shape}")
    for name, a in (("y_true", t), ("y_pred", p)):
        if a.size and (a.min() < 0 or a.max() >= n_classes):
            raise ValueError(f"{name} has class indices outside 0..{n_classes - 1}")
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (t, p), 1)
    return counts


def _square_axes(fig: Figure, label_chars: int) -> tuple[Any, Any]:
    """A square axes for a matrix with tick labels of up to ``label_chars`` characters on
    the left and (rotated 45 degrees) below, and a colourbar axes right of it.

    A fixed layout from the labels' length (about 0.6 em a character at the default 10
    points), not a layout engine: constrained layout measured every text and drew twice.
    """
    width, height = fig.get_size_inches()
    text = min(label_chars, MAX_LABEL_CHARS) * 0.6 * 10 / 72  # inches of the longest label
    left = 0.55 + text
    bottom = 0.55 + 0.71 * text  # a label at 45 degrees drops by sin(45) of its length
    side = max(1.0, min(width - left - 1.3, height - bottom - 0.45))
    ax = fig.add_axes((left / width, bottom / height, side / width, side / height))
    cax = fig.add_axes(((left + side + 0.2) / width, bottom / height, 0.2 / width, side / height))
    return ax, cax


def plot_confusion(
    y_true: ArrayLike, y_pred: ArrayLike, class_names: Sequence[str], path: _PathLike
) -> Path:
    """Confusion matrix with counts written in each cell, coloured by row share.

    With more than `MAX_CONFUSION_CLASSES` classes only the classes most involved in
    mistakes (as true or as predicted class) are drawn, so the figure takes bounded time
    and memory whatever the number of classes (c^2 cells of text would not); the title
    says how many of the c classes are shown. Colours are shares of each true class's
    examples in the full matrix.

    Parameters
    ----------
    y_true, y_pred : array-like of int, shape (n,)
        True and predicted class indices ``0 .. c-1``.
    class_names : sequence of str, length c
    path : str or path-like
        Where to write the PNG (800 x 700 pixels).

    Returns
    -------
    path : Path
    """
    names = [plain_text(c) for c in class_names]
    c = len(names)
    counts = confusion_counts(y_true, y_pred, c)
    totals = counts.sum(axis=1, keepdims=True)
    # Colour = share of the true class's examples, so rare classes are as visible as
    # common ones; the text gives the raw count.
    share = counts / np.maximum(totals, 1)
    n = int(counts.sum())
    acc = np.trace(counts) / n if n else float("nan")
    shown = np.arange(c)
    if c > MAX_CONFUSION_CLASSES:
        off = counts - np.diag(np.diag(counts))
        involved = off.sum(axis=0) + off.sum(axis=1)
        shown = np.sort(np.argsort(-involved, kind="stable")[:MAX_CONFUSION_CLASSES])
        counts, share = counts[np.ix_(shown, shown)], share[np.ix_(shown, shown)]
        names = [names[i] for i in shown]
    total_classes, c = c, len(shown)
    fig = Figure(figsize=(8, 7))
    ax, cax = _square_axes(fig, max(len(s) for s in names))
    im = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(im, cax=cax, label="share of the true class")
    size = 10 if c <= 10 else max(5, 100 // c)
    for i in range(c):
        for j in range(c):
            ax.text(
                j,
                i,
                str(counts[i, j]),
                ha="center",
                va="center",
                fontsize=size,
                color="white" if share[i, j] > 0.5 else "black",
            )
    ax.set_xticks(range(c), names, rotation=45, ha="right")
    ax.set_yticks(range(c), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    which = (
        ""
        if c == total_classes
        else f"; the {c} of {total_classes} classes most involved in mistakes"
    )
    ax.set_title(f"Confusion matrix ({n} examples, accuracy {acc:.4f}{which})")
    return _save(fig, path)


def mosaic(tiles: ArrayLike, cols: int, gap: tuple[int, int] = (1, 1)) -> np.ndarray:
    """Many small images as one: ``tiles[i]`` at grid row ``i // cols``, column ``i % cols``.

    One image costs one ``imshow`` however many tiles it holds (one axes per tile cost a
    second for 64 units); the explorer draws its weight images the same way in the page.

    Parameters
    ----------
    tiles : array-like of shape (k, h, w)
    cols : int
        Tiles per grid row; ``ceil(k / cols)`` rows.
    gap : (int, int), default (1, 1)
        Rows above each tile and columns left of each (room for a label), not before the
        first tile of a row or column.

    Returns
    -------
    ndarray of float64, shape (rows * (h + gap[0]) - gap[0], cols * (w + gap[1]) - gap[1])
        NaN in the gaps and in unused tiles (drawn as the background colour).
    """
    T = np.asarray(tiles, dtype=np.float64)
    if T.ndim != 3 or cols < 1:
        raise ValueError(f"mosaic needs tiles of shape (k, h, w) and cols >= 1, got {T.shape}")
    k, h, w = T.shape
    rows = max(1, math.ceil(k / cols))
    gy, gx = gap
    out = np.full((rows * (h + gy) - gy, cols * (w + gx) - gx), np.nan)
    for i in range(k):
        r, c = divmod(i, cols)
        out[r * (h + gy) : r * (h + gy) + h, c * (w + gx) : c * (w + gx) + w] = T[i]
    return out


def _mosaic_axes(fig: Figure, title: str, *, colorbar: bool) -> tuple[Any, Any]:
    """The fixed layout of a mosaic figure: one image axes (and a colourbar axes).

    Fixed rectangles in figure fractions, no layout engine: constrained layout measured
    every tick and title of every axes at each save.
    """
    fig.suptitle(title, fontsize=10, y=0.985)
    ax = fig.add_axes((0.02, 0.02, 0.86 if colorbar else 0.96, 0.91))
    ax.set_axis_off()
    cax = fig.add_axes((0.9, 0.15, 0.025, 0.65)) if colorbar else None
    return ax, cax


def plot_first_layer_weights(
    W1: ArrayLike,
    image_shape: tuple[int, int],
    path: _PathLike,
    max_units: int = 64,
    *,
    what: str = "First-layer weights",
) -> Path:
    """Each hidden unit's incoming weights drawn as an image, in one mosaic.

    Unit ``u`` (0-based) is the tile at grid row ``u // cols``, column ``u % cols``; the first
    tile of each row carries its unit's number (``u + 1``), the others follow it left to
    right. All tiles share one colour scale, symmetric about 0 (white), with a colourbar.

    Parameters
    ----------
    W1 : array-like of shape (d, m)
        First-layer weights (the notes' layout: fan_in x fan_out), d = h * w.
    image_shape : (int, int)
        Height and width of an input image.
    path : str or path-like
        Where to write the PNG (900 x 950 pixels).
    max_units : int, default 64
        Draw the first ``min(m, max_units)`` units.
    what : str, default "First-layer weights"
        What the columns are, for the title (e.g. the change training made to them).

    Returns
    -------
    path : Path
    """
    W = np.asarray(W1, dtype=np.float64)
    h, w = image_shape
    if W.ndim != 2 or W.shape[0] != h * w:
        raise ValueError(f"W1 must have shape ({h * w}, m) for {h}x{w} images, got {W.shape}")
    if max_units < 1:
        raise ValueError(f"max_units must be >= 1, got {max_units}")
    k = min(W.shape[1], max_units)
    _, cols = _grid(k)
    # Column u of W1 is unit u's fan-in, one weight per pixel in row-major order.
    image = mosaic(W[:, :k].T.reshape(k, h, w), cols)
    lim = float(np.nanmax(np.abs(image))) or 1.0
    which = f"{k} of {W.shape[1]} hidden units" if k < W.shape[1] else f"all {k} hidden units"
    fig = Figure(figsize=(9, 9.5))
    ax, cax = _mosaic_axes(
        fig,
        f"{what}: {which} (numbered row by row; red positive, blue negative, one scale)",
        colorbar=True,
    )
    im = ax.imshow(image, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    fig.colorbar(im, cax=cax, label="weight")
    # One number per row, not per tile: each text costs as much to draw as a tile image.
    for u in range(0, k, cols):
        ax.text(0, (u // cols) * (h + 1), str(u + 1), fontsize=7, va="top", color="0.3")
    return _save(fig, path)


def plot_mistakes(
    X_images: ArrayLike,
    y_true: ArrayLike,
    y_pred: ArrayLike,
    class_names: Sequence[str],
    image_shape: tuple[int, int],
    path: _PathLike,
    max_images: int = 25,
    *,
    rows: ArrayLike | None = None,
) -> Path:
    """Misclassified images in one mosaic, each labelled "true: X" / "pred: Y" above it.

    Parameters
    ----------
    X_images : array-like of shape (n, h * w) or (n, h, w)
        The raw (unstandardised) test images; with ``rows``, only those rows of them.
    y_true, y_pred : array-like of int, shape (n,)
        Class indices.
    class_names : sequence of str
    image_shape : (int, int)
    path : str or path-like
        Where to write the PNG (900 x 950 pixels).
    max_images : int, default 25
        Show the first ``max_images`` mistakes, in data order.
    rows : array-like of int, optional
        Which examples ``X_images`` holds (indices into ``y_true``, increasing), when it
        holds only some: the caller of a large test set passes the first mistakes' images.

    Returns
    -------
    path : Path
    """
    h, w = image_shape
    X = np.asarray(X_images)
    t = np.asarray(y_true)
    p = np.asarray(y_pred)
    held = np.arange(len(t)) if rows is None else np.asarray(rows, dtype=np.int64)
    if X.shape[0] != len(held) or len(t) != len(p):
        raise ValueError(
            f"X_images ({X.shape[0]} rows), y_true and y_pred ({len(t)}, {len(p)}) "
            f"do not match{'' if rows is None else f' with {len(held)} rows'}"
        )
    if X.shape[0] and X[0].size != h * w:
        raise ValueError(f"images have {X[0].size} pixels, image_shape {h}x{w} needs {h * w}")
    names = [plain_text(c) for c in class_names]
    shown = np.flatnonzero(t[held] != p[held])[:max_images]  # positions in X
    wrong = held[shown]  # the examples they are
    _, cols = _grid(max(len(wrong), 1))
    # Room above each tile for its two label lines, and a little between columns.
    gap = (max(2, round(0.3 * h)), max(1, round(0.1 * w)))
    image = mosaic(X[shown].reshape(len(shown), h, w), cols, gap)
    total = int(np.count_nonzero(t != p))
    fig = Figure(figsize=(9, 9.5))
    ax, _ = _mosaic_axes(
        fig,
        f"Misclassified test images: first {len(wrong)} of {total} mistakes "
        f"({total / len(t):.1%} of {len(t)})",
        colorbar=False,
    )
    # Raw pixels on the shown images' own range (dark = high), the same for every tile.
    pixels = image[np.isfinite(image)]
    lo, hi = (float(pixels.min()), float(pixels.max())) if pixels.size else (0.0, 1.0)
    ax.imshow(image, cmap="gray_r", vmin=lo, vmax=hi, interpolation="nearest")
    for j, i in enumerate(wrong):
        r, c = divmod(j, cols)
        ax.text(
            c * (w + gap[1]) + w / 2,
            r * (h + gap[0]) - 0.5,
            f"true: {names[t[i]]}\npred: {names[p[i]]}",
            fontsize=7,
            ha="center",
            va="bottom",
        )
    if total == 0:
        ax.text(0.5, 0.5, "no mistakes", ha="center", va="center", transform=ax.transAxes)
    return _save(fig, path)


# ------------------------------------------------------------------ the notes' figures
# Figures for the notebook and the docs: each returns a Figure (never saved here, so the
# caller decides: shown inline, written with ``fig.savefig``).

# The two-layer network of pages 3-7, node by node: (label, shape in columns (pages 3-6),
# shape in rows (pages 6-7)). Examples are the columns of X on pages 5-6, its rows on pages 6-7.
_NETWORK_NODES: tuple[tuple[str, str, str], ...] = (
    ("X", "d x n", "n x d"),
    ("Z", "m x n", "n x m"),
    ("A", "m x n", "n x m"),
    ("S", "c x n", "n x c"),
    ("P", "c x n", "n x c"),
    ("J", "1 x 1", "1 x 1"),
)
# What takes each node to the next (forward), and the delta that flows back along it.
_NETWORK_EDGES: dict[str, tuple[tuple[str, str], ...]] = {
    "columns": (
        ("W(1) X + b(1) 1_n^T", "dJ/dX = W(1)^T delta(1)"),
        ("ReLU", "delta(1) = dJ/dA ⊙ ReLU'(Z)"),
        ("W(2) A + b(2) 1_n^T", "dJ/dA = W(2)^T delta(2)"),
        ("softmax", "delta(2) = (P - Y) / n"),
        ("-1/n Σ log p_y", ""),
    ),
    "rows": (
        ("X W[1] + 1_n b[1]", "dJ/dX = delta[1] W[1]^T"),
        ("ReLU", "delta[1] = dJ/dA ⊙ ReLU'(Z)"),
        ("A W[2] + 1_n b[2]", "dJ/dA = delta[2] W[2]^T"),
        ("softmax", "delta[2] = (P - Y) / n"),
        ("-1/n Σ log p_y", ""),
    ),
}
_PARAMS = {
    "columns": ("W(1): m x d, b(1): m x 1", "W(2): c x m, b(2): c x 1"),
    "rows": ("W[1]: d x m, b[1]: 1 x m", "W[2]: m x c, b[2]: 1 x c"),
}
# The output of Alg 3: each parameter's gradient, read off the delta of its layer (page 6's
# batch form, with the bias gradients summed over the examples by 1_n; page 7's transposes).
_PARAM_GRADS = {
    "columns": (
        "dJ/dW(1) = delta(1) X^T,  dJ/db(1) = delta(1) 1_n",
        "dJ/dW(2) = delta(2) A^T,  dJ/db(2) = delta(2) 1_n",
    ),
    "rows": (
        "dJ/dW[1] = X^T delta[1],  dJ/db[1] = 1_n^T delta[1]",
        "dJ/dW[2] = A^T delta[2],  dJ/db[2] = 1_n^T delta[2]",
    ),
}


def network_figure(layout: str = "columns") -> Figure:
    """The notes' two-layer network as a diagram: X -> Z -> A -> S -> P -> J.

    Each node is labelled with its shape in the chosen layout; forward arrows (above) name
    the operation, backward arrows (below) the delta that flows back along them, and under
    them each layer's parameter gradients (Alg 3's output) in red.

    Parameters
    ----------
    layout : {"columns", "rows"}
        "columns": examples as columns (pages 5-6); "rows": one example per row (page 7).

    Returns
    -------
    matplotlib.figure.Figure
    """
    if layout not in _NETWORK_EDGES:
        raise ValueError(f"layout must be one of {sorted(_NETWORK_EDGES)}, got {layout!r}")
    column = layout == "columns"
    fig = Figure(figsize=(11, 3.2))
    ax = fig.add_subplot()
    ax.set_xlim(-0.6, len(_NETWORK_NODES) - 0.4)
    ax.set_ylim(-1.9, 1.5)
    ax.axis("off")
    for i, (name, col_shape, row_shape) in enumerate(_NETWORK_NODES):
        ax.text(
            i,
            0,
            f"{name}\n{col_shape if column else row_shape}",
            ha="center",
            va="center",
            fontsize=11,
            bbox={"boxstyle": "round", "facecolor": "#e8f0fe", "edgecolor": "#3367d6"},
        )
    for i, (forward, backward) in enumerate(_NETWORK_EDGES[layout]):
        ax.annotate(
            "",
            xy=(i + 0.72, 0.12),
            xytext=(i + 0.28, 0.12),
            arrowprops={"arrowstyle": "->", "color": "black"},
        )
        ax.text(i + 0.5, 0.45, forward, ha="center", fontsize=8)
        if backward:
            ax.annotate(
                "",
                xy=(i + 0.28, -0.12),
                xytext=(i + 0.72, -0.12),
                arrowprops={"arrowstyle": "->", "color": "#c5221f"},
            )
            ax.text(
                i + 0.5, -0.55 - 0.35 * (i % 2), backward, ha="center", fontsize=8, color="#c5221f"
            )
    first, second = _PARAMS[layout]
    ax.text(0.5, 1.15, first, ha="center", fontsize=9, color="#3367d6")
    ax.text(2.5, 1.15, second, ha="center", fontsize=9, color="#3367d6")
    for x, grad in zip((0.7, 3.5), _PARAM_GRADS[layout], strict=True):  # apart: long labels
        ax.text(x, -1.65, grad, ha="center", fontsize=9, color="#c5221f")
    where = "examples in columns (pages 5-6)" if column else "examples in rows (pages 6-7)"
    ax.set_title(f"Forward (black) and backward (red): {where}", fontsize=11)
    return fig


def matrix_figure(
    matrix: ArrayLike,
    title: str,
    *,
    xlabel: str = "",
    ylabel: str = "",
    diverging: bool = True,
    image_shape: tuple[int, int] | None = None,
) -> Figure:
    """A heatmap of one matrix of the notes (P - Y, ReLU'(Z), delta x^T, ...).

    Parameters
    ----------
    matrix : array_like, 2-D (or 1-D with ``image_shape``)
    title, xlabel, ylabel : str
    diverging : bool, default True
        Red/blue centred on 0 (signed values); False: white to black (a 0/1 mask).
    image_shape : (h, w), optional
        Draw the values reshaped to an image (a row of weights or gradients per pixel).

    Returns
    -------
    matplotlib.figure.Figure
    """
    values = np.asarray(matrix, dtype=np.float64)
    if image_shape is not None:
        values = values.reshape(image_shape)
    if values.ndim != 2:
        raise ValueError(f"matrix_figure needs a 2-D matrix, got shape {values.shape}")
    fig = Figure(figsize=(max(3.0, min(9.0, 0.35 * values.shape[1] + 1.5)), 3.2))
    ax = fig.add_subplot()
    if diverging:
        limit = float(np.abs(values).max()) or 1.0
        im = ax.imshow(values, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    else:
        im = ax.imshow(values, cmap="gray_r", vmin=0, vmax=max(1.0, values.max()), aspect="auto")
    fig.colorbar(im, ax=ax)
    # Rows and columns are indices (a class, an example, a unit): integer ticks only.
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(title=plain_text(title), xlabel=plain_text(xlabel), ylabel=plain_text(ylabel))
    fig.tight_layout()
    return fig


def gradient_norm_figure(
    norms: Mapping[str, Sequence[float]], title: str = "Gradient size per layer"
) -> Figure:
    """The size of each layer's weight gradient over training, one line per layer.

    Parameters
    ----------
    norms : mapping of str to sequence of float
        Per parameter name ("W1", "W2", ...), the Frobenius norm ||dJ/dW|| at each step.
    title : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = Figure(figsize=(5.5, 3.2))
    ax = fig.add_subplot()
    for name, values in norms.items():
        ax.plot(np.arange(1, len(values) + 1), values, label=plain_text(name))
    ax.set(xlabel="step", ylabel="||dJ/dW||", yscale="log", title=plain_text(title))
    ax.legend()
    fig.tight_layout()
    return fig
