"""Tests of the plots: each writes a non-empty PNG of the expected size; the confusion
matrix shows the right counts."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from backprop import plots
from backprop.callbacks import EpochLog, History


def png_size(path) -> tuple[int, int]:
    """Width and height from the PNG's IHDR chunk (independent of matplotlib)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    return struct.unpack(">II", data[16:24])


def history(n: int = 6, metric: str = "accuracy") -> History:
    return History(
        [
            EpochLog(e, 1.0 / e, 1.2 / e + 0.01 * e, 0.8 + 0.02 * e, 1e-3, 0.5)
            for e in range(1, n + 1)
        ],
        metric_name=metric,
    )


def test_plot_loss_writes_a_png(tmp_path):
    out = plots.plot_loss(history(), tmp_path / "loss.png")
    assert out == tmp_path / "loss.png"
    assert png_size(out) == (1100, 420)


def test_plot_loss_without_validation_and_for_regression(tmp_path):
    h = History([EpochLog(1, 2.0, np.nan, np.nan, 0.1, 1.0)], metric_name="rmse")
    assert png_size(plots.plot_loss(h, tmp_path / "a.png")) == (1100, 420)
    assert png_size(plots.plot_loss(history(3, "rmse"), tmp_path / "b.png")) == (1100, 420)
    with pytest.raises(ValueError, match="empty"):
        plots.plot_loss(History(), tmp_path / "c.png")


