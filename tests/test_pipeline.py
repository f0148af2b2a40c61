"""One path from raw input to answer (issue 10): the model carries its preprocessing.

The same images give the same predictions whatever the container (IDX, flat or cube
uint8 ``.npy``, float ``.npy``, CSV, label-first CSV); raw digits pixels give the test
accuracy that training reported; CSV columns are matched by name; inputs far outside the
training range warn; ``info`` says what the model expects.  Each test fails on the code
before issue 10 (which scaled only IDX files and dropped "the last column" of a CSV).

A small synthetic Fashion-MNIST stand-in (28x28 uint8 images, IDX files written here
with ``struct``) keeps this fast; the expected predictions come from ``Model.predict`` on
the IDX file, never from the path under test.
"""

from __future__ import annotations

import contextlib
import io
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from backprop import cli
from backprop.data import load_dataset
from backprop.io import load

SIDE = 28


def run(*argv: object) -> tuple[int, str, str]:
    """``backprop ARGV`` in-process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def _idx(array: np.ndarray) -> bytes:
    """IDX bytes by the format's spec: magic 0x0000 08 ndim, big-endian sizes, payload."""
    return struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    ) + array.astype(np.uint8).tobytes()  # fmt: skip


def _images(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Three classes of 28x28 uint8 images: a bright bar at the top, middle or bottom."""
    labels = rng.integers(0, 3, size=n).astype(np.uint8)
    images = rng.integers(0, 60, size=(n, SIDE, SIDE)).astype(np.uint8)
    for i, c in enumerate(labels):
        rows = slice(4 + 8 * int(c), 10 + 8 * int(c))
        images[i, rows, 4:24] = rng.integers(150, 256, size=(6, 20))
    return images, labels


@pytest.fixture(scope="module")
def image_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, Path]:
    """(model file, 60 test images (n, 28, 28) uint8, their IDX file)."""
    root = tmp_path_factory.mktemp("fm")
    rng = np.random.default_rng(0)
    data = root / "data"
    data.mkdir()
    for stem, array in zip(
        ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"), _images(400, rng), strict=True
    ):
        (data / stem).write_bytes(_idx(array))
    out = root / "run"
    code, _, err = run(
        "train", "--data", data, "--hidden", 16, "--epochs", 3, "--out", out, "--quiet"
    )
    assert code == 0, err
    test_images, _ = _images(60, rng)
    idx_file = root / "t10k-images-idx3-ubyte"
    idx_file.write_bytes(_idx(test_images))
    return out / "model.safetensors", test_images, idx_file


def _predict(model: Path, path: Path) -> np.ndarray:
    code, stdout, err = run("predict", model, path)
    assert code == 0 and err == "", err
    lines = stdout.strip().splitlines()
    assert lines[0] == "prediction"
    return np.array(lines[1:], dtype=np.int64)


def _proba(model: Path, path: Path, tmp_path: Path) -> np.ndarray:
    out = tmp_path / f"p-{path.name}.npy"
    code, _, err = run("predict", model, path, "--proba", "-o", out)
    assert code == 0 and err == "", err
    return np.load(out)


def test_same_images_same_predictions_whatever_the_file(image_model, tmp_path):
    model_path, images, idx_file = image_model
    expected = _predict(model_path, idx_file)
    expected_p = _proba(model_path, idx_file, tmp_path)
    model = load(model_path)
    np.testing.assert_array_equal(expected, model.predict(images))
    assert len(np.unique(expected)) == 3  # a model that learnt something, not a constant
    flat = images.reshape(len(images), -1)
    files = {
        "flat.npy": flat,
        "cube.npy": images,
        "float.npy": flat.astype(np.float64),
        "float32-cube.npy": images.astype(np.float32),
    }
    for name, array in files.items():
        np.save(tmp_path / name, array)
    np.savetxt(tmp_path / "plain.csv", flat, delimiter=",", fmt="%d")
    header = ",".join(f"pixel{j + 1}" for j in range(SIDE * SIDE))
    labels = np.full((len(flat), 1), 7)
    np.savetxt(
        tmp_path / "kaggle.csv", np.hstack([labels, flat]), delimiter=",", fmt="%d",
        header="label," + header, comments="",
    )  # fmt: skip
    np.savetxt(
        tmp_path / "pandas.csv", np.hstack([np.arange(len(flat))[:, None], flat]),
        delimiter=",", fmt="%d", header="," + header, comments="",
    )  # fmt: skip
    for name in [*files, "plain.csv", "kaggle.csv", "pandas.csv"]:
        np.testing.assert_array_equal(_predict(model_path, tmp_path / name), expected, name)
        # Bit for bit: every container gives the network the same float32 inputs (a
        # ReLU net can keep its argmax on wrongly scaled input; its probabilities cannot).
        np.testing.assert_array_equal(_proba(model_path, tmp_path / name, tmp_path), expected_p)


def test_column_count_mismatch_is_refused_in_one_line(image_model, tmp_path):
    model_path, images, _ = image_model
    flat = images.reshape(len(images), -1)
    np.savetxt(tmp_path / "short.csv", flat[:, :-1], delimiter=",", fmt="%d")
    header = ",".join(f"p{j}" for j in range(SIDE * SIDE + 1))
    np.savetxt(
        tmp_path / "extra.csv", np.hstack([flat, flat[:, :1]]), delimiter=",", fmt="%d",
        header=header, comments="",
    )  # fmt: skip
    for name, words in (("short.csv", "has 783 columns"), ("extra.csv", "has 785 columns")):
        code, stdout, err = run("predict", model_path, tmp_path / name)
        assert code == 2 and stdout == ""
        lines = err.strip().splitlines()
        assert len(lines) == 1 and words in lines[0] and "expects 784" in lines[0], err


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """(model file, the test accuracy that training wrote to metrics.json)."""
    out = tmp_path_factory.mktemp("digits") / "run"
    code, _, err = run("train", "--data", "digits", "--hidden", 32, "--out", out, "--quiet")
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    return out / "model.safetensors", metrics["test_accuracy"]


def _accuracy(model: Path, path: Path, labels: np.ndarray) -> float:
    return float(np.mean(_predict(model, path) == labels))


def test_raw_digits_pixels_give_the_training_test_accuracy(digits_model, tmp_path):
    from sklearn.datasets import load_digits

    model_path, trained = digits_model
    ds = load_dataset("digits", seed=0)  # the test split train held out
    assert ds.classes is not None
    labels = ds.classes[ds.y_test]
    # Pixels as scikit-learn gives them (0..16), checked against the source, not our loader.
    ref = load_digits()
    assert {tuple(r) for r in ds.X_test} <= {tuple(r) for r in ref.data.astype(np.float32)}
    raw = np.asarray(ds.X_test, dtype=np.float64)
    np.savetxt(tmp_path / "raw.csv", raw, delimiter=",", fmt="%d")
    np.save(tmp_path / "raw.npy", raw)
    np.save(tmp_path / "raw-int.npy", raw.astype(np.int64).reshape(-1, 8, 8))
    assert trained > 0.9
    for name in ("raw.csv", "raw.npy", "raw-int.npy"):
        assert _accuracy(model_path, tmp_path / name, labels) == pytest.approx(trained, abs=1e-12)


def test_csv_columns_matched_by_name(digits_model, tmp_path):
    from sklearn.datasets import load_digits

    model_path, _ = digits_model
    bunch = load_digits(as_frame=True)
    frame = bunch.frame.iloc[:200]  # pixel_0_0 .. pixel_7_7 and target, as pandas has them
    labels = frame["target"].to_numpy()
    expected = load(model_path).predict(frame[bunch.feature_names].to_numpy())
    # A pandas export (index column first, target last), then the columns shuffled.
    frame.to_csv(tmp_path / "frame.csv")
    shuffled = frame[list(np.random.default_rng(0).permutation(frame.columns))]
    shuffled.to_csv(tmp_path / "shuffled.csv", index=False)
    for name in ("frame.csv", "shuffled.csv"):
        np.testing.assert_array_equal(_predict(model_path, tmp_path / name), expected, name)
    assert np.mean(expected == labels) > 0.8
    # Names that neither match nor leave the right count: refused, both counts named.
    frame.drop(columns=["pixel_0_0"]).to_csv(tmp_path / "missing.csv", index=False)
    code, _, err = run("predict", model_path, tmp_path / "missing.csv")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "has 64 columns" in err and "expects 64" in err and "pixel_0_0" in err


def test_already_scaled_pixels_warn_naming_the_expected_range(digits_model, tmp_path):
    model_path, _ = digits_model
    ds = load_dataset("digits", seed=0)
    np.save(tmp_path / "scaled.npy", np.asarray(ds.X_test) / 16.0)
    code, stdout, err = run("predict", model_path, tmp_path / "scaled.npy")
    assert code == 0 and stdout.startswith("prediction")
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "warning" in lines[0] and "0..16" in lines[0], err
    with pytest.warns(UserWarning, match=r"training range 0\.\.16") as caught:
        load(model_path).predict(np.asarray(ds.X_test) / 16.0)
    assert caught[0].filename == __file__  # names the caller's line, not the library's


def test_info_says_what_the_model_expects(image_model, digits_model):
    code, text, err = run("info", image_model[0], "--json")
    assert code == 0, err
    expects = json.loads(text)["input"]
    assert expects["image_shape"] == [28, 28] and expects["input_scale"] == 255.0
    assert expects["standardization"] == "per-feature mean, global scale" and expects[
        "raw_range"
    ].startswith("0..")
    code, text, err = run("info", digits_model[0])
    assert code == 0, err
    assert "raw range:     0..16" in text and "divided by 16" in text


def test_checkpoint_cost_per_epoch_does_not_grow_with_the_epochs(monkeypatch, tmp_path):
    """Issue 28: the history was a repr string per row in the JSON, so each epoch's save
    cost grew with the epochs run (quadratic in all). Serialising at epoch 1000 must cost
    about what it costs at epoch 100: a ratio, not a wall-clock limit."""
    import time
    from types import SimpleNamespace

    from backprop import checkpoint
    from backprop.callbacks import EpochLog, History
    from backprop.network import MLP
    from backprop.optim import OPTIMIZERS

    written: list[int] = []
    monkeypatch.setattr(checkpoint, "atomic_write_bytes", lambda p, b: written.append(len(b)))
    net = MLP([4, 16, 3], seed=0)

    def cost(n_epochs: int) -> float:
        history = History()
        for e in range(1, n_epochs + 1):
            history.append(EpochLog(e, 1 / e, 1.5 / e, 0.9, 0.01, 0.001 * e))
        sgd = OPTIMIZERS["sgd"](net.params, 0.1, momentum=0.0, weight_decay=0.0)
        trainer = SimpleNamespace(
            net=net, optimizer=sgd, callbacks=[], epoch=n_epochs,
            stop_training=False, rng=np.random.default_rng(0), history=history,
        )  # fmt: skip
        best = float("inf")
        for _ in range(7):
            t = time.perf_counter()
            checkpoint.save_checkpoint(tmp_path / "ck.safetensors", trainer)
            best = min(best, time.perf_counter() - t)
        return best

    ratio = cost(2000) / cost(200)
    assert ratio < 3, f"a save at epoch 2000 costs {ratio:.1f}x one at epoch 200"