def test_plot_confusion_annotates_the_true_counts(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    c = 4
    y_true = rng.integers(0, c, 500)
    y_pred = np.where(rng.random(500) < 0.7, y_true, rng.integers(0, c, 500))
    # Independent counts: pair (i, j) encoded as i * c + j, counted by bincount.
    expected = np.bincount(y_true * c + y_pred, minlength=c * c).reshape(c, c)

    seen = {}
    real_save = plots._save

    def spy(fig, path):
        ax = fig.axes[0]
        seen["texts"] = {
            (round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts
        }
        seen["xlabel"], seen["ylabel"] = ax.get_xlabel(), ax.get_ylabel()
        seen["ticks"] = [t.get_text() for t in ax.get_xticklabels()]
        return real_save(fig, path)

    monkeypatch.setattr(plots, "_save", spy)
    out = plots.plot_confusion(y_true, y_pred, ["a", "b", "c", "d"], tmp_path / "cm.png")
    assert png_size(out) == (800, 700)
    assert len(seen["texts"]) == c * c
    for i in range(c):
        for j in range(c):
            assert seen["texts"][(i, j)] == str(expected[i, j])  # row = true, column = pred
    assert seen["xlabel"] == "predicted class" and seen["ylabel"] == "true class"
    assert seen["ticks"] == ["a", "b", "c", "d"]
    np.testing.assert_array_equal(plots.confusion_counts(y_true, y_pred, c), expected)


def test_confusion_counts_refuses_bad_labels():
    with pytest.raises(ValueError, match="outside"):
        plots.confusion_counts([0, 5], [0, 1], 3)
    with pytest.raises(ValueError, match="equal length"):
        plots.confusion_counts([0, 1], [0], 3)


def saved_figures(monkeypatch) -> list:
    """Every figure `plots` saves, in order."""
    seen = []
    real_save = plots._save

    def spy(fig, path):
        seen.append(fig)
        return real_save(fig, path)

    monkeypatch.setattr(plots, "_save", spy)
    return seen


def tiles_of(image: np.ndarray, h: int, w: int) -> np.ndarray:
    """The tiles of a mosaic in reading order, found without its layout: the all-NaN rows
    and columns between tiles are dropped, what is left is cut into h x w blocks."""
    keep = image[~np.isnan(image).all(axis=1)][:, ~np.isnan(image).all(axis=0)]
    rows, cols = keep.shape[0] // h, keep.shape[1] // w
    assert keep.shape == (rows * h, cols * w), "tiles of unequal size or gaps inside a tile"
    return keep.reshape(rows, h, cols, w).transpose(0, 2, 1, 3).reshape(rows * cols, h, w)


def test_plot_first_layer_weights_draws_each_unit_as_its_tile(tmp_path, monkeypatch):
    # A non-square image shape: a transposed tile has the wrong shape, a swapped one the
    # wrong values.
    h, w, m, k = 4, 6, 30, 14
    W1 = np.random.default_rng(0).normal(size=(h * w, m)).astype(np.float32)
    figures = saved_figures(monkeypatch)
    out = plots.plot_first_layer_weights(W1, (h, w), tmp_path / "w.png", max_units=k)
    assert png_size(out) == (900, 950)
    (fig,) = figures
    (image,) = fig.axes[0].images  # one image for all units
    tiles = tiles_of(np.ma.filled(image.get_array(), np.nan), h, w)
    for u in range(k):  # unit u's fan-in, pixel (i, j) = W1[i * w + j, u]
        np.testing.assert_array_equal(tiles[u], W1[:, u].reshape(h, w))
    assert np.isnan(tiles[k:]).all()  # the rest of the last row is empty
    lim = float(np.abs(W1[:, :k]).max())
    assert image.get_clim() == pytest.approx((-lim, lim))  # one scale, 0 in the middle
    assert len(fig.axes) == 2  # the image and its colourbar
    # Each row's first unit is numbered: 4 columns for 14 units, rows start at 1, 5, 9, 13.
    assert [t.get_text() for t in fig.axes[0].texts] == ["1", "5", "9", "13"]
    with pytest.raises(ValueError, match="shape"):
        plots.plot_first_layer_weights(W1, (8, 8), tmp_path / "x.png")


def test_plot_mistakes_draws_the_misclassified_images_in_data_order(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    h, w = 5, 7
    X = rng.random((40, h * w))
    y = rng.integers(0, 10, 40)
    pred = y.copy()
    pred[::3] = (pred[::3] + 1) % 10
    names = [f"c{i}" for i in range(10)]
    figures = saved_figures(monkeypatch)
    out = plots.plot_mistakes(X, y, pred, names, (h, w), tmp_path / "m.png", max_images=9)
    assert png_size(out) == (900, 950)
    wrong = np.flatnonzero(y != pred)[:9]
    (image,) = figures[0].axes[0].images
    tiles = tiles_of(np.ma.filled(image.get_array(), np.nan), h, w)
    np.testing.assert_array_equal(tiles, X[wrong].reshape(9, h, w))
    labels = [t.get_text() for t in figures[0].axes[0].texts]
    assert labels == [f"true: c{y[i]}\npred: c{pred[i]}" for i in wrong]
    # No mistakes at all still gives a readable figure.
    assert png_size(plots.plot_mistakes(X, y, y, names, (h, w), tmp_path / "n.png"))[0] == 900
    assert [t.get_text() for t in figures[1].axes[0].texts] == ["no mistakes"]


def test_mosaic_places_tile_i_at_row_i_div_cols() -> None:
    tiles = np.arange(5 * 2 * 3, dtype=float).reshape(5, 2, 3)
    image = plots.mosaic(tiles, cols=2, gap=(1, 2))
    assert image.shape == (3 * 3 - 1, 2 * 5 - 2)
    np.testing.assert_array_equal(image[3:5, 5:8], tiles[3])  # row 1, column 1
    np.testing.assert_array_equal(image[6:8, 0:3], tiles[4])  # row 2, column 0
    assert np.isnan(image[6:8, 5:8]).all() and np.isnan(image[2]).all()
    with pytest.raises(ValueError, match="tiles"):
        plots.mosaic(np.zeros((2, 2)), cols=1)


def test_plot_loss_names_the_metric_it_shows():
    # R^2 (scikit-learn's regressor score) is not an RMSE: the axis says which it is.
    for metric, label in (("accuracy", "accuracy"), ("rmse", "RMSE"), ("r2", "R^2")):
        fig = plots.loss_figure(history(4, metric), best_epoch=2)
        assert fig.axes[1].get_ylabel() == label
        assert fig.axes[1].get_title() == f"Validation {label}"


# ------------------------------------------------------------------ the notes' figures
def _texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


@pytest.mark.parametrize(
    ("layout", "shapes"),
    [
        ("columns", ["X\nd x n", "Z\nm x n", "A\nm x n", "S\nc x n", "P\nc x n", "J\n1 x 1"]),
        ("rows", ["X\nn x d", "Z\nn x m", "A\nn x m", "S\nn x c", "P\nn x c", "J\n1 x 1"]),
    ],
)
def test_network_figure_labels_every_node_with_its_shape(layout: str, shapes: list[str]) -> None:
    texts = _texts(plots.network_figure(layout))
    assert [t for t in texts if "\n" in t] == shapes  # the nodes, in forward order
    joined = " ".join(texts)
    assert "(P - Y) / n" in joined and "ReLU'(Z)" in joined  # the backward deltas
    if layout == "columns":
        assert "W(1): m x d, b(1): m x 1" in texts and "1_n^T" in joined
    else:
        assert "W[1]: d x m, b[1]: 1 x m" in texts and "1_n b[1]" in joined
    with pytest.raises(ValueError, match="layout"):
        plots.network_figure("diagonal")


def test_matrix_figure_draws_the_values_centred_on_zero() -> None:
    M = np.array([[1.0, -3.0], [0.5, 2.0]])
    fig = plots.matrix_figure(M, "P - Y")
    image = fig.axes[0].images[0]
    np.testing.assert_array_equal(image.get_array(), M)
    assert image.get_clim() == (-3.0, 3.0)
    img = plots.matrix_figure(np.arange(64.0), "one digit", image_shape=(8, 8))
    assert img.axes[0].images[0].get_array().shape == (8, 8)
    with pytest.raises(ValueError, match="2-D"):
        plots.matrix_figure(np.zeros((2, 2, 2)), "cube")


def test_gradient_norm_figure_has_one_line_per_layer() -> None:
    fig = plots.gradient_norm_figure({"W1": [1.0, 0.5, 0.25], "W2": [2.0, 1.0, 0.5]})
    lines = fig.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["W1", "W2"]
    np.testing.assert_array_equal(lines[1].get_ydata(), [2.0, 1.0, 0.5])


def test_notes_figures_show_alg3_outputs_and_integer_indices() -> None:
    """The network diagram draws each parameter's gradient (Alg 3's output); a heatmap of
    a c x n matrix has integer ticks (classes and examples are indices)."""
    cols = " ".join(_texts(plots.network_figure("columns")))
    assert "dJ/dW(1) = delta(1) X^T" in cols and "dJ/db(2) = delta(2) 1_n" in cols
    rows = " ".join(_texts(plots.network_figure("rows")))
    assert "dJ/dW[2] = A^T delta[2]" in rows and "dJ/db[1] = 1_n^T delta[1]" in rows
    fig = plots.matrix_figure(np.zeros((3, 11)), "P - Y")
    fig.canvas.draw()
    ax = fig.axes[0]
    for ticks in (ax.get_xticks(), ax.get_yticks()):
        assert len(ticks) and np.all(ticks == np.round(ticks))
